"""How long `nas search` takes, and where the time goes, measured side by side in one run.

1. The headline command on a fresh install: `nas search --device iphone --budget 2ms` with an
   empty $NAS_HOME, so the default digits supernet is trained first.
2. The same command again, the supernet now cached.
3. A binding budget (the 30th percentile of the space's predicted latencies), evaluated in
   process, on 1 and on 2 local Ray actors: candidates per second, and the orchestration
   overhead (wall time of the search loop minus accuracy evaluation and latency prediction,
   from search.json) for each.

    python bench/search_speed.py [--skip-fresh]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import _common
import numpy as np

NAS = str(Path(sys.executable).parent / "nas")


def _nas(args: list[str], env: dict[str, str]) -> tuple[float, str]:
    start = time.perf_counter()
    done = subprocess.run([NAS, *args], env=env, capture_output=True, text=True, check=False)
    seconds = time.perf_counter() - start
    if done.returncode != 0:
        raise SystemExit(f"nas {' '.join(args)} failed ({done.returncode}):\n{done.stderr}")
    return seconds, done.stdout + done.stderr


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--skip-fresh", action="store_true",
                        help="reuse the cached default supernet of $NAS_HOME (no fresh-install timing)")
    parser.add_argument("--home", type=Path, help="the empty NAS_HOME of the fresh install (default: a "
                        "temporary folder); keep it to reuse the trained supernet afterwards")
    args = parser.parse_args()
    metrics: dict = {}
    with tempfile.TemporaryDirectory() as tmp:
        env = {k: v for k, v in os.environ.items() if k != "RAY_ADDRESS"}
        if not args.skip_fresh:
            home = args.home or Path(tmp) / "home"
            if home.exists() and any(home.iterdir()):
                raise SystemExit(f"--home {home}: must be empty (a fresh install)")
            env["NAS_HOME"] = str(home)  # empty: the default supernet is trained first
        headline = ["search", "--device", "iphone", "--budget", "2ms"]
        if not args.skip_fresh:
            seconds, text = _nas([*headline, "--out", f"{tmp}/fresh"], env)
            metrics["fresh_install_s"] = seconds
            metrics["fresh_install_output"] = text.strip().splitlines()[-3:]
        seconds, text = _nas([*headline, "--out", f"{tmp}/cached"], env)
        metrics["cached_s"] = seconds
        metrics["cached_output"] = text.strip().splitlines()[-3:]
        summary = json.loads(Path(f"{tmp}/cached/search.json").read_text())
        metrics["cached_time_split"] = summary["time"]

        from latency_models import get_device
        from search_space import load_space

        space = load_space("digits")
        rng = np.random.default_rng(0)
        lats = get_device("iphone").predictor(space).predict_ms([space.sample(rng) for _ in range(2000)])
        budget = f"{float(np.percentile(lats, 30)):.4f}ms"
        metrics["binding_budget"] = budget
        runs = {}
        for name, extra in (("in_process", []), ("ray_1", ["--workers", "1"]), ("ray_2", ["--workers", "2"])):
            seconds, _ = _nas(["search", "--device", "iphone", "--budget", budget, "--out", f"{tmp}/{name}",
                               *extra], env)
            t = json.loads(Path(f"{tmp}/{name}/search.json").read_text())["time"]
            runs[name] = {"command_s": seconds, **t}
            if extra:  # actors idle: neither evaluating nor busy otherwise (prediction overlaps evaluation)
                runs[name]["actor_idle_fraction"] = max(0.0, 1 - t["evaluation_s"] / t["search_s"])
            print(f"{name}: {t['candidates_per_s']:.1f} candidates/s, orchestration "
                  f"{100 * t['orchestration_fraction']:.1f}% of {t['search_s']:.1f} s", flush=True)
        metrics["binding"] = runs
    head = {}
    if "fresh_install_s" in metrics:
        head["`nas search --device iphone --budget 2ms`, fresh install (supernet training included)"] = (
            f"{metrics['fresh_install_s']:.0f} s")
    head["`nas search --device iphone --budget 2ms`, supernet cached"] = f"{metrics['cached_s']:.1f} s"
    for name, label in (("in_process", "in process"), ("ray_1", "1 Ray actor"), ("ray_2", "2 Ray actors")):
        r = metrics["binding"][name]
        idle = (f" (actors idle {100 * r['actor_idle_fraction']:.1f}% of it)"
                if "actor_idle_fraction" in r else "")
        head[f"search at {budget} ({label}): candidates/s, orchestration share of search time"] = (
            f"{r['candidates_per_s']:.1f}/s, {100 * r['orchestration_fraction']:.2f}%{idle}")
    _common.write_result(
        "search_speed",
        params={"device": "iphone", "space": "digits", "population": 32, "generations": 10,
                "fresh_install": not args.skip_fresh},
        metrics=metrics,
        notes=("Wall-clock seconds of the whole command (process start, supernet training on a fresh "
               "install, search, files). Orchestration = search loop wall time minus accuracy evaluation "
               "(actor compute time / actors) minus latency prediction; on Ray the driver predicts while "
               "the actors evaluate (the next generation's immigrants), so the two can add up to more "
               "than the wall time and the share is then 0. Actors idle = 1 - actor compute time / "
               "actors / wall time: what Ray costs beyond the in-process search, waiting for the "
               "driver's prediction included. On 2 cores, 2 Ray actors share the cores with the driver, "
               "Ray's own processes and the journal writes."),
        command="python bench/search_speed.py",
        headline=head)


if __name__ == "__main__":
    main()
