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
- ``aux_request()`` — extra samples the next step needs (``types.AuxRequest``), or None. The host
  fulfils the declaration (``rollout.auxiliary``); no trainer code knows the method.
- ``score_request()`` / ``shape_advantages(inputs)`` — log-probs of the main batch at another
  temperature (``types.ScoreRequest``), or None; when declared, the host computes them with the
  old log-probs and lets the controller reshape the advantages before the update (DCPO).

Step indexing (one rule for every controller): after ``update`` with
``stats["step"] = s``, ``value()`` is for the 0-based step k = s, and the target
it aims at is H*(k) of that step; the entropy it reacts to was measured at step
k − 1 (the one-step delay of a rollout-then-update loop).
"""

from __future__ import annotations

import dataclasses
from typing import Any, Callable, Mapping

import torch

from entrostat.config.base import ConfigError
from entrostat.control._common import call_checked
from entrostat.losses.config import LossConfig
from entrostat.registry import Registry
from entrostat.types import AuxRequest, ScoreRequest, ShapingInputs

Setter = Callable[[LossConfig, float], LossConfig]
ACTUATORS: Registry[Setter | None] = Registry("actuator")
"""Every actuator a controller may return: a loss actuator's setter applies it to the step's
LossConfig; an auxiliary-rollout actuator (setter None) is fulfilled through ``aux_request``."""


def _register_loss_field(name: str, field: str, flex: bool = False) -> None:
    def setter(loss: LossConfig, value: float) -> LossConfig:
        if flex:
            return dataclasses.replace(loss, flex=dataclasses.replace(loss.flex, **{field: float(value)}))
        return dataclasses.replace(loss, **{field: float(value)})

    ACTUATORS.register(name)(setter)


for _name in ("eps_low", "eps_high", "beta1", "beta2", "entropy_coef", "clip_cov_ratio", "kl_cov_ratio"):
    _register_loss_field(_name, _name)
_register_loss_field("flex_weight_high", "weight_high", flex=True)
_register_loss_field("flex_weight_low", "weight_low", flex=True)
for _name in ("aux_temperature", "aux_alpha", "aux_keep_frac"):
    ACTUATORS.register(_name)(None)


def apply_actuators(loss: LossConfig, values: Mapping[str, float]) -> LossConfig:
    """``loss`` with this step's loss actuators applied (an unknown actuator raises ConfigError)."""
    for name, value in values.items():
        setter = ACTUATORS.get(name)
        if setter is not None:
            loss = setter(loss, value)
    return loss


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

    def aux_request(self) -> AuxRequest | None:
        """The auxiliary rollout the next step needs (default: none)."""
        return None

    def score_request(self) -> ScoreRequest | None:
        """The tempered log-probs of the next step's main batch this controller needs (default: none)."""
        return None

    def shape_advantages(self, inputs: ShapingInputs) -> tuple[torch.Tensor, dict[str, float]]:
        """The advantages (B,) or (B, T) the update uses, from the declared scores, and this step's figures
        of the shaping to log (default: unchanged, none)."""
        return inputs.advantages, {}

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
