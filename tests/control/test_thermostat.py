"""The PI thermostat (control/thermostat.py) on a simulated first-order entropy plant.

Plant: the rollout of step k measures H_k, then the update moves the policy
H_{k+1} = H_k + a·(f(u_k) − d_k − H_k) with f monotone in the actuator u and d_k a disturbance.
"""

from __future__ import annotations

import pytest

from entrostat.config.base import ConfigError
from entrostat.control import ACTUATORS, build_controller, tracking_metrics
from entrostat.control.thermostat import DEFAULTS, slope


def stats(step, total, entropy, covariance=0.0, lr=1e-6):
    return {"step": step, "total_steps": total, "entropy": entropy, "nll": entropy, "covariance": covariance, "lr": lr}


def simulate(ctrl, steps, h0=0.3, a=0.3, f=lambda u: 0.4 + (u - 1.0), disturbance=lambda k: 0.0):
    """(entropies, targets, actuator values) per step; the controller sees each step's measured H."""
    h, hs, ts, us = h0, [], [], []
    for k in range(steps):
        u = ctrl.value()[ctrl.actuator]
        hs.append(h), ts.append(ctrl.target(k, steps)), us.append(u)
        measured, h = h, h + a * (f(u) - disturbance(k) - h)
        ctrl.update(stats(k + 1, steps, measured))
    return hs, ts, us


def test_defaults_cover_every_actuator_with_u0_in_range():
    assert set(DEFAULTS) == set(ACTUATORS)
    for name, d in DEFAULTS.items():
        assert d.u_min <= d.u0 <= d.u_max and d.u_min < d.u_max and d.direction in (1, -1), name
    assert DEFAULTS["aux_temperature"].u0 == 1.0
    assert DEFAULTS["beta1"].direction == -1 and DEFAULTS["beta2"].direction == 1


def test_first_value_is_u0():
    c = build_controller("thermostat", actuator="aux_temperature", target=0.5)
    assert c.value() == {"aux_temperature": 1.0}
    assert c.kp == pytest.approx(0.1) and c.ki == pytest.approx(0.02)  # 0.5·R and 0.1·R with R = 0.2


def test_step_response_converges_with_default_gains():
    c = build_controller("thermostat", actuator="aux_temperature", target=0.5)
    hs, ts, us = simulate(c, 300)
    m = tracking_metrics(hs, ts)
    assert m["tracking_error"] < 0.01
    assert m["overshoot"] < 0.02
    assert us[-1] == pytest.approx(1.1, abs=0.01)  # f(1.1) = 0.5


def test_negative_direction_actuator_tracks_a_schedule():
    # raising β₁ lowers entropy: f(β₁) = 0.7 − 0.6·β₁ reaches [0.1, 0.7] over the default range [0, 1]
    c = build_controller("thermostat", actuator="beta1", target={"kind": "linear", "start": 0.45, "end": 0.3})
    hs, ts, _ = simulate(c, 400, h0=0.6, f=lambda u: 0.7 - 0.6 * u)
    assert tracking_metrics(hs, ts)["tracking_error"] < 0.02


def test_lead_previews_a_step_of_the_target():
    # A step down of H* at k = 100 on a slow plant (a = 0.1): with a 10-step preview the controller starts
    # lowering before the step, so the error after it is smaller; before the step it already leaves the old target.
    target = {"kind": "step", "values": [0.6, 0.35], "boundaries": [0.5]}
    runs = {}
    for lead in (0, 10):
        c = build_controller("thermostat", actuator="aux_temperature", target=target, kp=0.5, ki=0.05, lead=lead)
        runs[lead] = simulate(c, 200, h0=0.6, a=0.1, f=lambda u: 0.6 + 1.5 * (u - 1.0))
    late = {lead: tracking_metrics(hs, ts)["tracking_error"] for lead, (hs, ts, _) in runs.items()}
    assert late[10] < 0.7 * late[0]
    assert runs[10][0][99] < runs[0][0][99] - 0.02  # already moving down before the step
    c = build_controller("thermostat", actuator="aux_temperature", target=0.5, lead=7)
    c.update(stats(1, 10, 0.4))
    assert c.signals()["target"] == 0.5 and c.last_error == pytest.approx(0.2)  # a constant target: no change


def test_saturation_holds_the_integral():
    """Target 0.9 against a constant measured 0.3: u saturates at u_max and the integral stops growing."""
    held, wound = (
        build_controller("thermostat", actuator="aux_temperature", target=0.9, anti_windup=aw) for aw in (True, False)
    )
    for c in (held, wound):
        for k in range(30):
            c.update(stats(k + 1, 100, 0.3))
    assert held.value()["aux_temperature"] == 1.2 and held.signals()["saturated"] == 1.0
    integral = held.integral
    for k in range(30, 60):
        held.update(stats(k + 1, 100, 0.3))
        wound.update(stats(k + 1, 100, 0.3))
    assert held.integral == integral < 10.0  # just enough to reach u_max: 1 + 0.1·(2/3) + 0.02·I ≥ 1.2
    assert wound.integral == pytest.approx(60 * 2 / 3)


def test_integral_clamp():
    c = build_controller(
        "thermostat", actuator="aux_temperature", target=0.5, kp=0.0, ki=0.02, integral_limit=2.0, u_max=5.0
    )
    for k in range(50):
        c.update(stats(k + 1, 100, 0.1))
    assert c.integral == 2.0 and c.value()["aux_temperature"] == pytest.approx(1.0 + 0.02 * 2.0)


def test_integral_step_limits_windup_from_a_far_start():
    """Start at 3 × the target on a slow plant (a = 0.05): the full error winds the integral far negative."""
    runs = {}
    for limit in (None, 0.1):
        c = build_controller("thermostat", actuator="entropy_coef", target=0.3, u_min=-0.5, u_max=0.5,
                             kp=0.2, ki=0.04, integral_step=limit)
        hs, ts, _ = simulate(c, 200, h0=0.9, a=0.05, f=lambda u: 0.3 + 0.5 * (u - 0.1))
        runs[limit] = tracking_metrics(hs, ts)
    assert runs[None]["overshoot"] > 0.4  # measured 0.43: the entropy dips to 0.17
    assert runs[0.1]["overshoot"] < 0.2  # measured 0.18
    assert runs[0.1]["tracking_error"] < runs[None]["tracking_error"]


def test_integral_step_still_integrates_a_persistent_error():
    c = build_controller("thermostat", actuator="aux_temperature", target=0.5, kp=0.0, ki=0.001,
                         integral_step=0.25, u_max=5.0)
    for k in range(40):
        c.update(stats(k + 1, 100, 0.1))  # e = 0.8 every step, far outside the limit
    assert c.integral == pytest.approx(40 * 0.25)


def test_anti_windup_limits_recovery_overshoot():
    """The plant cannot reach the target for 100 steps (disturbance), then it can."""
    runs = {}
    for anti_windup in (True, False):
        c = build_controller("thermostat", actuator="aux_temperature", target=0.5, anti_windup=anti_windup)
        hs, ts, _ = simulate(c, 300, disturbance=lambda k: 0.3 if k < 100 else 0.0)
        runs[anti_windup] = tracking_metrics(hs[100:], ts[100:])
    with_aw, windup = runs[True], runs[False]
    assert windup["overshoot"] > 0.15  # sits at f(u_max) = 0.6 for a long time
    assert with_aw["overshoot"] < 0.5 * windup["overshoot"]
    assert with_aw["tracking_error"] < 0.1 * windup["tracking_error"]


@pytest.mark.parametrize("actuator, sign", [("aux_temperature", 1), ("beta1", -1)])
def test_predictive_term_anticipates_the_covariance(actuator, sign):
    """Positive covariance predicts falling entropy (ΔH ≈ −η·Cov): the controller pushes entropy up earlier."""
    plain = build_controller("thermostat", actuator=actuator, target=0.5)
    pred = build_controller("thermostat", actuator=actuator, target=0.5, predict_gain=1e4)
    ignored = build_controller("thermostat", actuator=actuator, target=0.5, predict_gain=1e4)
    s = stats(1, 100, 0.5, covariance=5.0, lr=1e-6)  # ΔH_pred = −1e4·1e-6·5 = −0.05
    plain.update(s), pred.update(s), ignored.update({**s, "covariance": float("nan")})
    assert pred.signals()["predicted_change"] == pytest.approx(-0.05)
    assert pred.signals()["error"] == pytest.approx(0.1)
    assert sign * (pred.value()[actuator] - plain.value()[actuator]) > 0
    assert ignored.value() == plain.value()
    neg = build_controller("thermostat", actuator=actuator, target=0.5, predict_gain=1e4)
    neg.update({**s, "covariance": -5.0})
    assert sign * (neg.value()[actuator] - plain.value()[actuator]) < 0


def test_nonpositive_target_is_refused_when_reached():
    c = build_controller("thermostat", actuator="eps_high", target=0.0)
    with pytest.raises(ValueError, match="must be > 0"):
        c.update(stats(1, 10, 0.3))
    # the parameters' own checks: tests/control/test_params.py


def integrating_plant(ctrl, steps=300, h0=0.3, gain=0.2, delay=5):
    """H_{k+1} = H_k + gain·(u_{k−delay} − 1): the actuator sets the *rate* of change, and with a lag (the lab's
    entropy coefficient under Adam). Returns (entropies, targets)."""
    h, hs, ts, us = h0, [], [], []
    for k in range(steps):
        us.append(ctrl.value()[ctrl.actuator]), hs.append(h), ts.append(ctrl.target(k, steps))
        measured, h = h, h + gain * (us[max(0, k - delay)] - 1.0)
        ctrl.update(stats(k + 1, steps, measured))
    return hs, ts


def test_slope_is_the_least_squares_trend():
    assert slope([]) == slope([0.7]) == 0.0
    assert slope([1.0, 1.5, 2.0, 2.5]) == pytest.approx(0.5)
    assert slope([0.0, 1.0, 0.0, 1.0]) == pytest.approx(0.2)


def test_kd_damps_an_integrating_plant_with_lag():
    runs = {}
    for kd in (0.0, 2.0):
        c = build_controller("thermostat", actuator="aux_temperature", target=0.5, kp=0.2, ki=0.02, kd=kd,
                             slope_window=5)
        runs[kd] = tracking_metrics(*integrating_plant(c))
    assert runs[2.0]["overshoot"] < 0.7 * runs[0.0]["overshoot"]
    assert runs[2.0]["oscillation"] < 0.5 * runs[0.0]["oscillation"]
    assert runs[2.0]["tracking_error"] < runs[0.0]["tracking_error"]


def test_kd_reads_the_slope_of_a_full_window_normalised_by_the_target():
    c = build_controller("thermostat", actuator="aux_temperature", target=0.5, kp=0.0, ki=0.0, kd=1.0, slope_window=3)
    c.update(stats(1, 100, 0.30)), c.update(stats(2, 100, 0.32))
    assert c.signals()["slope"] == 0.0 and c.value()["aux_temperature"] == 1.0  # window not yet full
    c.update(stats(3, 100, 0.34))
    assert c.signals()["slope"] == pytest.approx(0.04)  # 0.02 nats per step / H* 0.5
    assert c.value()["aux_temperature"] == pytest.approx(1.0 - 0.04)  # rising entropy eases the actuator off
    for bad in (1, 2.5, True):
        with pytest.raises(ConfigError, match="slope_window"):
            build_controller("thermostat", actuator="aux_temperature", target=0.5, slope_window=bad)
    with pytest.raises(ConfigError, match="kd"):
        build_controller("thermostat", actuator="aux_temperature", target=0.5, kd=-1.0)


def test_approach_horizon_holds_the_integral_on_the_first_fall():
    # A plant that falls from 0.9 through the target 0.5 on its own (its P-equilibrium lies below): integrating
    # that fall winds the integral down, and the entropy then dips further below the target.
    dips = {}
    for horizon in (None, 50):
        c = build_controller("thermostat", actuator="aux_temperature", target=0.5, kp=0.1, ki=0.02, integral_step=0.2,
                             slope_window=5, approach_horizon=horizon)
        hs, ts, _ = simulate(c, 300, h0=0.9, a=0.05)
        dips[horizon] = 0.5 - min(hs)
        assert tracking_metrics(hs, ts)["tracking_error"] < 0.01
        assert c.approaching == 0  # the target was reached: integrating as usual
    assert dips[50] < 0.7 * dips[None]


def test_a_step_of_the_target_re_arms_the_approach_hold():
    # Integrating plant that starts at the first level; after the step the entropy has a new fall ahead of it.
    step = {"kind": "step", "values": [0.8, 0.5], "boundaries": [0.5]}
    dips = {}
    for horizon in (None, 50):
        c = build_controller("thermostat", actuator="aux_temperature", target=step, kp=0.1, ki=0.01, kd=1.0,
                             slope_window=5, integral_step=0.05, approach_horizon=horizon)
        hs, _ = integrating_plant(c, steps=400, h0=0.8)
        dips[horizon] = 0.5 - min(hs[200:])
    assert dips[50] < 0.5 * dips[None]
    c = build_controller("thermostat", actuator="aux_temperature", target=step, approach_horizon=50)
    c.update(stats(1, 100, 0.9)), c.update(stats(2, 100, 0.7))  # crossed the first level
    assert c.approaching == 0
    c.update(stats(49, 100, 0.8))  # the next step's target is still 0.8
    assert c.approaching == 0
    c.update(stats(50, 100, 0.8))  # now 0.5: a step of the schedule
    assert c.approaching == 1
    ramp = build_controller("thermostat", actuator="aux_temperature", target={"kind": "linear", "start": 0.8,
                            "end": 0.4}, approach_horizon=50)
    for k, h in enumerate((0.9, 0.7, 0.9, 0.7), start=1):
        ramp.update(stats(k, 100, h))
    assert ramp.approaching == 0  # a ramp's small moves do not re-arm it


def test_approach_horizon_still_integrates_a_stall():
    # From below, P alone settles short of the target (0.448); the trend fades, so the integral takes over.
    for horizon in (1, 50):
        c = build_controller("thermostat", actuator="aux_temperature", target=0.5, kp=0.1, ki=0.02,
                             approach_horizon=horizon)
        hs, ts, _ = simulate(c, 400, h0=0.2, a=0.3)
        assert tracking_metrics(hs, ts)["tracking_error"] < 0.01 and abs(hs[-1] - 0.5) < 0.005
    for bad in (0, -3, 2.5, True):
        with pytest.raises(ConfigError, match="approach_horizon"):
            build_controller("thermostat", actuator="aux_temperature", target=0.5, approach_horizon=bad)
