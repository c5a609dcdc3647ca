"""Covariance terms (PG and NPG forms, Cui et al. 2505.22617), predicted ΔH and token quadrants."""

from __future__ import annotations

import math

import pytest
import torch

from entrostat.diagnostics import (
    QUADRANTS,
    covariance_terms,
    policy_diagnostics,
    predicted_entropy_change,
    quadrant_breakdown,
    token_quadrants,
)
from entrostat.losses import token_covariance
from entrostat.ops import masked_mean


def _hand_batch():
    # tokens (log π, A): (−0.1, 2), (−2, 2) in row 0; (−3, −4) in row 1 (second position padded)
    logprobs = torch.tensor([[-0.1, -2.0], [-3.0, 5.0]])
    mask = torch.tensor([[1, 1], [1, 0]])
    advantages = torch.tensor([2.0, -4.0])  # (B,): one advantage per sequence
    return logprobs, advantages, mask


def test_covariance_forms_by_hand():
    logprobs, advantages, mask = _hand_batch()
    cov = covariance_terms(logprobs, advantages, mask)
    # NPG: Ā = 0, L̄ = −1.7, deviations of log π (1.6, −0.3, −1.3): mean(A·dev) = (3.2 − 0.6 + 5.2) / 3
    assert float(cov["npg"]) == pytest.approx(7.8 / 3, rel=1e-6)
    # PG: x = π·A; Cov = mean((x − x̄)(log π − L̄)) = mean(x · dev) since Σ dev = 0
    x = [2 * math.exp(-0.1), 2 * math.exp(-2.0), -4 * math.exp(-3.0)]
    assert float(cov["pg"]) == pytest.approx((1.6 * x[0] - 0.3 * x[1] - 1.3 * x[2]) / 3, rel=1e-6)


def test_npg_form_is_the_trainers_covariance_metric():
    g = torch.Generator().manual_seed(1)
    logprobs, mask, adv = -torch.rand(6, 5, generator=g) * 3, torch.rand(6, 5, generator=g) > 0.3, torch.randn(6, generator=g)
    adv_tok = adv[:, None].expand(6, 5)
    existing = masked_mean(token_covariance(adv_tok, logprobs, mask), mask)  # Trainer.policy_stats' "covariance"
    assert float(covariance_terms(logprobs, adv, mask)["npg"]) == pytest.approx(float(existing), abs=1e-7)
    # per-token (B, T) advantages give the same as the broadcast (B,) ones
    assert float(covariance_terms(logprobs, adv_tok, mask)["pg"]) == float(covariance_terms(logprobs, adv, mask)["pg"])


def test_predicted_change_is_minus_step_size_times_cov():
    assert float(predicted_entropy_change(torch.tensor(0.5), 1e-3)) == pytest.approx(-5e-4)


def test_quadrants_by_hand():
    logprobs, advantages, mask = _hand_batch()
    q = token_quadrants(logprobs, advantages, mask)
    where = {k: torch.nonzero(v).tolist() for k, v in q.items()}
    # π = 0.905 (A > 0) is high; π = 0.135 (A > 0) and 0.050 (A < 0) are low; the padded token is nowhere
    assert where == {"pos_high": [[0, 0]], "pos_low": [[0, 1]], "neg_high": [], "neg_low": [[1, 0]], "zero_adv": []}
    b = quadrant_breakdown(logprobs, advantages, mask)
    assert {k: round(float(v["share"]), 6) for k, v in b.items()} == {
        "pos_high": round(1 / 3, 6), "pos_low": round(1 / 3, 6), "neg_high": 0.0, "neg_low": round(1 / 3, 6), "zero_adv": 0.0}
    assert float(b["pos_high"]["cov_contrib"]) == pytest.approx(3.2 / 3, rel=1e-6)
    assert float(b["pos_low"]["cov_contrib"]) == pytest.approx(-0.6 / 3, rel=1e-6)
    assert float(b["neg_low"]["cov_contrib"]) == pytest.approx(5.2 / 3, rel=1e-6)


def test_quadrants_partition_the_tokens_and_the_covariance():
    g = torch.Generator().manual_seed(2)
    logprobs, mask = -torch.rand(8, 6, generator=g) * 2, torch.rand(8, 6, generator=g) > 0.2
    adv = torch.tensor([1.0, -1.0, 0.0, 0.5, -0.5, 0.0, 2.0, -2.0])
    q = token_quadrants(logprobs, adv, mask)
    total = sum(v.int() for v in q.values())
    assert torch.equal(total, mask.int())  # disjoint and covering the mask
    assert bool(q["zero_adv"][2].sum() == mask[2].sum()) and bool(q["zero_adv"][5].sum() == mask[5].sum())
    b = quadrant_breakdown(logprobs, adv, mask)
    assert sum(float(v["share"]) for v in b.values()) == pytest.approx(1.0)
    assert sum(float(v["cov_contrib"]) for v in b.values()) == pytest.approx(float(covariance_terms(logprobs, adv, mask)["npg"]), abs=1e-6)


def test_high_prob_threshold_moves_tokens_between_quadrants():
    logprobs, advantages, mask = _hand_batch()
    q = token_quadrants(logprobs, advantages, mask, high_prob=0.1)  # now π = 0.135 is high too
    assert torch.nonzero(q["pos_high"]).tolist() == [[0, 0], [0, 1]]


def test_policy_diagnostics_record():
    logprobs, advantages, mask = _hand_batch()
    h = torch.tensor([[0.2, 1.0], [0.4, 7.0]])
    rec = policy_diagnostics(h, logprobs, advantages, mask, step_size=0.01)
    assert all(isinstance(v, float) for v in rec.values())
    assert rec["diag/entropy/mean"] == pytest.approx(1.6 / 3)
    assert rec["diag/entropy/high_frac"] == pytest.approx(1 / 3)
    assert rec["diag/cov_npg"] == pytest.approx(7.8 / 3, rel=1e-6)
    assert rec["diag/dH_pred_npg"] == pytest.approx(-0.01 * 7.8 / 3, rel=1e-6)
    assert rec["diag/dH_pred_pg"] == pytest.approx(-0.01 * rec["diag/cov_pg"], rel=1e-6)
    assert {f"diag/quadrant/{q}/{k}" for q in QUADRANTS for k in ("share", "cov_contrib")} <= set(rec)


def test_bad_advantage_shape_is_explained():
    with pytest.raises(ValueError, match=r"must be \(B,\) or \(B, T\)"):
        covariance_terms(torch.zeros(2, 3), torch.zeros(3), torch.ones(2, 3))
