"""Pareto front and hypervolume on hand-checked points."""

from __future__ import annotations

import pytest

from search.pareto import hypervolume, pareto_front


def test_front_keeps_only_non_dominated_points_fastest_first():
    pts = [(0.5, 1.0), (0.7, 2.0), (0.6, 2.5), (0.9, 3.0), (0.9, 3.5), (0.4, 0.5), (0.5, 1.0)]
    assert pareto_front(pts) == [5, 0, 1, 3]


def test_hypervolume_is_the_dominated_area():
    # strips: [0.5, 1) x 0.4, [1, 2) x 0.5, [2, 4] x 0.7  ->  0.2 + 0.5 + 1.4
    pts = [(0.5, 1.0), (0.7, 2.0), (0.4, 0.5), (0.6, 2.5)]
    assert hypervolume(pts, ref_latency=4.0) == pytest.approx(0.2 + 0.5 + 1.4)
    assert hypervolume(pts, ref_latency=4.0, ref_accuracy=0.5) == pytest.approx(0.0 * 1 + 0.2 * 2)
    assert hypervolume([(0.9, 5.0)], ref_latency=4.0) == 0.0
    assert hypervolume([], ref_latency=4.0) == 0.0
