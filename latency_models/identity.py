"""Which machine a latency belongs to (docs/design.md, File formats): this machine's fingerprint for the
`cpu` device, the rule for what may share a file or a fit, and the one line said when a `cpu` predictor
was fitted on another machine than the one it is used on.

A predictor fitted on an AMD EPYC ranks archs by the EPYC's kernel costs; on an Intel Xeon with AMX
the int8 kernels cost half as much, and the search would pick for the wrong machine. Fingerprints are
`latency_agent.fingerprint`'s, so the local `cpu` device and a latency agent describe machines alike.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from latency_agent.fingerprint import describe, fingerprint, same_machine
from search_space import SearchSpace
from search_space.errors import InputError

__all__ = ["common_fingerprint", "cpu_fingerprint", "fingerprint_of", "machine_notice", "same_rows",
           "this_machine_line"]

Fingerprint = dict[str, Any]


def cpu_fingerprint(threads: int = 1) -> Fingerprint:
    """This machine's fingerprint for the `cpu` device: ONNX Runtime's CPU provider at `threads` threads."""
    import onnxruntime as ort

    return fingerprint("onnxruntime", ort.__version__, ["CPUExecutionProvider"], threads)


def same_rows(a: Fingerprint | None, b: Fingerprint | None) -> bool:
    """Whether timings under `a` and `b` may share a file or a fit: both record no machine (timings
    brought back from a phone, files written before fingerprints), or both the same machine."""
    return (not a and not b) or same_machine(a, b)


def common_fingerprint(fingerprints: Sequence[Fingerprint | None], where: str) -> Fingerprint | None:
    """The machine every timing was taken on (the first one's fingerprint; None when none records one).

    Raises:
        InputError: two timings of different machines (or one recorded, one not), naming both.
    """
    first = fingerprints[0] if fingerprints else None
    for i, fp in enumerate(fingerprints):
        if not same_rows(first, fp):
            raise InputError(f"{where}: timing 1 was taken on {describe(first)} and timing {i + 1} on "
                             f"{describe(fp)}; fit the timings of one machine at a time")
    return first


def fingerprint_of(predictor: object) -> Fingerprint | None:
    """The fingerprint a (learned) predictor was fitted under, or None (analytic, or written before
    predictors recorded one)."""
    metadata = getattr(predictor, "metadata", None) or {}
    fp = metadata.get("fingerprint")
    return fp if isinstance(fp, dict) and fp else None


def this_machine_line(fp: Fingerprint | None, here: Fingerprint) -> str:
    """'fitted on X' for `nas devices`, with ' (not this machine)' when X is not `here`."""
    if not fp:
        return "records no machine (fitted before vit-nas recorded one)"
    return f"fitted on {describe(fp)}" + ("" if same_machine(fp, here) else " (not this machine)")


def machine_notice(device: str, predictor: object, space: SearchSpace, *,
                   here: Fingerprint | None = None, here_what: str = "this machine is") -> str | None:
    """One line when the `cpu` device's `predictor` was fitted on another machine than `here` (default:
    this one), saying how to refit it; None when it was fitted here, or for any other device (a remote
    device's machine is the agent's, an analytic device's none).
    """
    if device != "cpu" or getattr(predictor, "source", None) != "measured":
        return None
    here = here if here is not None else cpu_fingerprint()
    fitted = fingerprint_of(predictor)
    if same_machine(fitted, here):
        return None
    was = f"was fitted on {describe(fitted)}" if fitted else "records no machine (fitted before vit-nas " \
                                                             "recorded one)"
    return (f"cpu predictor for {space.name} {was}; {here_what} {describe(here)}: its latencies may rank "
            f"archs differently here; refit with: nas latency profile --device cpu --space {space.name} "
            f"--n 120 --out m.csv && nas latency fit --device cpu --space {space.name} --data m.csv")
