"""DCPO (ALGORITHMS.md §2.3b): advantages by hand, α at a zero pass rate, logπ_T from the forward, the direction
of its push on rare tokens, and a trainer run that logs α and T."""

from __future__ import annotations

import math

import pytest
import torch

from entrostat.config.recipes import build_config
from entrostat.control import build_controller
from entrostat.losses import compute_advantages
from entrostat.losses.advantages import dcpo_advantages, dcpo_alpha
from entrostat.models.forward import completion_logits, completion_scores
from entrostat.train.trainer import Trainer
from entrostat.types import ShapingInputs

# Two groups of two: rewards 1, 0 | 1, 1; two completion tokens each, the second row's second token masked.
REWARDS = torch.tensor([1.0, 0.0, 1.0, 1.0])
GROUPS = torch.tensor([0, 0, 1, 1])
MASK = torch.tensor([[1.0, 1.0], [1.0, 0.0], [1.0, 1.0], [1.0, 1.0]])
P1 = torch.tensor([[0.5, 0.1], [0.4, 0.3], [0.9, 0.2], [0.6, 0.05]])  # π_1 of the sampled tokens


def probs_at(p1: torch.Tensor, temperature: float) -> torch.Tensor:
    """π_T of the sampled token in a two-token vocabulary: softmax(log p / T) renormalised."""
    a, b = p1 ** (1 / temperature), (1 - p1) ** (1 / temperature)
    return a / (a + b)


def shaping(temperature: float) -> ShapingInputs:
    adv = compute_advantages("grpo", REWARDS, GROUPS)
    return ShapingInputs(adv, REWARDS, MASK, P1.log(), probs_at(P1, temperature).log())


@pytest.mark.parametrize("temperature", [1.2, 0.8])
def test_advantages_by_hand(temperature):
    h_prev = 0.3 if temperature > 1 else 0.7  # raising below H* = 0.5, lowering above
    ctrl = build_controller("dcpo", target=0.5)
    ctrl.update({"step": 1, "total_steps": 10, "entropy": h_prev, "nll": h_prev, "covariance": 0.0, "lr": 1e-3})
    assert ctrl.score_request().temperature == temperature
    got, figures = ctrl.shape_advantages(shaping(temperature))
    # GRPO: group 0 → ±0.5 / (std + 1e-6), std of [1, 0] (unbiased) = √0.5; group 1 (all correct) → 0
    a = 0.5 / (math.sqrt(0.5) + 1e-6)
    adv = torch.tensor([a, -a, 0.0, 0.0])
    pass_rate = 3 / 4
    gap = min(abs(0.5 - h_prev), 0.1)
    alpha = (gap / pass_rate) / (1 + gap / pass_rate)
    correct = torch.tensor([1.0, 0.0, 1.0, 1.0])
    want = torch.empty(4, 2)
    for i in range(4):
        for t in range(2):
            p1 = float(P1[i, t])
            w = float(probs_at(torch.tensor(p1), temperature)) / p1
            want[i, t] = (1 - alpha) * adv[i] + alpha * correct[i] * w
    assert torch.allclose(got, want, atol=1e-6)
    assert figures["alpha"] == pytest.approx(alpha) and figures["pass_rate"] == 0.75
    assert figures["temperature"] == temperature


def test_alpha_is_zero_when_nothing_passes():
    assert dcpo_alpha(0.1, 0.0) == 0.0 and dcpo_alpha(0.1, 0.5) == pytest.approx(0.2 / 1.2)
    ctrl = build_controller("dcpo", target=0.5)
    zeros = torch.zeros(4)
    x = ShapingInputs(compute_advantages("grpo", zeros, GROUPS), zeros, MASK, P1.log(), probs_at(P1, 1.2).log())
    got, figures = ctrl.shape_advantages(x)
    assert torch.equal(got, torch.zeros(4, 2)) and ctrl.signals()["zero_pass_steps"] == 1.0
    assert figures["alpha"] == 0.0 and math.isnan(figures["mean_weight"])


@pytest.mark.parametrize("h_prev, sign", [(0.7, -1), (0.3, +1)])
def test_rare_tokens_of_correct_samples_move_with_the_gap(h_prev, sign):
    """H_prev > H* (T = 0.8): a correct sample's rare token gets less advantage than under GRPO; H_prev < H*
    (T = 1.2): more. The sample is the correct one of a mixed group (GRPO advantage 0.71); its rare token has
    p = 0.1 (w = 0.60 at T = 0.8, 1.38 at T = 1.2), its likely one p = 0.5 (w = 1 at both)."""
    ctrl = build_controller("dcpo", target=0.5)
    ctrl.update({"step": 1, "total_steps": 10, "entropy": h_prev, "nll": h_prev, "covariance": 0.0, "lr": 1e-3})
    temperature = ctrl.score_request().temperature
    x = shaping(temperature)
    dcpo, figures = ctrl.shape_advantages(x)
    grpo = x.advantages[:, None].expand_as(dcpo)
    rare, likely = (0, 1), (0, 0)
    assert sign * (dcpo[rare] - grpo[rare]) > 0
    alpha = figures["alpha"]
    w_rare, w_likely = ((dcpo[rare] - (1 - alpha) * grpo[rare]) / alpha, (dcpo[likely] - (1 - alpha) * grpo[likely]) / alpha)
    assert sign * (w_rare - w_likely) > 0


def test_tempered_logprobs_are_log_softmax_of_scaled_logits(tmp_path, tiny_lab_overrides):
    tr = Trainer(build_config("dcpo", tiny_lab_overrides), tmp_path)
    batch = tr.rollouts.main(tr.task.problems("train", 2, 0))
    with torch.no_grad():
        logp, ent, tempered = completion_scores(tr.model, batch, (1.2, 0.8), share_prompts=True)
        logits = completion_logits(tr.model, batch, share_prompts=False)
    ids = batch.completion_ids[..., None]
    m = batch.completion_mask.bool()
    for t in (1.2, 0.8):
        want = torch.log_softmax(logits.double() / t, -1).gather(-1, ids)[..., 0]
        assert torch.allclose(tempered[t][m].double(), want[m], atol=1e-5)
    assert torch.allclose(logp[m].double(), torch.log_softmax(logits.double(), -1).gather(-1, ids)[..., 0][m], atol=1e-5)


def test_trainer_runs_dcpo_and_logs_alpha_and_temperature(tmp_path, tiny_lab_overrides):
    tr = Trainer(build_config("dcpo", tiny_lab_overrides + ["control.kwargs.target=9.0"]), tmp_path)
    recs = [tr.step() for _ in range(2)]
    for r in recs:
        assert r["control/dcpo/temperature"] == 1.2 and 0 <= r["control/dcpo/alpha"] < 1  # H < H* = 9: raise
        assert math.isfinite(r["loss"]) and 0 <= r["control/dcpo/pass_rate"] <= 1
