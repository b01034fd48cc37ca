"""The one ONNX Runtime session builder: the options every session of the project gets."""

from __future__ import annotations

import numpy as np
import pytest

from deploy.export.ort_session import first_output, ort_session

ort = pytest.importorskip("onnxruntime")


def _doubling_model():
    from onnx import TensorProto, helper

    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 3])
    graph = helper.make_graph([helper.make_node("Add", ["x", "x"], ["y"])], "double", [x], [y])
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)])


@pytest.mark.parametrize("threads", [1, 2])
def test_session_options_follow_the_threading_guide(threads):
    session = ort_session(_doubling_model(), threads)
    options = session.get_session_options()
    assert options.intra_op_num_threads == threads and options.inter_op_num_threads == 1
    assert options.execution_mode == ort.ExecutionMode.ORT_SEQUENTIAL
    assert options.graph_optimization_level == ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    assert options.log_severity_level == 3
    assert options.get_session_config_entry("session.intra_op.allow_spinning") == "0"
    assert options.get_session_config_entry("session.inter_op.allow_spinning") == "0"
    assert session.get_providers() == ["CPUExecutionProvider"]


def test_a_proto_its_bytes_and_its_file_give_the_same_model(tmp_path):
    model = _doubling_model()
    path = tmp_path / "m.onnx"
    path.write_bytes(model.SerializeToString())
    x = np.arange(3, dtype=np.float32)[None]
    for source in (model, model.SerializeToString(), path, str(path)):
        np.testing.assert_array_equal(first_output(ort_session(source), x), 2 * x)


def test_no_threads_is_refused():
    with pytest.raises(ValueError, match="threads"):
        ort_session(_doubling_model(), 0)
