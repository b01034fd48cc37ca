"""End to end on the cpu device: search at a binding budget, extract, retrain, against a baseline.

On the Fashion-MNIST benchmark supernet (bench/_supernets.py), for the `cpu` device (ONNX
Runtime on this machine, batch 1, one thread), every step through the `nas` command line as
a user types it:

1. `nas latency profile` + `nas latency fit`: the cpu predictor of the fashion-mnist space,
   from the measurements in bench/results/latency_data/fashion-mnist_train.csv (appended to
   when fewer than --profile-n archs are there);
   (fitted on each arch's fastest run, `--target min`, the statistic that is steady here);
2. the budget: the --percentile-th percentile of the predicted latencies of 2,000 uniform
   samples of the space (a budget that binds);
3. `nas search --device cpu --budget B` -> `nas extract best.yaml --measure` -> `nas retrain`
   (defaults), and `nas retrain --trials T --workers K` on a second copy of the extraction;
4. the baseline: the uniformly scaled ViT of the same space (one embedding width, every block
   the same: softmax attention, heads, MLP ratio, all tokens kept, 32 bits) with the largest
   MACs whose predicted latency fits the budget, trained from scratch on the same images for
   the same total epochs (the supernet's plus the retrain's), through the same extract ->
   retrain -> measure path: its starting weights are a freshly initialised supernet
   (same seed as the trained one's initialisation), fine-tuned without distillation.

Writes bench/results/end_to_end.json. Run it alone on the machine: it times latency.

    python bench/end_to_end.py [--percentile 30] [--retrain-epochs 10] [--trials 8] [--workers 2]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import _common
import numpy as np
import torch
import yaml
from _supernets import FASHION_EPOCHS, FASHION_LIMIT, supernet

from latency_models.csvio import read_measurements
from search_space import Arch, BlockChoice, SearchSpace
from supernet.checkpoint import load_checkpoint, save_checkpoint
from supernet.supervit import SuperViT

REPO = Path(__file__).resolve().parent.parent
PROFILE_CSV = _common.RESULTS / "latency_data" / "fashion-mnist_train.csv"


def nas(*args: str, env: dict[str, str]) -> tuple[str, float]:
    """Run `python -m nas ARGS` as a user would; its stdout and wall seconds (exits on failure)."""
    start = time.perf_counter()
    proc = subprocess.run([sys.executable, "-m", "nas", *args], cwd=REPO, env=env, text=True,
                          capture_output=True, check=False)
    seconds = time.perf_counter() - start
    if proc.returncode != 0:
        sys.exit(f"nas {' '.join(args)} failed ({proc.returncode}):\n{proc.stderr[-3000:]}")
    print(f"  nas {' '.join(args)}: {seconds:.0f} s", flush=True)
    return proc.stdout, seconds


def uniform_archs(space: SearchSpace) -> list[Arch]:
    """Every uniformly scaled float ViT of `space`: one choice per dimension, shared by all blocks."""
    archs = []
    for e in space.embed_dim:
        for d in space.depth:
            for h in space.heads:
                for m in space.mlp_ratio:
                    block = BlockChoice("softmax", h, m, 1.0, 32)
                    archs.append(space.validate(Arch(e, (block,) * d)))
    return archs


def baseline_arch(space: SearchSpace, predictor, budget: float) -> tuple[Arch, float, list[dict]]:
    """The uniform arch with the largest MACs (then params) whose predicted latency fits `budget`."""
    archs = uniform_archs(space)
    lats = predictor.predict_ms(archs)
    fits = [(space.macs(a), space.complexity(a)["params"], float(lat), a)
            for a, lat in zip(archs, lats, strict=True) if lat <= budget]
    if not fits:
        sys.exit(f"no uniform arch fits {budget:.4f} ms: raise --percentile")
    fits.sort(key=lambda t: (t[0], t[1]))
    _, _, lat, arch = fits[-1]
    considered = [{"arch": a.to_dict(), "macs": int(space.macs(a)), "predicted_ms": float(lt)}
                  for a, lt in zip(archs, lats, strict=True)]
    return arch, lat, considered


def initial_supernet(trained: Path, out: Path) -> Path:
    """The trained checkpoint with its weights replaced by a fresh initialisation (same seed)."""
    data = load_checkpoint(trained)
    torch.manual_seed(int(data["train_config"].get("seed", 0)))
    model = SuperViT(SearchSpace.from_dict(data["space"]))
    return save_checkpoint(out, {k: v for k, v in data.items() if k != "version"}
                           | {"state_dict": model.state_dict(), "epoch": 0})


def baseline_yaml(best: Path, arch: Arch, predicted: float, init: Path, out: Path) -> Path:
    from search.result_files import file_sha256

    data = yaml.safe_load(best.read_text())
    data.update({"arch": arch.to_dict(), "supernet": {"path": str(init), "sha256": file_sha256(init)},
                 "predicted_latency_ms": predicted, "accuracy": None})
    out.write_text(yaml.safe_dump(data, sort_keys=False, default_flow_style=None))
    return out


def report(folder: Path) -> dict:
    return json.loads((folder / "report.json").read_text())


def summary(rep: dict) -> dict:
    """The figures of one extracted (and maybe retrained) folder."""
    retrained = rep.get("retrain") or {}
    return {
        "arch": rep["arch"], "params": rep["params"], "macs": rep["macs"],
        "predicted_ms": rep.get("predicted_latency_ms", {}).get("cpu"),
        "measured_ms": rep.get("measured_latency_ms", {}).get("cpu"),
        "val_top1": rep["val_top1"], "test_top1": rep["test_top1"],
        "retrain": {k: retrained[k] for k in ("settings", "best_epoch", "inherited", "retrained", "tune")
                    if k in retrained},
    }


def measure(folder: Path) -> dict:
    """Time model.onnx of `folder` again (retraining rewrote it) with `nas extract --measure`'s loop."""
    import onnx

    from latency_models.measure_cpu import time_model

    return time_model(onnx.load(str(folder / "model.onnx")))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--percentile", type=float, default=30.0)
    parser.add_argument("--profile-n", type=int, default=200)
    parser.add_argument("--retrain-epochs", type=int, default=10)
    parser.add_argument("--trials", type=int, default=8)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--baseline-lr", type=float, default=1e-3)
    parser.add_argument("--baseline-batch-size", type=int, default=64)
    parser.add_argument("--retrain-lr", type=float, help="nas retrain --lr (default: its own default)")
    parser.add_argument("--keep", type=Path,
                        help="work in this folder and keep it (a rerun with it skips finished steps)")
    args = parser.parse_args()

    ckpt = supernet("fashion-mnist")
    work = args.keep or Path(tempfile.mkdtemp(prefix="e2e-"))
    work.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "NAS_HOME": str(work / "home"), "PYTHONPATH": str(REPO),
           "PYTHONUNBUFFERED": "1"}
    seconds_file = work / "seconds.json"
    times: dict[str, float] = json.loads(seconds_file.read_text()) if seconds_file.exists() else {}

    def step(name: str, done: bool, *command: str) -> str:
        """Run one `nas` command unless a kept work folder has its result already (a rerun resumes)."""
        if done and name in times:
            print(f"  {name}: done in an earlier run ({times[name]:.0f} s)", flush=True)
            return ""
        out, times[name] = nas(*command, env=env)
        seconds_file.write_text(json.dumps(times, indent=2))
        return out

    print("latency predictor (cpu, fashion-mnist)", flush=True)
    PROFILE_CSV.parent.mkdir(parents=True, exist_ok=True)
    step("profile", False, "latency", "profile", "--device", "cpu", "--space", "fashion-mnist",
         "--n", str(args.profile_n), "--seed", "0", "--out", str(PROFILE_CSV))
    fit_out = step("fit", False, "latency", "fit", "--device", "cpu", "--space", "fashion-mnist",
                   "--data", str(PROFILE_CSV), "--target", "min")

    os.environ["NAS_HOME"] = env["NAS_HOME"]  # this process reads the predictor just fitted
    from latency_models import get_device
    from search_space import load_space

    space = load_space("fashion-mnist")
    predictor = get_device("cpu").predictor(space)
    rng = np.random.default_rng(0)
    budget = float(np.percentile(predictor.predict_ms([space.sample(rng) for _ in range(2000)]),
                                 args.percentile))
    budget_text = f"{budget:.4f}ms"
    print(f"budget: {budget_text} (percentile {args.percentile:g})", flush=True)

    print("search -> extract -> retrain", flush=True)
    search_dir, nas_dir, tuned_dir = work / "search", work / "nas", work / "nas-tuned"
    step("search", (search_dir / "best.yaml").exists(), "search", "--device", "cpu", "--budget", budget_text,
         "--supernet", str(ckpt), "--out", str(search_dir), "--seed", "0")
    step("extract", tuned_dir.exists(), "extract", str(search_dir / "best.yaml"), "--out", str(nas_dir),
         "--measure")
    extracted_file = work / "extracted.json"
    if not tuned_dir.exists():
        extracted_file.write_text(json.dumps(summary(report(nas_dir))))
        shutil.copytree(nas_dir, tuned_dir)
    extracted = json.loads(extracted_file.read_text())
    retrain_args = [f"--{k}={v}" for k, v in (("lr", args.retrain_lr),) if v is not None]
    step("retrain", "retrain" in report(nas_dir), "retrain", str(nas_dir), "--epochs",
         str(args.retrain_epochs), *retrain_args)
    step("retrain_tuned", "retrain" in report(tuned_dir), "retrain", str(tuned_dir), "--epochs",
         str(args.retrain_epochs), "--trials", str(args.trials), "--workers", str(args.workers),
         *retrain_args)

    print("baseline: uniformly scaled ViT trained from scratch", flush=True)
    total_epochs = FASHION_EPOCHS + args.retrain_epochs
    base_arch, base_pred, considered = baseline_arch(space, predictor, budget)
    base_dir, init = work / "baseline", work / "init.pt"
    if not base_dir.exists():
        initial_supernet(ckpt, init)
    base_yaml = baseline_yaml(search_dir / "best.yaml", base_arch, base_pred, init, work / "baseline.yaml")
    step("baseline_extract", base_dir.exists(), "extract", str(base_yaml), "--out", str(base_dir),
         "--measure")
    step("baseline_train", "retrain" in report(base_dir), "retrain", str(base_dir), "--no-distill",
         "--epochs", str(total_epochs), "--lr", str(args.baseline_lr), "--batch-size",
         str(args.baseline_batch_size))

    # every final model timed again, side by side, after all training is done
    final = {name: summary(report(folder)) | {"remeasured_ms": measure(folder)}
             for name, folder in (("nas_retrained", nas_dir), ("nas_tuned", tuned_dir),
                                  ("baseline", base_dir))}
    nas_final, base_final = final["nas_retrained"], final["baseline"]
    measured = nas_final["remeasured_ms"]["min"]  # the statistic the predictor was fitted on
    predicted = nas_final["predicted_ms"]
    metrics = {
        "budget_ms": budget, "percentile": args.percentile,
        "profile_archs": len(read_measurements(PROFILE_CSV, space)),
        "predictor_fit": fit_out.strip().splitlines()[0] if fit_out.strip() else None,
        "extracted": extracted, **final,
        "baseline_candidates": considered,
        "checks": {
            "measured_within_10pct_of_predicted": abs(measured - predicted) <= 0.10 * predicted,
            "measured_within_budget_plus_10pct": measured <= 1.10 * budget,
            "nas_minus_baseline_test_points": 100 * (nas_final["test_top1"] - base_final["test_top1"]),
            "beats_baseline_by_1_point": nas_final["test_top1"] - base_final["test_top1"] >= 0.01,
            "retrain_keeps_inherited_within_half_point":
                nas_final["val_top1"] >= extracted["val_top1"] - 0.005,
            "tuned_ge_defaults_val": final["nas_tuned"]["val_top1"] >= nas_final["val_top1"],
        },
        "seconds": times,
    }
    c = metrics["checks"]
    headline = {
        f"budget (cpu, p{args.percentile:g} of the space)": f"{budget:.3f} ms",
        "NAS subnet: predicted / measured latency (fastest run; median)":
            f"{predicted:.3f} / {measured:.3f} ms ({nas_final['remeasured_ms']['median']:.3f} ms)",
        f"NAS subnet test top-1: inherited / retrained / tuned (--trials {args.trials})":
            f"{extracted['test_top1']:.3f} / {nas_final['test_top1']:.3f} / "
            f"{final['nas_tuned']['test_top1']:.3f}",
        "baseline (uniform ViT, from scratch): measured latency, test top-1":
            f"{base_final['remeasured_ms']['min']:.3f} ms, {base_final['test_top1']:.3f}",
        "NAS minus baseline, test top-1": f"{c['nas_minus_baseline_test_points']:+.1f} points",
    }
    _common.write_result(
        "end_to_end",
        params={"device": "cpu", "dataset": "fashion-mnist", "percentile": args.percentile,
                "profile_n": args.profile_n, "retrain_epochs": args.retrain_epochs,
                "retrain_lr": args.retrain_lr, "trials": args.trials,
                "workers": args.workers, "baseline_epochs": total_epochs, "baseline_lr": args.baseline_lr,
                "baseline_batch_size": args.baseline_batch_size,
                "fashion_supernet": {"limit": FASHION_LIMIT, "epochs": FASHION_EPOCHS}},
        metrics=metrics,
        notes=(f"Fashion-MNIST (exact IDX files), the benchmark supernet's data: the first {FASHION_LIMIT} "
               "training images (a seeded 10% of them for validation), and the full 10,000-image test set. "
               "Latency: ONNX Runtime on this machine's CPU, batch 1, one thread; the predictor is fitted "
               "on the fastest of each arch's runs (`--target min`: on this shared 2-core VM the same arch's "
               "median moves by more than 10% between runs, see latency_predictor.json), and the checks "
               "compare the fastest run too, with the median beside it; all measured after all training, "
               "side by side. The baseline is trained for the supernet's epochs "
               "plus the retrain's, from a fresh initialisation, without distillation."),
        command="python bench/end_to_end.py",
        headline=headline)
    print(json.dumps(c, indent=2))


if __name__ == "__main__":
    main()
