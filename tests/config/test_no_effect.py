"""config/checks.py: a setting that would change nothing is refused, saying why and what to write instead.

Every case is built as a user would, a recipe plus ``key=value`` overrides (``build_config``).
"""

from __future__ import annotations

import pytest

from entrostat.config.base import ConfigError
from entrostat.config.recipes import build_config


def thermostat(actuator: str) -> list[str]:
    return ["control.name=thermostat", f"control.kwargs={{actuator: {actuator}, target: 0.5}}"]


def refused(recipe: str, overrides: list[str]) -> str:
    with pytest.raises(ConfigError) as err:
        build_config(recipe, overrides)
    return str(err.value)


# ------------------------------------------------------------------ actuators the loss does not read

@pytest.mark.parametrize(("recipe", "overrides", "actuator"), [
    ("flex_id", ["loss.surrogate=ppo_clip"], "flex_weight_high"),
    ("flex_did", ["loss.surrogate=ce_gppo"], "flex_weight_high"),
    ("flex_od", ["loss.surrogate=pg", "loss.selection=kl_cov"], "flex_weight_high"),
    ("grpo", thermostat("flex_weight_low"), "flex_weight_low"),
])
def test_flex_weights_need_flex_clip(recipe, overrides, actuator):
    msg = refused(recipe, overrides)
    field = actuator.replace("flex_", "flex.")
    assert f"drives {actuator} (loss.{field}), which has no effect: only the flex_clip surrogate reads loss.flex" in msg
    assert "To drive it, set loss.surrogate=flex_clip" in msg


@pytest.mark.parametrize(("recipe", "actuator"), [("grpo", "beta1"), ("gppo", "beta2"), ("dapo", "beta1")])
def test_betas_need_ce_gppo(recipe, actuator):
    msg = refused(recipe, thermostat(actuator))
    assert f"control.name=thermostat drives {actuator} (loss.{actuator}), which has no effect: only the ce_gppo " \
           "surrogate reads β₁ / β₂ (gppo fixes both at 1)" in msg
    assert "To drive it, set loss.surrogate=ce_gppo (recipe ce_gppo)" in msg


def test_clip_cov_ratio_needs_the_clip_cov_selection():
    msg = refused("kl_cov", thermostat("clip_cov_ratio"))
    assert "drives clip_cov_ratio (loss.clip_cov_ratio), which has no effect: only the clip_cov token selection " \
           "reads it and loss.selection is 'kl_cov'" in msg
    assert "set loss.selection=clip_cov (recipe clip_cov)" in msg


def test_kl_cov_ratio_needs_the_kl_cov_selection():
    msg = refused("clip_cov", thermostat("kl_cov_ratio"))
    assert "drives kl_cov_ratio (loss.kl_cov_ratio), which has no effect: only the kl_cov token selection reads it " \
           "and loss.selection is 'clip_cov'" in msg
    assert "set loss.selection=kl_cov with loss.surrogate=pg (recipe kl_cov)" in msg


@pytest.mark.parametrize("actuator", ["eps_low", "eps_high"])
def test_eps_under_flex_clip(actuator):
    msg = refused("flex_od", thermostat(actuator))
    assert f"control.name=thermostat drives {actuator} (loss.{actuator}), which has no effect: flex_clip takes its " \
           "bounds from loss.flex" in msg
    assert "shape the bounds with loss.flex.b_high, a_high, b_low, a_low and eps_std" in msg


@pytest.mark.parametrize(("surrogate", "actuator"), [("pg", "eps_high"), ("reinforce", "eps_low")])
def test_eps_under_an_unclipped_surrogate(surrogate, actuator):
    msg = refused("grpo", [f"loss.surrogate={surrogate}", *thermostat(actuator)])
    assert f"drives {actuator} (loss.{actuator}), which has no effect: the {surrogate} surrogate does not clip" in msg
    assert "use a clipped surrogate (loss.surrogate=ppo_clip, gppo or ce_gppo)" in msg


@pytest.mark.parametrize("actuator", ["aux_temperature", "aux_alpha", "aux_keep_frac"])
def test_aux_actuators_need_a_controller_that_declares_the_auxiliary_rollout(actuator):
    msg = refused("grpo", thermostat(actuator))
    assert f"control.name=thermostat drives {actuator}, which acts only on an auxiliary rollout, and thermostat " \
           "declares none" in msg
    assert "Use control.name=aepo (it drives aux_temperature and aux_keep_frac) or control.name=scope_rl" in msg


# ------------------------------------------------------------------ loss fields the loss does not read

@pytest.mark.parametrize(("recipe", "field", "value", "why", "instead"), [
    ("grpo", "beta1", 0.75, "only the ce_gppo surrogate reads β₁ / β₂ (gppo fixes both at 1) and loss.surrogate is "
     "'ppo_clip'", "set loss.surrogate=ce_gppo"),
    ("gppo", "beta2", 1.2, "and loss.surrogate is 'gppo'", "set loss.surrogate=ce_gppo"),
    ("grpo", "flex.b_high", 0.4, "only the flex_clip surrogate reads loss.flex and loss.surrogate is 'ppo_clip'",
     "set loss.surrogate=flex_clip (recipes flex_id, flex_did, flex_od)"),
    ("dapo", "flex.eps_std", 0.28, "only the flex_clip surrogate reads loss.flex", "set loss.surrogate=flex_clip"),
    ("grpo", "clip_cov_ratio", 0.02, "only the clip_cov token selection reads it and loss.selection is 'none'",
     "set loss.selection=clip_cov"),
    ("top_entropy", "clip_cov_ub", 6.0, "loss.selection is 'top_entropy'", "set loss.selection=clip_cov"),
    ("clip_cov", "kl_cov_ratio", 0.1, "only the kl_cov token selection reads it and loss.selection is 'clip_cov'",
     "set loss.selection=kl_cov with loss.surrogate=pg"),
    ("grpo", "kl_cov_coef", 0.1, "only the kl_cov token selection reads it", "set loss.selection=kl_cov"),
    ("kl_cov", "top_entropy_rho", 0.3, "only the top_entropy token selection reads it and loss.selection is 'kl_cov'",
     "set loss.selection=top_entropy (recipe top_entropy)"),
    ("grpo", "entropy_adv_alpha", 0.2, "Entropy-Adv shaping is off (loss.entropy_adv is false)",
     "set loss.entropy_adv=true"),
    ("grpo", "entropy_adv_kappa", 4.0, "Entropy-Adv shaping is off", "set loss.entropy_adv=true"),
    ("flex_id", "eps_high", 0.28, "flex_clip takes its bounds from loss.flex", "shape the bounds with loss.flex"),
    ("flex_did", "eps_low", 0.3, "flex_clip takes its bounds from loss.flex", "shape the bounds with loss.flex"),
    ("kl_cov", "eps_high", 0.28, "the pg surrogate does not clip the ratio", "use a clipped surrogate"),
])
def test_loss_field_without_effect(recipe, field, value, why, instead):
    msg = refused(recipe, [f"loss.{field}={value}"])
    assert msg.startswith(f"loss.{field} = {value!r} has no effect: ") and why in msg
    assert f"To use it, {instead}" in msg and f"otherwise leave loss.{field} at its default " in msg


# ------------------------------------------------------------------ what acts is accepted

@pytest.mark.parametrize(("recipe", "overrides"), [
    ("ce_gppo", ["loss.beta1=0.75", "loss.beta2=1.2"]),
    ("ce_gppo", thermostat("beta2") + ["control.kwargs.u_min=0.5", "control.kwargs.u_max=1.5"]),
    ("gppo", thermostat("eps_high")),
    ("thermostat", ["loss.entropy_coef=0.003"]),  # replaced by the controller's value each step: not checked
    ("dapo", ["loss.eps_high=0.3"]),
    ("clip_cov", thermostat("clip_cov_ratio")),
    ("kl_cov", ["loss.kl_cov_coef=0.5"]),
    ("flex_id", ["loss.flex.b_high=0.4", "loss.eps_low=0.2", "loss.eps_high=0.2"]),  # eps at the default: left be
    ("flex_od", ["control.name=thermostat", "control.kwargs={actuator: flex_weight_high, target: 0.5}"]),
    ("entropy_adv", ["loss.entropy_adv_alpha=0.2"]),
    ("top_entropy", ["loss.top_entropy_rho=0.3"]),
    ("aepo", []), ("scope_rl", []), ("grpo", ["control.name=adaptive_entropy"]),
])
def test_settings_that_act_are_accepted(recipe, overrides):
    build_config(recipe, overrides).validate()


def test_controller_arguments_are_checked_when_the_config_is_built():
    msg = refused("thermostat", ["control.kwargs.k_p=0.1"])
    assert "unknown config key 'control.kwargs.k_p'. Did you mean 'control.kwargs.kp'?" in msg
