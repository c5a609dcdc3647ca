"""Flexible Entropy Control schedules (control/flex.py, 2602.09782, ALGORITHMS.md §2.4).

The controllers' weights go through ``FlexBounds`` (the loss's blend) and the resulting
bounds are compared with the spec's formulas written out directly.
"""

from __future__ import annotations

import math

import pytest
import torch

from entrostat.control import build_controller, flex_lambda
from entrostat.losses.surrogates import FlexBounds

K = 100
EPS = 0.2
PROBS = torch.tensor([[0.01, 0.3, 0.6, 0.95]])


def stats(step, total=K, entropy=1.0):
    return {"step": step, "total_steps": total, "entropy": entropy, "nll": entropy, "covariance": 0.0, "lr": 1e-6}


def controller_at(name, k, **kw):
    """The controller's value for 0-based step k (after k completed steps)."""
    c = build_controller(name, **kw)
    if k > 0:
        c.update(stats(k))
    return c.value()


def blended(weights):
    """(E⁻, E⁺) from FlexBounds with the controller's weights, and the raw (M(p), H(p))."""
    fb = FlexBounds(weight_high=weights["flex_weight_high"], weight_low=weights["flex_weight_low"])
    e_low, e_high = fb.bounds(PROBS.log())
    return e_low, e_high, fb.b_low + fb.a_low * PROBS, fb.b_high + fb.a_high * PROBS


def spec_bounds(shape, k, h, m):
    """The spec's E⁺, E⁻ for ID / DID with λ_k = 1 − 2k/K, first half k < K/2."""
    lam = 1 - 2 * k / K
    eps = torch.full_like(h, EPS)
    if shape == "id":
        return (lam * h + (1 - lam) * EPS, eps) if k < K / 2 else (eps, (1 + lam) * m - lam * EPS)
    return (lam * EPS + (1 - lam) * h, eps) if k < K / 2 else (h, (1 + lam) * m - lam * EPS)


@pytest.mark.parametrize("shape", ["id", "did"])
@pytest.mark.parametrize("k", [0, K // 4, K // 2, 3 * K // 4, K])
def test_weights_reproduce_spec_formulas(shape, k):
    e_low, e_high, m, h = blended(controller_at(f"flex_{shape}", k))
    want_high, want_low = spec_bounds(shape, k, h, m)
    torch.testing.assert_close(e_high, want_high)
    torch.testing.assert_close(e_low, want_low)


def test_hand_values_at_phase_points():
    assert controller_at("flex_id", 0) == {"flex_weight_high": 1.0, "flex_weight_low": 0.0}
    assert controller_at("flex_id", K // 4) == {"flex_weight_high": 0.5, "flex_weight_low": 0.0}
    assert controller_at("flex_id", K // 2) == {"flex_weight_high": 0.0, "flex_weight_low": 1.0}
    assert controller_at("flex_id", K) == {"flex_weight_high": 0.0, "flex_weight_low": 0.0}
    assert controller_at("flex_did", 0) == {"flex_weight_high": 0.0, "flex_weight_low": 0.0}
    assert controller_at("flex_did", 3 * K // 4) == {"flex_weight_high": 1.0, "flex_weight_low": 0.5}


def test_phase_ratio_generalises_lambda():
    r = 0.3
    assert [flex_lambda(k, K, r) for k in (0, 15, 30, 65, 100)] == pytest.approx([1.0, 0.5, 0.0, -0.5, -1.0])
    assert all(math.isclose(flex_lambda(k, K), 1 - 2 * k / K, abs_tol=1e-12) for k in range(K + 1))
    first, second = controller_at("flex_id", 15, phase_ratio=r), controller_at("flex_id", 65, phase_ratio=r)
    assert first == pytest.approx({"flex_weight_high": 0.5, "flex_weight_low": 0.0})
    assert second == pytest.approx({"flex_weight_high": 0.0, "flex_weight_low": 0.5})


def od_feed(c, step, entropy):
    c.update(stats(step, entropy=entropy))
    return "boost" if c.value() == {"flex_weight_high": 1.0, "flex_weight_low": 0.0} else "suppress"


def test_od_hysteresis():
    c = build_controller("flex_od")
    assert c.value() == {"flex_weight_high": 0.0, "flex_weight_low": 1.0}  # starts in suppress
    assert od_feed(c, 1, 1.0) == "suppress"  # H_0 = 1, H_min = 0.2
    assert od_feed(c, 2, 0.5) == "suppress"  # between H_min and τ_high(2) = 0.984: keep
    assert od_feed(c, 3, 0.2) == "boost"  # H ≤ H_min
    assert od_feed(c, 4, 0.5) == "boost"  # between: keep
    assert od_feed(c, 5, float("nan")) == "boost"  # ignored
    assert od_feed(c, 50, 0.59) == "boost"  # τ_high(50) = 0.6: keep
    assert od_feed(c, 50, 0.61) == "suppress"  # H > τ_high(50)
    assert od_feed(c, 51, 0.55) == "suppress"  # τ_high(51) = 0.592: keep
    assert c.signals()["h_min"] == pytest.approx(0.2) and c.signals()["tau_high"] == pytest.approx(0.592)


def test_od_floor_frac():
    c = build_controller("flex_od", floor_frac=0.5)
    od_feed(c, 1, 2.0)
    assert od_feed(c, 2, 1.01) == "suppress" and od_feed(c, 3, 1.0) == "boost"
