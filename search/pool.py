"""Where candidates are evaluated: in this process, or on Ray actors (a local pool or a cluster).

A Ray actor loads the supernet and the validation images once (both shipped with
`ray.put`) and then scores chunks of candidates, a few per call, so the per-call cost
of Ray (about a millisecond) stays small next to the evaluations. One Ray Tune trial
per candidate would cost seconds each; this is why the search does not use Tune here.
"""

from __future__ import annotations

import itertools
import time
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import torch

from search.evaluator import AccuracyEvaluator, Evaluator
from search_space import Arch, SearchSpace
from supernet.supervit import SuperViT

__all__ = ["LocalPool", "Outcome", "RayPool", "Scored"]

Scored = tuple[Arch, float, float]  # arch, top-1, seconds spent evaluating it
Outcome = tuple[Arch, float | None, float]  # the same, top-1 None for an arch that was skipped


class _Pool:
    """A queue of candidates to score: `put` adds archs, `take` hands back one outcome at a time.

    A caller can queue more work before it has taken what it queued earlier: the search
    queues the next generation's immigrants behind the current generation, so that Ray
    actors have work while the driver computes the next generation's children.
    """

    parallelism = 1

    def put(self, archs: Sequence[Arch], *, skip: Callable[[Arch], bool] | None = None) -> None:
        """Queue `archs`; `skip` is asked about each when its turn comes, and one it says True for is
        not evaluated (its outcome says None)."""
        raise NotImplementedError

    def take(self) -> Outcome | None:
        """The next outcome, waiting for it; None when nothing is queued or running."""
        raise NotImplementedError

    def imap(self, archs: Sequence[Arch], *, skip: Callable[[Arch], bool] | None = None) -> Iterator[Scored]:
        """Each arch's score (archs `skip` says True for left out), once everything queued is done."""
        self.put(archs, skip=skip)
        while (outcome := self.take()) is not None:
            arch, accuracy, seconds = outcome
            if accuracy is not None:
                yield arch, accuracy, seconds

    def close(self) -> None:
        pass


class LocalPool(_Pool):
    """Evaluates in this process, one candidate after another, in the order they were queued."""

    def __init__(self, evaluator: Evaluator) -> None:
        self.evaluator = evaluator
        threads = torch.get_num_threads()
        self.where = f"in process ({threads} torch thread{'' if threads == 1 else 's'})"
        self._todo: deque[tuple[Arch, Callable[[Arch], bool] | None]] = deque()

    def put(self, archs: Sequence[Arch], *, skip: Callable[[Arch], bool] | None = None) -> None:
        self._todo.extend((a, skip) for a in archs)

    def take(self) -> Outcome | None:
        if not self._todo:
            return None
        arch, skip = self._todo.popleft()
        if skip is not None and skip(arch):
            return arch, None, 0.0
        start = time.perf_counter()
        accuracy = self.evaluator(arch)
        return arch, accuracy, time.perf_counter() - start


class _Evaluator:
    """The body of a Ray actor: one supernet and one copy of the validation images."""

    def __init__(self, payload: dict[str, Any], images: torch.Tensor, labels: torch.Tensor,
                 threads: int) -> None:
        torch.set_num_threads(threads)
        self.device = "cuda" if torch.cuda.is_available() else "cpu"
        model = SuperViT(SearchSpace.from_dict(payload["space"]))
        model.load_state_dict(payload["state_dict"])
        self.evaluator = AccuracyEvaluator(model, images, labels, device=self.device)

    def where(self) -> str:
        return self.device

    def evaluate(self, index: int, arch_dicts: list[dict[str, Any]]) -> tuple[int, list[tuple[float, float]]]:
        """Top-1 and seconds of each arch of chunk `index` (the index comes back with them)."""
        out = []
        for d in arch_dicts:
            start = time.perf_counter()
            accuracy = self.evaluator(Arch.from_dict(d))
            out.append((accuracy, time.perf_counter() - start))
        return index, out


class RayPool(_Pool):
    """Ray actors that score candidates in parallel.

    Args:
        model: the supernet (its weights and space are shipped to every actor once).
        images, labels: the validation data (shipped once).
        workers: actors to start; with `address` and no `workers`, one per CPU of the cluster.
        address: a running cluster (`ray start --head`); None starts a local Ray for this search.
    """

    def __init__(self, model: SuperViT, images: torch.Tensor, labels: torch.Tensor, *,
                 workers: int | None = None, address: str | None = None) -> None:
        import ray

        self._started = not ray.is_initialized()
        if self._started:
            ray.init(address=address, num_cpus=None if address else workers,
                     include_dashboard=False, log_to_driver=False)
        resources = ray.cluster_resources()
        n = workers or max(1, int(resources.get("CPU", 1)))
        gpus = float(resources.get("GPU", 0))
        options: dict[str, Any] = {"num_cpus": 1}
        if gpus > 0:
            options["num_gpus"] = min(1.0, gpus / n)
        payload = ray.put({"state_dict": {k: v.detach().cpu() for k, v in model.state_dict().items()},
                           "space": model.space.to_dict()})
        images_ref, labels_ref = ray.put(images.cpu()), ray.put(labels.cpu())
        actor = ray.remote(**options)(_Evaluator)
        self._actors = [actor.remote(payload, images_ref, labels_ref, 1) for _ in range(n)]
        places = ray.get([a.where.remote() for a in self._actors])
        self.parallelism = n
        gpu_note = f", {places.count('cuda')} on GPU" if "cuda" in places else ""
        self.where = f"{n} Ray actors ({'cluster ' + address if address else 'local Ray'}{gpu_note})"
        self._todo: deque[tuple[Arch, Callable[[Arch], bool] | None]] = deque()
        self._ready: deque[Outcome] = deque()
        self._numbers = itertools.count()
        self._sent: dict[int, list[Arch]] = {}
        self._inflight: dict[Any, int] = {}
        self._load = [0] * n

    QUEUED = 3  # chunks sent ahead to each actor
    SPLIT = 3  # a chunk is 1/SPLIT of what is left per actor ...
    SMALLEST = 1  # ... and at least this many archs (2 measured no better: fewer calls, longer tails)

    def put(self, archs: Sequence[Arch], *, skip: Callable[[Arch], bool] | None = None) -> None:
        """Queue `archs` and send chunks to any actor with fewer than `QUEUED` waiting.

        Chunks go to whichever actor is free, `QUEUED` per actor so none waits for the driver.
        With two, an actor that had finished a one-arch chunk sometimes found nothing queued
        while the driver was still recording earlier results: a timeline of a 2-actor digits
        search showed both actors idle for 7-15 ms in the middle of a generation; with three,
        the only such gaps left were between generations.

        Chunks shrink as the queue drains (a third of what is left per actor, down to one
        arch), so the actors run out of work together: with equal chunks one actor sat
        idle for up to a whole chunk at the end of each generation (12% of a 2-actor
        search's wall time, bench/search_speed.py). `skip` is asked about each arch when its
        chunk is made.
        """
        self._todo.extend((a, skip) for a in archs)
        self._fill()

    def _fill(self) -> None:
        """Top every actor up to `QUEUED` chunks, round-robin (actor 0 taking its three first made a
        2-actor search spend 16% of its time orchestrating)."""
        for level in range(self.QUEUED):
            for actor in range(len(self._actors)):
                if self._todo and self._load[actor] <= level:
                    self._send(actor)

    def _send(self, actor: int) -> None:
        size = max(self.SMALLEST, len(self._todo) // (self.SPLIT * self.parallelism))
        chunk: list[Arch] = []
        while self._todo and len(chunk) < size:
            arch, skip = self._todo.popleft()
            if skip is not None and skip(arch):
                self._ready.append((arch, None, 0.0))
            else:
                chunk.append(arch)
        if chunk:
            index = next(self._numbers)
            self._sent[index] = chunk
            ref = self._actors[actor].evaluate.remote(index, [a.to_dict() for a in chunk])
            self._inflight[ref] = actor
            self._load[actor] += 1

    def take(self) -> Outcome | None:
        import ray

        if not self._ready and self._inflight:
            ready, _ = ray.wait(list(self._inflight), num_returns=1)
            actor = self._inflight.pop(ready[0])
            self._load[actor] -= 1
            self._fill()  # before reading the results: the actor gets its next chunk at once
            index, scores = ray.get(ready[0])
            for arch, (accuracy, seconds) in zip(self._sent.pop(index), scores, strict=True):
                self._ready.append((arch, accuracy, seconds))
        return self._ready.popleft() if self._ready else None

    def close(self) -> None:
        import ray

        for a in self._actors:
            ray.kill(a)
        self._actors = []
        if self._started:
            ray.shutdown()
