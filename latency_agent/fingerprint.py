"""What machine a latency was measured on: CPU model and cores, OS, runtime, execution providers.

Every measured row, every fitted predictor and every agent answer carries one, so that a
latency from one CPU is never taken for another's (an AMD EPYC and an Intel Xeon with AMX
differ by 2x on int8 kernels).
"""

from __future__ import annotations

import os
import platform
import re
import subprocess
from functools import cache
from typing import Any

__all__ = ["IDENTITY_KEYS", "cpu_isa", "cpu_model", "describe", "fingerprint", "same_machine"]

# What must agree for two timings to be comparable. The OS release, Python and core count may
# change (a kernel update, a container with fewer cores) without changing what a kernel costs
# per core; the CPU model, the architecture, the runtime and its providers may not.
IDENTITY_KEYS = ("cpu", "isa", "machine", "runtime", "runtime_version", "providers")
# The instruction-set extensions that change which kernels a runtime picks. A VM may name its CPU
# only 'Intel(R) Xeon(R) Processor'; whether it has AMX (int8 and bf16 tiles) is what tells two
# such machines apart.
_ISA_FLAGS = ("avx2", "avx512f", "avx512_vnni", "avx512_bf16", "avx512_fp16", "amx_bf16", "amx_int8",
              "amx_fp16", "avx_vnni", "asimd", "asimddp", "sve", "sve2", "i8mm", "bf16")


@cache
def cpu_model() -> str:
    """The CPU's marketing name, as the OS reports it (e.g. 'Intel(R) Xeon(R) Platinum 8488C')."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as fh:
            text = fh.read()
        for key in ("model name", "Hardware", "Processor", "cpu model"):
            found = re.search(rf"^{key}\s*:\s*(.+)$", text, flags=re.MULTILINE)
            if found and found.group(1).strip():
                return " ".join(found.group(1).split())
    except OSError:
        pass
    if platform.system() == "Darwin":
        try:
            out = subprocess.run(["/usr/sbin/sysctl", "-n", "machdep.cpu.brand_string"], capture_output=True,
                                 text=True, timeout=5, check=False).stdout.strip()
            if out:
                return out
        except (OSError, subprocess.SubprocessError):
            pass
    return platform.processor() or platform.machine() or "unknown"


@cache
def cpu_isa() -> tuple[str, ...]:
    """The kernel-relevant ISA extensions the CPU reports (`_ISA_FLAGS`), sorted; empty if unknown."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as fh:
            text = fh.read()
    except OSError:
        return ()
    found = re.search(r"^(?:flags|Features)\s*:\s*(.+)$", text, flags=re.MULTILINE)
    flags = set(found.group(1).split()) if found else set()
    return tuple(sorted(flags & set(_ISA_FLAGS)))


def _usable_cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


def fingerprint(runtime: str, runtime_version: str, providers: list[str] | tuple[str, ...],
                threads: int | None = None) -> dict[str, Any]:
    """This machine's fingerprint for timings made with `runtime` (e.g. 'onnxruntime', '1.22.0')."""
    fp: dict[str, Any] = {
        "cpu": cpu_model(), "isa": list(cpu_isa()), "cores": _usable_cores(), "machine": platform.machine(),
        "os": f"{platform.system()} {platform.release()}", "runtime": runtime,
        "runtime_version": runtime_version, "providers": list(providers),
    }
    if threads is not None:
        fp["threads"] = int(threads)
    return fp


def same_machine(a: dict[str, Any] | None, b: dict[str, Any] | None) -> bool:
    """Whether timings under fingerprints `a` and `b` are comparable (`IDENTITY_KEYS` agree).

    A missing fingerprint (rows written before fingerprints existed) matches nothing.
    """
    if not a or not b:
        return False
    return all(a.get(k) == b.get(k) for k in IDENTITY_KEYS)


def describe(fp: dict[str, Any] | None) -> str:
    """One line for people: 'Intel Xeon ... (x86_64, 2 cores), onnxruntime 1.22.0'."""
    if not fp:
        return "an unrecorded machine"
    isa = " ".join(fp.get("isa") or []) or "no ISA flags recorded"
    return (f"{fp.get('cpu', '?')} ({fp.get('machine', '?')}, {isa}, {fp.get('cores', '?')} cores), "
            f"{fp.get('runtime', '?')} {fp.get('runtime_version', '')}".rstrip())
