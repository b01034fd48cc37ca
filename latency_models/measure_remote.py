"""A remote device: archs timed by the latency agent on the device (`nas latency serve`), as the `cpu`
device times them here.

The same graphs (`measure_cpu.quantized_onnx`), in the same groups (`CpuConfig.group`), beside the same
reference (the space's largest arch), with the same timing settings; only the ONNX bytes travel to the
agent, and the timings, its runtime, threads and fingerprint come back. The reference is posted once
per profile, and again when the agent no longer holds it (it restarted). A group larger than the
agent takes in one request (`limits.max_models`, `max_body_bytes`) is sent in parts, and each part's
rows are yielded as soon as it is timed, so an interrupted profile keeps them.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, fields
from typing import Any

from latency_models.csvio import Measurement
from latency_models.measure_cpu import CpuConfig, quantized_onnx
from latency_models.remote import AgentLink, UnknownReferenceError, agent_info, post_reference, post_time
from search_space import Arch, SearchSpace
from search_space.errors import InputError

__all__ = ["AnswerHook", "measure_remote", "timing_fields"]

_LOCAL_FIELDS = ("threads", "group", "seed")  # what the client decides, not the agent
_BODY_SLACK = 4096  # bytes of JSON around the base64 models
# Called with the path (`/v1/reference`, `/v1/time`) and the agent's whole answer, its `started` and
# `finished` (the agent's monotonic seconds around its timing) included: what a benchmark reads.
AnswerHook = Callable[[str, dict[str, Any]], None]


def timing_fields(config: CpuConfig) -> dict[str, Any]:
    """The `timing` object of a request: `CpuConfig`'s fields but threads (the agent's), group and seed."""
    return {f.name: getattr(config, f.name) for f in fields(config) if f.name not in _LOCAL_FIELDS}


def _onnx_bytes(space: SearchSpace, arch: Arch, config: CpuConfig, supernet) -> bytes:
    return quantized_onnx(space, arch, supernet=supernet, seed=config.seed).SerializeToString()


@dataclass
class _Run:
    """One profile's conversation with the agent: the reference it holds, the timing, the limits."""

    agent: AgentLink
    reference_model: bytes
    timing: dict[str, Any]
    limits: dict[str, Any]
    reference: str | None = None
    on_answer: AnswerHook | None = None

    @property
    def timeout_s(self) -> float:
        """A request's worst case: its upload, its wait for a turn and its timing (both capped at
        `max_timing_s` by the agent), and a margin."""
        return float(self.limits.get("request_timeout_s") or 60) + 2 * float(self.limits.get("max_timing_s")
                                                                                or 600) + 30

    def post_reference(self) -> None:
        answer = post_reference(self.agent, self.reference_model, self.timing, self.timeout_s)
        self._heard("/v1/reference", answer)
        expected = hashlib.sha256(self.reference_model).hexdigest()
        if answer["reference"] != expected:
            raise InputError(f"the agent at {self.agent.url} named the reference "
                             f"{answer['reference'][:16]!r}, not its sha256 {expected[:16]}: is it the same "
                             "vit-nas version as this one?")
        self.reference = expected

    def time(self, models: list[bytes]) -> dict[str, Any]:
        if self.reference is None:
            self.post_reference()
        try:
            answer = post_time(self.agent, str(self.reference), models, self.timing, self.timeout_s)
        except UnknownReferenceError:  # the agent restarted since: it times the reference again
            self.post_reference()
            answer = post_time(self.agent, str(self.reference), models, self.timing, self.timeout_s)
        self._heard("/v1/time", answer)
        return answer

    def _heard(self, path: str, answer: dict[str, Any]) -> None:
        if self.on_answer is not None:
            self.on_answer(path, answer)

    def parts(self, group: list[tuple[Arch, bytes]]) -> Iterator[list[tuple[Arch, bytes]]]:
        """`group` in requests of at most `max_models` models and `max_body_bytes` bytes."""
        most = max(1, int(self.limits.get("max_models") or 16))
        budget = int(self.limits.get("max_body_bytes") or 1 << 26) - _BODY_SLACK
        part: list[tuple[Arch, bytes]] = []
        size = 0
        for arch, model in group:
            encoded = 4 * -(-len(model) // 3) + 4
            if encoded > budget:
                raise InputError(f"the ONNX graph of {arch.describe()} is {len(model)} bytes, over what the "
                                 f"agent at {self.agent.url} takes in one request ({budget + _BODY_SLACK} "
                                 "bytes as base64 JSON): start it with a larger --max-upload-mb")
            if part and (len(part) == most or size + encoded > budget):
                yield part
                part, size = [], 0
            part.append((arch, model))
            size += encoded
        if part:
            yield part


def _measurement(device: str, space: SearchSpace, arch: Arch, result: dict[str, Any], answer: dict[str, Any]
                 ) -> Measurement:
    return Measurement(
        arch=arch, device=device, latency_ms_median=float(result["median_ms"]),
        latency_ms_p90=float(result["p90_ms"]), repeats=int(result["runs"]), runtime=answer["runtime"],
        threads=int(answer["threads"]), batch=1,
        timestamp=dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ"), space=space.fingerprint,
        latency_ms_min=float(result["min_ms"]), reference_ms_min=float(answer["reference_ms"]),
        fingerprint=answer["fingerprint"],
    )


def measure_remote(device: str, agent: AgentLink, space: SearchSpace, archs: Sequence[Arch],
                   config: CpuConfig | None = None, *, supernet=None,
                   on_answer: AnswerHook | None = None) -> Iterator[Measurement]:
    """Time archs on the agent in groups of `config.group`, yielding each row as soon as it is timed.

    Args:
        device: the device's name, recorded in every row.
        config: the timing settings (its `threads` are ignored: the agent times with its own).
        supernet: a (trained) `SuperViT` of `space` to extract from; default a seeded random init.
        on_answer: called with each answer of the agent (`AnswerHook`), before its rows are yielded.

    Raises:
        InputError: the agent cannot be reached, refuses the token or a request, or stops answering.
    """
    config = config or CpuConfig()
    archs = [space.validate(a) for a in archs]
    if not archs:
        return
    info = agent_info(agent)
    reference = _onnx_bytes(space, space.largest(), config, None)
    run = _Run(agent, reference, timing_fields(config), info["limits"], on_answer=on_answer)
    for start in range(0, len(archs), config.group):
        group = [(a, _onnx_bytes(space, a, config, supernet)) for a in archs[start:start + config.group]]
        for part in run.parts(group):
            answer = run.time([model for _, model in part])
            for (arch, _), result in zip(part, answer["results"], strict=True):
                yield _measurement(device, space, arch, result, answer)
