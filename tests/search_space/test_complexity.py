"""Analytic complexity: the fast MACs path equals the graph, DeiT by hand, graph structure, precisions."""

from __future__ import annotations

from collections import Counter

import networkx as nx
import numpy as np
import pytest
from hypothesis import given, settings

from search_space import Arch, BlockChoice, builtin_spaces
from search_space.ops import merged_tokens, token_schedule
from tests.search_space.strategies import raw_arch, space, space_and_arch

NODE_ATTRS = ("kind", "tokens_in", "tokens_out", "dim_in", "dim_out", "macs", "params", "bits",
              "weight_bytes", "act_in_bytes", "act_out_bytes")
LINEAR = ("qkv", "proj", "fc1", "fc2")


@pytest.mark.parametrize("name", builtin_spaces())
def test_fast_macs_equal_the_graph(name):
    s = space(name)
    rng = np.random.default_rng(123)
    for i in range(200):
        arch = s.sample(rng) if i % 2 else s.mutate(s.sample(rng), rng, prob=0.5)
        c = s.complexity(arch)
        assert s.macs(arch) == c["macs"]
        assert sum(c["macs_by_bits"].values()) == c["macs"]
        assert c["params"] > 0 and c["macs"] > 0
        assert c["depth"] == arch.depth


@settings(max_examples=60)
@given(space_and_arch(raw_arch))
def test_fast_macs_equal_the_graph_for_any_encoding(case):
    s, arch = case  # not canonical: a merge requested after the last block is ignored by both
    assert s.macs(arch) == s.complexity(arch)["macs"]
    assert s.macs(arch) == s.macs(s.canonical(arch))


# ---- DeiT by hand (Touvron et al., ICML 2021, table 1; timm's deit_tiny/small_patch16_224) ------


def _deit_macs(d: int, heads: int) -> int:
    patches = (224 // 16) ** 2  # 196
    n = patches + 1  # + class token = 197
    c, hidden = heads * 64, 4 * d
    patch_embed = patches * (16 * 16 * 3) * d  # 196 * 768 * d
    qkv = n * d * 3 * c
    attention = 2 * n * n * c  # q @ k^T and attn @ v
    proj = n * c * d
    mlp = 2 * n * d * hidden
    head = d * 1000
    return patch_embed + 12 * (qkv + attention + proj + mlp) + head


def _deit_params(d: int, heads: int) -> int:
    c, hidden = heads * 64, 4 * d
    patch_embed = 768 * d + d
    cls_and_pos = d + 197 * d
    block = (2 * d) + (d * 3 * c + 3 * c) + (c * d + d) + (2 * d) + (d * hidden + hidden) + (hidden * d + d)
    return patch_embed + cls_and_pos + 12 * block + 2 * d + (d * 1000 + 1000)


def _deit(d: int, heads: int) -> Arch:
    return Arch(d, (BlockChoice("softmax", heads, 4.0, 1.0, 32),) * 12)


def test_deit_hand_formulas_match_the_published_numbers():
    assert _deit_macs(192, 3) == 196 * 768 * 192 + 12 * (
        197 * 192 * 576 + 2 * 197**2 * 192 + 197 * 192 * 192 + 2 * 197 * 192 * 768) + 192 * 1000
    assert _deit_params(192, 3) == 5_717_416  # timm deit_tiny_patch16_224
    assert _deit_params(384, 6) == 22_050_664  # timm deit_small_patch16_224
    assert abs(_deit_macs(192, 3) / 1.26e9 - 1) < 0.02  # "1.3 GFLOPs" (MACs) in the DeiT paper
    assert abs(_deit_macs(384, 6) / 4.6e9 - 1) < 0.02


@pytest.mark.parametrize(("d", "heads", "macs", "params"),
                         [(192, 3, 1.26e9, 5_717_416), (384, 6, 4.6e9, 22_050_664)],
                         ids=["deit-tiny", "deit-small"])
def test_deit_is_a_member_with_the_hand_counted_complexity(d, heads, macs, params):
    s = space("imagenet-mobile")
    arch = _deit(d, heads)
    assert s.validate(arch) is arch
    assert s.canonical(arch) == arch
    c = s.complexity(arch)
    assert c["macs"] == _deit_macs(d, heads)
    assert s.macs(arch) == _deit_macs(d, heads)
    assert abs(c["macs"] / macs - 1) < 0.02
    assert c["params"] == params
    assert c["macs_by_bits"] == {32: c["macs"]}
    assert c["tokens_out"] == 197
    assert c["op_counts"]["attn_softmax"] == 12 and "merge" not in c["op_counts"]


# ---- the graph ---------------------------------------------------------------------------------


@settings(max_examples=60)
@given(space_and_arch(raw_arch))
def test_graph_structure(case):
    s, arch = case
    g = s.graph(arch)
    assert nx.is_directed_acyclic_graph(g)
    order = g.graph["order"]
    assert sorted(order) == sorted(g.nodes)
    position = {name: i for i, name in enumerate(order)}
    assert all(position[u] < position[v] for u, v in g.edges)  # `order` is an execution order
    for name, attrs in g.nodes(data=True):
        missing = [a for a in NODE_ATTRS if a not in attrs]
        assert not missing, f"{name} lacks {missing}"
        assert attrs["macs"] >= 0 and attrs["params"] >= 0
        if attrs["kind"] == "add":
            assert g.in_degree(name) == 2, name
    assert [n for n in g.nodes if g.in_degree(n) == 0] == ["patch_embed"]
    assert [n for n in g.nodes if g.out_degree(n) == 0] == ["head"]
    c = s.complexity(arch)
    assert c["params"] == sum(a["params"] for _, a in g.nodes(data=True))
    assert c["macs"] == sum(a["macs"] for _, a in g.nodes(data=True))
    assert c["weight_bytes"] == sum(a["weight_bytes"] for _, a in g.nodes(data=True))
    assert c["activation_bytes"] == sum(a["act_out_bytes"] for _, a in g.nodes(data=True))


@settings(max_examples=60)
@given(space_and_arch(raw_arch))
def test_op_counts_follow_the_blocks(case):
    s, arch = case
    c = s.complexity(arch)
    counts = Counter(c["op_counts"])
    mixing = [b for b in arch.blocks if b.attention != "none"]
    tokens = token_schedule(s.input.num_patches, arch.blocks)
    merges = sum(1 for i in range(arch.depth - 1) if tokens[i + 1] < tokens[i])
    for kind in ("softmax", "linear", "local"):
        assert counts[f"attn_{kind}"] == sum(b.attention == kind for b in arch.blocks)
    assert counts["attn_none"] == 0
    assert counts["qkv"] == counts["proj"] == len(mixing)
    assert counts["fc1"] == counts["fc2"] == counts["gelu"] == arch.depth
    assert counts["add"] == arch.depth + len(mixing)
    assert counts["norm"] == arch.depth + len(mixing) + 1
    assert counts["merge"] == merges
    assert counts["patch_embed"] == counts["pos_embed"] == counts["head"] == 1


@settings(max_examples=60)
@given(space_and_arch(raw_arch))
def test_none_blocks_have_no_attention_ops(case):
    s, arch = case
    g = s.graph(arch)
    for i, block in enumerate(arch.blocks):
        kinds = {a["kind"] for _, a in g.nodes(data=True) if a["block"] == i}
        has_mixer = block.attention != "none"
        assert ("qkv" in kinds) == has_mixer and ("proj" in kinds) == has_mixer
        assert (f"attn_{block.attention}" in kinds) == has_mixer
        assert {"fc1", "fc2"} <= kinds


@settings(max_examples=60)
@given(space_and_arch(raw_arch))
def test_token_counts_follow_merged_tokens(case):
    s, arch = case
    g = s.graph(arch)
    t = s.input.num_patches
    for i, block in enumerate(arch.blocks):
        nodes = [a for _, a in g.nodes(data=True) if a["block"] == i]
        assert all(a["tokens_in"] == t + 1 for a in nodes)  # the class token is never merged
        out = {a["tokens_out"] for a in nodes}
        if i == arch.depth - 1:
            assert out == {t + 1}  # the last block never merges, whatever its keep
            assert not any(a["kind"] == "merge" for a in nodes)
        else:
            t_next = merged_tokens(t, block.token_keep)
            assert out <= {t + 1, t_next + 1}
            assert any(a["kind"] == "merge" for a in nodes) == (t_next < t)
            t = t_next
    assert s.complexity(arch)["tokens_out"] == t + 1


def test_merged_tokens():
    assert merged_tokens(196, 1.0) == 196
    assert merged_tokens(196, 0.9) == 176  # round(176.4)
    assert merged_tokens(16, 0.75) == 12
    assert merged_tokens(16, 0.5) == 8
    assert merged_tokens(16, 0.25) == 8  # one bipartite step merges at most half
    assert merged_tokens(7, 0.5) == 4
    assert merged_tokens(1, 0.5) == 1


# ---- precisions ----------------------------------------------------------------------------------


def _split(s, arch):
    g = s.graph(arch)
    by_kind = Counter()
    for _, a in g.nodes(data=True):
        by_kind[a["kind"]] += a["macs"]
    linear = sum(by_kind[k] for k in LINEAR)
    floating = by_kind["patch_embed"] + by_kind["head"] + by_kind["merge"] + sum(
        v for k, v in by_kind.items() if k.startswith("attn_"))
    assert linear + floating == s.macs(arch)
    return linear, floating


@pytest.mark.parametrize("bits", [8, 4])
@pytest.mark.parametrize("name", ["digits", "imagenet-mobile"])
def test_integer_arch_counts_only_its_linear_layers_as_integer(name, bits):
    s = space(name)
    rng = np.random.default_rng(5)
    for _ in range(10):
        a = s.sample(rng)
        arch = s.canonical(Arch(a.embed_dim, tuple(
            BlockChoice(b.attention if i else "softmax", b.heads, b.mlp_ratio, b.token_keep, bits)
            for i, b in enumerate(a.blocks))))
        linear, floating = _split(s, arch)
        assert s.complexity(arch)["macs_by_bits"] == {32: floating, bits: linear}


@settings(max_examples=60)
@given(space_and_arch(raw_arch))
def test_macs_by_bits_puts_each_op_at_its_precision(case):
    s, arch = case
    g = s.graph(arch)
    expected = Counter()
    for _, a in g.nodes(data=True):
        if not a["macs"]:
            continue
        if a["kind"] in LINEAR:
            expected[arch.blocks[a["block"]].bits] += a["macs"]
        elif a["kind"].startswith("attn_"):  # mixing runs in float: fp16 in a 16-bit block, else fp32
            expected[16 if arch.blocks[a["block"]].bits == 16 else 32] += a["macs"]
        else:  # patch embed, merge, head
            expected[32] += a["macs"]
    assert s.complexity(arch)["macs_by_bits"] == dict(expected)
