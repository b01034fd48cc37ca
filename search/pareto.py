"""The accuracy/latency Pareto front and its hypervolume (accuracy up, latency down)."""

from __future__ import annotations

from collections.abc import Sequence

__all__ = ["hypervolume", "pareto_front"]


def pareto_front(points: Sequence[tuple[float, float]]) -> list[int]:
    """Indices of the (accuracy, latency) points that no other point dominates, by latency.

    A point dominates another when it is at least as accurate and at least as fast, and
    strictly better in one; of identical points the first is kept.
    """
    order = sorted(range(len(points)), key=lambda i: (points[i][1], -points[i][0], i))
    front: list[int] = []
    best = float("-inf")
    for i in order:
        if points[i][0] > best:
            front.append(i)
            best = points[i][0]
    return front


def hypervolume(points: Sequence[tuple[float, float]], ref_latency: float,
                ref_accuracy: float = 0.0) -> float:
    """Area (accuracy x milliseconds) dominated by the points and bounded by the reference point.

    Points slower than `ref_latency` or less accurate than `ref_accuracy` add nothing.
    """
    inside = [(a, lat) for a, lat in points if lat <= ref_latency and a >= ref_accuracy]
    front = [inside[i] for i in pareto_front(inside)]  # fastest first, accuracy rising
    area = 0.0
    for k, (a, lat) in enumerate(front):
        until = front[k + 1][1] if k + 1 < len(front) else ref_latency
        area += (a - ref_accuracy) * (until - lat)
    return area
