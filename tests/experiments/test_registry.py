"""Which settings the schedules experiment's runs get: the thought lab, or another recipe's model and task."""

import pytest

from entrostat.config.base import ConfigError
from entrostat.experiments.registry import THOUGHT_LAB, lab_or_base
from entrostat.config.recipes import build_config, recipe_overrides


def test_without_base_the_runs_are_on_the_thought_lab_and_later_overrides_win():
    ov = lab_or_base(["rollout.max_new_tokens=16"])
    assert ov == [*THOUGHT_LAB, "rollout.max_new_tokens=16"]
    cfg = build_config("flex_id", ov)
    assert (cfg.model.name, cfg.task.kwargs["thought_len"], cfg.rollout.max_new_tokens) == ("lab", 3, 16)


def test_base_puts_the_flex_recipe_on_that_recipes_model_task_sampling_optimizer_and_eval():
    # smollm2_rg samples 2 prompts a step (sized for a CPU): too few for the schedule's 4 mini-batches
    ov = lab_or_base(["base=smollm2_rg", "trainer.steps=50", "optim.lr=1e-6", "rollout.prompts_per_step=8"])
    cfg = build_config("flex_id", ["model.init_from=/some/run", *ov])
    ref = build_config("smollm2_rg", ["rollout.prompts_per_step=8"])
    assert (cfg.model.name, cfg.task.name, cfg.task.kwargs) == (ref.model.name, "reasoning_gym", ref.task.kwargs)
    assert (cfg.rollout, cfg.eval.prompts) == (ref.rollout, ref.eval.prompts)  # its held-out set fits its task
    assert cfg.optim.lr == 1e-6  # the user's override wins over the base's 3e-6
    assert cfg.model.init_from == "/some/run"  # the warm start is not reset by the base's init_from
    assert (cfg.loss.surrogate, cfg.control.name, cfg.trainer.mini_batches, cfg.trainer.steps) == (
        "flex_clip", "flex_id", 4, 50)  # the schedule's own settings stay


def test_recipe_overrides_round_trip_and_skip():
    ov = recipe_overrides("smollm2_rg", ("task",), skip=("task.reward",))
    assert not any(o.startswith("task.reward=") for o in ov)
    assert build_config("grpo", ov).task == build_config("smollm2_rg").task


def test_an_unknown_base_is_refused_by_name():
    with pytest.raises(ConfigError, match="recipe"):
        lab_or_base(["base=smollm3_rg"])


@pytest.fixture
def recorded_schedules(monkeypatch, tmp_path):
    """Runs the schedules experiment with its training replaced by a recorder: (warm starts, run_group specs)."""
    from entrostat.experiments import runs

    warm, specs = [], []
    flat = [{"entropy": 1.0}] * 20
    monkeypatch.setattr(runs, "warm_start", lambda run_dir, seed, steps, ov: warm.append(steps) or run_dir)
    monkeypatch.setattr(runs, "run_group", lambda out, sp, seeds, ov: specs.extend(sp) or {
        label: [flat for _ in seeds] for label, _, _ in sp})
    monkeypatch.setattr("entrostat.report.plots.trajectories_figure", lambda *a, **k: None)
    from entrostat.experiments.registry import schedules

    return lambda *ov: (schedules(tmp_path, [0], list(ov)), warm, specs)


def test_schedules_warm_up_by_default_and_warmup_0_starts_from_the_base(recorded_schedules):
    from entrostat.experiments.registry import SCHEDULES_WARMUP

    _, warm, specs = recorded_schedules()
    assert warm == [SCHEDULES_WARMUP] and all(any("model.init_from" in o for o in extra) for _, _, extra in specs)
    warm.clear()
    specs.clear()
    recorded_schedules("warmup=0")
    assert warm == [] and not any("model.init_from" in o for _, _, extra in specs for o in extra)


@pytest.mark.parametrize("bad", ["warmup=-1", "warmup=ten", "warmup="])
def test_schedules_refuse_a_warmup_that_is_not_a_count(recorded_schedules, bad):
    with pytest.raises(ConfigError, match="warmup"):
        recorded_schedules(bad)


def test_authors_table_rows_and_grpo_under_every_target():
    from entrostat.experiments.registry import PASS_KS, authors_markdown, authors_table

    def recs(h, reward, p1):
        rows = [{"entropy": h, "reward_mean": reward} for _ in range(20)]
        rows[-1].update({f"eval/pass@{k}": min(1.0, p1 * k) for k in PASS_KS})
        return rows

    runs = {"grpo": [recs(0.5, 0.6, 0.4), recs(0.7, 0.8, 0.6)], "dcpo@0.3": [recs(0.33, 0.5, 0.3), recs(0.27, 0.5, 0.3)]}
    table = authors_table(runs, {"dcpo@0.3": 0.3}, {0.3: 0.3, 0.8: 0.8})
    assert [(r["method"], r["frac"]) for r in table] == [("dcpo", 0.3), ("grpo", 0.3), ("grpo", 0.8)]
    dcpo, grpo_low, grpo_high = table
    assert dcpo["error"] == pytest.approx(0.1) and dcpo["error_std"] == pytest.approx(0.0)
    assert grpo_low["error"] == pytest.approx((0.2 / 0.3 + 0.4 / 0.3) / 2)
    assert grpo_high["error"] == pytest.approx((0.3 / 0.8 + 0.1 / 0.8) / 2)
    assert grpo_low["reward"] == pytest.approx(0.7) and grpo_low["pass@1"] == pytest.approx(0.5)
    lines = authors_markdown(table, 1.0, 2)
    assert lines[4].startswith("| 0.3 × base (0.300) | dcpo | 0.100 ± 0.000 | 0.500 ± 0.000 | 0.300 |")
