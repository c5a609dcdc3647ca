"""Every shipped recipe resolves to a valid config, and its controller (if any) builds."""

from __future__ import annotations

import pytest

from entrostat.config.recipes import build_config, recipe_names
from entrostat.train.control import build_controllers


@pytest.mark.parametrize("name", recipe_names())
def test_recipe_resolves(name):
    cfg = build_config(name)
    assert cfg.recipe == name
    for ctrl in build_controllers(cfg.control).values():
        # the first step's actuator settings, or a declaration of what it needs from the host (DCPO)
        assert ctrl.value() or ctrl.score_request() or ctrl.aux_request()


def test_expected_recipes_exist():
    expected = {"grpo", "dr_grpo", "dapo", "entropy_bonus", "clip_cov", "kl_cov", "gppo", "ce_gppo", "top_entropy",
                "entropy_adv", "aepo", "aepo_paper", "scope_rl", "flex_id", "flex_did", "flex_od", "adaptive_entropy",
                "thermostat", "thermostat_schedule", "dcpo", "dcpo_thought"}
    assert expected <= set(recipe_names())
