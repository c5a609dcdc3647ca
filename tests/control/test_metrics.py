"""tracking_metrics (control/metrics.py) on hand-made trajectories."""

from __future__ import annotations

import pytest

from entrostat.control import tracking_metrics


def test_perfect_tracking_is_all_zero():
    m = tracking_metrics([0.5] * 6, [0.5] * 6)
    assert m["tracking_error"] == m["oscillation"] == m["overshoot"] == m["sign_changes"] == 0.0


def test_hand_computed_values():
    # relative errors: -0.5, 0.2, -0.1, 0.1, -0.1, 0.1 (target 1.0); second half = last 3
    m = tracking_metrics([0.5, 1.2, 0.9, 1.1, 0.9, 1.1], [1.0] * 6)
    assert m["tracking_error"] == pytest.approx(0.1)
    assert m["bias"] == pytest.approx(0.1 / 3)
    assert m["first_crossing"] == 1.0
    assert m["overshoot"] == pytest.approx(0.2)
    assert m["sign_changes"] == 2.0
    mean = 0.1 / 3
    expect = ((2 * (0.1 - mean) ** 2 + (-0.1 - mean) ** 2) / 3) ** 0.5
    assert m["oscillation"] == pytest.approx(expect)


def test_overshoot_from_above_counts_the_undershoot():
    m = tracking_metrics([2.0, 1.5, 0.7, 0.9, 1.0], [1.0] * 5)
    assert m["first_crossing"] == 2.0 and m["overshoot"] == pytest.approx(0.3)


def test_no_crossing_means_no_overshoot():
    m = tracking_metrics([0.2, 0.4, 0.45], [0.5] * 3)
    assert m["first_crossing"] == -1.0 and m["overshoot"] == 0.0


def test_bad_inputs():
    with pytest.raises(ValueError):
        tracking_metrics([0.1, 0.2], [0.1])
    with pytest.raises(ValueError):
        tracking_metrics([0.1], [0.0])
