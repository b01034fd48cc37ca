"""Checks one uploaded ONNX model before ONNX Runtime loads it, so an upload can only be a model to time.

Refused: bytes that do not parse as an ONNX `ModelProto` (`not_onnx`); an operator, opset or
model-local function outside ONNX's own domains and ONNX Runtime's built-in contrib ops
(`custom_domain`: a custom op would need a library the agent never loads); any tensor whose
data is external (`external_data`: an upload is one self-contained file, and a path in it
would reach outside it, e.g. '../../etc/passwd'); inputs that are not plain numeric tensors
(`input_type`), or more or larger ones than the limits (`input_shape`). onnx is
imported inside the functions; nothing is written to disk.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING

from latency_agent.limits import Limits
from latency_agent.protocol import RequestError, one_line

if TYPE_CHECKING:
    import onnx

__all__ = ["ALLOWED_DOMAINS", "CheckedModel", "check_model"]

# ONNX's domains ('' and 'ai.onnx' are the same), ONNX-ML, and ONNX Runtime's contrib ops
# (MatMulNBits, which the int4 graphs use, DynamicQuantizeMatMul, ...): all built into onnxruntime.
ALLOWED_DOMAINS = frozenset({"", "ai.onnx", "ai.onnx.ml", "com.microsoft"})
# Bytes per element of the input types the agent can feed (float: N(0, 1), integers and bool: 0).
_ELEMENT_BYTES = {1: 4, 2: 1, 3: 1, 4: 2, 5: 2, 6: 4, 7: 8, 9: 1, 10: 2, 11: 8, 12: 4, 13: 8}


@dataclass(frozen=True, slots=True)
class CheckedModel:
    """An upload that passed `check_model`: its bytes (what ONNX Runtime loads) and the bytes of the
    random inputs a timing feeds it."""

    data: bytes
    feed_bytes: int


def check_model(data: bytes, limits: Limits, where: str = "model") -> CheckedModel:
    """`data` if it is a self-contained ONNX model of built-in ops with bounded inputs.

    Raises:
        RequestError: 400 with the code of the first check that fails, naming `where`.
    """
    model = _parse(data, where)
    graphs, nodes = _walk(model)
    _check_domains(model, nodes, where)
    _check_tensors(graphs, nodes, where)
    feed = _check_inputs(model.graph, limits, where)
    return CheckedModel(data=data, feed_bytes=feed)


def _parse(data: bytes, where: str) -> onnx.ModelProto:
    import onnx

    try:
        model = onnx.load_model_from_string(data)
    except Exception as exc:  # noqa: BLE001 - whatever the parser says (DecodeError, truncation): not ONNX
        raise RequestError(400, "not_onnx", f"{where}: not an ONNX model ({type(exc).__name__})") from None
    if not model.HasField("graph") or not model.opset_import or model.ir_version < 1:
        raise RequestError(400, "not_onnx", f"{where}: not an ONNX model (no graph, opset or IR version)")
    return model


def _subgraphs(node: onnx.NodeProto) -> Iterator[onnx.GraphProto]:
    for attr in node.attribute:
        if attr.HasField("g"):
            yield attr.g
        yield from attr.graphs


def _walk(model: onnx.ModelProto) -> tuple[list[onnx.GraphProto], list[onnx.NodeProto]]:
    """Every graph (the main one, training graphs, If / Loop / Scan bodies at any depth) and every
    node (in those graphs and in model-local functions); iterative, so depth costs no recursion."""
    graphs, nodes = [], []
    stack = [model.graph]
    for info in model.training_info:
        stack += [info.initialization, info.algorithm]
    pending = [n for f in model.functions for n in f.node]
    while stack or pending:
        if stack:
            graph = stack.pop()
            graphs.append(graph)
            pending += graph.node
            continue
        node = pending.pop()
        nodes.append(node)
        stack += _subgraphs(node)
    return graphs, nodes


def _custom(domain: str, what: str, where: str) -> RequestError:
    return RequestError(400, "custom_domain", f"{where}: {what} in domain {one_line(repr(domain), 60)}; "
                        f"the agent runs only ONNX Runtime's built-in domains {sorted(ALLOWED_DOMAINS)}")


def _check_domains(model: onnx.ModelProto, nodes: list[onnx.NodeProto], where: str) -> None:
    for opset in model.opset_import:
        if opset.domain not in ALLOWED_DOMAINS:
            raise _custom(opset.domain, "an opset import", where)
    for function in model.functions:
        if function.domain not in ALLOWED_DOMAINS:
            raise _custom(function.domain, f"the function {one_line(repr(function.name), 40)}", where)
        for opset in function.opset_import:
            if opset.domain not in ALLOWED_DOMAINS:
                raise _custom(opset.domain, "a function's opset import", where)
    for node in nodes:
        if node.domain not in ALLOWED_DOMAINS:
            raise _custom(node.domain, f"the operator {one_line(repr(node.op_type), 40)}", where)


def _tensors(graphs: list[onnx.GraphProto], nodes: list[onnx.NodeProto]) -> Iterator[onnx.TensorProto]:
    for graph in graphs:
        yield from graph.initializer
        for sparse in graph.sparse_initializer:
            yield from (sparse.values, sparse.indices)
    for node in nodes:
        for attr in node.attribute:
            if attr.HasField("t"):
                yield attr.t
            yield from attr.tensors
            sparse = [attr.sparse_tensor] if attr.HasField("sparse_tensor") else []
            for s in [*sparse, *attr.sparse_tensors]:
                yield from (s.values, s.indices)


def _check_tensors(graphs: list[onnx.GraphProto], nodes: list[onnx.NodeProto], where: str) -> None:
    external = 1  # onnx.TensorProto.EXTERNAL
    for tensor in _tensors(graphs, nodes):
        if tensor.data_location == external or len(tensor.external_data):
            location = next((e.value for e in tensor.external_data if e.key == "location"), "?")
            name = one_line(repr(tensor.name), 40)
            raise RequestError(400, "external_data", f"{where}: tensor {name} keeps its data in an external "
                               f"file ({one_line(repr(location), 60)}); upload one self-contained ONNX file")


def _input_error(where: str, message: str, code: str = "input_shape") -> RequestError:
    return RequestError(400, code, f"{where}: {message}")


def _check_inputs(graph: onnx.GraphProto, limits: Limits, where: str) -> int:
    """The bytes of the inputs fed to `graph`; refuses inputs the agent cannot or should not feed."""
    initialized = {t.name for t in graph.initializer} | {s.values.name for s in graph.sparse_initializer}
    inputs = [i for i in graph.input if i.name not in initialized]
    if len(inputs) > limits.max_inputs:
        raise _input_error(where, f"{len(inputs)} inputs; {limits.max_inputs} at most")
    total = 0
    for inp in inputs:
        name, tensor = one_line(repr(inp.name), 40), inp.type.tensor_type
        if inp.type.WhichOneof("value") != "tensor_type" or tensor.elem_type not in _ELEMENT_BYTES:
            raise _input_error(where, f"input {name} is not a float, int or bool tensor", "input_type")
        if not tensor.HasField("shape"):
            raise _input_error(where, f"input {name} declares no shape")
        dims = []
        for d in tensor.shape.dim:
            if d.HasField("dim_value") and not 1 <= d.dim_value <= limits.max_input_dim:
                raise _input_error(where, f"input {name} has a dimension of {d.dim_value}; each must be in "
                                   f"[1, {limits.max_input_dim}] (a symbolic one counts as 1)")
            dims.append(d.dim_value if d.HasField("dim_value") else 1)
        elements = math.prod(dims)
        if elements > limits.max_input_elements:
            raise _input_error(where, f"input {name} has {elements} elements; "
                               f"{limits.max_input_elements} at most")
        total += elements * _ELEMENT_BYTES[tensor.elem_type]
    return total
