"""Entropy targets H*(k): a constant or a schedule over the run (ALGORITHMS.md §3).

``build_target(spec)`` takes a number (a constant) or a mapping with ``kind`` and
that kind's parameters; every schedule is a function of the progress
f = k / K clipped to [0, 1] (k the 0-based step, K the total steps), so it does
not depend on the run length. Values are entropies, so they must be ≥ 0.

- ``constant`` (value): H* = value.
- ``linear`` (start, end): start + (end − start)·f.
- ``cosine`` (start, end): start + (end − start)·(1 − cos πf)/2.
- ``step`` (values, boundaries): values[i] with i = the number of boundaries ≤ f.
  Boundaries are fractions of the run in (0, 1), strictly increasing, one fewer
  than values; at a boundary the new value already applies.
- ``id`` (start, peak, end, phase_ratio = 0.5): linear start → peak on [0, r],
  then peak → end on [r, 1]; needs peak ≥ start and peak ≥ end.
- ``did`` (start, trough, peak, end, trough_ratio = 1/3, peak_ratio = 2/3): linear
  start → trough on [0, r₁], trough → peak on [r₁, r₂], peak → end on [r₂, 1];
  needs trough ≤ start, trough ≤ peak, end ≤ peak, r₁ < r₂.

``id`` / ``did`` are the entropy shapes named after the schedules of Flexible
Entropy Control (2602.09782); the paper gives no target curves, these piecewise
linear ones are ours.
"""

from __future__ import annotations

import math
from typing import Any, Callable, Sequence

from entrostat.config.base import ConfigError
from entrostat.control._common import call_checked, number
from entrostat.registry import Registry, unknown_name_message


class Target:
    """H*(step, total_steps) = ``at(f)`` with f = step / total_steps clipped to [0, 1]."""

    def __init__(self, kind: str, params: dict[str, Any], at: Callable[[float], float]):
        self.kind, self.params, self._at = kind, dict(params), at

    def __call__(self, step: int, total_steps: int) -> float:
        if total_steps < 1:
            raise ValueError(f"total_steps must be ≥ 1, got {total_steps}")
        return float(self._at(min(max(step / total_steps, 0.0), 1.0)))

    def spec(self) -> dict[str, Any]:
        """The mapping that ``build_target`` turns back into this target."""
        return {"kind": self.kind, **self.params}

    def __repr__(self) -> str:
        return f"Target({self.spec()!r})"


TARGETS: Registry[Callable[..., Target]] = Registry("target kind")


def build_target(spec: float | dict[str, Any] | Target) -> Target:
    """A Target from a number (constant), a mapping ``{kind: ..., <params>}``, or a Target (returned as is)."""
    if isinstance(spec, Target):
        return spec
    if isinstance(spec, (int, float)) and not isinstance(spec, bool):
        return constant(spec)
    if not isinstance(spec, dict):
        kinds = ", ".join(TARGETS)
        raise ConfigError(f"an entropy target is a number or a mapping with 'kind' (one of {kinds}); got {spec!r}")
    params = dict(spec)
    kind = params.pop("kind", None)
    if kind not in TARGETS:
        raise ConfigError(unknown_name_message("target kind", kind, TARGETS.names()))
    return call_checked(TARGETS.get(kind), params, f"target kind {kind!r}")


def _entropy(value: Any, name: str, kind: str) -> float:
    return number(value, name, low=0.0, what=f"target {kind!r}")


def _ratio(value: Any, name: str, kind: str) -> float:
    r = number(value, name, low=0.0, high=1.0, what=f"target {kind!r}")
    if not 0.0 < r < 1.0:
        raise ConfigError(f"target {kind!r}: {name} must lie strictly between 0 and 1, got {value!r}")
    return r


def _piecewise(xs: Sequence[float], ys: Sequence[float]) -> Callable[[float], float]:
    """Linear interpolation through the knots (xs increasing from 0 to 1)."""

    def at(f: float) -> float:
        for x0, x1, y0, y1 in zip(xs, xs[1:], ys, ys[1:]):
            if f <= x1:
                return y0 + (y1 - y0) * (f - x0) / (x1 - x0)
        return ys[-1]

    return at


@TARGETS.register("constant")
def constant(value: float) -> Target:
    v = _entropy(value, "value", "constant")
    return Target("constant", {"value": v}, lambda f: v)


@TARGETS.register("linear")
def linear(start: float, end: float) -> Target:
    a, b = _entropy(start, "start", "linear"), _entropy(end, "end", "linear")
    return Target("linear", {"start": a, "end": b}, _piecewise([0.0, 1.0], [a, b]))


@TARGETS.register("cosine")
def cosine(start: float, end: float) -> Target:
    a, b = _entropy(start, "start", "cosine"), _entropy(end, "end", "cosine")
    return Target("cosine", {"start": a, "end": b}, lambda f: a + (b - a) * (1.0 - math.cos(math.pi * f)) / 2.0)


@TARGETS.register("step")
def step(values: Sequence[float], boundaries: Sequence[float]) -> Target:
    if not isinstance(values, (list, tuple)) or not isinstance(boundaries, (list, tuple)):
        raise ConfigError(
            "target 'step': values and boundaries must be lists (for example values: [0.6, 0.4], boundaries: [0.5])"
        )
    vals = [_entropy(v, f"values[{i}]", "step") for i, v in enumerate(values)]
    bnds = [_ratio(b, f"boundaries[{i}]", "step") for i, b in enumerate(boundaries)]
    if len(vals) != len(bnds) + 1:
        raise ConfigError(
            f"target 'step': needs one more value than boundaries, got {len(vals)} values and {len(bnds)} boundaries"
        )
    if any(b1 <= b0 for b0, b1 in zip(bnds, bnds[1:])):
        raise ConfigError(f"target 'step': boundaries must be strictly increasing fractions of the run, got {bnds}")

    def at(f: float) -> float:
        return vals[sum(1 for b in bnds if f >= b)]

    return Target("step", {"values": vals, "boundaries": bnds}, at)


@TARGETS.register("id")
def increase_decrease(start: float, peak: float, end: float, phase_ratio: float = 0.5) -> Target:
    a, p, b = (_entropy(v, n, "id") for v, n in ((start, "start"), (peak, "peak"), (end, "end")))
    r = _ratio(phase_ratio, "phase_ratio", "id")
    if p < a or p < b:
        raise ConfigError(f"target 'id' rises then falls: peak ({p}) must be ≥ start ({a}) and ≥ end ({b})")
    params = {"start": a, "peak": p, "end": b, "phase_ratio": r}
    return Target("id", params, _piecewise([0.0, r, 1.0], [a, p, b]))


@TARGETS.register("did")
def decrease_increase_decrease(
    start: float, trough: float, peak: float, end: float, trough_ratio: float = 1 / 3, peak_ratio: float = 2 / 3
) -> Target:
    named = ((start, "start"), (trough, "trough"), (peak, "peak"), (end, "end"))
    a, lo, hi, b = (_entropy(v, n, "did") for v, n in named)
    r1, r2 = _ratio(trough_ratio, "trough_ratio", "did"), _ratio(peak_ratio, "peak_ratio", "did")
    if not r1 < r2:
        raise ConfigError(f"target 'did': trough_ratio ({r1}) must be < peak_ratio ({r2})")
    if not (lo <= a and lo <= hi and b <= hi):
        raise ConfigError(
            f"target 'did' falls, rises, falls: need trough ≤ start, trough ≤ peak, end ≤ peak; "
            f"got start={a}, trough={lo}, peak={hi}, end={b}"
        )
    params = {"start": a, "trough": lo, "peak": hi, "end": b, "trough_ratio": r1, "peak_ratio": r2}
    return Target("did", params, _piecewise([0.0, r1, r2, 1.0], [a, lo, hi, b]))
