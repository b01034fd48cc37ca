"""The README's 224x224 recipe ("A 224x224 phone model from DeiT weights"), command for command.

timm DeiT-Tiny weights -> `nas train --space imagenet-mobile --dataset imagefolder --init-from`
-> `nas search --device iphone` -> `nas extract --format onnx,coreml` -> `nas retrain`, with the
README's own commands and only reduced settings: a random state dict of DeiT-Tiny's timm layout
(1000-class ImageNet head) instead of the downloaded weights, a two-class folder of 20 small
images (the loader resizes them to 224x224), one epoch, a few images, the CPU instead of
`--device cuda`, a population of 4 and one generation.

Run with `pytest -m slow tests/test_recipe_224.py` (about a minute on one CPU thread).
"""

from __future__ import annotations

import json

import pytest
import torch
import yaml

from search_space import load_space
from supernet import load_subnet
from supernet.checkpoint import load_checkpoint
from tests.nas.test_cli import nas
from tests.supernet.test_head_follows_dataset import write_two_classes

pytestmark = pytest.mark.slow

# timm's deit_tiny_patch16_224: 224x224 input, 16x16 patches, 192 wide, 12 blocks of 3 heads of
# 64, MLP 4x (768), an ImageNet head (Touvron et al. 2021, table 1)
DIM, DEPTH, HIDDEN, TOKENS, CLASSES = 192, 12, 768, 14 * 14 + 1, 1000
# the README's budget, which binds: DeiT-Tiny predicts 1.17 ms on the iphone device, the space 0.32-2.93 ms
BUDGET = "1ms"


def deit_tiny_state_dict(seed: int = 0) -> dict[str, torch.Tensor]:
    """Random values in the keys and shapes of `timm.create_model('deit_tiny_patch16_224').state_dict()`."""
    shapes = {"cls_token": (1, 1, DIM), "pos_embed": (1, TOKENS, DIM),
              "patch_embed.proj.weight": (DIM, 3, 16, 16), "patch_embed.proj.bias": (DIM,)}
    for i in range(DEPTH):
        shapes |= {f"blocks.{i}.{name}": shape for name, shape in (
            ("norm1.weight", (DIM,)), ("norm1.bias", (DIM,)),
            ("attn.qkv.weight", (3 * DIM, DIM)), ("attn.qkv.bias", (3 * DIM,)),
            ("attn.proj.weight", (DIM, DIM)), ("attn.proj.bias", (DIM,)),
            ("norm2.weight", (DIM,)), ("norm2.bias", (DIM,)),
            ("mlp.fc1.weight", (HIDDEN, DIM)), ("mlp.fc1.bias", (HIDDEN,)),
            ("mlp.fc2.weight", (DIM, HIDDEN)), ("mlp.fc2.bias", (DIM,)))}
    shapes |= {"norm.weight": (DIM,), "norm.bias": (DIM,),
               "head.weight": (CLASSES, DIM), "head.bias": (CLASSES,)}
    g = torch.Generator().manual_seed(seed)
    state = {}
    for key, shape in shapes.items():
        values = torch.randn(shape, generator=g)
        norm_scale = key.endswith(("norm.weight", "norm1.weight", "norm2.weight"))
        state[key] = 1 + 0.1 * values if norm_scale else 0.02 * values
    return state


def _ok(r) -> str:
    assert r.exit_code == 0, (r.exit_code, r.output, r.exc_info)
    return r.stderr


def _follows(trained: torch.Tensor, loaded: torch.Tensor) -> None:
    """`trained` (the leading slice of a supernet tensor after one short epoch) grew from `loaded`:
    close to it and strongly correlated, which a fresh initialisation is not."""
    a, b = trained.flatten().double(), loaded.flatten().double()
    assert torch.corrcoef(torch.stack([a, b]))[0, 1] > 0.9
    assert (a - b).abs().mean() < 0.25 * b.abs().mean()


def test_the_readme_recipe_from_deit_tiny_weights_to_a_core_ml_package(tmp_path, monkeypatch):
    monkeypatch.setenv("NAS_HOME", str(tmp_path / "home"))
    weights = tmp_path / "deit_tiny.pth"
    state = deit_tiny_state_dict()
    torch.save(state, weights)
    data = tmp_path / "data"
    write_two_classes(data, per_class=10, size=32)  # no test/: a fixed 20% (4 images) is the test split
    run, search = tmp_path / "run", tmp_path / "search"

    # train: the 1000-way head of the weights is left out, a fresh 2-way head is trained. --limit 12
    # keeps 6 images a class, the fewest that give each class a validation image (round(0.1 * 6))
    err = _ok(nas("train", "--space", "imagenet-mobile", "--dataset", "imagefolder", "--data-dir", str(data),
                  "--init-from", str(weights), "--epochs", "1", "--batch-size", "4", "--limit", "12",
                  "--out", str(run)))
    assert "imagefolder has 2 classes: training a 2-way head (imagenet-mobile's default is 1000)" in err
    assert (f"{weights}: its head has 1000 classes: loaded every other weight, "
            "the 2-way head starts fresh") in err
    ckpt = load_checkpoint(run / "supernet.pt", load_space("imagenet-mobile"), any_head=True)
    own = ckpt["state_dict"]
    assert own["head.weight"].shape == (2, 384) and ckpt["space"]["input"]["num_classes"] == 2
    # every other tensor of the DeiT is in the supernet's leading slices (widest 384, MLP 1536)
    _follows(own["patch_embed.proj.weight"][:DIM], state["patch_embed.proj.weight"])
    _follows(own["pos_embed"][..., :DIM], state["pos_embed"])
    _follows(own["blocks.11.mlp.fc1.weight"][:HIDDEN, :DIM], state["blocks.11.mlp.fc1.weight"])
    _follows(own["blocks.11.attn.proj.weight"][:DIM, :DIM], state["blocks.11.attn.proj.weight"])

    # search for the iPhone
    _ok(nas("search", "--device", "iphone", "--budget", BUDGET, "--space", "imagenet-mobile",
            "--supernet", str(run / "supernet.pt"), "--population", "4", "--generations", "1",
            "--out", str(search)))
    best = yaml.safe_load((search / "best.yaml").read_text())
    assert best["space"]["input"]["num_classes"] == 2 and best["device"] == "iphone"
    assert best["predicted_latency_ms"] <= 1.0 and best["budget_ms"] == 1.0

    # extract to ONNX and Core ML (default folder: subnet/ beside best.yaml)
    _ok(nas("extract", str(search / "best.yaml"), "--format", "onnx,coreml"))
    subnet = search / "subnet"
    for name in ("model.pt", "model.onnx", "model.float.onnx", "model.mlpackage", "report.json"):
        assert (subnet / name).exists(), name
    assert (subnet / "model.mlpackage" / "Manifest.json").is_file()
    extracted = (subnet / "model.mlpackage" / "Manifest.json").stat().st_mtime_ns

    # retrain, which re-exports the Core ML package from the model it keeps
    _ok(nas("retrain", str(subnet), "--epochs", "1", "--limit", "8", "--batch-size", "4"))
    report = json.loads((subnet / "report.json").read_text())
    assert report["retrain"]["kept"] in ("retrained", "inherited") and len(report["retrain"]["epochs"]) == 1
    assert report["files"]["coreml"] == str(subnet / "model.mlpackage")
    assert (subnet / "model.mlpackage" / "Manifest.json").stat().st_mtime_ns > extracted
    model = load_subnet(subnet / "model.pt")
    with torch.no_grad():
        assert model(torch.zeros(1, 3, 224, 224)).shape == (1, 2)
