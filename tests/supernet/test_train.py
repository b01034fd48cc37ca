"""Supernet training: sandwich steps learn, checkpoints round-trip, resume is exact, bad input is clean."""

from __future__ import annotations

import itertools
import json
import math
import warnings

import numpy as np
import pytest
import torch
from click.testing import CliRunner

from nas.cli import main
from search_space import InputError, load_space
from supernet.checkpoint import CheckpointError, load_checkpoint, load_supernet, save_checkpoint
from supernet.subnet_sampler import SubnetSampler
from supernet.train import project_conflict, train_supernet
from supernet.train_config import TrainConfig, preset

TINY = TrainConfig(epochs=3, batch_size=32, limit=200, eval_every=1, warmup_epochs=1, random_subnets=1)


def test_training_writes_checkpoint_and_metrics(tmp_path):
    result = train_supernet(TINY, tmp_path)
    data = load_checkpoint(result.checkpoint, load_space("digits"))
    assert data["epoch"] == 3 and set(data) >= {"state_dict", "space", "train_config", "metrics", "version"}
    metrics = json.loads(result.metrics_path.read_text())
    assert [e["epoch"] for e in metrics["epochs"]] == [1, 2, 3]
    assert set(metrics["epochs"][-1]["val_top1"]) == {"largest", "smallest", "mid1", "mid2", "mid3"}
    assert set(metrics["final"]) == {"test_top1_largest", "test_top1_smallest"}
    assert metrics["epochs"][-1]["loss"] < metrics["epochs"][0]["loss"]
    model, _ = load_supernet(result.checkpoint)
    space = model.space
    x = torch.zeros(2, 1, 8, 8)
    assert model(x, space.largest()).shape == (2, 10)


def test_resume_ends_where_an_uninterrupted_run_ends(tmp_path):
    full = train_supernet(TINY, tmp_path / "full")
    train_supernet(TINY, tmp_path / "two", stop_after=2)
    train_supernet(TINY, tmp_path / "split", stop_after=1)
    train_supernet(TINY, tmp_path / "split", resume=True, stop_after=2)
    # the resumable state (train_state.pt, removed once a run is finished) matches too
    two, split = (load_checkpoint(tmp_path / run / "train_state.pt") for run in ("two", "split"))
    assert two["sampler"] == split["sampler"] and two["scheduler"] == split["scheduler"]
    resumed = train_supernet(TINY, tmp_path / "split", resume=True)
    a = load_checkpoint(full.checkpoint)["state_dict"]
    b = load_checkpoint(resumed.checkpoint)["state_dict"]
    assert a.keys() == b.keys()
    for key in a:
        assert torch.equal(a[key], b[key]), key


def _params_with(grads):
    params = [torch.nn.Parameter(torch.zeros_like(g)) for g in grads]
    for p, g in zip(params, grads, strict=True):
        p.grad = g.clone()
    return params


def test_a_conflicting_subnet_gradient_is_projected_off_the_largest():
    largest = [torch.tensor([1.0, 0.0]), torch.tensor([[2.0]])]
    others = [torch.tensor([-3.0, 1.0]), torch.tensor([[0.5]])]      # dot with largest: -3 + 1 = -2 < 0
    params = _params_with([a + b for a, b in zip(largest, others, strict=True)])
    assert project_conflict(params, largest)
    rest = [p.grad - a for p, a in zip(params, largest, strict=True)]
    assert abs(float(sum(torch.sum(r * a) for r, a in zip(rest, largest, strict=True)))) < 1e-6
    # the projection takes away only the conflicting direction: others - (dot / |largest|^2) * largest
    assert torch.allclose(rest[0], torch.tensor([-3.0 + 2 / 5, 1.0]))
    assert torch.allclose(rest[1], torch.tensor([[0.5 + 2 * 2 / 5]]))


def test_an_agreeing_subnet_gradient_is_left_alone():
    largest = [torch.tensor([1.0, 0.0]), None]
    params = _params_with([torch.tensor([1.5, -4.0]), torch.tensor([7.0])])  # others: [0.5, -4]: dot 0.5 > 0
    assert not project_conflict(params, largest)
    assert torch.equal(params[0].grad, torch.tensor([1.5, -4.0]))
    assert torch.equal(params[1].grad, torch.tensor([7.0]))


def test_training_with_gradient_projection_projects_every_step_and_resumes(tmp_path, monkeypatch):
    import supernet.train as training

    calls = []
    def spy(params, anchor):
        calls.append(len(anchor))
        return project_conflict(params, anchor)

    monkeypatch.setattr(training, "project_conflict", spy)
    config = TINY.replace(grad_projection=True)
    steps = []
    full = train_supernet(config, tmp_path / "full", on_step=steps.append)
    data = load_checkpoint(full.checkpoint)
    assert data["train_config"]["grad_projection"] is True
    n_params = len(list(training.SuperViT(load_space("digits")).parameters()))
    assert len(calls) == len(steps) > 0 and set(calls) == {n_params}
    train_supernet(config, tmp_path / "split", stop_after=1)
    resumed = train_supernet(config, tmp_path / "split", resume=True)
    resumed = load_checkpoint(resumed.checkpoint)["state_dict"]
    for key, value in data["state_dict"].items():
        assert torch.equal(value, resumed[key]), key
    assert len(calls) == 2 * len(steps)


def test_data_parallel_projection_uses_the_averaged_gradients(tmp_path, monkeypatch):
    """With several ranks the largest's gradient travels in the same all-reduce, and the projection
    comes after it, so every rank projects the whole batch's gradients alike."""
    import supernet.train as training

    class TwoRanks(training.Collective):
        rank, world = 0, 2

        def mean_(self, tensor):
            events.append(("reduce", tensor.numel()))
            return tensor

    events = []
    def spy(params, anchor):
        events.append(("project", sum(a.numel() for a in anchor)))
        return project_conflict(params, anchor)

    monkeypatch.setattr(training, "project_conflict", spy)
    train_supernet(TINY.replace(epochs=1, grad_projection=True), tmp_path, collective=TwoRanks())
    n_weights = sum(p.numel() for p in training.SuperViT(load_space("digits")).parameters())
    projections = [i for i, (kind, _) in enumerate(events) if kind == "project"]
    assert projections
    for i in projections:
        assert events[i] == ("project", n_weights)           # every anchor filled, none missing
        kind, size = events[i - 1]
        assert kind == "reduce" and size > 2 * n_weights      # gradients + anchor + activation ranges


def test_training_under_bf16_autocast_runs_and_keeps_float32_weights(tmp_path, monkeypatch):
    """The GPU path's bf16 autocast, exercised on the CPU: elastic, quantized and token-merging
    blocks take bf16 activations, and the weights and their updates stay float32."""
    import supernet.train as training

    devices, dtypes = [], set()
    def cpu_bf16(device):
        devices.append(device)
        return torch.autocast("cpu", dtype=torch.bfloat16)

    def record(module, args, output):
        if isinstance(output, torch.Tensor):
            dtypes.add(output.dtype)

    monkeypatch.setattr(training, "autocast", cpu_bf16)
    handle = torch.nn.modules.module.register_module_forward_hook(record)
    try:
        result = train_supernet(TINY.replace(epochs=1), tmp_path)
    finally:
        handle.remove()
    assert devices and set(devices) == {"cpu"} and torch.bfloat16 in dtypes
    data = load_checkpoint(result.checkpoint)
    assert all(t.dtype == torch.float32 for t in data["state_dict"].values() if t.is_floating_point())
    assert all(math.isfinite(e["loss"]) for e in result.metrics["epochs"])
    assert 0.0 <= result.metrics["final"]["test_top1_largest"] <= 1.0


def test_the_default_supernet_folder_survives_a_setting_added_at_its_old_behaviour():
    import hashlib

    from supernet.default_supernet import default_supernet_dir

    config, space = preset("digits"), load_space("digits")
    before = {k: v for k, v in config.to_dict().items() if k != "grad_projection"}
    digest = hashlib.sha256(json.dumps(before, sort_keys=True).encode()).hexdigest()[:8]
    assert default_supernet_dir(space, config).name.endswith(f"-{digest}")
    projected = config.replace(grad_projection=True)
    assert default_supernet_dir(space, projected) != default_supernet_dir(space, config)


def test_resume_with_other_settings_is_refused(tmp_path):
    train_supernet(TINY, tmp_path, stop_after=1)
    with pytest.raises(InputError, match="--resume needs the settings"):
        train_supernet(TINY.replace(lr=1e-4), tmp_path, resume=True)


def test_checkpoint_of_another_space_is_refused(tmp_path):
    result = train_supernet(TINY.replace(epochs=1), tmp_path)
    with pytest.raises(CheckpointError, match="not of space 'cifar10'"):
        load_checkpoint(result.checkpoint, load_space("cifar10"))


def test_damaged_and_unsafe_checkpoints_are_refused(tmp_path):
    bad = tmp_path / "random.pt"
    bad.write_bytes(np.random.default_rng(0).bytes(1000))
    with pytest.raises(CheckpointError, match=r"refused|not a readable checkpoint"):
        load_checkpoint(bad)
    good = tmp_path / "good.pt"
    save_checkpoint(good, {"state_dict": {}, "space": {}, "train_config": {}, "epoch": 0, "metrics": {}})
    truncated = tmp_path / "truncated.pt"
    truncated.write_bytes(good.read_bytes()[:200])
    with pytest.raises(CheckpointError):
        load_checkpoint(truncated)

    class Evil:
        def __reduce__(self):
            return (print, ("pwned",))

    evil = tmp_path / "evil.pt"
    torch.save({"state_dict": Evil()}, evil)
    with pytest.raises(CheckpointError, match="refused"):
        load_checkpoint(evil)


@pytest.mark.parametrize("raw", [b"t.", b"h\x05.", b"}q\x00(X\x01\x00\x00\x00a\x85R."],
                         ids=["unmatched-tuple", "missing-memo", "short-stack"])
def test_damaged_pickle_streams_are_checkpoint_errors(tmp_path, raw):
    """Found by tests/nas/test_fuzz_inputs.py: torch's weights-only unpickler raised IndexError / KeyError."""
    from supernet.subnet_file import SubnetFileError, load_subnet

    path = tmp_path / "damaged.pt"
    path.write_bytes(raw)
    with pytest.raises(CheckpointError, match="damaged or truncated"):
        load_checkpoint(path)
    with pytest.raises(SubnetFileError, match="damaged or truncated"):
        load_subnet(path)


def test_a_damaged_header_is_one_error_and_no_warning(tmp_path):
    """Found by fuzzing: torch warned about an unknown pickle protocol on stderr before failing."""
    path = tmp_path / "damaged.pt"
    path.write_bytes(b"\x80\xe1K\x01.")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        with pytest.raises(CheckpointError, match="damaged"):
            load_checkpoint(path)
    assert caught == []


def test_samplers_are_deterministic_and_stay_in_band():
    space = load_space("digits")
    for mode in ("uniform", "complexity", "performance"):
        a = SubnetSampler(space, mode=mode, seed=3).draw(17, 20, 3)
        b = SubnetSampler(space, mode=mode, seed=3).draw(17, 20, 3)
        assert a == b
    sampler = SubnetSampler(space, mode="complexity", seed=0)
    bands = [sampler.band(step, 40) for step in range(40)]
    assert set(bands) == set(range(10))  # an epoch covers every band
    assert max(abs(x - y) for x, y in itertools.pairwise(bands)) <= 1  # adjacent steps stay close
    for step in range(40):
        for arch in sampler.draw(step, 40, 2):
            assert sampler.band_of(arch) == sampler.band(step, 40)


def test_performance_bank_keeps_the_best_and_round_trips():
    space = load_space("digits")
    sampler = SubnetSampler(space, mode="performance", seed=0, bank_size=2)
    archs = sampler.draw(0, 20, 4)
    for i, arch in enumerate(archs):
        sampler.record(0, arch, float(10 - i))
    again = SubnetSampler(space, mode="performance", seed=0, bank_size=2)
    again.load_state_dict(sampler.state_dict())
    assert again.state_dict() == sampler.state_dict()
    assert all(len(bank) <= 2 for bank in sampler.banks)


def test_presets_load():
    assert preset("digits").dataset == "digits"
    assert preset("fashion-mnist").space == "fashion-mnist"
    assert preset("cifar10").space == "cifar10"
    # measured better on Fashion-MNIST (bench/results/supernet_quality_grad_projection.json)
    assert preset("fashion-mnist").grad_projection and preset("cifar10").grad_projection
    assert not preset("digits").grad_projection


@pytest.mark.parametrize(("flag", "expected"), [((), True), (("--no-grad-projection",), False)])
def test_cli_grad_projection_follows_the_preset_unless_told(tmp_path, flag, expected):
    from tests.supernet.test_data import write_fashion

    write_fashion(tmp_path / "data", gz=False)
    out = tmp_path / "run"
    args = ["train", "--dataset", "fashion-mnist", "--data-dir", str(tmp_path / "data"), "--epochs", "1",
            "--batch-size", "8", *flag, "--out", str(out)]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 0, result.output
    assert load_checkpoint(out / "supernet.pt")["train_config"]["grad_projection"] is expected


def _one_line_exit_2(args, tmp_path):
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 2, result.output
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and "Traceback" not in result.output
    return lines[0]


@pytest.mark.parametrize(("settings", "message"), [
    (5, "expected a mapping"),
    ({"epochs": "60"}, "epochs: expected an integer"),
    ({"val_fraction": None}, "val_fraction: a training setting without a value"),
    ({"data_dir": 5}, "data_dir: expected a non-empty string"),
    ({"seed": 0.0}, "seed: expected an integer"),
    ({"distill": "yes"}, "distill: expected true or false"),
    ({"lr": float("nan")}, "lr: expected a finite number"),
    ({"seed": -1}, "seed: -1 is not a valid value"),  # fuzzing found numpy's split refusing it: exit 1
    ({"epochs": 0}, "epochs: 0 is not a valid value"),
    ({"batch_size": -3}, "batch_size: -3 is not a valid value"),
])
def test_training_settings_from_a_file_are_type_checked(settings, message):
    """Found by tests/nas/test_fuzz_inputs.py: a checkpoint's train_config of wrong types was a TypeError."""
    data = {**TrainConfig().to_dict(), **settings} if isinstance(settings, dict) else settings
    with pytest.raises(InputError, match=message):
        TrainConfig.from_dict(data)
    assert TrainConfig.from_dict(TrainConfig().to_dict()) == TrainConfig()


def test_cli_bad_input(tmp_path):
    assert "missing" in _one_line_exit_2(
        ["train", "--dataset", "fashion-mnist", "--data-dir", str(tmp_path / "missing"),
         "--out", str(tmp_path / "o")], tmp_path)
    line = _one_line_exit_2(["train", "--space", "cifar10", "--dataset", "digits", "--out",
                             str(tmp_path / "o")], tmp_path)
    assert "8x8" in line or "32" in line
    (tmp_path / "o2").mkdir()
    torch.save({"weights": torch.zeros(1)}, tmp_path / "o2" / "supernet.pt")
    line = _one_line_exit_2(["train", "--resume", "--out", str(tmp_path / "o2"), "--limit", "50",
                             "--epochs", "1"], tmp_path)
    assert "supernet.pt" in line
    assert "--seed" in _one_line_exit_2(["train", "--seed", "-1", "--out", str(tmp_path / "o3")], tmp_path)


def test_cli_trains_and_says_where(tmp_path):
    result = CliRunner().invoke(main, ["train", "--epochs", "1", "--limit", "100", "--out",
                                       str(tmp_path / "run")])
    assert result.exit_code == 0, result.output
    assert "wrote" in result.stdout and "supernet.pt" in result.stdout
    assert (tmp_path / "run" / "supernet.pt").is_file()
