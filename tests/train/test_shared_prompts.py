"""Shared prompt passes (``trainer.share_prompts``): the same log-probs, entropies and gradients as one pass per row."""

from __future__ import annotations

import pytest
import torch

from entrostat.models.forward import completion_logprobs, prompt_runs
from entrostat.types import RolloutBatch


@pytest.fixture(scope="module")
def tiny_llama():
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(0)
    cfg = LlamaConfig(vocab_size=101, hidden_size=64, intermediate_size=128, num_hidden_layers=2,
                      num_attention_heads=4, num_key_value_heads=2)
    return LlamaForCausalLM(cfg).eval()


def _batch(group_sizes: list[int], t: int, seed: int = 0) -> RolloutBatch:
    """Left-padded prompts of different real lengths, repeated per group; right-padded completions with EOS cuts."""
    gen = torch.Generator().manual_seed(seed)
    p, tp = len(group_sizes), 7
    ids = torch.randint(1, 100, (p, tp), generator=gen)
    mask = torch.ones(p, tp, dtype=torch.bool)
    for i in range(p):
        mask[i, : i % 4] = False  # 0–3 pad tokens
    ids = ids * mask
    reps = torch.tensor(group_sizes)
    rows = int(reps.sum())
    cmask = torch.ones(rows, t, dtype=torch.bool)
    cmask[1, max(1, t - 2):] = False
    cmask[-1, 1:] = False
    return RolloutBatch(
        prompt_ids=ids.repeat_interleave(reps, 0), prompt_mask=mask.repeat_interleave(reps, 0),
        completion_ids=torch.randint(1, 100, (rows, t), generator=gen), completion_mask=cmask,
        group_ids=torch.arange(p).repeat_interleave(reps),
    )


def test_prompt_runs_follow_identical_consecutive_prompts():
    b = _batch([4, 1, 3], t=3)
    assert prompt_runs(b).tolist() == [4, 1, 3]
    assert prompt_runs(b.select(torch.arange(2, 6))).tolist() == [2, 1, 1]  # a micro-batch cutting groups


@pytest.mark.parametrize("group_sizes,t", [([4, 4, 4], 5), ([3, 1, 2], 6), ([2, 2], 1)])
def test_same_values_and_gradients_as_one_pass_per_row(tiny_llama, group_sizes, t):
    b = _batch(group_sizes, t)
    m = b.completion_mask
    plain = completion_logprobs(tiny_llama, b, temperature=0.9)
    shared = completion_logprobs(tiny_llama, b, temperature=0.9, share_prompts=True)
    for x, y in zip(plain, shared):
        assert x.shape == y.shape == m.shape
        torch.testing.assert_close(x[m], y[m], rtol=0, atol=2e-5)
    params = list(tiny_llama.parameters())
    g_plain = torch.autograd.grad((plain[0] * m).sum() + (plain[1] * m).sum(), params)
    g_shared = torch.autograd.grad((shared[0] * m).sum() + (shared[1] * m).sum(), params)
    for a, c in zip(g_plain, g_shared):
        torch.testing.assert_close(a, c, rtol=1e-4, atol=1e-5)


def test_a_trainer_step_agrees_with_and_without_sharing(rewarded_lab_overrides, tmp_path):
    """One step from the same rollout (a later rollout may sample differently after a rounding-level change)."""
    from entrostat.config.recipes import build_config
    from entrostat.train.trainer import Trainer

    recs = []
    for share in ("true", "false"):
        over = rewarded_lab_overrides + [f"trainer.share_prompts={share}", "trainer.mini_batches=2",
                                         "log.checkpoint_every=0", "eval.every=0", "log.progress=false"]
        recs.append(Trainer(build_config("grpo", over), tmp_path / share).step())
    # non-trivial numbers: rewards differ within groups, the loss and its gradient are not 0
    assert recs[0]["zero_adv_group_frac"] < 1 and recs[0]["grad_norm"] > 1e-3 and abs(recs[0]["loss"]) > 1e-4
    assert abs(recs[0]["covariance"]) > 1e-4
    for key in ("entropy", "reward_mean", "loss", "grad_norm", "covariance", "clip_frac_low", "clip_frac_high"):
        assert recs[0][key] == pytest.approx(recs[1][key], rel=1e-4, abs=1e-6), key
