"""AEPO substitution and SCOPE-RL's additive term: unit tests and a trainer run of each."""

from __future__ import annotations

import math

import pytest
import torch

from entrostat.losses import auxiliary_reinforce_loss
from entrostat.config.recipes import build_config
from entrostat.rollout.merge import cat_rows
from entrostat.tasks.base import register_task
from entrostat.tasks.lab import LabTask
from entrostat.rollout.auxiliary import aux_prompt_count, join_auxiliary, positive_rows
from entrostat.train.trainer import Trainer
from entrostat.types import AuxRequest, RolloutBatch


def _batch(rows: int, tp: int, t: int, rewards, group: int, fill: int) -> RolloutBatch:
    return RolloutBatch(
        prompt_ids=torch.full((rows, tp), fill), prompt_mask=torch.ones(rows, tp),
        completion_ids=torch.full((rows, t), fill), completion_mask=torch.ones(rows, t),
        group_ids=torch.arange(rows // group).repeat_interleave(group),
        rewards=torch.tensor(rewards, dtype=torch.float32), advantages=torch.zeros(rows),
        old_logprobs=torch.zeros(rows, t), meta={"texts": [str(fill)] * rows},
    )


def test_cat_rows_pads_prompts_left_and_completions_right():
    a, b = _batch(2, 3, 2, [0, 1], 2, 7), _batch(2, 1, 4, [1, 1], 2, 9)
    out = cat_rows([a, b], pad_token_id=0)
    assert out.prompt_ids.shape == (4, 3) and out.completion_ids.shape == (4, 4)
    assert out.prompt_ids[2].tolist() == [0, 0, 9] and out.prompt_mask[2].tolist() == [0, 0, 1]
    assert out.completion_ids[0].tolist() == [7, 7, 0, 0] and out.completion_mask[0].tolist() == [1, 1, 0, 0]
    assert out.meta["texts"] == ["7", "7", "9", "9"]


def aepo_substitute(main, aux, *, n_reg, keep_frac, pad_token_id):
    """(batch, k) of AEPO's declared request, fulfilled through the ``substitute`` composition."""
    req = AuxRequest(temperature=1.2, prompt_fraction=0.25, compose="substitute", max_rows=n_reg, keep_frac=keep_frac)
    out = join_auxiliary(req, main, aux, pad_token_id)
    assert out.extra is None and out.first_main_row == out.stats["aux/substituted"]
    return out.batch, int(out.stats["aux/substituted"])


def test_aepo_substitutes_positives_into_the_first_rows():
    main = _batch(8, 2, 3, [0] * 8, 4, 5)
    # aux groups: [1,0,0,0] → one positive with A > 0.05; [1,1,1,1] → all correct, A = 0, not kept
    aux = _batch(8, 2, 2, [1, 0, 0, 0, 1, 1, 1, 1], 4, 6).with_(completion_ids=torch.arange(16).view(8, 2) + 10)
    out, k = aepo_substitute(main, aux, n_reg=60, keep_frac=1.0, pad_token_id=0)
    assert k == 1 and out.batch_size == 8
    assert out.completion_ids[0].tolist() == [10, 11, 0] and out.advantages[0] == 1
    assert torch.equal(out.completion_ids[1:], main.completion_ids[1:]) and out.old_logprobs is None
    aux2 = _batch(8, 2, 2, [1, 1, 0, 0, 1, 0, 1, 0], 4, 6)
    assert aepo_substitute(main, aux2, n_reg=60, keep_frac=0.5, pad_token_id=0)[1] == 2  # 4 kept, halved
    assert aepo_substitute(main, aux2, n_reg=3, keep_frac=1.0, pad_token_id=0)[1] == 3  # capped at N_reg
    none, k0 = aepo_substitute(main, _batch(4, 2, 2, [0, 0, 0, 0], 4, 6), n_reg=60, keep_frac=1.0, pad_token_id=0)
    assert k0 == 0 and none is main  # nothing kept: the step goes on without the regulariser


def test_positive_filters_and_prompt_count():
    aux = _batch(4, 1, 1, [1, 1, 1, 1], 4, 1)
    assert positive_rows(aux, "reward").all() and not positive_rows(aux, "group_advantage").any()
    assert aux_prompt_count(16, 1 / 64) == 1 and aux_prompt_count(16, 0.25) == 4 and aux_prompt_count(10, 0.25) == 3


def test_auxiliary_reinforce_loss_by_hand():
    lp = torch.tensor([[-1.0, -2.0], [-0.5, -9.0], [-3.0, -3.0]], requires_grad=True)
    mask = torch.tensor([[1.0, 1.0], [1.0, 0.0], [1.0, 1.0]])
    out = auxiliary_reinforce_loss(lp, mask, torch.tensor([True, True, False]), alpha=0.5)
    # α · (3 + 0.5 + 0) / 3 rows (the wrong row counts in the denominator)
    assert out.loss.item() == pytest.approx(0.5 * 3.5 / 3)
    out.loss.backward()
    assert torch.allclose(lp.grad, torch.tensor([[-0.5 / 3, -0.5 / 3], [-0.5 / 3, 0.0], [0.0, 0.0]]))


@register_task("test_parity_lab")
class ParityLab(LabTask):
    """Rewards every completion of even length: positives exist even for an untrained tiny model."""

    name = "test_parity_lab"

    def score(self, problem, completion):
        return float(len(completion) % 2 == 0)


@pytest.mark.parametrize("control", [
    ["control.name=aepo", "control.kwargs={target: 9.0}"],
    ["control.name=scope_rl", "control.kwargs={target: 0.5, alpha: 0.25}", "trainer.mini_batches=2"],
])
def test_trainer_runs_auxiliary_rollouts(tmp_path, tiny_lab_overrides, control):
    over = tiny_lab_overrides + ["task.name=test_parity_lab", "rollout.prompts_per_step=8"] + control
    tr = Trainer(build_config(None, over), tmp_path)
    recs = [tr.step() for _ in range(3)]
    assert all(r["aux/rows"] > 0 and math.isfinite(r["loss"]) and r["time/aux_rollout"] > 0 for r in recs)
    if "control.name=aepo" in control:
        assert sum(r["aux/substituted"] for r in recs) > 0
        assert recs[0]["aux/temperature"] == 1.2  # H_prev = 0 ≤ H*: raise first
    else:
        assert any(r["aux_loss"] != 0 for r in recs)
