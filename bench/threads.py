"""The default training at 1 and 2 torch threads and with the automatic choice, on an idle machine and
beside one competing CPU-bound process, side by side.

Each run is `nas train` (the digits preset, the default supernet's training) for a few epochs in a
fresh folder, through the command line as a user's would run, with neither NAS_THREADS nor
OMP_NUM_THREADS set; `--threads 1`, `--threads 2` or nothing (the automatic choice, whose line
is kept). The competitor is a second Python process spinning on one core, started before the
run. Settings take turns in rounds, so a slow spell of the machine hits them alike; the figure
of a setting is its median images/s over rounds (each run's median over its epochs). Reported:
each setting's images/s, and the automatic choice as a fraction of the best fixed setting, idle
and contended.

    python bench/threads.py                  # 3 rounds of 6 runs, about 8 minutes on 2 cores
    python bench/threads.py --rounds 1 --epochs 1   # a smoke run (noisy figures)
"""

from __future__ import annotations

import argparse
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _common import RESULTS, write_result  # puts the repository on sys.path

SETTINGS = {"1 thread": ["--threads", "1"], "2 threads": ["--threads", "2"], "auto": []}
_CHOICE = re.compile(r"\[(\d+ threads? \(auto[^]]*\))\]")


def _env(home: Path) -> dict[str, str]:
    unset = ("NAS_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS")
    env = {k: v for k, v in os.environ.items() if k not in unset}
    root = str(RESULTS.parent.parent)
    env.update(NAS_HOME=str(home), PYTHONPATH=os.pathsep.join(p for p in (root, env.get("PYTHONPATH")) if p))
    return env


def _run(args: list[str], epochs: int, folder: Path) -> tuple[float, str | None, list[str]]:
    """Median images/s over the epochs of one `nas train`, the automatic choice's note, thread changes."""
    out = folder / f"run-{time.monotonic_ns()}"
    argv = [sys.executable, "-m", "nas", "train", "--epochs", str(epochs), "--out", str(out), *args]
    done = subprocess.run(argv, env=_env(folder / "home"), capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(argv)} failed ({done.returncode}):\n{done.stderr}")
    epochs_run = json.loads((out / "metrics.json").read_text())["epochs"]
    choice = _CHOICE.search(done.stderr)
    changes = [line for line in done.stderr.splitlines() if line.startswith("threads: ")]
    return statistics.median(e["images_per_s"] for e in epochs_run), choice and choice.group(1), changes


def _competitor() -> subprocess.Popen:
    proc = subprocess.Popen([sys.executable, "-c", "while True: pass"])
    time.sleep(1.0)  # let it be seen as load
    return proc


def _measure(rounds: int, epochs: int, folder: Path) -> dict[str, dict]:
    rates: dict[str, dict[str, list[float]]] = {c: {s: [] for s in SETTINGS} for c in ("idle", "contended")}
    notes: dict[str, list] = {"idle": [], "contended": []}
    for r in range(rounds):
        for condition in ("idle", "contended") if r % 2 == 0 else ("contended", "idle"):
            rival = _competitor() if condition == "contended" else None
            try:
                for name, args in SETTINGS.items():
                    rate, choice, changes = _run(args, epochs, folder)
                    rates[condition][name].append(rate)
                    print(f"round {r + 1} {condition} {name}: {rate:.0f} images/s {choice or ''}", flush=True)
                    if name == "auto":
                        notes[condition].append({"choice": choice, "changes": changes})
            finally:
                if rival is not None:
                    rival.kill()
                    rival.wait()
    result = {}
    for condition, by_setting in rates.items():
        medians = {name: statistics.median(v) for name, v in by_setting.items()}
        best = max(medians["1 thread"], medians["2 threads"])
        result[condition] = {"images_per_s": medians, "runs": by_setting,
                             "auto_fraction_of_best": medians["auto"] / best, "auto": notes[condition]}
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--epochs", type=int, default=2)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        result = _measure(args.rounds, args.epochs, Path(tmp))
    idle, busy = result["idle"], result["contended"]

    def rates(m: dict) -> str:
        return " / ".join(f"{m['images_per_s'][s]:.0f}" for s in SETTINGS)

    write_result(
        "threads",
        params={"rounds": args.rounds, "epochs": args.epochs, "dataset": "digits",
                "settings": list(SETTINGS)},
        metrics=result,
        notes=("`nas train` (digits preset) for a few epochs per run, through the command line, without "
               "NAS_THREADS or OMP_NUM_THREADS; contended: beside one other Python process spinning on a "
               "core. "
               "Settings take turns in rounds; each figure is the median over rounds of a run's median "
               "images/s over its epochs."),
        command=" ".join(["python", "bench/threads.py", *sys.argv[1:]]),
        headline={
            "default training images/s at 1 thread / 2 threads / auto: idle; beside one CPU-bound process":
                f"{rates(idle)}; {rates(busy)}",
            "automatic thread choice, fraction of the best fixed setting: idle; contended (0.95; 0.80)":
                f"{idle['auto_fraction_of_best']:.2f}; {busy['auto_fraction_of_best']:.2f}",
        })


if __name__ == "__main__":
    main()
