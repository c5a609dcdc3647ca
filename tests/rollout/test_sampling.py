"""The two-level inversion sampler: frequencies, exact log-probs, zero-mass tokens, per-row temperature, greedy."""

import math

import torch

from entrostat.rollout.sampling import BLOCK, sample_categorical_, sample_step


def _frequencies(z: torch.Tensor, n: int, seed: int = 0) -> torch.Tensor:
    """Empirical distribution of n draws from softmax(z) for one row z (V,)."""
    tokens, _ = sample_categorical_(z.expand(n, -1).clone(), torch.Generator().manual_seed(seed))
    return torch.bincount(tokens, minlength=z.numel()).double() / n


def test_frequencies_follow_softmax_across_blocks():
    gen = torch.Generator().manual_seed(1)
    z = torch.randn(2 * BLOCK + 17, generator=gen) * 2  # several blocks and a partial last one
    z[5] = z[2 * BLOCK + 10] = 6.0  # mass in the first and in the partial block
    n = 40_000
    freq, probs = _frequencies(z, n), torch.softmax(z.double(), -1)
    assert (freq - probs).abs().max() < 5 * math.sqrt(0.25 / n)
    chi2 = float(((freq - probs) ** 2 / probs).sum() * n)  # ~ chi2 with V - 1 dof (mean 528, sd ~32)
    assert chi2 < z.numel() + 6 * math.sqrt(2 * z.numel())


def test_block_totals_follow_softmax_with_a_skewed_vocabulary():
    z = torch.full((4 * BLOCK,), -30.0)
    z[BLOCK + 3], z[3 * BLOCK - 1] = 0.0, math.log(3.0)  # p = 1/4, 3/4 (rest ~1e-13 each)
    freq = _frequencies(z, 20_000, seed=2)
    assert abs(float(freq[BLOCK + 3]) - 0.25) < 0.015 and abs(float(freq[3 * BLOCK - 1]) - 0.75) < 0.015


def test_zero_mass_tokens_are_never_drawn():
    z = torch.full((2 * BLOCK + 5,), float("-inf"))
    allowed = [0, BLOCK - 1, BLOCK, 2 * BLOCK + 4]  # block edges and the partial block
    z[allowed] = torch.tensor([0.0, -1.0, 1.0, -0.5])
    tokens, logp = sample_categorical_(z.expand(5000, -1).clone(), torch.Generator().manual_seed(3))
    assert set(tokens.unique().tolist()) == set(allowed)
    torch.testing.assert_close(logp, torch.log_softmax(z, -1)[tokens])


def test_logprobs_are_log_softmax_at_the_drawn_tokens():
    gen = torch.Generator().manual_seed(4)
    z = torch.randn(64, 1000, generator=gen) * 4
    tokens, logp = sample_categorical_(z.clone(), gen)
    assert tokens.dtype == torch.long and logp.dtype == torch.float32 and tokens.shape == logp.shape == (64,)
    torch.testing.assert_close(logp, torch.log_softmax(z, -1).gather(-1, tokens[:, None]).squeeze(-1), atol=1e-5, rtol=0)


def test_sample_step_per_row_temperature_greedy_and_determinism():
    gen = torch.Generator().manual_seed(5)
    logits = torch.randn(6, 300, generator=gen).to(torch.bfloat16)
    temp = torch.tensor([0.5, 1.0, 2.0, 0.0, -1.0, 1.0])
    tok, lp = sample_step(logits, temp, torch.Generator().manual_seed(6))
    tok2, lp2 = sample_step(logits, temp, torch.Generator().manual_seed(6))
    assert torch.equal(tok, tok2) and torch.equal(lp, lp2)
    for i, t in enumerate(temp.tolist()):
        if t <= 0:
            assert int(tok[i]) == int(logits[i].argmax()) and float(lp[i]) == 0.0
        else:
            ref = torch.log_softmax(logits[i].float() / t, -1)[tok[i]]
            torch.testing.assert_close(lp[i], ref, atol=1e-5, rtol=0)


def test_sample_step_top_p_stays_in_the_nucleus():
    logits = torch.tensor([[2.0, 1.0, 0.0, -1.0, -5.0]]).expand(5000, -1)
    tok, lp = sample_step(logits, torch.ones(5000), torch.Generator().manual_seed(7), top_p=0.8)
    probs = torch.softmax(logits[0], -1)  # 0.64, 0.24, 0.09, ...: the nucleus is the first two
    assert set(tok.unique().tolist()) == {0, 1}
    nucleus = probs[:2] / probs[:2].sum()
    torch.testing.assert_close(lp, nucleus.log()[tok])
    assert abs(float((tok == 0).float().mean()) - float(nucleus[0])) < 0.03
