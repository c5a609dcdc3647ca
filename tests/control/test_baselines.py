"""AEPO, SCOPE-RL and the adaptive entropy coefficient (ALGORITHMS.md §2.2, §2.3, §2.5)."""

from __future__ import annotations

import pytest

from entrostat.config.base import ConfigError
from entrostat.control import build_controller


def stats(step, entropy, nll=None, total=100):
    nll = entropy if nll is None else nll
    return {"step": step, "total_steps": total, "entropy": entropy, "nll": nll, "covariance": 0.0, "lr": 1e-6}


HOT = {"aux_temperature": 1.2, "aux_keep_frac": 1.0}
COLD = {"aux_temperature": 0.8, "aux_keep_frac": 0.5}


def test_aepo_bang_bang():
    c = build_controller("aepo")  # H* = 0.5
    assert c.value() == HOT  # H_prev = 0 before the first step
    c.update(stats(1, 0.7))
    assert c.value() == COLD
    c.update(stats(2, 0.5))
    assert c.value() == HOT  # H_prev ≤ H*
    c.update(stats(3, 0.51))
    assert c.value() == COLD
    c.update(stats(4, float("nan")))
    assert c.value() == COLD


def test_aepo_nll_signal_and_schedule():
    ent, nll = build_controller("aepo", signal="entropy"), build_controller("aepo", signal="nll")
    for c in (ent, nll):
        c.update(stats(1, entropy=0.3, nll=0.9))
    assert ent.value() == HOT and nll.value() == COLD
    sched = build_controller("aepo", target={"kind": "step", "values": [0.5, 0.2], "boundaries": [0.5]})
    sched.update(stats(49, 0.3))
    assert sched.value() == HOT
    sched.update(stats(50, 0.3))  # next step 50 has H* = 0.2
    assert sched.value() == COLD
    with pytest.raises(ConfigError, match="signal = .logprob. must be one of entropy, nll"):
        build_controller("aepo", signal="logprob")


def test_scope_first_step_and_clipping():
    c = build_controller("scope_rl")  # H* = 0.5, α = 1/64
    assert c.value() == {"aux_temperature": 1.0, "aux_alpha": 1 / 64}
    c.update(stats(1, 0.4))
    assert c.value()["aux_temperature"] == pytest.approx(1.1)
    c.update(stats(2, 0.0))
    assert c.value()["aux_temperature"] == 1.2  # 1.5 clipped
    c.update(stats(3, 2.0))
    assert c.value()["aux_temperature"] == 0.8  # −0.5 clipped
    c.update(stats(4, 0.55))
    assert c.value() == pytest.approx({"aux_temperature": 0.95, "aux_alpha": 1 / 64})
    with pytest.raises(ConfigError, match="t_min = 1.05 must lie in"):
        build_controller("scope_rl", t_min=1.05)


def test_adaptive_coefficient_up_down_clamped():
    c = build_controller("adaptive_entropy", delta=1e-3, c_max=2.5e-3)  # H* = 0.2, c₀ = 0
    assert c.value() == {"entropy_coef": 0.0}
    c.update(stats(1, 0.1))
    assert c.value()["entropy_coef"] == pytest.approx(1e-3)
    c.update(stats(2, 0.1)), c.update(stats(3, 0.1))
    assert c.value()["entropy_coef"] == pytest.approx(2.5e-3)  # clamped at c_max
    c.update(stats(4, 0.3))
    assert c.value()["entropy_coef"] == 0.0  # H ≥ H*: no bonus
    assert c.coef == pytest.approx(1.5e-3)  # but the coefficient only stepped down
    c.update(stats(5, 0.2))
    assert c.value()["entropy_coef"] == 0.0 and c.coef == pytest.approx(0.5e-3)  # H = H* counts as "not below"
    c.update(stats(6, 0.5))
    c.update(stats(7, 0.5))
    assert c.coef == 0.0  # clamped at 0
    c.update(stats(8, 0.19))
    assert c.value()["entropy_coef"] == pytest.approx(1e-3)


def test_adaptive_defaults_match_paper():
    c = build_controller("adaptive_entropy")
    assert (c.coef, c.delta, c.c_max, c.target(0, 10)) == (0.0, 1e-4, 5e-3, 0.2)
    with pytest.raises(ConfigError, match="c0"):
        build_controller("adaptive_entropy", c0=1.0)
