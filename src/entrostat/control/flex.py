"""Schedules over ``flex_clip`` bounds (Flexible Entropy Control, arXiv 2602.09782; ALGORITHMS.md §2.4).

``flex_clip`` blends each bound with the standard ε (``losses.surrogates.FlexBounds``):
E⁺ = w_h·H(p) + (1 − w_h)·ε_std and E⁻ = w_l·M(p) + (1 − w_l)·ε_std, with H(p) = ε⁺(p)
and M(p) = ε⁻(p). These controllers output (``flex_weight_high``, ``flex_weight_low``)
= (w_h, w_l) chosen so that the blend equals the spec's formulas exactly.

λ_k goes 1 → 0 linearly over the first phase (k < r·K) and 0 → −1 over the second
(k ≥ r·K); with r = 0.5 this is the paper's λ_k = 1 − 2k/K. Matching coefficients:

- ID, first phase:  E⁺ = λ·H + (1−λ)·ε_std, E⁻ = ε_std          → (w_h, w_l) = (λ, 0)
- ID, second phase: E⁺ = ε_std, E⁻ = (1+λ)·M − λ·ε_std          → (w_h, w_l) = (0, 1 + λ)
- DID, first phase: E⁺ = λ·ε_std + (1−λ)·H, E⁻ = ε_std          → (w_h, w_l) = (1 − λ, 0)
- DID, second phase: E⁺ = H, E⁻ = (1+λ)·M − λ·ε_std             → (w_h, w_l) = (1, 1 + λ)
- OD: boost (E⁺, E⁻) = (H, ε_std) → (1, 0); suppress (ε_std, M) → (0, 1).

Step index: after ``update`` with ``stats["step"] = s`` the value is for the 0-based
step k = s (before any update, k = 0); the step k = r·K itself belongs to the second
phase. OD compares the entropy measured at step s − 1 with H_min and τ_high(k) at
k = s: τ_high(k) = H_min + (H_0 − H_min)(1 − k/K), H_min = floor_frac·H_0, H_0 the
first measured entropy; it starts in "suppress" and a non-finite entropy is ignored.

Parameters: ``FlexScheduleParams`` (ID, DID) and ``FlexODParams`` (``control.kwargs``).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

from entrostat.config.base import doc
from entrostat.control._common import finite, measurement, require, step_counts, typed_params
from entrostat.control.base import CONTROLLERS, Controller

# The two settings every schedule blends between, as (w_h, w_l): boost (E⁺, E⁻) = (H, ε_std), suppress (ε_std, M).
MODE_WEIGHTS = {"boost": (1.0, 0.0), "suppress": (0.0, 1.0)}
WEIGHTS = ("flex_weight_high", "flex_weight_low")  # the actuators of every schedule here, in value() order


def flex_lambda(step: int, total_steps: int, phase_ratio: float = 0.5) -> float:
    """λ_k: 1 → 0 over the first phase [0, r·K), 0 → −1 over the second [r·K, K].

    2602.09782 gives λ_k = 1 − 2k/K (r = 0.5); the phase ratio r is its generalisation.
    """
    f = min(max(step / total_steps, 0.0), 1.0)
    if f < phase_ratio:
        return 1.0 - f / phase_ratio
    return -(f - phase_ratio) / (1.0 - phase_ratio)


def flex_weights(shape: str, step: int, total_steps: int, phase_ratio: float = 0.5) -> tuple[float, float]:
    """(w_h, w_l) of the open-loop schedule ``shape`` ('id' or 'did') at 0-based step k of K."""
    lam = flex_lambda(step, total_steps, phase_ratio)
    first = step / total_steps < phase_ratio
    if shape == "id":
        return (lam, 0.0) if first else (0.0, 1.0 + lam)
    if shape == "did":
        return (1.0 - lam, 0.0) if first else (1.0, 1.0 + lam)
    raise ValueError(f"flex schedule shape must be 'id' or 'did', got {shape!r}")


@dataclass(frozen=True)
class FlexScheduleParams:
    """Parameters of the open-loop schedules ID and DID, ``control.kwargs`` (2602.09782)."""

    actuators: ClassVar[tuple[str, ...]] = WEIGHTS

    phase_ratio: float = doc(0.5, "r: the first phase is the steps k < r·K; paper: 0.5 (best of 0.3–0.6)")

    def validate(self, where: str = "") -> None:
        require(finite(self.phase_ratio) and 0.0 < self.phase_ratio < 1.0, where, "phase_ratio", self.phase_ratio,
                "must lie strictly between 0 and 1 (the paper's λ_k = 1 − 2k/K is 0.5)")


class FlexSchedule(Controller):
    """Open-loop ID or DID schedule of the flex_clip blend weights (subclasses set ``name`` and ``shape``).

    Built from a ``FlexScheduleParams``, or from its fields as keyword arguments (``build_controller``).
    """

    shape: str
    Params = FlexScheduleParams
    _STATE = ("next_step", "total_steps")

    def __init__(self, params: FlexScheduleParams | None = None, /, **kwargs: Any):
        self.params = p = typed_params(FlexScheduleParams, params, kwargs)
        self.actuators = p.actuators
        self.phase_ratio = float(p.phase_ratio)
        self.next_step, self.total_steps = 0, 1  # k = 0: λ = 1 whatever K is

    def value(self) -> dict[str, float]:
        w_h, w_l = flex_weights(self.shape, self.next_step, self.total_steps, self.phase_ratio)
        return {"flex_weight_high": w_h, "flex_weight_low": w_l}

    def update(self, stats: Mapping[str, float]) -> None:
        self.next_step, self.total_steps = step_counts(stats)

    def signals(self) -> dict[str, float]:
        lam = flex_lambda(self.next_step, self.total_steps, self.phase_ratio)
        return {"lambda": lam, **self.value()}


@CONTROLLERS.register("flex_id")
class FlexID(FlexSchedule):
    """ID: wide upper bound fading to ε_std, then wide lower bound fading to ε_std."""

    name, shape = "flex_id", "id"


@CONTROLLERS.register("flex_did")
class FlexDID(FlexSchedule):
    """DID: upper bound widening from ε_std to H(p), then held while the lower bound fades from M(p)."""

    name, shape = "flex_did", "did"


@dataclass(frozen=True)
class FlexODParams:
    """Parameters of the closed-loop OD schedule, ``control.kwargs`` (2602.09782)."""

    actuators: ClassVar[tuple[str, ...]] = WEIGHTS

    floor_frac: float = doc(0.2, "H_min = floor_frac × H_0, the first measured entropy; paper: 0.2")

    def validate(self, where: str = "") -> None:
        require(finite(self.floor_frac) and 0.0 <= self.floor_frac <= 1.0, where, "floor_frac", self.floor_frac,
                "must lie in [0, 1]: H_min is this fraction of the first measured entropy")


@CONTROLLERS.register("flex_od")
class FlexOD(Controller):
    """OD (oscillatory decay): closed-loop hysteresis between "boost" and "suppress".

    Built from a ``FlexODParams``, or from its fields as keyword arguments (``build_controller``).
    """

    name = "flex_od"
    Params = FlexODParams
    _STATE = ("mode", "h0", "started", "last_entropy", "last_tau")

    def __init__(self, params: FlexODParams | None = None, /, **kwargs: Any):
        self.params = p = typed_params(FlexODParams, params, kwargs)
        self.actuators = p.actuators
        self.floor_frac = float(p.floor_frac)
        self.mode = "suppress"
        self.h0, self.started = 0.0, 0
        self.last_entropy, self.last_tau = 0.0, 0.0

    def value(self) -> dict[str, float]:
        w_h, w_l = MODE_WEIGHTS[self.mode]
        return {"flex_weight_high": w_h, "flex_weight_low": w_l}

    def tau_high(self, step: int, total_steps: int) -> float:
        """τ_high(k) = H_min + (H_0 − H_min)(1 − k/K)."""
        h_min = self.floor_frac * self.h0
        return h_min + (self.h0 - h_min) * (1.0 - min(step / total_steps, 1.0))

    def update(self, stats: Mapping[str, float]) -> None:
        got = measurement(stats, "entropy")
        if got is None:
            return
        step, total, entropy = got
        if not self.started:
            self.h0, self.started = entropy, 1
        tau = self.tau_high(step, total)
        if entropy <= self.floor_frac * self.h0:
            self.mode = "boost"
        elif entropy > tau:
            self.mode = "suppress"
        self.last_entropy, self.last_tau = entropy, tau

    def signals(self) -> dict[str, float]:
        return {
            "h0": self.h0,
            "h_min": self.floor_frac * self.h0,
            "tau_high": self.last_tau,
            "boost": float(self.mode == "boost"),
        }
