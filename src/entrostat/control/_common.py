"""Small helpers shared by the controllers and target schedules: typed parameters, checked construction, stats,
validation."""

from __future__ import annotations

import difflib
import inspect
import math
from typing import Any, Callable, Mapping, TypeVar

from entrostat.config.base import ConfigError, from_dict

P = TypeVar("P")
KWARGS_WHERE = "control.kwargs"  # where a controller's keyword arguments live in the run config


def typed_params(cls: type[P], params: P | None, kwargs: Mapping[str, Any]) -> P:
    """A controller's validated parameters: ``params`` as given, or the ``cls`` built from keyword arguments.

    Keyword arguments (``control.kwargs``; what ``build_controller`` passes) go through ``from_dict``: an
    unknown key gets a did-you-mean, a wrong type a ConfigError naming ``control.kwargs.<key>``, and the
    result is validated there. A params object built in Python is validated here, its errors named after it.
    """
    if params is None:
        return from_dict(cls, dict(kwargs), KWARGS_WHERE)
    if kwargs:
        raise TypeError(f"pass either a {cls.__name__} or keyword arguments, not both (got {', '.join(kwargs)})")
    if not isinstance(params, cls):
        raise TypeError(f"expected a {cls.__name__}, got {type(params).__name__}")
    params.validate(cls.__name__)  # type: ignore[attr-defined]
    return params


def require(ok: bool, where: str, name: str, value: Any, rule: str) -> None:
    """A ConfigError '<where>.<name> = <value> <rule>' unless ``ok``; ``rule`` says what to write instead."""
    if not ok:
        at = f"{where}." if where else ""
        raise ConfigError(f"{at}{name} = {value!r} {rule}")


def require_target(spec: Any, where: str) -> None:
    """A ConfigError naming ``<where>.target`` unless ``spec`` is an entropy target ``targets.build_target`` takes."""
    from entrostat.control.targets import build_target  # targets imports this module

    at = f"{where}." if where else ""
    if spec is None:
        raise ConfigError(f"{at}target is required: an entropy H* (a number) or a schedule such as "
                          "{kind: linear, start: 0.6, end: 0.3}")
    try:
        build_target(spec)
    except ConfigError as err:
        raise ConfigError(f"{at}target: {err}") from None


def whole(value: Any, low: int) -> bool:
    """``value`` is a whole number (not a bool) ≥ ``low``."""
    return isinstance(value, int) and not isinstance(value, bool) and value >= low


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


def choice(value: Any, name: str, options: tuple[str, ...], what: str = "") -> str:
    where = f"{what}: " if what else ""
    if value not in options:
        raise ConfigError(f"{where}{name} must be one of {', '.join(options)}; got {value!r}")
    return str(value)


def clip(x: float, low: float, high: float) -> float:
    return min(max(x, low), high)
