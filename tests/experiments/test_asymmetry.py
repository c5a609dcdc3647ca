"""The asymmetry experiment runs end to end on a tiny lab model and measures real changes."""

from __future__ import annotations

import json
import math

from entrostat.experiments.asymmetry import (
    AsymmetrySettings,
    run_asymmetry,
    warmed_up_policy,
)

TINY = {"steps": 8, "batch_size": 32, "model": {"hidden_size": 32, "num_layers": 1, "num_heads": 2, "intermediate_size": 64}}


def test_asymmetry_cells_measure_entropy_changes():
    s = AsymmetrySettings(prompts=8, group_size=4, probe_prompts=8, lr=1.0)
    rows = run_asymmetry(0, s, temperatures=(0.8, 1.5), lab_recipe=TINY)
    assert [(r["temperature"], r["sign"]) for r in rows] == [(0.8, "positive"), (0.8, "negative"),
                                                            (1.5, "positive"), (1.5, "negative")]
    assert all(r["n_rows"] + o["n_rows"] == 32 for r, o in zip(rows[::2], rows[1::2]))
    measured = [r["entropy_change"] for r in rows if r["n_rows"] > 0]
    assert measured and all(math.isfinite(x) and x != 0.0 for x in measured)
    assert all(math.isnan(r["entropy_change"]) for r in rows if r["n_rows"] == 0)


def test_asymmetry_can_start_from_a_grpo_warmed_policy():
    """warmup_steps > 0 starts the cells from the policy after that many GRPO steps."""
    warm = run_asymmetry(0, AsymmetrySettings(prompts=8, group_size=4, probe_prompts=8, lr=1.0, warmup_steps=2),
                         temperatures=(1.5,), lab_recipe=TINY)
    assert [r["warmup_steps"] for r in warm] == [2, 2]
    assert all(math.isfinite(r["entropy_change"]) for r in warm if r["n_rows"] > 0)


def test_warmed_up_policy_has_trained():
    """The warm-up really trains: with an entropy bonus (so even all-wrong groups give a gradient) the
    weights move away from the base model's."""
    import torch

    from entrostat.models.loading import load_policy

    base, _, _ = load_policy("lab", seed=0, progress=False, lab_recipe=TINY)
    warm, _, _ = warmed_up_policy(0, 2, ["model.lab_recipe=" + json.dumps(TINY), "loss.entropy_coef=0.5",
                                         "rollout.prompts_per_step=4", "rollout.group_size=4", "trainer.threads=1"])
    moved = [not torch.equal(a, b) for a, b in zip(base.parameters(), warm.parameters())]
    assert any(moved)


def test_asymmetry_experiment_rejects_unknown_settings(tmp_path):
    import pytest

    from entrostat.config.base import ConfigError
    from entrostat.experiments import run_experiment

    with pytest.raises(ConfigError, match="warmup"):
        run_experiment("asymmetry", tmp_path, [0], ["warmpu=3"])
