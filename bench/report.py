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


def _remote_latency(m: dict) -> dict[str, str]:
    where = f"cpu vs its own latency agent (127.0.0.1), {m['space']}, {m['archs']} archs, interleaved groups"
    over, per_s = m["overhead_s_per_arch"], m["throughput_archs_per_s"]
    return {
        f"{where}: median remote / local latency, fastest run / median run (the reference's fastest run)":
            f"{m['median_ratio_min']:.3f} / {m['median_ratio_median']:.3f} "
            f"({m['median_reference_ratio']:.3f}); {'same' if m['same_machine'] else 'different'} machine "
            "fingerprints",
        f"{where}: seconds per arch beyond the timed runs, local (export, sessions) / through the agent "
        f"(+ upload, checks)": f"{over['local']:.2f} s / {over['remote']:.2f} s",
        f"{where}: profiling throughput through the agent, fraction of local: median over groups; in all "
        "(archs/s; groups timed again after a slow spell, remote vs local)":
            (f"{m['throughput_fraction_median_group']:.2f}; " if "throughput_fraction_median_group" in m
             else "") + f"{m['throughput_fraction']:.2f} ({per_s['remote']:.3f} vs {per_s['local']:.3f}; "
            f"{m['retimed']['remote']} vs {m['retimed']['local']})",
    }


def _agent_fuzz(m: dict) -> dict[str, str]:
    codes = ", ".join(f"{k} {v:,}" for k, v in m["by_status"].items() if k.isdigit() and k != "200")
    return {
        "malformed HTTP requests to a latency agent: sent / answered 4xx / 200 / 5xx or not JSON / "
        "agent crashes": f"{m['requests']:,} / {m['answered_4xx']:,} / {m['answered_200']:,} / "
                         f"{m['bad_answers']} / {m['agent_crashes']}",
        "malformed HTTP requests to a latency agent: 4xx by status; slowest answer; /v1/info at the end":
            f"{codes}; {m['max_response_s']:.2f} s; {'answers' if m['info_answers_at_end'] else 'no answer'}",
    }


def _train_step(m: dict) -> dict[str, str]:
    v, peak = m["variants"], m["peak_gflops"]
    names = " / ".join(v)
    top = m["profile_fp32_b64"][:3]
    return {
        f"fashion-mnist sandwich step on this CPU, images/s: {names}":
            " / ".join(f"{x['images_per_s']:.0f}" for x in v.values()),
        "fashion-mnist sandwich step: achieved GFLOP/s of the fp32 step, fraction of this CPU's measured "
        "fp32 / bf16 GEMM peak": (f"{v['fp32']['gflops']:.0f}: {v['fp32']['fraction_of_fp32_peak']:.2f} of "
                                  f"{peak['fp32']:.0f} / {v['fp32']['fraction_of_bf16_peak']:.2f} of "
                                  f"{peak['bf16']:.0f}"),
        "fashion-mnist sandwich step: largest shares of its time (torch.profiler, self time)":
            ", ".join(f"{r['op'].removeprefix('aten::')} {r['self_share']:.0%}" for r in top),
    }


# What each benchmark contributes to the README, from its metrics (a result may also carry its own).
HEADLINES = {"analytic_calibration": _calibration, "latency_predictor": _predictor,
             "remote_latency": _remote_latency, "agent_fuzz": _agent_fuzz, "train_step": _train_step}


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
