"""Which actuators a controller would drive, from its parameters alone, and whether it declares an auxiliary
rollout (ALGORITHMS.md §3; ARCHITECTURE.md "One core, three hosts").

Config checks (``config.checks``) ask these before any controller exists. A controller with typed
parameters names them through its ``Params``, built from ``control.kwargs`` with ``from_dict``
(did-you-mean for unknown keys, type errors, ``validate``); one without (aepo, scope_rl, until
they follow the pattern) drives a fixed set, its class attribute ``actuators``.
"""

from __future__ import annotations

from typing import Any, Mapping

from entrostat.config.base import from_dict
from entrostat.control._common import KWARGS_WHERE
from entrostat.control.base import CONTROLLERS, Controller


def controller_actuators(name: str, kwargs: Mapping[str, Any]) -> tuple[str, ...]:
    """The actuator names that controller ``name`` built with ``kwargs`` would drive (the keys of its ``value()``);
    an unknown name, an unknown or mistyped argument, or an invalid value raises ConfigError."""
    cls = CONTROLLERS.get(name)
    params_cls = getattr(cls, "Params", None)
    if params_cls is not None:
        return tuple(from_dict(params_cls, dict(kwargs), KWARGS_WHERE).actuators)
    fixed = getattr(cls, "actuators", None)
    if fixed is None:
        raise TypeError(f"controller {name!r} names no actuators: give its class a Params dataclass with "
                        "`actuators`, or a class attribute `actuators` (the keys of its value())")
    return tuple(fixed)


def declares_auxiliary_rollout(name: str) -> bool:
    """Whether controller ``name`` declares extra samples, i.e. overrides ``Controller.aux_request``; only then does
    the host run an auxiliary rollout for the aux_* actuators to act on."""
    return getattr(CONTROLLERS.get(name), "aux_request", None) is not getattr(Controller, "aux_request", None)
