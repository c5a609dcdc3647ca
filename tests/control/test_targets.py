"""Target schedules (control/targets.py): values at endpoints and phase boundaries, validation."""

from __future__ import annotations

import math

import pytest

from entrostat.config.base import ConfigError
from entrostat.control import build_target

K = 100


def test_constant_from_number_and_mapping():
    assert build_target(0.3)(0, K) == 0.3
    assert build_target({"kind": "constant", "value": 0.3})(K, K) == 0.3


def test_linear_and_cosine_endpoints_and_midpoint():
    lin = build_target({"kind": "linear", "start": 0.8, "end": 0.2})
    cos = build_target({"kind": "cosine", "start": 0.8, "end": 0.2})
    for t in (lin, cos):
        assert t(0, K) == pytest.approx(0.8)
        assert t(K, K) == pytest.approx(0.2)
        assert t(2 * K, K) == pytest.approx(0.2)  # progress is clipped to [0, 1]
        assert t(K // 2, K) == pytest.approx(0.5)
    assert lin(K // 4, K) == pytest.approx(0.65)
    assert cos(K // 4, K) == pytest.approx(0.8 - 0.6 * (1 - math.cos(math.pi / 4)) / 2)


def test_step_switches_at_boundary_fractions():
    t = build_target({"kind": "step", "values": [0.6, 0.4, 0.3], "boundaries": [0.25, 0.5]})
    assert [t(k, K) for k in (0, 24, 25, 49, 50, 100)] == [0.6, 0.6, 0.4, 0.4, 0.3, 0.3]


def test_id_peak_and_endpoints():
    t = build_target({"kind": "id", "start": 0.2, "peak": 0.6, "end": 0.1, "phase_ratio": 0.4})
    assert t(0, K) == pytest.approx(0.2)
    assert t(40, K) == pytest.approx(0.6)
    assert t(20, K) == pytest.approx(0.4)
    assert t(70, K) == pytest.approx(0.35)
    assert t(K, K) == pytest.approx(0.1)
    assert max(t(k, K) for k in range(K + 1)) == pytest.approx(0.6)


def test_did_trough_peak_and_endpoints():
    spec = {"kind": "did", "start": 0.5, "trough": 0.2, "peak": 0.6, "end": 0.1}
    spec.update(trough_ratio=0.25, peak_ratio=0.75)
    t = build_target(spec)
    assert [t(k, K) for k in (0, 25, 50, 75, 100)] == pytest.approx([0.5, 0.2, 0.4, 0.6, 0.1])
    assert build_target(t.spec())(60, K) == t(60, K)


@pytest.mark.parametrize(
    "spec, words",
    [
        ({"kind": "lin", "start": 1, "end": 0}, "did you mean 'linear'"),
        ({"kind": "linear", "start": 1}, "'end'"),
        ({"kind": "linear", "start": 1, "end": 0, "stop": 2}, "unknown argument 'stop'"),
        ({"kind": "constant", "value": -0.1}, "value must lie in"),
        ({"kind": "step", "values": [0.5, 0.4], "boundaries": [0.5, 0.7]}, "one more value"),
        ({"kind": "step", "values": [0.5, 0.4, 0.3], "boundaries": [0.7, 0.5]}, "strictly increasing"),
        ({"kind": "step", "values": [0.5, 0.4], "boundaries": [50]}, "boundaries[0]"),
        ({"kind": "id", "start": 0.5, "peak": 0.4, "end": 0.1}, "peak"),
        ({"kind": "id", "start": 0.1, "peak": 0.4, "end": 0.1, "phase_ratio": 1.0}, "phase_ratio"),
        ({"kind": "did", "start": 0.5, "trough": 0.6, "peak": 0.7, "end": 0.1}, "trough ≤ start"),
        ("high", "a number or a mapping"),
    ],
)
def test_invalid_specs_raise_clear_errors(spec, words):
    with pytest.raises(ConfigError) as err:
        build_target(spec)
    assert words in str(err.value)
