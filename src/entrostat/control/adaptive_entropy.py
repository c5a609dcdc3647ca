"""Adaptive entropy coefficient (Skywork-OR1, arXiv 2505.22312; ALGORITHMS.md §2.5).

After each step: c ← clip(c + Δ, 0, c_max) when H < H*, clip(c − Δ, 0, c_max)
otherwise; the bonus for the next step is c while H < H* and 0 once H ≥ H*.
Defaults c₀ = 0, H* = 0.2, Δ = 1e-4, c_max = 5e-3 (the paper's).

Beyond the paper: H* may be a schedule (``targets.build_target``); the comparison
for the next step k = stats["step"] uses H*(k). Before the first update no
entropy has been measured and the value is c₀ (0 by default). A non-finite
entropy leaves the state untouched.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar, Mapping

from entrostat.config.base import doc
from entrostat.control._common import (
    clip,
    finite,
    measurement,
    require,
    require_target,
    typed_params,
)
from entrostat.control.base import CONTROLLERS, Controller
from entrostat.control.targets import build_target


@dataclass(frozen=True)
class AdaptiveEntropyParams:
    """Parameters of the adaptive entropy coefficient, ``control.kwargs``; defaults are Skywork-OR1's."""

    actuators: ClassVar[tuple[str, ...]] = ("entropy_coef",)

    target: float | dict = doc(0.2, "H*: a number or a schedule {kind: ..., ...} (control/targets.py); paper: 0.2")
    c0: float = doc(0.0, "c₀: the coefficient before the first update, in [0, c_max]; paper: 0")
    delta: float = doc(1e-4, "Δ: the coefficient's change per step; paper: 1e-4")
    c_max: float = doc(5e-3, "c_max: the coefficient's ceiling; paper: 5e-3")

    def validate(self, where: str = "") -> None:
        require_target(self.target, where)
        for name in ("delta", "c_max"):
            value = getattr(self, name)
            require(finite(value) and value >= 0.0, where, name, value, "must be a finite number ≥ 0")
        require(finite(self.c0) and 0.0 <= self.c0 <= self.c_max, where, "c0", self.c0,
                f"must lie in [0, c_max] = [0, {self.c_max}]")


@CONTROLLERS.register("adaptive_entropy")
class AdaptiveEntropy(Controller):
    """Bang-bang-gated integral control of the entropy-bonus coefficient (actuator ``entropy_coef``).

    Built from an ``AdaptiveEntropyParams``, or from its fields as keyword arguments (``build_controller``).
    """

    name = "adaptive_entropy"
    Params = AdaptiveEntropyParams
    _STATE = ("coef", "active", "last_entropy", "last_target")

    def __init__(self, params: AdaptiveEntropyParams | None = None, /, **kwargs: Any):
        self.params = p = typed_params(AdaptiveEntropyParams, params, kwargs)
        self.actuators = p.actuators
        self.target = build_target(p.target)
        self.delta, self.c_max, self.coef = float(p.delta), float(p.c_max), float(p.c0)
        self.active = 1  # 1 while H < H* (bonus applied); no measurement yet → apply c₀
        self.last_entropy = 0.0
        self.last_target = 0.0

    def value(self) -> dict[str, float]:
        return {"entropy_coef": self.coef if self.active else 0.0}

    def update(self, stats: Mapping[str, float]) -> None:
        got = measurement(stats, "entropy")
        if got is None:
            return
        step, total, entropy = got
        target = self.target(step, total)
        below = entropy < target
        self.coef = clip(self.coef + (self.delta if below else -self.delta), 0.0, self.c_max)
        self.active = int(below)
        self.last_entropy, self.last_target = entropy, target

    def signals(self) -> dict[str, float]:
        return {
            "target": self.last_target,
            "error": self.last_target - self.last_entropy,
            "coef": self.coef,
            "active": float(self.active),
        }
