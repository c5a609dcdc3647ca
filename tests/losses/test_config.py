"""LossConfig: defaults from ALGORITHMS.md, presets, validation errors that say what to write instead."""

from __future__ import annotations

import pytest

from entrostat.config.base import ConfigError, describe, from_dict
from entrostat.config.recipes import load_recipe, loss_preset, recipe_names
from entrostat.losses import FlexConfig, LossConfig
from entrostat.registry import Registry, unknown_name_message


def test_defaults_are_those_of_the_spec():
    c = loss_preset("grpo")
    assert (c.advantage, c.surrogate, c.aggregation, c.selection, c.selection_scope) == (
        "grpo", "ppo_clip", "token-mean", "none", "minibatch")
    assert (c.eps_low, c.eps_high, c.dual_clip) == (0.2, 0.2, 3.0)
    assert (c.beta1, c.beta2, c.positive_nll_coef) == (0.5, 1.0, 0.0)
    assert (c.clip_cov_ratio, c.clip_cov_lb, c.clip_cov_ub) == (2e-4, 1.0, 5.0)
    assert (c.kl_cov_ratio, c.kl_cov_coef, c.top_entropy_rho) == (2e-3, 1.0, 0.2)
    assert (c.entropy_adv, c.entropy_adv_alpha, c.entropy_adv_kappa) == (False, 0.4, 2.0)
    assert (c.entropy_coef, c.kl_coef, c.kl_estimator) == (0.0, 0.0, "k3")
    f = c.flex
    assert (f.b_high, f.a_high, f.b_low, f.a_low, f.eps_std) == (0.28, -0.18, 0.30, -0.20, 0.2)


@pytest.mark.parametrize("name", recipe_names())
def test_every_preset_builds_and_validates(name):
    c = loss_preset(name)
    for key, value in load_recipe(name).get("loss", {}).items():
        assert getattr(c, key) == (from_dict(FlexConfig, value) if key == "flex" else value)
    c.validate()


def test_preset_values():
    assert (loss_preset("dapo").eps_high, loss_preset("dapo").dual_clip) == (0.28, 10.0)
    assert (loss_preset("kl_cov").surrogate, loss_preset("kl_cov").selection) == ("pg", "kl_cov")
    dr = loss_preset("dr_grpo")
    assert (dr.advantage, dr.aggregation) == ("dr_grpo", "seq-mean-token-sum-norm")
    assert loss_preset("gppo").positive_nll_coef == 0.1


def test_preset_overrides_and_independent_copies():
    c = loss_preset("clip_cov", selection_scope="microbatch", dual_clip=None, eps_high=0.28)
    assert (c.selection, c.selection_scope, c.dual_clip, c.eps_high) == ("clip_cov", "microbatch", None, 0.28)
    a, b = loss_preset("flex_id"), loss_preset("flex_id")
    a.flex.weight_high = 0.5  # a schedule mutating one run's config must not leak into another
    assert b.flex.weight_high == 1.0 and LossConfig().flex.weight_high == 1.0
    assert loss_preset("flex_id", flex={"b_high": 0.4}).flex == FlexConfig(b_high=0.4)


def test_unknown_preset_lists_valid_names_and_suggests():
    with pytest.raises(ConfigError) as e:
        loss_preset("clipcov")
    msg = str(e.value)
    assert "did you mean 'clip_cov'" in msg
    assert all(name in msg for name in recipe_names())


@pytest.mark.parametrize("key, suggestion", [("eps_hgih", "eps_high"), ("dualclip", "dual_clip"), ("kl_cov_coeff", "kl_cov_coef")])
def test_unknown_key_with_did_you_mean(key, suggestion):
    with pytest.raises(ConfigError) as e:
        loss_preset("grpo", **{key: 0.3})
    assert f"unknown config key {key!r}" in str(e.value)
    assert f"Did you mean {suggestion!r}" in str(e.value)


def test_unknown_nested_key_names_the_path():
    with pytest.raises(ConfigError, match=r"unknown config key 'loss\.flex\.b_hihg'\. Did you mean 'loss\.flex\.b_high'"):
        from_dict(LossConfig, {"flex": {"b_hihg": 0.3}}, "loss")


@pytest.mark.parametrize("key, value, message", [
    ("eps_low", "abc", "expected a number"),
    ("eps_high", True, "expected a number"),
    ("dual_clip", "abc", "is not a valid float or NoneType"),
    ("entropy_adv", "yes", "expected true or false"),
    ("surrogate", 3, "expected a string"),
    ("flex", 0.3, "expected a mapping of FlexConfig"),
])
def test_wrong_types(key, value, message):
    with pytest.raises(ConfigError, match=message) as e:
        loss_preset("grpo", **{key: value})
    assert key in str(e.value)


def test_yaml_strings_for_numbers_are_accepted():
    assert loss_preset("grpo", clip_cov_ratio="1e-3").clip_cov_ratio == 1e-3  # YAML 1.1 reads 1e-3 as a string
    assert loss_preset("grpo", eps_low=0).eps_low == 0.0


@pytest.mark.parametrize("overrides, message", [
    ({"dual_clip": 1.0}, r"dual_clip = 1\.0 must be > 1, or null"),
    ({"dual_clip": 0.5}, r"dual_clip = 0\.5 must be > 1"),
    ({"eps_low": -0.1}, r"eps_low = -0\.1 must be ≥ 0"),
    ({"eps_high": -1e-9}, r"eps_high = .* must be ≥ 0"),
    ({"clip_cov_ratio": 0.0}, r"clip_cov_ratio = 0\.0 is a fraction of tokens and must be in \(0, 1\]"),
    ({"kl_cov_ratio": 1.5}, r"kl_cov_ratio = 1\.5 is a fraction"),
    ({"top_entropy_rho": -0.2}, r"top_entropy_rho = -0\.2 is a fraction"),
    ({"clip_cov_lb": 5.0}, r"clip_cov_ub = 5\.0 must exceed clip_cov_lb = 5\.0"),
    ({"clip_cov_lb": 2.0, "clip_cov_ub": 1.0}, r"clip_cov_ub = 1\.0 must exceed clip_cov_lb = 2\.0"),
    ({"entropy_coef": float("inf")}, r"entropy_coef = inf must be finite"),
    ({"kl_coef": -0.1}, r"kl_coef"),
    ({"beta1": -0.5}, r"beta1"),
    ({"entropy_adv_kappa": 0.0}, r"entropy_adv_kappa = 0\.0 must be > 0"),
    ({"flex": {"a_high": 0.1}}, r"flex\.a_high / a_low must be ≤ 0"),
    ({"flex": {"a_low": 0.1}}, r"flex\.a_high / a_low must be ≤ 0"),
    ({"flex": {"b_low": 0.1, "a_low": -0.2}}, r"flex\.b_low \+ a_low = -0\.1: the bound at p = 1 must be ≥ 0"),
    ({"flex": {"eps_std": -0.1}}, r"flex\.eps_std = -0\.1 must be ≥ 0"),
])
def test_out_of_range_values(overrides, message):
    with pytest.raises(ConfigError, match=message):
        loss_preset("grpo", **overrides)


def test_boundary_values_are_accepted():
    c = loss_preset("grpo", dual_clip=None, eps_low=0.0, clip_cov_ratio=1.0, kl_cov_ratio=1.0, top_entropy_rho=1.0)
    assert c.dual_clip is None
    assert loss_preset("grpo", dual_clip=1.0001).dual_clip == 1.0001
    c = loss_preset("grpo", eps_high=0.0, entropy_adv_kappa=0.5)
    assert (c.eps_high, c.entropy_adv_kappa) == (0.0, 0.5)
    # flex: slopes of 0 (constant bounds), ε_std = 0 and a bound of exactly 0 at p = 1 are all allowed
    f = loss_preset("grpo", flex={"a_high": 0.0, "a_low": 0.0, "eps_std": 0.0}).flex
    assert (f.a_high, f.a_low, f.eps_std) == (0.0, 0.0, 0.0)
    f = loss_preset("grpo", flex={"b_high": 0.18, "a_high": -0.18, "b_low": 0.2, "a_low": -0.2}).flex
    assert (f.b_high + f.a_high, f.b_low + f.a_low) == (0.0, 0.0)


def test_dataclass_defaults_are_those_of_the_spec():
    """``LossConfig()`` itself (what the TRL / veRL hosts start from), not only the grpo recipe."""
    c = LossConfig()
    assert (c.advantage, c.surrogate, c.aggregation, c.selection, c.selection_scope) == (
        "grpo", "ppo_clip", "token-mean", "none", "minibatch")
    assert (c.eps_low, c.eps_high, c.dual_clip, c.beta1, c.beta2) == (0.2, 0.2, 3.0, 0.5, 1.0)
    assert (c.positive_nll_coef, c.positive_nll_norm) == (0.0, "step")
    assert (c.clip_cov_ratio, c.clip_cov_lb, c.clip_cov_ub) == (2e-4, 1.0, 5.0)
    assert (c.kl_cov_ratio, c.kl_cov_coef, c.top_entropy_rho) == (2e-3, 1.0, 0.2)
    assert (c.entropy_adv, c.entropy_adv_alpha, c.entropy_adv_kappa) == (False, 0.4, 2.0)
    assert (c.entropy_coef, c.kl_coef, c.kl_estimator) == (0.0, 0.0, "k3")
    f = FlexConfig()
    assert (f.b_high, f.a_high, f.b_low, f.a_low, f.eps_std) == (0.28, -0.18, 0.30, -0.20, 0.2)
    assert (f.weight_high, f.weight_low) == (1.0, 1.0)  # the active bounds unless a schedule blends


def test_kl_cov_selection_with_a_clipped_surrogate_is_rejected():
    with pytest.raises(ConfigError, match="kl_cov uses the unclipped surrogate") as e:
        loss_preset("grpo", selection="kl_cov")
    assert "surrogate: pg" in str(e.value)
    with pytest.raises(ConfigError, match="'gppo'"):
        loss_preset("kl_cov", surrogate="gppo")


@pytest.mark.parametrize("key, value, suggestion", [
    ("surrogate", "ppo_clp", "ppo_clip"),
    ("aggregation", "token_mean", "token-mean"),
    ("advantage", "grpoo", "grpo"),
    ("selection", "clipcov", "clip_cov"),
    ("selection_scope", "micro_batch", "microbatch"),
    ("kl_estimator", "k33", "k3"),
])
def test_unknown_names_list_valid_and_suggest(key, value, suggestion):
    with pytest.raises(ConfigError) as e:
        loss_preset("grpo", **{key: value})
    msg = str(e.value)
    assert key in msg and repr(value) in msg
    assert f"did you mean {suggestion!r}" in msg
    assert suggestion in msg.split("Valid", 1)[1]


def test_config_error_is_a_value_error():
    assert issubclass(ConfigError, ValueError)


def test_every_field_documents_itself():
    rows = describe(LossConfig)
    names = [r[0] for r in rows]
    assert "eps_high" in names and "flex.b_high" in names
    assert all(help_text.strip() for _, _, help_text in rows)


# ---------------------------------------------------------------- registry
def test_registry_rejects_duplicates_and_lists_sorted_names():
    reg: Registry[int] = Registry("widget")
    reg.register("b")(1)
    reg.register("a")(2)
    assert reg.names() == ["a", "b"] and list(reg) == ["a", "b"] and "a" in reg and "c" not in reg
    assert reg.get("a") == 2
    with pytest.raises(ValueError, match="widget 'a' is already registered"):
        reg.register("a")(3)
    with pytest.raises(ValueError, match=r"unknown widget 'bb'; did you mean 'b'\? Valid widget names: a, b"):
        reg.get("bb")


def test_unknown_name_message_without_close_match():
    msg = unknown_name_message("thing", "zzzz", ["alpha", "beta"])
    assert "did you mean" not in msg and "alpha, beta" in msg
