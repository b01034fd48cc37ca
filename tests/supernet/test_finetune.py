"""`retrain_subnet`: exact resume, distillation that matters, quantization-aware weights on their grid."""

from __future__ import annotations

import pytest
import torch

from search_space import Arch, InputError
from supernet import extract
from supernet.data import load_dataset
from supernet.finetune import RetrainConfig, distillation_loss, retrain_subnet
from supernet.quant import quantize_weight
from supernet.subnet import QuantLinear
from tests.supernet.conftest import trained_like

BLOCKS = [
    {"attention": "softmax", "heads": 2, "mlp_ratio": 2.0, "token_keep": 1.0, "bits": 8},
    {"attention": "linear", "heads": 1, "mlp_ratio": 2.0, "token_keep": 0.75, "bits": 4},
    {"attention": "none", "heads": 1, "mlp_ratio": 2.0, "token_keep": 1.0, "bits": 32},
]
SMALL = RetrainConfig(epochs=4, limit=96, batch_size=32, lr=1e-3, warmup_epochs=1)


@pytest.fixture(scope="module")
def parts():
    supernet = trained_like("digits")
    arch = Arch.from_dict({"embed_dim": 48, "blocks": BLOCKS})
    splits = load_dataset("digits", size=8, channels=1, num_classes=10)
    return extract(supernet, arch).eval(), extract(supernet, supernet.space.largest()).eval(), splits


def _run(parts, path, config=SMALL, **kwargs):
    student, teacher, splits = parts
    return retrain_subnet(student, splits, config, path, teacher=teacher, source="s", **kwargs)


def _history(result):
    return [{k: v for k, v in r.items() if k != "seconds"} for r in result.history]


def _same_weights(a, b) -> bool:
    sa, sb = a.state_dict(), b.state_dict()
    return sa.keys() == sb.keys() and all(torch.equal(sa[k], sb[k]) for k in sa)


def test_two_epochs_then_resume_equals_four_epochs(parts, tmp_path):
    whole = _run(parts, tmp_path / "a.pt")
    first = _run(parts, tmp_path / "b.pt", stop_after=2)
    assert not first.finished and len(first.history) == 2
    rest = _run(parts, tmp_path / "b.pt", resume=True)
    assert rest.finished and whole.finished
    assert _history(rest) == _history(whole)
    assert rest.best_epoch == whole.best_epoch
    assert _same_weights(rest.model, whole.model)
    with pytest.raises(InputError, match="--resume needs the settings"):
        _run(parts, tmp_path / "b.pt", config=SMALL.replace(lr=5e-4), resume=True)


def test_best_epoch_is_the_best_validation_epoch(parts, tmp_path):
    result = _run(parts, tmp_path / "r.pt")
    scores = [r["val_top1"] for r in result.history]
    assert result.best_epoch == max(i + 1 for i, s in enumerate(scores) if s == max(scores))


def test_distillation_weight_changes_the_result(parts, tmp_path):
    labels_only = _run(parts, tmp_path / "a.pt", config=SMALL.replace(distill_weight=0.0))
    distilled = _run(parts, tmp_path / "b.pt", config=SMALL.replace(distill_weight=0.9))
    assert not _same_weights(labels_only.model, distilled.model)
    off = _run(parts, tmp_path / "c.pt", config=SMALL.replace(distill=False))
    assert _same_weights(off.model, labels_only.model)  # weight 0 = no distillation, exactly
    with pytest.raises(InputError, match="teacher"):
        retrain_subnet(parts[0], parts[2], SMALL, tmp_path / "d.pt", teacher=None)


def test_distillation_loss_is_the_hinton_mix():
    torch.manual_seed(0)
    logits, labels = torch.randn(8, 10), torch.randint(0, 10, (8,))
    hard = torch.nn.functional.cross_entropy(logits, labels)
    same = distillation_loss(logits, labels, logits, weight=0.5, temperature=3.0, label_smoothing=0.0)
    assert same.item() == pytest.approx(0.5 * hard.item(), abs=1e-6)  # KL of a model with itself is 0
    other = distillation_loss(logits, labels, torch.randn(8, 10), weight=1.0, temperature=3.0,
                              label_smoothing=0.0)
    assert other.item() > 0


def test_quantization_aware_weights_stay_on_their_grid(parts, tmp_path):
    student = parts[0]
    result = _run(parts, tmp_path / "q.pt")
    layers = dict(result.model.named_modules())
    changed = 0
    for name, layer in student.named_modules():
        if not isinstance(layer, QuantLinear):
            continue
        new = layers[name]
        changed += not torch.equal(new.weight, layer.weight)
        if layer.bits in (8, 4):
            assert torch.allclose(quantize_weight(new.weight, layer.bits), new.weight, atol=1e-6), name
            assert new.act_absmax > 0 and not torch.equal(new.act_absmax, layer.act_absmax), name
        else:
            assert not torch.allclose(quantize_weight(new.weight, 8), new.weight, atol=1e-6), name
    assert changed > 0
