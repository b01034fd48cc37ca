"""Robustness: thousands of malformed user inputs of every kind through the real `nas` entry point.

    python bench/robustness.py              # 6,700 seeded cases, about 5 minutes on 2 cores
    python bench/robustness.py --scale 0.1  # a tenth of them

Each case (bench/fuzz_cases.py: budget strings, space YAML, best.yaml, measurement CSVs,
predictor files, supernet checkpoints, model.pt files, dataset folders, Optuna storages; random
and mutated, some carrying a payload that would create a marker file if anything unpickled or
YAML-constructed it) runs in process through `nas` and is counted as rejected cleanly (exit 2,
one stderr line), accepted (exit 0) or crashed (anything else: a traceback, exit 1, exit 2 with
more than one line). Case i of a kind is drawn from `random.Random("<seed>-<kind>-<i>")`,
so a run is deterministic and a crash is replayed by its kind and index.
"""

from __future__ import annotations

import argparse
import os
import random
import shutil
import sys
import tempfile
import time
from pathlib import Path

from _common import write_result  # puts the repository on sys.path
from fuzz_cases import KINDS, PWNED, Bases, judge, make_case, run_nas

COUNTS = {"budget": 1500, "space_yaml": 900, "arch_yaml": 700, "measurements_csv": 900, "predictor": 700,
          "checkpoint": 550, "subnet_file": 550, "dataset": 600, "storage": 300}
COMMANDS = {
    "budget": "nas search --device iphone --budget B --resume",
    "space_yaml": "nas space show|sample, nas latency eval --space FILE",
    "arch_yaml": "nas eval best.yaml (digits supernet of random weights)",
    "measurements_csv": "nas latency eval|import|fit --data FILE",
    "predictor": "nas latency eval --predictor FILE",
    "checkpoint": "nas eval best.yaml naming the mutated supernet.pt",
    "subnet_file": "nas eval model.pt (or its folder)",
    "dataset": "nas train --dataset imagefolder|fashion-mnist|cifar10 --data-dir DIR --epochs 1 --limit 10",
    "storage": "nas search --storage URL|JOURNAL --resume (a good storage holds nothing to resume)",
}


def run_kind(kind: str, count: int, seed: int, root: Path, bases: Bases) -> tuple[dict, list[dict]]:
    counts = {"tried": 0, "rejected": 0, "accepted": 0, "crashed": 0}
    crashes = []
    for i in range(count):
        folder = root / kind / str(i)
        args = make_case(kind, random.Random(f"{seed}-{kind}-{i}"), folder, bases)
        outcome = judge(run_nas(args, root / "home"))
        counts["tried"] += 1
        counts[outcome.status] += 1
        if outcome.status == "crashed":
            crashes.append({"kind": kind, "index": i, "args": args, "why": outcome.why[:300]})
            print(f"crashed: {kind} case {i}: {outcome.why[:300]}", flush=True)
        shutil.rmtree(folder, ignore_errors=True)
    return counts, crashes


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--scale", type=float, default=1.0, help="multiply every kind's case count")
    args = parser.parse_args()
    import torch

    torch.set_num_threads(1)
    counts = {kind: max(1, round(n * args.scale)) for kind, n in COUNTS.items()}
    assert set(counts) == set(KINDS)
    start, here = time.perf_counter(), Path.cwd()
    root = Path(tempfile.mkdtemp(prefix="vit-nas-robustness-"))
    os.chdir(root)  # a payload that ran would leave its marker here
    try:
        bases = Bases(root / "bases")
        per_kind, crashes = {}, []
        for kind, n in counts.items():
            per_kind[kind], found = run_kind(kind, n, args.seed, root, bases)
            crashes += found
            print(f"{kind}: {per_kind[kind]}", flush=True)
        payload_ran = (root / PWNED).exists()
    finally:
        os.chdir(here)
        shutil.rmtree(root, ignore_errors=True)
    totals = {key: sum(c[key] for c in per_kind.values())
              for key in ("tried", "rejected", "accepted", "crashed")}
    metrics = {"per_kind": per_kind, "totals": totals, "payload_ran": payload_ran, "crashes": crashes[:50],
               "seconds": time.perf_counter() - start}
    figure = (f"malformed inputs through `nas` ({len(per_kind)} kinds): tried / rejected in one line "
              "(exit 2) / accepted (exit 0) / crashed")
    headline = {figure: f"{totals['tried']:,} / {totals['rejected']:,} / {totals['accepted']:,} / "
                        f"{totals['crashed']}"}
    command = "python bench/robustness.py" + (f" --scale {args.scale:g}" if args.scale != 1 else "") + (
        f" --seed {args.seed}" if args.seed else "")
    write_result("robustness", {"seed": args.seed, "cases": counts, "commands": COMMANDS}, metrics,
                 notes="Cases: bench/fuzz_cases.py; case i of a kind is "
                       "random.Random('<seed>-<kind>-<i>'). "
                       "Budget cases add --resume without --out, so a well-formed budget is also exit 2 "
                       "(before any search). A crash is anything but exit 2 with one stderr line or exit 0.",
                 command=command, headline=headline)
    if totals["crashed"] or payload_ran:
        sys.exit(1)


if __name__ == "__main__":
    main()
