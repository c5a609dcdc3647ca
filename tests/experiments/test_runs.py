"""Run-group experiments: runs are written per label and seed, reused, and scored against targets."""

from __future__ import annotations

import pytest
import torch

from entrostat.experiments.runs import run_group, tracking_table
from entrostat.report.plots import trajectories_figure


def test_run_group_tracking_and_figure(tmp_path, tiny_lab_overrides):
    over = tiny_lab_overrides + ["trainer.steps=3"]
    specs = [("plain", "grpo", []), ("od", "flex_od", ["trainer.mini_batches=2"])]
    runs = run_group(tmp_path, specs, [0], over)
    assert [len(runs[k][0]) for k in ("plain", "od")] == [3, 3]
    again = run_group(tmp_path, specs, [0], over + ["trainer.threads=1"])  # reused, not retrained
    assert again["plain"][0] == runs["plain"][0]
    with pytest.raises(ValueError, match=r"other settings \(optim.lr"):
        run_group(tmp_path, specs[:1], [0], over + ["optim.lr=0.5"])
    metrics = tmp_path / "plain" / "seed-0" / "metrics.jsonl"
    metrics.write_text("".join(metrics.read_text().splitlines(keepends=True)[:-1]))  # a run stopped early
    with pytest.raises(ValueError, match="unfinished run"):
        run_group(tmp_path, specs[:1], [0], over)
    table = tracking_table(runs, {"plain": 1.0, "od": {"kind": "linear", "start": 2.0, "end": 1.0}})
    assert {r["label"] for r in table} == {"plain", "od"} and all(r["tracking_error"] >= 0 for r in table)
    png = trajectories_figure(runs, {"plain": 1.0}, tmp_path / "t.png", "t")
    assert png.stat().st_size > 1000


def test_base_entropy_reads_the_runs_lab_and_the_thought_lab_pretrains_its_base(tiny_lab_overrides):
    from entrostat.experiments.runs import base_entropy
    from entrostat.models.loading import load_policy
    from entrostat.config.recipes import build_config
    from entrostat.rollout.batch import generate_rollout
    from entrostat.tasks.base import get_task
    from entrostat.config.run import lab_base_recipe

    thought = tiny_lab_overrides + ["task.kwargs.thought_len=3", "rollout.max_new_tokens=10",
                                    "model.lab_recipe.steps=60", "model.lab_recipe.lr=0.01"]
    cfg = build_config("grpo", thought)
    assert lab_base_recipe(cfg)["task"] == {"thought_len": 3}  # pre-trained on the task RL trains on
    model, tok, fmt = load_policy("lab", progress=False, lab_recipe=lab_base_recipe(cfg))
    task = get_task("lab", thought_len=3)
    batch = generate_rollout(model, tok, task.problems("train", 8, 0), format_prompt=fmt, group_size=4,
                             temperature=1.0, max_new_tokens=10, generator=torch.Generator().manual_seed(0))
    starts = [text[:3] for text in batch.meta["texts"]]
    assert sum(s.isalpha() for s in starts) >= 0.8 * len(starts)  # the base writes a thought first
    assert base_entropy(0, thought) > base_entropy(0, tiny_lab_overrides + ["model.lab_recipe.steps=60",
                                                                           "model.lab_recipe.lr=0.01"])


def test_lab_base_recipe_defaults_its_task_to_the_runs_task():
    from entrostat.config.recipes import build_config
    from entrostat.config.run import lab_base_recipe

    assert lab_base_recipe(build_config("grpo", [])) == {}
    assert lab_base_recipe(build_config("grpo", ["task.kwargs.n_digits=7", "model.lab_recipe.steps=5"])) == {
        "steps": 5, "task": {"n_digits": 7}}
    explicit = ["task.kwargs.n_digits=7", "model.lab_recipe.task={n_digits: 8}"]
    assert lab_base_recipe(build_config("grpo", explicit))["task"] == {"n_digits": 8}


def test_runs_start_from_a_warm_start_per_seed(tmp_path, tiny_lab_overrides):
    from entrostat.experiments.runs import warm_start
    from entrostat.models.loading import load_policy
    from entrostat.config.recipes import build_config
    from entrostat.train.trainer import Trainer

    over = tiny_lab_overrides + ["trainer.steps=2", "optim.lr=0.05", "loss.entropy_coef=0.5"]  # moves the weights
    warm = warm_start(tmp_path / "warmup" / "seed-0", 0, 2, over)
    assert (warm / "checkpoints" / "step-00000002" / "model.safetensors").is_file()
    assert warm_start(warm, 0, 2, over) == warm  # reused
    cfg = build_config("grpo", over + [f"model.init_from={tmp_path / 'warmup'}/seed-0"])
    started = Trainer(cfg, tmp_path / "run").model
    base, _, _ = load_policy("lab", progress=False, lab_recipe=cfg.model.lab_recipe)
    warm_weights = Trainer(build_config("grpo", over + [f"model.init_from={warm}/checkpoints/step-00000002"]),
                           tmp_path / "run2").model.state_dict()
    for name, tensor in started.state_dict().items():
        assert torch.equal(tensor, warm_weights[name])
    assert any(not torch.equal(t, base.state_dict()[n]) for n, t in started.state_dict().items())
    runs = run_group(tmp_path, [("from_warm", "grpo", [f"model.init_from={tmp_path / 'warmup'}/seed-{{seed}}"])],
                     [0], over)
    assert len(runs["from_warm"][0]) == 2
    with pytest.raises(FileNotFoundError, match="base model"):
        Trainer(build_config("grpo", over + ["model.init_from=base"]), tmp_path / "run3")
