"""Checks across config sections: refuse settings that would change nothing (ALGORITHMS.md §1, §2.4, §3).

A loss field or a controller's actuator matters only under the surrogate (§1.3), token selection
(§1.4) or advantage shaping (§1.1) that reads it; set elsewhere it is silently ignored and a run
measures something other than what its config says. ``check_effects`` (called by
``RunConfig.validate``) refuses such a config with the reason and what to write instead:

- an actuator the controller drives that the loss does not read (``RULES``), or an auxiliary-rollout
  actuator driven by a controller that declares no auxiliary rollout (``Controller.aux_request``; aepo
  and scope_rl declare one, the thermostat does not);
- a loss field set away from its ``LossConfig()`` default where the loss does not read it (``RULES``).

Fields at their defaults are never refused (the recipes spell out the paper's values). Not checked
yet: ``loss.dual_clip`` under pg / reinforce, which ignore it, and a loss field the controller
replaces every step (the thermostat starts from its own u0, not from the loss's value).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Callable

from entrostat.config.base import ConfigError
from entrostat.control import ACTUATORS, controller_actuators, declares_auxiliary_rollout
from entrostat.losses.config import FlexConfig, LossConfig

if TYPE_CHECKING:
    from entrostat.config.run import RunConfig

# the loss field an actuator sets, where its name differs (control.base.ACTUATORS)
LOSS_FIELD = {"flex_weight_high": "flex.weight_high", "flex_weight_low": "flex.weight_low"}
UNCLIPPED = ("pg", "reinforce")


@dataclass(frozen=True)
class Rule:
    """Loss fields (dotted under ``loss.``) that act only when ``acts(loss)``; ``why`` (formatted with the loss's
    ``surrogate`` and ``selection``) says why they do not, ``instead`` what to write."""

    fields: tuple[str, ...]
    acts: Callable[[LossConfig], bool]
    why: str
    instead: str


RULES = (
    Rule(("beta1", "beta2"), lambda loss: loss.surrogate == "ce_gppo",
         "only the ce_gppo surrogate reads β₁ / β₂ (gppo fixes both at 1) and loss.surrogate is {surrogate!r}",
         "set loss.surrogate=ce_gppo (recipe ce_gppo)"),
    Rule(tuple(f"flex.{f.name}" for f in dataclasses.fields(FlexConfig)), lambda loss: loss.surrogate == "flex_clip",
         "only the flex_clip surrogate reads loss.flex and loss.surrogate is {surrogate!r}",
         "set loss.surrogate=flex_clip (recipes flex_id, flex_did, flex_od)"),
    Rule(("clip_cov_ratio", "clip_cov_lb", "clip_cov_ub"), lambda loss: loss.selection == "clip_cov",
         "only the clip_cov token selection reads it and loss.selection is {selection!r}",
         "set loss.selection=clip_cov (recipe clip_cov)"),
    Rule(("kl_cov_ratio", "kl_cov_coef"), lambda loss: loss.selection == "kl_cov",
         "only the kl_cov token selection reads it and loss.selection is {selection!r}",
         "set loss.selection=kl_cov with loss.surrogate=pg (recipe kl_cov)"),
    Rule(("top_entropy_rho",), lambda loss: loss.selection == "top_entropy",
         "only the top_entropy token selection reads it and loss.selection is {selection!r}",
         "set loss.selection=top_entropy (recipe top_entropy)"),
    Rule(("positive_nll_norm",), lambda loss: loss.positive_nll_coef > 0,
         "the positive NLL term is off (loss.positive_nll_coef is 0)", "set loss.positive_nll_coef (Klear: 0.1)"),
    Rule(("entropy_adv_alpha", "entropy_adv_kappa"), lambda loss: loss.entropy_adv,
         "Entropy-Adv shaping is off (loss.entropy_adv is false)", "set loss.entropy_adv=true (recipe entropy_adv)"),
    Rule(("eps_low", "eps_high"), lambda loss: loss.surrogate != "flex_clip",
         "flex_clip takes its bounds from loss.flex (ε(p) blended with loss.flex.eps_std), not from eps_low / eps_high",
         "shape the bounds with loss.flex.b_high, a_high, b_low, a_low and eps_std, or drive flex_weight_high / "
         "flex_weight_low with a flex controller (flex_id, flex_did, flex_od)"),
    Rule(("eps_low", "eps_high"), lambda loss: loss.surrogate not in UNCLIPPED,
         "the {surrogate} surrogate does not clip the ratio",
         "use a clipped surrogate (loss.surrogate=ppo_clip, gppo or ce_gppo)"),
)


def check_effects(cfg: RunConfig) -> None:
    """Raise ConfigError for a setting that has no effect in ``cfg`` (see the module docstring)."""
    for actuator in _driven_actuators(cfg):
        _check_actuator(cfg.control.name, actuator, cfg.loss)
    _check_loss_fields(cfg.loss)


def _driven_actuators(cfg: RunConfig) -> tuple[str, ...]:
    if cfg.control.name == "none":
        return ()
    return controller_actuators(cfg.control.name, cfg.control.kwargs)


def _check_actuator(controller: str, actuator: str, loss: LossConfig) -> None:
    """Refuse an actuator nothing reads: an auxiliary one without an auxiliary rollout, or a loss one that the loss
    ignores (``RULES``)."""
    drives = f"control.name={controller} drives {actuator}"
    if ACTUATORS.get(actuator) is None:  # no setter of the loss: it acts on an auxiliary rollout
        if not declares_auxiliary_rollout(controller):
            raise ConfigError(
                f"{drives}, which acts only on an auxiliary rollout, and {controller} declares none, so it would "
                "change nothing. Use control.name=aepo (it drives aux_temperature and aux_keep_frac) or "
                "control.name=scope_rl (aux_temperature and aux_alpha), or drive a loss actuator such as entropy_coef."
            )
        return
    field = LOSS_FIELD.get(actuator, actuator)
    for rule in RULES:
        if field in rule.fields and not rule.acts(loss):
            raise ConfigError(f"{drives} (loss.{field}), which has no effect: {_why(rule, loss)}. "
                              f"To drive it, {rule.instead}; otherwise drive another actuator.")


def _check_loss_fields(loss: LossConfig) -> None:
    """Refuse a loss field set away from its default where the loss does not read it (``RULES``)."""
    for rule in RULES:
        for name in rule.fields:
            default = _get(LossConfig(), name)
            if _get(loss, name) != default and not rule.acts(loss):
                raise ConfigError(f"loss.{name} = {_get(loss, name)!r} has no effect: {_why(rule, loss)}. To use it, "
                                  f"{rule.instead}; otherwise leave loss.{name} at its default {default!r}.")


def _get(section: Any, dotted: str) -> Any:
    for part in dotted.split("."):
        section = getattr(section, part)
    return section


def _why(rule: Rule, loss: LossConfig) -> str:
    return rule.why.format(surrogate=loss.surrogate, selection=loss.selection)
