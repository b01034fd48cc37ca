"""extract(model, arch) computes exactly what model(x, arch) computes, and stands alone."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from search_space import Arch, ArchError, BlockChoice, InputError, builtin_spaces, load_space
from supernet import SubViT, extract
from supernet.elastic import ElasticLinear

from .conftest import images, trained_like

FAST = {"digits": 200, "fashion-mnist": 200, "cifar10": 200, "imagenet-mobile": 12}


def _check_equal(name: str, count: int) -> None:
    model = trained_like(name)
    space = model.space
    x = images(space)
    rng = np.random.default_rng(1)
    seen_mixers, seen_bits, merged = set(), set(), 0
    for _ in range(count):
        arch = space.sample(rng)
        with torch.no_grad():
            expected = model(x, arch)
            got = extract(model, arch)(x)
        assert torch.isfinite(expected).all()
        assert (expected - got).abs().max().item() <= 1e-5, arch.describe()
        seen_mixers |= {b.attention for b in arch.blocks}
        seen_bits |= {b.bits for b in arch.blocks}
        merged += any(b.token_keep < 1 for b in arch.blocks[:-1])
    assert seen_mixers == set(space.attention)
    assert {4, 8, 16} <= seen_bits
    assert merged > 0


@pytest.mark.parametrize("name", builtin_spaces())
def test_extract_equals_supernet(name):
    _check_equal(name, FAST[name])


@pytest.mark.slow
def test_extract_equals_supernet_imagenet_full():
    _check_equal("imagenet-mobile", 200)


def test_extracted_model_stands_alone():
    model = trained_like("digits")
    space = model.space
    arch = space.sample_by_macs(np.random.default_rng(5))
    sub = extract(model, arch)
    x = images(space)
    before = sub(x).detach()
    super_ptrs = {p.data_ptr() for p in model.parameters()}
    assert not super_ptrs & {p.data_ptr() for p in sub.parameters()}
    assert not any(isinstance(m, ElasticLinear) for m in sub.modules())
    assert {type(m) for m in sub.modules() if not list(m.children())} <= {
        nn.Conv2d, nn.LayerNorm, nn.Linear, type(sub.blocks[0].mlp.fc1)}
    with torch.no_grad():
        for p in model.parameters():
            p.add_(1.0)
    assert torch.equal(sub(x).detach(), before)


def test_extracted_params_equal_complexity():
    model = trained_like("cifar10")
    space = model.space
    rng = np.random.default_rng(2)
    for _ in range(20):
        arch = space.sample(rng)
        sub = extract(model, arch)
        assert sum(p.numel() for p in sub.parameters()) == space.complexity(arch)["params"]


def test_subvit_rebuilds_from_config():
    model = trained_like("digits")
    arch = model.space.sample(np.random.default_rng(3))
    sub = extract(model, arch)
    clone = SubViT.from_config(sub.config())
    clone.load_state_dict(sub.state_dict())
    x = images(model.space)
    assert torch.equal(clone.eval()(x), sub.eval()(x))


@pytest.mark.parametrize(("change", "message"), [
    ({"head_dim": 16 * 10**6}, "head_dim: 16000000 is larger than the supported maximum"),
    ({"head_dim": "16"}, "head_dim: expected an integer"),
    ({"local_window": 0}, "local_window: must be a positive integer"),
    ({"pool": "max"}, "pool: 'max' is not one of"),
    ({"input": {"size": 8, "channels": 1, "patch": 3, "num_classes": 10}}, "does not divide"),
    ({"unknown": 1}, "config.unknown: unknown key"),
])
def test_subvit_config_is_validated_before_allocating(change, message):
    """Found by tests/nas/test_fuzz_inputs.py: a model.pt's config was trusted (int() of any value,
    any size), so a damaged file could ask for gigabytes or fail with a TypeError."""
    sub = extract(trained_like("digits"), load_space("digits").smallest())
    with pytest.raises(InputError, match=message):
        SubViT.from_config({**sub.config(), **change})
    blocks = [{**b, "attention": "none"} for b in sub.config()["arch"]["blocks"]]
    with pytest.raises(InputError, match="attention"):
        SubViT.from_config({**sub.config(), "arch": {"embed_dim": sub.arch.embed_dim, "blocks": blocks}})


def test_width_gradients_stay_in_the_slice():
    model = trained_like("digits").train()
    space = model.space
    block = BlockChoice("softmax", min(space.heads), min(space.mlp_ratio), 1.0, 32)
    arch = Arch(min(space.embed_dim), (block,) * min(space.depth))
    model(images(space), arch).sum().backward()
    d = arch.embed_dim
    fc1 = model.blocks[0].mlp.fc1.weight.grad
    assert fc1[:, :d].abs().sum() > 0
    assert fc1[:, d:].abs().sum() == 0
    assert model.blocks[max(space.depth) - 1].mlp.fc1.weight.grad is None


def test_quantized_blocks_train_the_same_float_weights():
    model = trained_like("digits").train()
    space = model.space
    for bits in (4, 8, 16):
        model.zero_grad()
        arch = Arch(max(space.embed_dim), tuple(
            BlockChoice("softmax", max(space.heads), 4.0, 1.0, bits) for _ in range(2)))
        model(images(space), arch).sum().backward()
        assert model.blocks[0].attn.qkv.weight.grad.abs().sum() > 0


def test_arch_outside_space_is_a_clear_error():
    model = trained_like("digits")
    bad = Arch(64, tuple(BlockChoice("softmax", 8, 4.0, 1.0, 32) for _ in range(2)))
    with pytest.raises(ArchError, match=r"^blocks\[0\]\.heads: 8 is not one of"):
        model(images(model.space), bad)


def test_cached_slices_follow_weight_updates():
    model = trained_like("digits")
    arch = model.space.sample(np.random.default_rng(8))
    x = images(model.space)
    with torch.no_grad():
        first = model(x, arch)
        for p in model.parameters():
            p.mul_(1.1)
        second = model(x, arch)
        assert not torch.equal(first, second)
        assert torch.equal(second, extract(model, arch)(x))


def test_checkpoint_loader_reports_junk_bytes_in_one_line(tmp_path):
    from supernet.checkpoint import CheckpointError, load_checkpoint

    for junk in (b"junk", b"not a checkpoint", b"\x80\x02}q\x00.", b""):
        path = tmp_path / "supernet.pt"
        path.write_bytes(junk)
        with pytest.raises(CheckpointError, match=r"supernet\.pt"):
            load_checkpoint(path)


def test_float_copy_is_the_same_weights_at_32_bits():
    """What the exporters quantize from: this subnet's own weights (already on their grid), unrounded."""
    model = trained_like("digits")
    rng = np.random.default_rng(4)
    arch = next(a for a in iter(lambda: model.space.sample(rng), None) if any(b.bits < 32 for b in a.blocks))
    sub = extract(model, arch)
    copy = sub.float_copy()
    blocks = tuple(BlockChoice(b.attention, b.heads, b.mlp_ratio, b.token_keep, 32) for b in arch.blocks)
    assert copy.arch == Arch(arch.embed_dim, blocks)
    assert not copy.training
    ours, theirs = sub.state_dict(), copy.state_dict()
    assert ours.keys() == theirs.keys() and all(torch.equal(v, theirs[k]) for k, v in ours.items())


@pytest.mark.parametrize("package", ["supernet", "search"])
def test_every_lazy_name_is_what_its_home_defines_whatever_is_imported_first(package):
    """A submodule named like a lazy name would replace it once imported (CI found `supernet.extract`,
    the module, where `from supernet import extract` wanted the function)."""
    import subprocess
    import sys

    code = (f"import importlib, types, {package} as p\n"
            "for home in sorted(set(p._HOMES.values())): importlib.import_module(home)\n"
            "for name, home in p._HOMES.items():\n"
            "    got = getattr(p, name)\n"
            "    assert not isinstance(got, types.ModuleType), name\n"
            "    assert got is getattr(importlib.import_module(home), name), name\n")
    subprocess.run([sys.executable, "-c", code], check=True)
