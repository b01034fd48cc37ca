"""`SearchSpace`: loading, round-trips, errors naming the field, size, smallest and largest."""

from __future__ import annotations

import itertools
import random
from dataclasses import replace

import numpy as np
import pytest
import yaml

from search_space import (
    Arch,
    ArchError,
    BlockChoice,
    InputError,
    SearchSpace,
    SpaceError,
    builtin_spaces,
    load_space,
)
from tests.search_space.strategies import space

BASE = {
    "name": "tiny",
    "input": {"size": 8, "channels": 1, "patch": 2, "num_classes": 10},
    "head_dim": 8,
    "embed_dim": [16, 32],
    "depth": [1, 2],
    "heads": [1, 2],
    "mlp_ratio": [1.0, 2.0],
    "attention": ["softmax", "none"],
    "token_keep": [1.0, 0.5],
    "bits": [8],
}


def _space(**changes) -> dict:
    data = {k: (dict(v) if isinstance(v, dict) else list(v) if isinstance(v, list) else v)
            for k, v in BASE.items()}
    data.update(changes)
    return data


def test_builtin_spaces_include_the_documented_ones():
    assert {"digits", "fashion-mnist", "cifar10", "imagenet-mobile"} <= set(builtin_spaces())


@pytest.mark.parametrize("name", builtin_spaces())
def test_builtin_space_loads_and_round_trips(name, tmp_path):
    s = load_space(name)
    assert isinstance(s, SearchSpace)
    assert s.name == name
    assert SearchSpace.from_dict(s.to_dict()) == s
    assert SearchSpace.from_dict(yaml.safe_load(s.to_yaml())) == s
    path = tmp_path / f"{name}.yaml"
    path.write_text(s.to_yaml())
    again = SearchSpace.from_yaml(path)
    assert again == s
    assert load_space(path) == s
    assert load_space(str(path)) == s
    assert again.fingerprint == s.fingerprint
    assert again.to_yaml() == s.to_yaml()


@pytest.mark.parametrize("name", builtin_spaces())
def test_fingerprint_is_stable(name):
    s = load_space(name)
    assert len(s.fingerprint) == 12 and int(s.fingerprint, 16) >= 0
    assert load_space(name).fingerprint == s.fingerprint
    # key order and the description do not shape any subnet
    items = list(s.to_dict().items())
    random.Random(0).shuffle(items)
    assert SearchSpace.from_dict(dict(items)).fingerprint == s.fingerprint
    assert SearchSpace.from_dict({**s.to_dict(), "description": "other words"}).fingerprint == s.fingerprint
    # a change to any choice does
    changed = {**s.to_dict(), "embed_dim": [*s.embed_dim, max(s.embed_dim) + 8]}
    assert SearchSpace.from_dict(changed).fingerprint != s.fingerprint


def test_fingerprints_differ_between_spaces():
    prints = [load_space(n).fingerprint for n in builtin_spaces()]
    assert len(set(prints)) == len(prints)


def test_local_window_defaults_to_one_row_of_patches():
    s = SearchSpace.from_dict(_space())
    assert s.local_window == 4
    assert SearchSpace.from_dict(s.to_dict()) == s


def test_pool_defaults_to_the_class_token_and_round_trips():
    s = SearchSpace.from_dict(_space())
    assert s.pool == "cls" and "pool" not in s.to_dict()  # implicit: older fingerprints stay
    avg = SearchSpace.from_dict({**_space(), "pool": "avg"})
    assert avg.pool == "avg" and SearchSpace.from_dict(avg.to_dict()) == avg
    assert avg.fingerprint != s.fingerprint
    with pytest.raises(SpaceError, match="pool: 'max'"):
        SearchSpace.from_dict({**_space(), "pool": "max"})


# ---- invalid spaces -----------------------------------------------------------------------------


def _without(key):
    data = _space()
    del data[key]
    return data


@pytest.mark.parametrize(
    ("data", "prefix"),
    [
        (_space(kernel=[3, 5]), "kernel: unknown key"),
        (_space(input={**BASE["input"], "stride": 2}), "input.stride: unknown key"),
        (_space(input={"size": 8, "channels": 1, "patch": 2}), "input.num_classes: missing"),
        (_without("head_dim"), "head_dim: missing"),
        (_without("bits"), "bits: missing"),
        (_space(heads=[]), "heads: needs at least one choice"),
        (_space(attention=[]), "attention: needs at least one choice"),
        (_space(heads=[1, 2, 1]), "heads[2]: duplicate choice"),
        (_space(mlp_ratio=[2, 2.0]), "mlp_ratio[1]: duplicate choice"),
        (_space(input={**BASE["input"], "patch": 3}), "input.patch: 3 does not divide input.size 8"),
        (_space(token_keep=[1.0, 0]), "token_keep[1]: "),
        (_space(token_keep=[1.5]), "token_keep[0]: "),
        (_space(token_keep=[-0.5]), "token_keep[0]: "),
        (_space(bits=[8, 3]), "bits[1]: 3 is not one of [4, 8, 16, 32]"),
        (_space(attention=["softmax", "sparse"]), "attention[1]: unknown attention type 'sparse'"),
        (_space(embed_dim="64"), "embed_dim: expected a list"),
        (_space(depth=4), "depth: expected a list"),
        (_space(attention="softmax"), "attention: expected a list"),
        (_space(head_dim=True), "head_dim: expected an integer"),
        (_space(depth=[True, 2]), "depth[0]: expected an integer"),
        (_space(input={**BASE["input"], "channels": False}), "input.channels: expected an integer"),
        (_space(heads=[2.0]), "heads[0]: expected an integer"),
        (_space(mlp_ratio=["4"]), "mlp_ratio[0]: expected a number"),
        (_space(embed_dim=[10**9]), "embed_dim[0]: 1000000000 is larger than the supported maximum"),
        (_space(embed_dim=[10**100]), "embed_dim[0]: "),
        (_space(depth=[0]), "depth[0]: must be a positive integer"),
        (_space(head_dim=-8), "head_dim: must be a positive integer"),
        (_space(mlp_ratio=[0.0]), "mlp_ratio[0]: "),
        (_space(mlp_ratio=[float("nan")]), "mlp_ratio[0]: "),
        # found by fuzzing: a ratio this small built zero-width MLP layers (torch warnings on stderr)
        (_space(mlp_ratio=[4.0, 1e-9]), "mlp_ratio[1]: 1e-09 leaves no hidden unit at embed_dim"),
        (_space(input={**BASE["input"], "size": 10**6}), "input.size: "),
        (_space(input=[8, 1, 2, 10]), "input: expected a mapping"),
        (_space(name=""), "name: expected a non-empty string"),
        (_space(description=7), "description: expected a string"),
        (_space(local_window=0), "local_window: must be a positive integer"),
        (["name", "tiny"], "space: expected a mapping"),
    ],
)
def test_invalid_space_names_the_field(data, prefix):
    with pytest.raises(SpaceError) as info:
        SearchSpace.from_dict(data)
    assert str(info.value).startswith(prefix)
    assert isinstance(info.value, InputError) and isinstance(info.value, ValueError)


def test_space_file_errors_start_with_the_file_name(tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump(_space(bits=[3])))
    with pytest.raises(SpaceError) as info:
        SearchSpace.from_yaml(path)
    assert str(info.value).startswith(f"{path}: bits[0]: 3 is not one of")


def test_load_space_missing_path():
    with pytest.raises(InputError, match=r"missing\.yaml: no such file"):
        load_space("missing.yaml")
    with pytest.raises(InputError, match="no such file"):
        load_space("configs/nowhere/digits")


@pytest.mark.parametrize("ref", ["x" * 300, "x" * 300 + ".yaml", "a\x00b", "a\x00b.yaml"])
def test_load_space_of_a_string_no_file_system_holds(ref):
    """Found by fuzzing: a name too long for a path (ENAMETOOLONG) was an OSError (exit 1)."""
    with pytest.raises(InputError, match=r"no such file|not a built-in space"):
        load_space(ref)


def test_load_space_unknown_name_lists_the_builtins():
    with pytest.raises(InputError) as info:
        load_space("no-such-space")
    message = str(info.value)
    assert "no-such-space" in message
    for name in builtin_spaces():
        assert name in message


def test_load_space_yaml_that_does_not_parse(tmp_path):
    path = tmp_path / "broken.yaml"
    path.write_text("name: broken\nembed_dim: [64, 96\ndepth: [4]\n")
    with pytest.raises(InputError) as info:
        load_space(path)
    assert str(info.value).startswith(f"{path}: not valid YAML")
    assert "\n" not in str(info.value)


def test_load_space_yaml_with_a_duplicate_key(tmp_path):
    path = tmp_path / "dup.yaml"
    path.write_text(yaml.safe_dump(_space()) + "heads: [1, 2, 4]\n")
    with pytest.raises(InputError, match=r"duplicate key 'heads'"):
        load_space(path)


def test_load_space_directory_and_non_text(tmp_path):
    with pytest.raises(InputError, match="directory"):
        load_space(tmp_path)
    path = tmp_path / "binary.yaml"
    path.write_bytes(b"\xff\xfe\x00\x81")
    with pytest.raises(InputError, match="UTF-8"):
        load_space(path)


def test_load_space_yaml_that_is_not_a_mapping(tmp_path):
    path = tmp_path / "list.yaml"
    path.write_text("- 1\n- 2\n")
    with pytest.raises(SpaceError, match="expected a mapping"):
        load_space(path)


# ---- size, smallest, largest ----------------------------------------------------------------


def _all_blocks(s: SearchSpace) -> list[BlockChoice]:
    fields = (s.attention, s.heads, s.mlp_ratio, s.token_keep, s.bits)
    return [BlockChoice(*c) for c in itertools.product(*fields)]


def _brute_force_size(s: SearchSpace) -> int:
    blocks = _all_blocks(s)
    canonical = set()
    for width, depth in itertools.product(s.embed_dim, s.depth):
        for combo in itertools.product(blocks, repeat=depth):
            arch = Arch(width, combo)
            if all(b.attention == "none" for b in combo):
                with pytest.raises(ArchError, match=r"^blocks: all \d+ blocks have attention none"):
                    s.validate(arch)
                continue
            s.validate(arch)
            canonical.add(s.canonical(arch))
    return len(canonical)


@pytest.mark.parametrize(
    "changes",
    [
        {},
        {"attention": ["softmax", "linear", "local", "none"], "heads": [1, 2, 4], "mlp_ratio": [2.0],
         "bits": [8, 32], "depth": [1, 2]},
        {"attention": ["none", "linear"], "depth": [1, 2, 3], "token_keep": [1.0, 0.75, 0.5]},
        {"attention": ["linear"], "depth": [2, 3], "token_keep": [0.5, 0.75], "heads": [4], "bits": [4, 16]},
    ],
    ids=["base", "all-mixers", "mostly-none", "keep-below-one"],
)
def test_size_counts_the_canonical_archs(changes):
    s = SearchSpace.from_dict(_space(**changes))
    assert s.size() == _brute_force_size(s)


def test_size_of_the_base_tiny_space_by_hand():
    # per block: (softmax x 2 heads + none) x 2 ratios x 2 keeps x 1 bits = 12; last block: 6 keeps fixed;
    # less the archs whose blocks are all `none` (no token mixer): 2 of depth 1, 4 x 2 of depth 2
    assert SearchSpace.from_dict(_space()).size() == 2 * ((6 - 2) + (12 * 6 - 4 * 2))


def test_a_space_needs_a_token_mixer():
    with pytest.raises(SpaceError, match=r"^attention: needs a type other than none"):
        SearchSpace.from_dict(_space(attention=["none"]))


@pytest.mark.parametrize("name", builtin_spaces())
def test_smallest_and_largest_bound_the_sampled_archs(name):
    s = load_space(name)
    rng = np.random.default_rng(1)
    small, large = s.smallest(), s.largest()
    assert s.validate(small) is small and s.validate(large) is large
    assert s.canonical(small) == small and s.canonical(large) == large
    lo, hi = s.macs(small), s.macs(large)
    assert s.macs_range() == (lo, hi)
    assert lo < hi
    archs = [s.sample(rng) for _ in range(500)]
    assert all(s.macs(a) >= lo for a in archs)
    keep = max(s.token_keep)
    unmerged = [Arch(a.embed_dim, tuple(replace(b, token_keep=keep) for b in a.blocks)) for a in archs]
    assert all(s.macs(a) <= hi for a in unmerged)
    assert large.embed_dim == max(s.embed_dim) and large.depth == max(s.depth)
    assert small.embed_dim == min(s.embed_dim) and small.depth == min(s.depth)
    assert all(b.bits == max(s.bits) for b in large.blocks)


def test_smallest_is_the_minimum_of_a_tiny_space_by_brute_force():
    s = SearchSpace.from_dict(_space(attention=["softmax", "linear", "local", "none"], heads=[1, 2],
                                     token_keep=[1.0, 0.75, 0.5], depth=[2, 3], mlp_ratio=[1.0]))
    blocks = _all_blocks(s)
    every = [Arch(w, combo) for w in s.embed_dim for d in s.depth
             for combo in itertools.product(blocks, repeat=d) if any(b.attention != "none" for b in combo)]
    macs = [s.macs(a) for a in every]
    assert s.macs(s.smallest()) == min(macs)
    unmerged = [m for a, m in zip(every, macs, strict=True) if all(b.token_keep == 1.0 for b in a.blocks)]
    assert s.macs(s.largest()) == max(unmerged)


def test_validate_and_arch_from_dict():
    s = space("digits")
    arch = s.largest()
    assert s.validate(arch) is arch
    assert s.arch_from_dict(arch.to_dict()) == arch


def _same_network_two_encodings() -> tuple[SearchSpace, Arch, Arch]:
    # fashion-mnist: 49 -> 25 -> 13 -> 7 -> 4 patch tokens; at 4 tokens keep 0.9 keeps round(3.6) = 4,
    # so block 4 merges nothing and keep 0.9 builds the same network as keep 1.0.
    s = space("fashion-mnist")
    half = BlockChoice("softmax", 2, 2.0, 0.5, 32)
    a = Arch(64, (half,) * 4 + (replace(half, token_keep=0.9), half))
    b = Arch(64, (half,) * 4 + (replace(half, token_keep=1.0), half))
    return s, s.canonical(a), s.canonical(b)


def test_keeps_that_merge_nothing_build_identical_graphs():
    s, a, b = _same_network_two_encodings()
    ga, gb = s.graph(a), s.graph(b)
    assert dict(ga.nodes(data=True)) == dict(gb.nodes(data=True))
    assert sorted(ga.edges) == sorted(gb.edges)
    assert s.macs(a) == s.macs(b)


def test_canonical_identifies_archs_with_identical_graphs():
    _, a, b = _same_network_two_encodings()
    assert a == b
