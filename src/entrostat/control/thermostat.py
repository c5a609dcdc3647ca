"""The thermostat: a PI controller with anti-windup on any one actuator (ALGORITHMS.md §3; beyond the papers).

After each step, with H the measured entropy and H*(k) the target of the next step
k = stats["step"] (a constant or a schedule, ``targets.build_target``):

    e = (H*(k + L) − Ĥ) / H*(k + L)               normalised error, Ĥ = H + ΔH_pred
    I ← clamp(I + e, ±I_max)                       unless anti-windup or the approach hold holds it
    u = clip(u0 + d·(kp·e + ki·I − kd·S), u_min, u_max)   the actuator value for step k

d = +1 when raising the actuator raises entropy and −1 otherwise (``DEFAULTS``,
overridable with ``direction``). Anti-windup is conditional integration: the
integral is not advanced on a step where the output would saturate in the
direction the error pushes (d·e > 0 at u_max, d·e < 0 at u_min), plus the clamp
|I| ≤ I_max, I_max = R/ki by default so the integral alone can just reach either
bound. ``anti_windup=False`` turns both off (unless ``integral_limit`` is given):
a reference for comparisons only.

Integral rate limit (optional, ``integral_step`` b > 0, ours): each step the integral
advances by clamp(e, ±b) instead of e. A large error is mostly a transient — the start
of a run far from H*, or a step of the schedule — which the proportional term should
drive; integrating it in full winds the integral up to a value the steady state does
not need, and the entropy then overshoots for as long as it takes to unwind. Unlike
freezing the integral outside a band, a limited rate still lets a persistent large
error (a target the proportional term alone cannot reach) build the integral up.

Reference preview (optional, ``lead`` L ≥ 0 steps, ours): the error is taken against the
target L steps ahead. The policy answers a change of the actuator only over several
steps (Adam's momentum, the bonus acting through the weights), so a controller that
compares with today's target is late on every ramp and step of a schedule; with the
schedule known in advance it can start moving L steps early. A constant target is
unaffected; the logged ``target`` stays H*(k), the one the entropy is judged against.

Derivative on the measurement (optional, ``kd`` ≥ 0, ours): S is the least-squares
slope per step of the last W = ``slope_window`` measured entropies, divided by H*(k + L)
(0 until W have been measured). In the lab the entropy coefficient sets the *rate* at
which the entropy moves, so the plant integrates, and it answers with a lag of tens of
steps: a PI controller alone keeps raising the bonus until the entropy has already
turned, then overshoots (seed 2 at H* = 0.77: up to 1.07). −kd·S eases the actuator off
while the entropy is already moving toward the target — the damping a PI loop on an
integrating plant lacks. It reads the measurement, not the error, so a step of the
target gives no kick; the slope over W steps averages the per-step sampling noise.

Approach hold (optional, ``approach_horizon`` N steps, ours): until the error first
changes sign, the integral is held on every step where the entropy's trend (the slope of
the last W measurements, of all of them before W) would close the error within N steps
by itself. A step of the schedule — the target moving by more than ``REARM_STEP`` (5 %)
of itself in one step; a ramp moves far less — re-arms it: the entropy has a new
approach ahead of it. A run starts at the base entropy, far above most targets, and GRPO brings it
down on its own; integrating that transient winds the integral to a penalty the steady
state does not need (lab, H* = 0.48, seed 0, kd 4: −3.6 by step 50, then about 100 steps
below the target while it unwound; thought lab, a step of H* from 1.0 to 0.6: −3.8 by the
time the entropy got there, then 20 % below it). A trend too slow to get there in N steps —
a stall short of a target the proportional term cannot reach alone — still integrates.

Predictive term (optional, ``predict_gain`` g ≥ 0): ΔH_pred = −g·lr·covariance, the
first-order entropy change of the step just taken (Cui et al. 2505.22617, §2.1:
ΔH ≈ −η·Cov(logπ, A)), is added to the measured H so the controller reacts to the
entropy the next rollout is expected to have. g = 1 is the raw estimate for plain
natural policy gradient; under Adam the scale differs, so fit g on a run with the
§2.1 diagnostic (regress the measured ΔH on −lr·cov). A non-finite lr or covariance
makes ΔH_pred = 0; a non-finite entropy leaves the state untouched.

Default gains, per actuator, from the half-range R = max(u_max − u0, u0 − u_min):
kp = 0.5·R, ki = 0.1·R — a 10% entropy deficit moves the actuator 5% of R at once and
1% of R more for every step it persists. On the first-order test plant (entropy
relaxes 30% of the way to its set point per step, starting 40% below the target)
it comes within 1% of the target in ≈ 100 steps without overshoot
(tests/control/test_thermostat.py). Real runs need their own gains: the defaults
are a slow, safe start.

``signals()``: target, entropy, predicted_change, error, integral, slope, u and
saturated (1.0 when the output is clipped or the error pushes it past a bound).

Parameters: ``ThermostatParams`` (``control.kwargs``), validated when built.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Mapping

from entrostat.config.base import ConfigError, doc
from entrostat.control._common import (
    clip,
    finite,
    measurement,
    require,
    require_target,
    stat,
    typed_params,
    whole,
)
from entrostat.control.base import ACTUATORS, CONTROLLERS, Controller
from entrostat.control.targets import build_target
from entrostat.registry import unknown_name_message

KP_PER_RANGE, KI_PER_RANGE = 0.5, 0.1
REARM_STEP = 0.05  # a one-step move of the target by more than this fraction of it re-arms the approach hold


@dataclass(frozen=True)
class ActuatorDefaults:
    """Neutral value, range and sign of an actuator's effect on entropy."""

    u0: float
    u_min: float
    u_max: float
    direction: int


DEFAULTS: dict[str, ActuatorDefaults] = {
    "aux_temperature": ActuatorDefaults(1.0, 0.8, 1.2, +1),  # AEPO / SCOPE range
    "aux_alpha": ActuatorDefaults(1 / 64, 0.0, 1 / 16, +1),  # SCOPE α = 1/64 (hot positives raise H)
    "aux_keep_frac": ActuatorDefaults(0.5, 0.0, 1.0, +1),  # AEPO keeps more when raising (assumes T_aux > 1)
    "eps_low": ActuatorDefaults(0.2, 0.1, 0.4, -1),  # wider low bound: more push-down on A < 0 tokens
    "eps_high": ActuatorDefaults(0.2, 0.1, 0.4, +1),  # Clip-Higher 0.28 lies inside
    "flex_weight_high": ActuatorDefaults(0.5, 0.0, 1.0, +1),
    "flex_weight_low": ActuatorDefaults(0.5, 0.0, 1.0, -1),
    "beta1": ActuatorDefaults(0.5, 0.0, 1.0, -1),  # CE-GPPO: raising β₁ lowers entropy
    "beta2": ActuatorDefaults(1.0, 0.5, 1.5, +1),  # CE-GPPO: raising β₂ raises entropy
    "entropy_coef": ActuatorDefaults(0.0, 0.0, 5e-3, +1),  # Skywork-OR1 c_max
    "clip_cov_ratio": ActuatorDefaults(2e-4, 0.0, 2e-3, +1),  # Clip-Cov ρ
    "kl_cov_ratio": ActuatorDefaults(2e-3, 0.0, 2e-2, +1),  # KL-Cov k (≤ 7B models)
}


@dataclass(frozen=True)
class Resolved:
    """The numbers a ``ThermostatParams`` may leave to the actuator's defaults, filled in (``resolved()``)."""

    u0: float
    u_min: float
    u_max: float
    kp: float
    ki: float
    direction: int
    integral_limit: float
    integral_step: float


@dataclass(frozen=True)
class ThermostatParams:
    """The thermostat's parameters, ``control.kwargs`` (ALGORITHMS.md §3; the terms marked "ours" go beyond it).

    A null value takes the actuator's default (``DEFAULTS``, ``resolved``).
    """

    actuator: str | None = doc(None, "the actuator to drive (required): " + ", ".join(ACTUATORS))
    target: float | dict | None = doc(None, "H* (required): a number, or a schedule {kind: linear, start: .., end: ..} "
                                      "(kinds: constant, linear, cosine, step, id, did; control/targets.py)")
    kp: float | None = doc(None, "proportional gain on the normalised error (default 0.5 × the half-range R)")
    ki: float | None = doc(None, "integral gain (default 0.1 × R)")
    u0: float | None = doc(None, "the actuator's neutral value, and its value before the first update")
    u_min: float | None = doc(None, "lower bound of the actuator")
    u_max: float | None = doc(None, "upper bound of the actuator")
    direction: int | None = doc(None, "+1 when raising the actuator raises entropy, -1 when it lowers it")
    integral_limit: float | None = doc(None, "clamp |I| ≤ this (default R / ki with anti-windup, else none)")
    anti_windup: bool = doc(True, "conditional integration and the integral clamp; false only as a reference")
    predict_gain: float = doc(0.0, "g of the predictive term ΔH_pred = −g·lr·covariance (2505.22617 §2.1); 0 = off")
    lead: int = doc(0, "reference preview: compare with the target this many steps ahead (ours)")
    integral_step: float | None = doc(None, "integral rate limit b: advance I by clamp(e, ±b) per step; null = none")
    kd: float = doc(0.0, "gain of the derivative on the measured entropy's slope (ours); 0 = off")
    slope_window: int = doc(10, "W: measured entropies the slope is fitted over")
    approach_horizon: int | None = doc(None, "approach hold (ours): hold the integral while the trend closes the "
                                       "error within this many steps, until H first reaches H*; null = off")

    @property
    def actuators(self) -> tuple[str, ...]:
        return (str(self.actuator),)

    def resolved(self) -> Resolved:
        """The settings left to the actuator's defaults, filled in: range and sign from ``DEFAULTS``, gains from
        the half-range R = max(u_max − u0, u0 − u_min), I_max = R/ki (none without anti-windup or with ki = 0)."""
        d = DEFAULTS[str(self.actuator)]
        u_min = float(d.u_min if self.u_min is None else self.u_min)
        u_max = float(d.u_max if self.u_max is None else self.u_max)
        u0 = float(d.u0 if self.u0 is None else self.u0)
        half_range = max(u_max - u0, u0 - u_min)
        ki = float(KI_PER_RANGE * half_range if self.ki is None else self.ki)
        limit = self.integral_limit
        if limit is None:
            limit = half_range / ki if self.anti_windup and ki != 0.0 else math.inf
        return Resolved(
            u0=u0, u_min=u_min, u_max=u_max, ki=ki, integral_limit=float(limit),
            kp=float(KP_PER_RANGE * half_range if self.kp is None else self.kp),
            direction=d.direction if self.direction is None else self.direction,
            integral_step=math.inf if self.integral_step is None else float(self.integral_step),
        )

    def validate(self, where: str = "") -> None:
        at = f"{where}." if where else ""
        if self.actuator is None:
            raise ConfigError(f"{at}actuator is required: the knob to drive, one of {', '.join(ACTUATORS)}")
        if self.actuator not in ACTUATORS:
            raise ConfigError(f"{at}actuator: " + unknown_name_message("actuator", self.actuator, list(ACTUATORS)))
        require_target(self.target, where)
        for name in ("kp", "ki", "u0", "u_min", "u_max", "integral_limit", "predict_gain", "integral_step", "kd"):
            value = getattr(self, name)
            require(value is None or finite(value), where, name, value, "must be a finite number")
        r, d = self.resolved(), DEFAULTS[self.actuator]
        require(r.u_min < r.u_max, where, "u_min", r.u_min, f"must be below u_max = {r.u_max} "
                f"({self.actuator} defaults to [{d.u_min}, {d.u_max}])")
        require(r.u_min <= r.u0 <= r.u_max, where, "u0", r.u0, f"must lie in [u_min, u_max] = [{r.u_min}, {r.u_max}]")
        for name, value in (("kp", r.kp), ("ki", r.ki), ("integral_limit", r.integral_limit),
                            ("predict_gain", self.predict_gain), ("kd", self.kd)):
            require(value >= 0.0, where, name, value, "must be ≥ 0 (0 turns its term off)")
        require(r.direction in (1, -1) and not isinstance(r.direction, bool), where, "direction", r.direction,
                f"must be +1 (raising {self.actuator} raises entropy) or -1 (it lowers entropy)")
        require(r.integral_step > 0.0, where, "integral_step", self.integral_step,
                "must be > 0; leave it out (null) for no rate limit")
        require(whole(self.lead, 0), where, "lead", self.lead, "must be a whole number of steps ≥ 0 (0: no preview)")
        require(whole(self.slope_window, 2), where, "slope_window", self.slope_window,
                "must be a whole number of steps ≥ 2 (a slope needs two points)")
        require(self.approach_horizon is None or whole(self.approach_horizon, 1), where, "approach_horizon",
                self.approach_horizon, "must be a whole number of steps ≥ 1, or null for no approach hold")


def slope(values: list[float]) -> float:
    """Least-squares slope of ``values`` against their index (0 for fewer than two values)."""
    n = len(values)
    if n < 2:
        return 0.0
    mid, mean = (n - 1) / 2, sum(values) / n
    return sum((i - mid) * (v - mean) for i, v in enumerate(values)) / sum((i - mid) ** 2 for i in range(n))


@CONTROLLERS.register("thermostat")
class Thermostat(Controller):
    """PI control of ``actuator`` toward the entropy target, with anti-windup and an optional predictive term.

    Built from a ``ThermostatParams``, or from its fields as keyword arguments (``control.kwargs``, what
    ``build_controller`` passes).
    """

    name = "thermostat"
    Params = ThermostatParams
    _STATE = ("integral", "u", "saturated", "last_target", "last_error", "last_entropy", "last_predicted_change",
              "last_slope", "recent", "approaching")

    def __init__(self, params: ThermostatParams | None = None, /, **kwargs: Any):
        self.params = p = typed_params(ThermostatParams, params, kwargs)
        self.actuators = p.actuators
        r = p.resolved()
        self.actuator, self.target = str(p.actuator), build_target(p.target)
        self.u0, self.u_min, self.u_max, self.direction = r.u0, r.u_min, r.u_max, int(r.direction)
        self.kp, self.ki, self.kd, self.predict_gain = r.kp, r.ki, float(p.kd), float(p.predict_gain)
        self.integral_limit, self.integral_step, self.anti_windup = r.integral_limit, r.integral_step, p.anti_windup
        self.lead, self.slope_window = p.lead, p.slope_window
        self.approach_horizon = p.approach_horizon or 0  # 0: no hold
        self.approaching = int(p.approach_horizon is not None)  # 1 until the error changes sign; a target step re-arms
        self.integral, self.u, self.saturated = 0.0, self.u0, 0
        self.last_target = self.last_error = self.last_entropy = self.last_predicted_change = 0.0
        self.last_slope = 0.0
        self.recent: list[float] = []  # the last slope_window measured entropies

    def value(self) -> dict[str, float]:
        return {self.actuator: self.u}

    def predicted_change(self, stats: Mapping[str, float]) -> float:
        """ΔH_pred = −g·lr·covariance (0 when g = 0 or either statistic is not finite)."""
        if self.predict_gain == 0.0:
            return 0.0
        lr, cov = stat(stats, "lr"), stat(stats, "covariance")
        return -self.predict_gain * lr * cov if finite(lr) and finite(cov) else 0.0

    def update(self, stats: Mapping[str, float]) -> None:
        got = measurement(stats, "entropy")
        if got is None:
            return
        step, total, entropy = got
        target, ahead = self.target(step, total), self.target(step + self.lead, total)
        if min(target, ahead) <= 0.0:
            raise ValueError(f"the thermostat normalises by the target, which must be > 0; "
                             f"H*({step}) = {target}, H*({step + self.lead}) = {ahead}")
        change = self.predicted_change(stats)
        error = (ahead - (entropy + change)) / ahead
        self.recent = (self.recent + [entropy])[-self.slope_window:]
        trend = slope(self.recent) / ahead
        self.last_slope = trend if len(self.recent) == self.slope_window else 0.0
        if self.approach_horizon:
            before = self.target(max(step - 1, 0) + self.lead, total)
            if abs(ahead - before) > REARM_STEP * before:  # a step of the schedule: a new approach
                self.approaching = 1
            elif error * self.last_error < 0.0 or error == 0.0:  # the entropy has reached the target
                self.approaching = 0
        # while approaching, hold the integral when the trend closes the error within the horizon by itself
        hold = bool(self.approaching) and error * trend > 0.0 and self.approach_horizon * abs(trend) >= abs(error)
        self._advance(error, hold)
        self.last_target, self.last_error = target, error
        self.last_entropy, self.last_predicted_change = entropy, change

    def _output(self, error: float, integral: float) -> float:
        return self.u0 + self.direction * (self.kp * error + self.ki * integral - self.kd * self.last_slope)

    def _advance(self, error: float, hold: bool) -> None:
        """One PI step: conditional integration, integral rate limit and clamp, output clip."""
        integral = self.integral + (0.0 if hold else clip(error, -self.integral_step, self.integral_step))
        raw = self._output(error, integral)
        push = self.direction * error  # the way the error wants u to move
        pushing_out = (raw > self.u_max and push > 0) or (raw < self.u_min and push < 0)
        if self.anti_windup and pushing_out:
            integral = self.integral
        self.integral = clip(integral, -self.integral_limit, self.integral_limit)
        raw = self._output(error, self.integral)
        self.u = clip(raw, self.u_min, self.u_max)
        self.saturated = int(pushing_out or raw != self.u)

    def signals(self) -> dict[str, float]:
        return {
            "target": self.last_target,
            "entropy": self.last_entropy,
            "predicted_change": self.last_predicted_change,
            "error": self.last_error,
            "integral": self.integral,
            "slope": self.last_slope,
            "u": self.u,
            "saturated": float(self.saturated),
        }
