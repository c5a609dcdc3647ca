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

from typing import Any, Mapping

from entrostat.control._common import (
    clip,
    measurement,
    number,
)
from entrostat.control.base import CONTROLLERS, Controller
from entrostat.control.targets import build_target


@CONTROLLERS.register("adaptive_entropy")
class AdaptiveEntropy(Controller):
    """Bang-bang-gated integral control of the entropy-bonus coefficient (actuator ``entropy_coef``)."""

    name = "adaptive_entropy"
    _STATE = ("coef", "active", "last_entropy", "last_target")

    def __init__(self, target: Any = 0.2, c0: float = 0.0, delta: float = 1e-4, c_max: float = 5e-3):
        what = "controller 'adaptive_entropy'"
        self.target = build_target(target)
        self.delta = number(delta, "delta", low=0.0, what=what)
        self.c_max = number(c_max, "c_max", low=0.0, what=what)
        self.coef = number(c0, "c0", low=0.0, high=self.c_max, what=what)
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
