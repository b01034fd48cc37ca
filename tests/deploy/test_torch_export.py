"""Extracted subnets export with torch.export and to TorchScript, and compute what PyTorch does."""

from __future__ import annotations

import numpy as np
import torch

from deploy.export.torch_export import export_program, export_torchscript
from supernet import extract
from tests.supernet.conftest import images, trained_like


def test_torch_export_program_matches():
    model = trained_like("fashion-mnist")
    arch = model.space.sample(np.random.default_rng(0))
    sub = extract(model, arch)
    program = export_program(sub, batch=2)
    x = images(model.space, batch=2)
    with torch.no_grad():
        assert (program.module()(x) - sub(x)).abs().max() <= 1e-5


def test_torchscript_file_matches_and_is_written_atomically(tmp_path):
    import warnings

    model = trained_like("digits")
    sub = extract(model, model.space.sample(np.random.default_rng(1))).eval()
    path = export_torchscript(sub, tmp_path / "m.torchscript.pt", batch=2)
    x = images(model.space, batch=2)
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore", DeprecationWarning)  # TorchScript is deprecated in torch 2.13
        traced = torch.jit.load(str(path))
        assert (traced(x) - sub(x)).abs().max() <= 1e-4
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.torchscript.pt"]
