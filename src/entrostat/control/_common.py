"""Small helpers shared by the controllers and target schedules: checked construction, stats, validation."""

from __future__ import annotations

import difflib
import inspect
import math
from typing import Any, Callable, Mapping

from entrostat.config.base import ConfigError


def call_checked(factory: Callable[..., Any], kwargs: Mapping[str, Any], what: str) -> Any:
    """``factory(**kwargs)``, but unknown or missing arguments raise a ConfigError naming the valid ones."""
    params = [
        p for p in inspect.signature(factory).parameters.values()
        if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)
    ]
    valid = [p.name for p in params]
    takes_any = any(p.kind is p.VAR_KEYWORD for p in inspect.signature(factory).parameters.values())
    for key in kwargs:
        if key not in valid and not takes_any:
            close = difflib.get_close_matches(str(key), valid, n=1)
            hint = f"; did you mean {close[0]!r}?" if close else ""
            raise ConfigError(f"{what} got an unknown argument {key!r}{hint} Valid arguments: {', '.join(valid)}")
    missing = [p.name for p in params if p.default is p.empty and p.name not in kwargs]
    if missing:
        needed = ", ".join(map(repr, missing))
        raise ConfigError(f"{what} needs argument(s) {needed}. Valid arguments: {', '.join(valid)}")
    return factory(**kwargs)


def stat(stats: Mapping[str, float], key: str) -> float:
    """``stats[key]`` as a float; a missing key raises a KeyError that says what the trainer must pass."""
    try:
        return float(stats[key])
    except KeyError:
        raise KeyError(
            f"controller stats lack {key!r}; the trainer must pass step, total_steps, entropy, nll, covariance "
            f"and lr every step (got: {', '.join(sorted(stats))})"
        ) from None


def step_counts(stats: Mapping[str, float]) -> tuple[int, int]:
    """(completed steps s ≥ 1, total steps K ≥ 1) from the stats, validated."""
    step, total = stat(stats, "step"), stat(stats, "total_steps")
    if step < 1 or not float(step).is_integer():
        raise ValueError(f"stats['step'] must be the number of completed steps (an integer ≥ 1), got {step}")
    if total < 1 or not float(total).is_integer():
        raise ValueError(f"stats['total_steps'] must be an integer ≥ 1, got {total}")
    return int(step), int(total)


def measurement(stats: Mapping[str, float], key: str) -> tuple[int, int, float] | None:
    """(step, total_steps, stats[key]) of a step's stats, or None when the measurement is not
    finite — every closed-loop controller then leaves its state untouched."""
    step, total = step_counts(stats)
    value = stat(stats, key)
    return (step, total, value) if finite(value) else None


def finite(x: float) -> bool:
    return isinstance(x, (int, float)) and math.isfinite(x)


def number(value: Any, name: str, *, low: float = -math.inf, high: float = math.inf, what: str = "") -> float:
    """``value`` as a finite float in [low, high], else a ConfigError naming ``name``."""
    where = f"{what}: " if what else ""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise ConfigError(f"{where}{name} must be a finite number, got {value!r}")
    if not low <= value <= high:
        raise ConfigError(f"{where}{name} must lie in [{low}, {high}], got {value!r}")
    return float(value)


def steps(value: Any, name: str, *, low: int = 0, what: str = "") -> int:
    """``value`` as a whole number of steps ≥ ``low``, else a ConfigError naming ``name``."""
    if isinstance(value, bool) or not isinstance(value, int) or value < low:
        where = f"{what}: " if what else ""
        raise ConfigError(f"{where}{name} must be a whole number of steps ≥ {low}, got {value!r}")
    return value


def choice(value: Any, name: str, options: tuple[str, ...], what: str = "") -> str:
    where = f"{what}: " if what else ""
    if value not in options:
        raise ConfigError(f"{where}{name} must be one of {', '.join(options)}; got {value!r}")
    return str(value)


def clip(x: float, low: float, high: float) -> float:
    return min(max(x, low), high)
