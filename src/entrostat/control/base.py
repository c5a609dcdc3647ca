"""The controller protocol (ALGORITHMS.md §3) and the registry of controllers by name.

A controller is a small stateful object that the trainer owns, never part of a loss:

- ``value()`` — the actuator settings for the NEXT step, keys from ``ACTUATORS``.
  Before any ``update`` it gives the settings of the first step.
- ``update(stats)`` — once per step, after the step, with that step's global
  statistics: at least ``step`` (completed steps, 1-based), ``total_steps``,
  ``entropy`` (exact token-mean entropy of the step's rollout), ``nll``,
  ``covariance`` (token-mean of (A−Ā)(logπ−L̄)) and ``lr``.
- ``state_dict()`` / ``load_state_dict()`` — plain python numbers and strings
  (checkpoints); a controller built with the same arguments and loaded from a
  state continues exactly like the original.
- ``signals()`` — internal signals worth logging every step.

Step indexing (one rule for every controller): after ``update`` with
``stats["step"] = s``, ``value()`` is for the 0-based step k = s, and the target
it aims at is H*(k) of that step; the entropy it reacts to was measured at step
k − 1 (the one-step delay of a rollout-then-update loop).
"""

from __future__ import annotations

from typing import Any, Callable, Mapping

from entrostat.config.base import ConfigError
from entrostat.control._common import call_checked
from entrostat.registry import Registry

ACTUATORS = (
    "aux_temperature", "aux_alpha", "aux_keep_frac", "eps_low", "eps_high", "flex_weight_high", "flex_weight_low",
    "beta1", "beta2", "entropy_coef", "clip_cov_ratio", "kl_cov_ratio",
)


class Controller:
    """Base class: subclasses set ``name`` and ``_STATE`` (attribute names saved in checkpoints).

    ``state_dict`` / ``load_state_dict`` are implemented here from ``_STATE``; the
    attributes must hold python floats, ints, strs or lists of floats.
    """

    name: str = "controller"
    _STATE: tuple[str, ...] = ()

    def value(self) -> dict[str, float]:
        raise NotImplementedError

    def update(self, stats: Mapping[str, float]) -> None:
        raise NotImplementedError

    def signals(self) -> dict[str, float]:
        return {}

    def state_dict(self) -> dict[str, Any]:
        state: dict[str, Any] = {"controller": self.name}
        for key in self._STATE:
            state[key] = getattr(self, key)
        return state

    def load_state_dict(self, state: dict[str, Any]) -> None:
        saved = state.get("controller")
        if saved != self.name:
            raise ValueError(f"this state belongs to controller {saved!r}, not {self.name!r}")
        missing = [k for k in self._STATE if k not in state]
        if missing:
            raise ValueError(f"controller {self.name!r} state lacks {', '.join(missing)}")
        for key in self._STATE:
            kind = type(getattr(self, key))
            setattr(self, key, kind(state[key]))


ControllerFactory = Callable[..., Controller]
CONTROLLERS: Registry[ControllerFactory] = Registry("controller")


def build_controller(name: str, **kwargs: Any) -> Controller:
    """The registered controller ``name`` built with ``kwargs``; unknown names or arguments raise ConfigError."""
    try:
        factory = CONTROLLERS.get(name)
    except ValueError as err:
        raise ConfigError(str(err)) from None
    return call_checked(factory, kwargs, f"controller {name!r}")
