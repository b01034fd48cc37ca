"""The ONNX exporter: extracted subnets export to ONNX (one checked path), and ONNX Runtime agrees."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from deploy.export.onnx_export import OPSET, export_onnx
from deploy.export.ort_session import first_output, ort_session
from search_space import Arch, BlockChoice
from supernet import extract
from tests.supernet.conftest import images, trained_like

MIXED = Arch(48, (
    BlockChoice("softmax", 2, 2.0, 0.75, 32),
    BlockChoice("local", 4, 2.0, 0.5, 32),
    BlockChoice("linear", 1, 3.0, 0.75, 32),
    BlockChoice("none", 1, 4.0, 1.0, 32),
))


def _onnx_logits(path, x):
    return first_output(ort_session(path), x.numpy())


def test_float_subnet_onnx_matches(tmp_path):
    import onnx

    model = trained_like("digits")
    sub = extract(model, MIXED)
    x = images(model.space, batch=4)
    path = export_onnx(sub, tmp_path / "m.onnx", batch=4)
    with torch.no_grad():
        expected = sub(x).numpy()
    assert np.abs(_onnx_logits(path, x) - expected).max() <= 1e-4
    assert onnx.load(str(path)).opset_import[0].version == OPSET == 18
    assert not list(tmp_path.glob(".*tmp"))


def test_quantized_subnet_onnx_agrees_up_to_rounding(tmp_path):
    """int8 rounding is discontinuous: a 1e-7 difference can move a value one step.

    Bound: predictions agree, and logits differ by at most 5% of their range.
    """
    model = trained_like("digits")
    arch = Arch(64, tuple(BlockChoice(m, 2, 2.0, 1.0, b) for m, b in
                          [("softmax", 8), ("linear", 4), ("local", 16), ("none", 8)]))
    sub = extract(model, arch)
    x = images(model.space, batch=8)
    path = export_onnx(sub, tmp_path / "q.onnx", batch=8)
    with torch.no_grad():
        expected = sub(x).numpy()
    got = _onnx_logits(path, x)
    assert np.abs(got - expected).max() <= 0.05 * np.ptp(expected)
    assert (got.argmax(1) == expected.argmax(1)).mean() >= 0.85


def test_old_opsets_are_refused(tmp_path):
    sub = extract(trained_like("digits"), MIXED)
    with pytest.raises(ValueError, match="opset 13"):
        export_onnx(sub, tmp_path / "m.onnx", opset=13)


@pytest.mark.slow
@pytest.mark.parametrize("name", ["digits", "fashion-mnist", "cifar10"])
def test_random_float_subnets_onnx_match(tmp_path, name):
    model = trained_like(name)
    rng = np.random.default_rng(9)
    x = images(model.space, batch=2)
    for i in range(6):
        a = model.space.sample(rng)
        arch = Arch(a.embed_dim, tuple(BlockChoice(b.attention, b.heads, b.mlp_ratio, b.token_keep, 32)
                                       for b in a.blocks))
        sub = extract(model, arch)
        path = export_onnx(sub, tmp_path / f"{i}.onnx", batch=2)
        with torch.no_grad():
            assert np.abs(_onnx_logits(path, x) - sub(x).numpy()).max() <= 1e-4, arch.describe()
