"""The architecture as a networkx DiGraph of operations, and complexity computed from it."""

from __future__ import annotations

from collections import Counter
from dataclasses import fields
from typing import TYPE_CHECKING, Any

import networkx as nx

from search_space.ops import arch_ops

if TYPE_CHECKING:
    from search_space.arch import Arch
    from search_space.space import SearchSpace

__all__ = ["arch_graph", "complexity"]


def arch_graph(space: SearchSpace, arch: Arch) -> nx.DiGraph:
    """One node per operation (attributes: kind, tokens, widths, MACs, params, bytes, bits).

    Edges run from producer to consumer, residual connections included; the graph's
    ``order`` attribute lists the nodes in execution order.
    """
    g = nx.DiGraph(space=space.name, embed_dim=arch.embed_dim, depth=arch.depth)
    order = []
    ops = arch_ops(space, arch)
    names = [f.name for f in fields(ops[0])] if ops else []
    for op in ops:
        attrs = {n: getattr(op, n) for n in names}  # shallow: dataclasses.asdict deep-copies every field
        name = attrs.pop("name")
        inputs = attrs.pop("inputs")
        g.add_node(name, **attrs)
        g.add_edges_from((src, name) for src in inputs)
        order.append(name)
    g.graph["order"] = order
    return g


def complexity(graph: nx.DiGraph) -> dict[str, Any]:
    """Aggregate costs of an architecture graph.

    Returns a dict with ``params``, ``macs``, ``macs_by_bits`` (bit-width -> MACs, linear
    layers at their block's bit-width, attention mixing and merging in float),
    ``activation_bytes`` (all op outputs), ``weight_bytes``, ``bytes_moved`` (weights +
    activations read and written), ``op_counts`` (kind -> count), ``tokens_out`` and ``depth``.
    """
    nodes = graph.nodes
    macs_by_bits: Counter[int] = Counter()
    counts: Counter[str] = Counter()
    params = macs = 0
    act = weights = moved = 0.0
    for name in graph.graph["order"]:
        node = nodes[name]
        counts[node["kind"]] += 1
        params += node["params"]
        macs += node["macs"]
        if node["macs"]:
            macs_by_bits[node["bits"]] += node["macs"]
        act += node["act_out_bytes"]
        weights += node["weight_bytes"]
        moved += node["weight_bytes"] + node["act_in_bytes"] + node["act_out_bytes"]
    last_block = [n for n in graph.graph["order"] if nodes[n]["block"] >= 0][-1]
    return {
        "params": params,
        "macs": macs,
        "macs_by_bits": dict(sorted(macs_by_bits.items(), reverse=True)),
        "activation_bytes": act,
        "weight_bytes": weights,
        "bytes_moved": moved,
        "op_counts": dict(sorted(counts.items())),
        "tokens_out": nodes[last_block]["tokens_out"],
        "depth": graph.graph["depth"],
    }
