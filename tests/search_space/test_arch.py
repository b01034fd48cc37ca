"""`Arch`: exact round-trips, validity of everything the samplers make, errors that name the field."""

from __future__ import annotations

import json
import math
import re
from dataclasses import replace

import numpy as np
import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from search_space import BLOCK_FIELDS, Arch, ArchError, BlockChoice, InputError, SearchSpace
from tests.search_space.strategies import any_arch, raw_arch, seeds, space, space_and_arch


def _plain(value) -> bool:
    """Only YAML/JSON-ready builtins, all the way down."""
    if isinstance(value, dict):
        return all(isinstance(k, str) and _plain(v) for k, v in value.items())
    if isinstance(value, list):
        return all(_plain(v) for v in value)
    return type(value) in (int, float, str)


# ---- round-trips ---------------------------------------------------------------------------


@given(space_and_arch())
def test_dict_round_trip_is_exact(case):
    _, arch = case
    data = arch.to_dict()
    assert _plain(data)
    back = Arch.from_dict(data)
    assert back == arch
    assert hash(back) == hash(arch)
    assert back.to_dict() == data
    assert len({arch, back}) == 1
    for b in back.blocks:  # types survive, not just values
        assert type(b.heads) is int and type(b.bits) is int and type(b.attention) is str
        assert type(b.mlp_ratio) is float and type(b.token_keep) is float


@settings(max_examples=40)
@given(space_and_arch(raw_arch))
def test_yaml_round_trip_is_exact(case):
    _, arch = case
    back = Arch.from_yaml(arch.to_yaml())
    assert back == arch
    assert hash(back) == hash(arch)
    assert back.to_yaml() == arch.to_yaml()


@settings(max_examples=40)
@given(space_and_arch(raw_arch))
def test_round_trip_through_plain_yaml_and_json(case):
    _, arch = case
    via_yaml = Arch.from_dict(yaml.safe_load(yaml.safe_dump(arch.to_dict())))
    via_json = Arch.from_dict(json.loads(json.dumps(arch.to_dict())))
    assert via_yaml == arch and hash(via_yaml) == hash(arch)
    assert via_json == arch and hash(via_json) == hash(arch)


def test_blocks_given_as_list_become_a_tuple():
    block = BlockChoice("softmax", 2, 4.0, 1.0, 32)
    arch = Arch(embed_dim=64, blocks=[block, block])
    assert isinstance(arch.blocks, tuple)
    assert arch == Arch(embed_dim=64, blocks=(block, block))
    assert hash(arch) == hash(Arch(embed_dim=64, blocks=(block, block)))
    assert arch.depth == 2


_OTHER_PROCESS = """
import pickle, sys
from search_space import Arch, BlockChoice
a = pickle.loads(sys.stdin.buffer.read())
b = Arch(64, (BlockChoice("softmax", 2, 4.0, 1.0, 32), BlockChoice("local", 2, 4.0, 1.0, 32)))
print(a == b, hash(a) == hash(b), len({a, b}))
"""


def test_a_pickled_arch_hashes_anew_in_another_process():
    """The hash is cached, and strings hash differently per process: a pickle must not carry it."""
    import os
    import pickle
    import subprocess
    import sys

    block = BlockChoice("softmax", 2, 4.0, 1.0, 32)
    arch = Arch(embed_dim=64, blocks=(block, replace(block, attention="local")))
    hash(arch)
    env = {**os.environ, "PYTHONHASHSEED": "12345"}
    done = subprocess.run([sys.executable, "-c", _OTHER_PROCESS], input=pickle.dumps(arch),
                          capture_output=True, check=True, env=env)
    assert done.stdout.decode().split() == ["True", "True", "1"]
    back = pickle.loads(pickle.dumps(arch))
    assert back == arch and hash(back) == hash(arch) and hash(replace(arch)) == hash(arch)


def test_integer_ratios_in_yaml_read_as_floats():
    arch = Arch.from_yaml(
        "embed_dim: 32\nblocks:\n- {attention: none, heads: 1, mlp_ratio: 2, token_keep: 1, bits: 8}\n"
    )
    assert arch.blocks[0].mlp_ratio == 2.0 and type(arch.blocks[0].mlp_ratio) is float
    assert arch.blocks[0].token_keep == 1.0 and type(arch.blocks[0].token_keep) is float


def test_optional_depth_key_must_match_the_blocks():
    arch = space("digits").smallest()
    data = arch.to_dict()
    assert Arch.from_dict({**data, "depth": arch.depth}) == arch
    with pytest.raises(ArchError, match=r"^depth: "):
        Arch.from_dict({**data, "depth": arch.depth + 1})


# ---- everything the samplers make is valid and canonical --------------------------------------


@given(space_and_arch(any_arch))
def test_made_archs_validate_and_are_canonical(case):
    s, arch = case
    assert s.validate(arch) is arch
    assert s.arch_from_dict(arch.to_dict()) == arch
    # raw draws need not be canonical; their canonical form is valid and a fixed point
    canon = s.canonical(arch)
    assert s.validate(canon) is canon
    assert s.canonical(canon) == canon


@given(space_and_arch(lambda s: seeds), st.sampled_from(["sample", "sample_by_macs"]))
def test_sampled_archs_are_canonical(case, how):
    s, seed = case
    arch = getattr(s, how)(np.random.default_rng(seed))
    assert s.validate(arch) is arch
    assert s.canonical(arch) == arch


@given(space_and_arch(raw_arch), seeds, st.floats(0.0, 1.0))
def test_mutate_gives_a_different_valid_canonical_arch(case, seed, prob):
    s, parent = case
    child = s.mutate(parent, np.random.default_rng(seed), prob=prob)
    assert s.validate(child) is child
    assert s.canonical(child) == child
    assert child != s.canonical(parent)


@given(st.sampled_from(["digits", "cifar10"]).map(space).flatmap(
    lambda s: st.tuples(st.just(s), raw_arch(s), raw_arch(s), seeds)))
def test_crossover_gives_a_valid_canonical_arch(case):
    s, a, b, seed = case
    child = s.crossover(a, b, np.random.default_rng(seed))
    assert s.validate(child) is child
    assert s.canonical(child) == child


def test_canonical_fixes_the_irrelevant_genes():
    s = space("digits")
    arch = Arch(32, (BlockChoice("none", 4, 2.0, 0.5, 8), BlockChoice("softmax", 4, 2.0, 0.5, 8)))
    canon = s.canonical(arch)
    assert canon.blocks[0] == BlockChoice("none", min(s.heads), 2.0, 0.5, 8)  # heads unused
    assert canon.blocks[1] == BlockChoice("softmax", 4, 2.0, max(s.token_keep), 8)  # last never merges
    assert s.macs(canon) == s.macs(arch)


# ---- invalid archs are rejected, naming the field ----------------------------------------------

_ANY_VALUE = st.one_of(
    st.integers(-10, 10_000),
    st.floats(allow_nan=False, allow_infinity=False, min_value=-10, max_value=100),
    st.sampled_from(["softmax", "linear", "local", "none", "sparse", "flash", "SOFTMAX"]),
)


@st.composite
def _block_field_outside_space(draw):
    s = space(draw(st.sampled_from(["digits", "fashion-mnist", "cifar10", "imagenet-mobile"])))
    arch = draw(raw_arch(s))
    index = draw(st.integers(0, arch.depth - 1))
    field = draw(st.sampled_from(BLOCK_FIELDS))
    choices = getattr(s, field)
    value = draw(_ANY_VALUE.filter(lambda v: v not in choices))
    return s, arch.replace_block(index, **{field: value}), f"blocks[{index}].{field}", value, choices


@given(_block_field_outside_space())
def test_block_value_outside_the_space_is_named(case):
    s, arch, path, value, choices = case
    with pytest.raises(ArchError) as info:
        s.validate(arch)
    assert str(info.value).startswith(f"{path}: ")
    assert str(info.value) == f"{path}: {value!r} is not one of {list(choices)}"
    with pytest.raises(ArchError, match=f"^{re.escape(path)}: "):
        s.arch_from_dict(arch.to_dict())


def test_documented_message_format():
    # the example of docs/design.md, File formats (best.yaml), on a space whose heads are [2, 4]
    s = SearchSpace.from_dict({
        "name": "doc", "input": {"size": 16, "channels": 1, "patch": 2, "num_classes": 10},
        "head_dim": 16, "embed_dim": [64, 96, 128], "depth": [4, 5, 6], "heads": [2, 4],
        "mlp_ratio": [2.0, 3.0, 4.0], "attention": ["softmax", "linear", "local", "none"],
        "token_keep": [1.0, 0.9, 0.75], "bits": [32, 8, 4],
    })
    arch = s.largest().replace_block(3, heads=8)
    with pytest.raises(ArchError) as info:
        s.validate(arch)
    assert str(info.value) == "blocks[3].heads: 8 is not one of [2, 4]"
    with pytest.raises(ArchError) as info:
        s.validate(s.largest().replace_block(0, attention="sparse"))
    assert str(info.value) == (
        "blocks[0].attention: 'sparse' is not one of ['softmax', 'linear', 'local', 'none']"
    )


@settings(max_examples=30)
@given(space_and_arch(raw_arch), st.integers(1, 100_000))
def test_embed_dim_outside_the_space_is_named(case, width):
    s, arch = case
    if width in s.embed_dim:
        width += max(s.embed_dim)
    with pytest.raises(ArchError) as info:
        s.validate(replace(arch, embed_dim=width))
    assert str(info.value) == f"embed_dim: {width} is not one of {list(s.embed_dim)}"


@settings(max_examples=30)
@given(space_and_arch(raw_arch), st.integers(1, 140))
def test_depth_outside_the_space_is_named(case, depth):
    s, arch = case
    if depth in s.depth:
        depth = max(s.depth) + depth
    blocks = (arch.blocks * depth)[:depth]
    with pytest.raises(ArchError) as info:
        s.validate(Arch(arch.embed_dim, blocks))
    assert str(info.value) == f"depth: {depth} is not one of {list(s.depth)}"


@pytest.mark.parametrize("value", [True, False, "2", None])
def test_validate_rejects_values_of_the_wrong_type(value):
    s = space("digits")  # heads [1, 2, 4]: True == 1, but a bool is not a head count
    with pytest.raises(ArchError, match=r"^blocks\[0\]\.heads: "):
        s.validate(s.largest().replace_block(0, heads=value))


# ---- from_dict rejects malformed data, naming the field ----------------------------------------

_BLOCK = {"attention": "softmax", "heads": 2, "mlp_ratio": 4.0, "token_keep": 1.0, "bits": 8}


def _arch(**changes):
    data = {"embed_dim": 64, "blocks": [dict(_BLOCK), dict(_BLOCK)]}
    data.update(changes)
    return data


def _block(index, **changes):
    data = _arch()
    data["blocks"][index].update(changes)
    return data


def _without(index, key):
    data = _arch()
    del data["blocks"][index][key]
    return data


@pytest.mark.parametrize(
    ("data", "prefix"),
    [
        (_arch(width=64), "width: unknown key"),
        (_block(1, kernel=3), "blocks[1].kernel: unknown key"),
        ({"blocks": [_BLOCK]}, "embed_dim: missing"),
        ({"embed_dim": 64}, "blocks: missing"),
        (_without(1, "bits"), "blocks[1].bits: missing"),
        (_arch(embed_dim=True), "embed_dim: expected an integer"),
        (_arch(embed_dim=64.0), "embed_dim: expected an integer"),
        (_arch(embed_dim="64"), "embed_dim: expected an integer"),
        (_arch(embed_dim=None), "embed_dim: expected an integer"),
        (_block(0, heads=True), "blocks[0].heads: expected an integer"),
        (_block(1, heads=2.5), "blocks[1].heads: expected an integer"),
        (_block(1, bits="8"), "blocks[1].bits: expected an integer"),
        (_block(0, mlp_ratio="4.0"), "blocks[0].mlp_ratio: expected a number"),
        (_block(0, mlp_ratio=False), "blocks[0].mlp_ratio: expected a number"),
        (_block(1, token_keep=[1.0]), "blocks[1].token_keep: expected a number"),
        (_block(1, token_keep=math.nan), "blocks[1].token_keep: expected a finite number"),
        (_block(0, mlp_ratio=math.inf), "blocks[0].mlp_ratio: expected a finite number"),
        (_block(0, mlp_ratio=10**400), "blocks[0].mlp_ratio: "),
        (_block(0, attention=""), "blocks[0].attention: expected a non-empty string"),
        (_block(0, attention=3), "blocks[0].attention: expected a non-empty string"),
        (_arch(blocks={"0": _BLOCK}), "blocks: expected a list"),
        (_arch(blocks="softmax"), "blocks: expected a list"),
        (_arch(blocks=None), "blocks: expected a list"),
        (_arch(blocks=[]), "blocks: an architecture needs at least one block"),
        (_arch(blocks=[_BLOCK, "softmax"]), "blocks[1]: expected a mapping"),
        ([_BLOCK], "arch: expected a mapping"),
        ("embed_dim: 64", "arch: expected a mapping"),
        (_arch(depth="2"), "depth: expected an integer"),
    ],
)
def test_from_dict_rejects_malformed_data(data, prefix):
    with pytest.raises(ArchError) as info:
        Arch.from_dict(data)
    assert str(info.value).startswith(prefix)
    assert isinstance(info.value, InputError) and isinstance(info.value, ValueError)


_NOT_INT = st.one_of(st.booleans(), st.floats(), st.text(), st.none(), st.lists(st.integers(), max_size=2))
_NOT_NUMBER = st.one_of(st.booleans(), st.text(), st.none(), st.lists(st.floats(), max_size=2),
                        st.dictionaries(st.text(), st.integers(), max_size=2))
_NOT_STR = st.one_of(st.integers(), st.floats(), st.booleans(), st.none(),
                     st.text(alphabet=" \t\n", max_size=3), st.lists(st.text(), max_size=2))
_WRONG_TYPE = {"attention": _NOT_STR, "heads": _NOT_INT, "bits": _NOT_INT,
               "mlp_ratio": _NOT_NUMBER, "token_keep": _NOT_NUMBER}


@st.composite
def _wrong_type_case(draw):
    _, arch = draw(space_and_arch(raw_arch))
    data = arch.to_dict()
    index = draw(st.integers(0, arch.depth - 1))
    field = draw(st.sampled_from(BLOCK_FIELDS))
    data["blocks"][index][field] = draw(_WRONG_TYPE[field])
    return data, f"blocks[{index}].{field}: "


@given(_wrong_type_case())
def test_from_dict_names_any_field_of_the_wrong_type(case):
    data, prefix = case
    with pytest.raises(ArchError) as info:
        Arch.from_dict(data)
    assert str(info.value).startswith(prefix)


def test_from_yaml_reports_bad_yaml_as_input_error():
    with pytest.raises(InputError, match="not valid YAML"):
        Arch.from_yaml("embed_dim: [64\nblocks: x", source="a.yaml")
    with pytest.raises(InputError, match="duplicate key 'embed_dim'"):
        Arch.from_yaml("embed_dim: 64\nembed_dim: 32\nblocks: []\n")
