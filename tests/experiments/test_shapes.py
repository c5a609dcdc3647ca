"""Shape criteria of entropy trajectories (experiments/shapes.py) on hand-made curves."""

from __future__ import annotations

import math

import pytest

from entrostat.experiments.shapes import peaks, shape_check, smooth

N = 200
FALLING = [0.9 - 0.7 * k / N for k in range(N)]


def test_smooth_is_a_centred_mean():
    assert smooth([0.0, 3.0, 6.0, 9.0], 3) == [1.5, 3.0, 6.0, 7.5]


def test_increase_then_decrease():
    rise_fall = [0.5 + 0.3 * math.sin(math.pi * k / N) for k in range(N)]
    assert shape_check("id", rise_fall)[0]
    ok, what = shape_check("id", FALLING)
    assert not ok and "first-half peak" in what


def test_decrease_increase_decrease():
    did = [0.8 - 0.4 * k / 60 if k < 60 else 0.4 + 0.3 * (k - 60) / 60 if k < 120 else 0.7 - 0.5 * (k - 120) / 80
           for k in range(N)]
    assert shape_check("did", did)[0]
    assert not shape_check("did", FALLING)[0]
    assert not shape_check("did", [0.8 - 0.4 * k / 60 if k < 60 else 0.4 + 0.3 * (k - 60) / 140 for k in range(N)])[0]


def test_oscillatory_decay_needs_falling_peaks():
    decaying = [0.3 + 0.3 * math.exp(-k / 100) * abs(math.sin(k / 15)) for k in range(N)]
    ok, what = shape_check("od", decaying)
    assert ok and what.count(" at step ") >= 2
    growing = [0.3 + 0.3 * math.exp((k - N) / 100) * abs(math.sin(k / 15)) for k in range(N)]
    assert not shape_check("od", growing)[0]
    assert not shape_check("od", FALLING)[0]


def test_noise_below_delta_is_not_a_peak():
    wiggle = [0.5 + 0.004 * (-1) ** k for k in range(N)]
    assert peaks(smooth(wiggle, 10), 0.02) == []


def test_bad_arguments():
    with pytest.raises(ValueError, match="shape"):
        shape_check("zigzag", FALLING)
    with pytest.raises(ValueError, match="20 steps"):
        shape_check("id", FALLING[:10])
