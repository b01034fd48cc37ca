"""Rebuild the README's results section from bench/results/*.json.

    python bench/report.py            # print the section
    python bench/report.py --write    # replace it in README.md
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
START, END = "<!-- results:start -->", "<!-- results:end -->"


def _calibration(m: dict) -> dict[str, str]:
    return {f"{d} analytic model vs published latencies: MAPE (5-fold CV MAPE), Kendall tau":
            f"{m[f'{d}_mape']:.3f} ({m[f'{d}_cv_mape']:.3f}), {m[f'{d}_kendall_tau']:.2f}"
            for d in ("iphone", "pixel", "jetson-orin") if f"{d}_mape" in m}


def _predictor(m: dict) -> dict[str, str]:
    rows = {}
    for space in ("digits", "cifar10"):
        if f"{space}_median_within_10pct" not in m:
            continue
        for target in ("median", "min", "min_ref"):
            if f"{space}_{target}_within_10pct" not in m:
                continue
            what = "min latency at the reference speed" if target == "min_ref" else f"{target} latency"
            rows[f"cpu predictor, {space}, {what}: held-out within 10% / Kendall tau "
                 f"(noise floor within 10%)"] = (
                f"{m[f'{space}_{target}_within_10pct']:.2f} / {m[f'{space}_{target}_kendall_tau']:.2f} "
                f"({m[f'{space}_{target}_noise_within_10pct']:.2f})")
        rows[f"cpu, {space} largest arch: int8 / int4 speed-up over float"] = (
            f"{m[f'{space}_int8_speedup_largest']:.2f}x / {m[f'{space}_int4_speedup_largest']:.2f}x")
    return rows


# What each benchmark contributes to the README, from its metrics (a result may also carry its own).
HEADLINES = {"analytic_calibration": _calibration, "latency_predictor": _predictor}


def section() -> str:
    rows = ["| benchmark | figure | value | machine | date | command |",
            "| --- | --- | --- | --- | --- | --- |"]
    for path in sorted((ROOT / "bench" / "results").glob("*.json")):
        result = json.loads(path.read_text())
        machine = result["machine"]
        where = f"{machine['cpu']}, {machine['cores']} cores, torch {machine['torch']}"
        headline = result.get("headline") or HEADLINES.get(result["name"], lambda m: {})(result["metrics"])
        for figure, value in headline.items():
            rows.append(f"| {result['name']} | {figure} | {value} | {where} | {result['date'][:10]} | "
                        f"`{result['command']}` |")
    return "\n".join([START, *rows, END])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--write", action="store_true", help="update README.md in place")
    args = parser.parse_args()
    text = section()
    if not args.write:
        print(text)
        return
    readme = ROOT / "README.md"
    content = readme.read_text()
    before, rest = content.split(START, 1)
    after = rest.split(END, 1)[1]
    readme.write_text(before + text + after)
    print(f"updated {readme}")


if __name__ == "__main__":
    main()
