"""The latency agent against the local cpu device: the same archs timed both ways on one machine.

N archs of a space (`sample_archs`, MACs spread evenly) are timed by the `cpu` device
(`measure_cpu`: exported in this process, timed in its torch-free timing child over a pipe) and
through a fresh latency agent on 127.0.0.1 (`python -m latency_agent serve`, described as a remote
device in a YAML file and timed by `measure_remote`), with the same `CpuConfig`, the same groups and
the same reference (the space's largest arch). The two sides take turns group by group (local first
in even groups, remote first in odd ones), so a slow spell of the machine hits both alike, after an
untimed export of every arch (the exporter is faster the second time it sees an arch, which would
favour the side that goes second). Each side's wall time covers what a profile does: the local side
exports each group's ONNX graphs (`quantized_onnx`) and hands them to its timing child, which checks
them, builds the sessions and times them; the remote side exports the same graphs, uploads them over
HTTP, and the agent does the same. Reported: the median over archs of remote / local latency
(fastest run and median run), each side's seconds per arch beyond timing (wall time minus the time
spent timing: the `started`..`finished` span of each answer, of the agent and of the local timing
child), profiling throughput through the agent as a fraction of local, and both fingerprints.

    python bench/remote_latency.py                       # digits, 30 archs, about 4 minutes on 2 cores
    python bench/remote_latency.py --n 4 --group 2 --min-time-s 0.05   # a smoke run (noisy figures)
"""

from __future__ import annotations

import argparse
import dataclasses
import hashlib
import statistics
import sys
import tempfile
import time
from pathlib import Path

from _agent import start_agent, stop_agent
from _common import write_result  # puts the repository on sys.path

from latency_agent.fingerprint import same_machine
from latency_models import device_from_file
from latency_models.measure_cpu import CpuConfig, measure_cpu, ort_session, quantized_onnx
from latency_models.measure_remote import measure_remote
from latency_models.profile_run import sample_archs
from search_space import load_space

_DEFAULT = CpuConfig()


def _describe_device(folder: Path, url: str, token_file: Path) -> Path:
    """A remote device's YAML file, as a user writes it (`latency_models.user_devices`)."""
    path = folder / "devices" / "loopback.yaml"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(f"description: this machine through its own latency agent\nsource: remote\n"
                    f"url: {url}\ntoken_file: {token_file}\n")
    return path


def _pull(rows, count: int) -> tuple[list, float]:
    """The next `count` rows of a measuring generator (one group: exported, timed) and the seconds taken."""
    start = time.perf_counter()
    got = [next(rows) for _ in range(count)]
    return got, time.perf_counter() - start


def _interleaved(local, remote, sizes: list[int]) -> dict[str, dict]:
    """Both sides group by group, alternating which goes first; each side's rows and wall seconds."""
    sides = {name: {"gen": gen, "rows": [], "wall_s": []}
             for name, gen in (("local", local), ("remote", remote))}
    for g, size in enumerate(sizes):
        for name in ("local", "remote") if g % 2 == 0 else ("remote", "local"):
            rows, seconds = _pull(sides[name]["gen"], size)
            sides[name]["rows"] += rows
            sides[name]["wall_s"].append(seconds)
            print(f"group {g + 1}/{len(sizes)} {name}: {size} archs in {seconds:.1f} s", flush=True)
    return sides


def _ratios(local: list, remote: list, field: str) -> list[float]:
    return [getattr(r, field) / getattr(lo, field) for lo, r in zip(local, remote, strict=True)]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--space", default="digits")
    ap.add_argument("--n", type=int, default=30)
    ap.add_argument("--seed", type=int, default=0, help="seed of the arch sample")
    ap.add_argument("--threads", type=int, default=1, help="intra-op threads: locally, and the agent's")
    ap.add_argument("--group", type=int, default=_DEFAULT.group)
    ap.add_argument("--min-time-s", type=float, default=_DEFAULT.min_time_s)
    ap.add_argument("--retries", type=int, default=_DEFAULT.retries)
    args = ap.parse_args()
    space = load_space(args.space)
    config = CpuConfig(threads=args.threads, group=args.group, min_time_s=args.min_time_s,
                       retries=args.retries)
    archs = sample_archs(space, args.n, args.seed)
    sizes = [min(config.group, len(archs) - s) for s in range(0, len(archs), config.group)]
    start = time.perf_counter()
    # Untimed: the first-call costs of the exporter (per process, and per arch: a second export of an arch
    # took a third less time on the VM) and of ONNX Runtime, which the side that goes first would pay.
    reference = quantized_onnx(space, space.largest(), seed=config.seed).SerializeToString()
    ort_session(reference, config.threads)
    for arch in archs:
        quantized_onnx(space, arch, seed=config.seed)
    warmup_s = time.perf_counter() - start
    answers: list[tuple[str, dict]] = []
    local_answers: list[tuple[str, dict]] = []
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        agent = start_agent(folder / "agent", "--threads", str(args.threads))
        try:
            device = device_from_file(_describe_device(folder, agent.url, agent.token_file))
            remote = measure_remote(device.name, device.agent, space, archs, config,
                                    on_answer=lambda path, answer: answers.append((path, answer)))
            local = measure_cpu(space, archs, config,
                                on_answer=lambda path, answer: local_answers.append((path, answer)))
            sides = _interleaved(local, remote, sizes)
        finally:
            status = stop_agent(agent)
    local_rows, remote_rows = sides["local"]["rows"], sides["remote"]["rows"]
    if not [a.describe() for a in archs] == [m.arch.describe() for m in local_rows] == [
            m.arch.describe() for m in remote_rows]:
        raise RuntimeError("the two sides did not time the same archs in the same order")
    wall = {name: sum(sides[name]["wall_s"]) for name in sides}
    timing = {name: sum(a["finished"] - a["started"] for _, a in heard)
              for name, heard in (("local", local_answers), ("remote", answers))}
    n = len(archs)
    ratio_min = _ratios(local_rows, remote_rows, "latency_ms_min")
    ratio_median = _ratios(local_rows, remote_rows, "latency_ms_median")
    local_fp, remote_fp = local_rows[0].fingerprint, remote_rows[0].fingerprint
    metrics = {
        "space": space.name,
        "archs": n,
        "median_ratio_min": statistics.median(ratio_min),
        "median_ratio_median": statistics.median(ratio_median),
        "ratio_min_range": [min(ratio_min), max(ratio_min)],
        "ratio_median_range": [min(ratio_median), max(ratio_median)],
        "median_reference_ratio": statistics.median(
            r.reference_ms_min / lo.reference_ms_min for lo, r in zip(local_rows, remote_rows, strict=True)),
        "wall_s": wall, "timing_s": timing,
        "group_wall_s": {name: sides[name]["wall_s"] for name in sides},
        "overhead_s_per_arch": {name: (wall[name] - timing[name]) / n for name in sides},
        "throughput_archs_per_s": {name: n / wall[name] for name in sides},
        "throughput_fraction": wall["local"] / wall["remote"],
        # per group, local wall / remote wall: a slow spell that makes one side time a group again
        # (a pause and a second timing, tens of seconds) is the machine's, not the agent's
        "throughput_fraction_median_group": statistics.median(
            lo / r for lo, r in zip(sides["local"]["wall_s"], sides["remote"]["wall_s"], strict=True)),
        "retimed": {name: sum(int(a.get("retimed", 0)) for _, a in heard)
                    for name, heard in (("local", local_answers), ("remote", answers))},
        "reference_sha256_matches": any(p == "/v1/reference" and a["reference"] == hashlib.sha256(
            reference).hexdigest() for p, a in answers),
        "fingerprints": {"local": local_fp, "remote": remote_fp},
        "same_machine": same_machine(local_fp, remote_fp),
        "agent_exit_status": status,
        "per_arch": [{"arch": lo.arch.describe(), "local_min_ms": lo.latency_ms_min,
                      "remote_min_ms": r.latency_ms_min, "local_median_ms": lo.latency_ms_median,
                      "remote_median_ms": r.latency_ms_median}
                     for lo, r in zip(local_rows, remote_rows, strict=True)],
        "warmup_s": round(warmup_s, 1),
        "seconds": round(time.perf_counter() - start, 1),
    }
    print(f"remote / local latency, median over {n} archs: fastest run {metrics['median_ratio_min']:.3f}, "
          f"median run {metrics['median_ratio_median']:.3f}")
    print("seconds per arch beyond timing: " + ", ".join(
        f"{k} {v:.2f}" for k, v in metrics["overhead_s_per_arch"].items()))
    print(f"throughput through the agent / local: {metrics['throughput_fraction']:.3f} in all, "
          f"{metrics['throughput_fraction_median_group']:.3f} median group; "
          f"same machine: {metrics['same_machine']}")
    write_result(
        "remote_latency",
        params=vars(args) | {"config": dataclasses.asdict(config), "agent_threads": args.threads},
        metrics=metrics,
        notes=("One process exports every ONNX graph (both sides, identical bytes); the agent is a "
               "subprocess on 127.0.0.1. Overhead per arch = (wall time - time spent timing) / archs: "
               "locally export + session builds; through the agent also base64, HTTP, its model checks, "
               "session builds and two probe runs per model. The agent's span for the reference also "
               "covers checking and loading it (well under a second, once per run), which locally counts "
               "as overhead. Every arch is exported once, untimed, before the run (warmup_s)."),
        command=" ".join(["python", "bench/remote_latency.py", *sys.argv[1:]]),
    )


if __name__ == "__main__":
    main()
