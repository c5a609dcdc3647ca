"""The trainer in-process on the tiny lab: a step's record, bad input, reward errors, non-finite losses."""

from __future__ import annotations

import math

import pytest
import torch

from entrostat.config.base import ConfigError
from entrostat.models.loading import ModelLoadError
from entrostat.config.recipes import build_config
from entrostat.tasks.base import register_task
from entrostat.tasks.lab import LabTask
from entrostat.train import update as update_mod
from entrostat.tasks.scoring import RewardError
from entrostat.train.trainer import Trainer, TrainingError
from entrostat.types import LossOutput


def make(tmp_path, overrides, extra=()):
    return Trainer(build_config(None, overrides + list(extra)), tmp_path)


def test_step_record_has_the_promised_metrics(tmp_path, rewarded_lab_overrides):
    rec = make(tmp_path, rewarded_lab_overrides).step()
    for key in ("entropy", "nll", "reward_mean", "pass_rate", "clip_frac_low", "clip_frac_high", "covariance",
                "response_length", "truncation_rate", "zero_adv_group_frac", "time/rollout", "time/update",
                "throughput/tokens_per_s", "grad_norm", "lr"):
        assert key in rec and math.isfinite(rec[key]), key
    assert rec["step"] == 1 and rec["entropy"] > 0
    # the step learned something: rewards differ within groups, so the loss has a gradient
    assert rec["reward_mean"] > 0 and rec["zero_adv_group_frac"] < 1
    assert rec["grad_norm"] > 0 and rec["covariance"] != 0


SELECTION_PRESETS = [
    ["loss.selection=clip_cov", "loss.clip_cov_lb=-100", "loss.clip_cov_ub=100", "loss.clip_cov_ratio=0.2"],
    ["loss.selection=kl_cov", "loss.surrogate=pg"],
    ["loss.selection=top_entropy"],
    ["loss.surrogate=ce_gppo", "loss.entropy_coef=0.01", "loss.entropy_adv=true"],
    ["loss.kl_coef=0.1", "loss.positive_nll_coef=0.1"],
]


@pytest.mark.parametrize("preset_overrides", SELECTION_PRESETS)
def test_selections_run_with_several_minibatches_and_micro_batches(tmp_path, rewarded_lab_overrides, preset_overrides):
    """Each selection / regulariser does something in a step of 4 optimizer steps over micro-batches of 4 rows:
    its metric is non-zero and the step's loss differs from plain GRPO's on the same rollout."""
    extra = ["trainer.mini_batches=2", "trainer.epochs=2", "trainer.micro_batch_size=4"]
    rec = make(tmp_path / "with", rewarded_lab_overrides, extra + preset_overrides).step()
    plain = make(tmp_path / "plain", rewarded_lab_overrides, extra).step()
    assert math.isfinite(rec["loss"]) and rec["zero_adv_group_frac"] < 1 and rec["grad_norm"] > 0
    assert rec["reward_mean"] == plain["reward_mean"]  # the same rollout ...
    assert rec["loss"] != pytest.approx(plain["loss"], rel=1e-3, abs=1e-6)  # ... and a different update
    if "loss.selection=clip_cov" in preset_overrides:
        assert 0 < rec["dropped_frac"] < 1
    if "loss.selection=kl_cov" in preset_overrides:
        assert 0 < rec["penalized_frac"] < 1
    if "loss.selection=top_entropy" in preset_overrides:
        assert rec["dropped_frac"] == pytest.approx(0.8, abs=0.1)  # the top 20 % of tokens keep their gradient
    if "loss.entropy_coef=0.01" in preset_overrides:
        assert rec["entropy_bonus"] > 0
    if "loss.kl_coef=0.1" in preset_overrides:
        assert rec["kl_ref"] > 0 and rec["positive_nll"] > 0  # the policy moved off the reference; correct rows


def test_batch_that_cannot_be_split_into_whole_groups(tiny_lab_overrides):
    with pytest.raises(ConfigError, match="whole groups"):
        build_config(None, tiny_lab_overrides + ["trainer.mini_batches=3"])
    with pytest.raises(ConfigError, match="micro_batch_size"):
        build_config(None, tiny_lab_overrides + ["trainer.micro_batch_size=3"])


def test_unknown_key_and_wrong_type():
    with pytest.raises(ConfigError, match="Did you mean 'optim.lr'"):
        build_config(None, ["optim.lrr=1"])
    with pytest.raises(ConfigError, match="expected an integer"):
        build_config(None, ["trainer.steps=many"])


def test_missing_model_path(tmp_path, tiny_lab_overrides):
    with pytest.raises(ModelLoadError, match="local directory"):
        make(tmp_path, tiny_lab_overrides, [f"model.name={tmp_path / 'nope'}"])


@register_task("test_raising_lab")
class RaisingLab(LabTask):
    name = "test_raising_lab"

    def score(self, problem, completion):
        if completion.startswith(("1", "2", "3")):
            raise KeyError("boom")
        return super().score(problem, completion)


def test_reward_that_raises_fails_naming_the_prompt(tmp_path, tiny_lab_overrides):
    tr = make(tmp_path, tiny_lab_overrides, ["task.name=test_raising_lab", "rollout.prompts_per_step=8"])
    with pytest.raises(RewardError, match=r"prompt '.*'.*KeyError: 'boom'"):
        for _ in range(3):
            tr.step()


def test_reward_that_raises_scores_zero_when_configured(tmp_path, tiny_lab_overrides):
    tr = make(tmp_path, tiny_lab_overrides,
              ["task.name=test_raising_lab", "task.reward_errors=zero", "rollout.prompts_per_step=8"])
    errors = sum(tr.step()["reward_errors"] for _ in range(3))
    assert errors > 0 and tr.counters["reward_errors"] == errors


def test_nonfinite_loss_is_skipped_counted_and_stops_training(tmp_path, rewarded_lab_overrides, monkeypatch):
    tr = make(tmp_path, rewarded_lab_overrides, ["trainer.max_nonfinite_in_row=2"])
    before = {k: v.clone() for k, v in tr.model.state_dict().items()}
    real = update_mod.objective

    def nan_loss(*a, **k):
        out = real(*a, **k)
        return LossOutput(out.loss * float("nan"), out.metrics)

    monkeypatch.setattr(update_mod, "objective", nan_loss)
    rec = tr.step()
    assert rec["nonfinite_skipped"] == 1 and tr.counters["nonfinite_skipped"] == 1
    assert all(torch.equal(before[k], v) for k, v in tr.model.state_dict().items())  # the update was skipped
    with pytest.raises(TrainingError, match="2 non-finite losses in a row"):
        tr.step()
