"""Loss aggregation with the step-wide normaliser (ALGORITHMS.md §1.2)."""

from __future__ import annotations

import pytest
import torch

from entrostat.losses import AGGREGATIONS, Normalizer, aggregate

L = torch.tensor([[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]])
M = torch.tensor([[1, 1, 0], [1, 0, 0]])  # lengths 2 and 1: Σ L·M = 1 + 2 + 4 = 7
NORM = Normalizer.from_mask(M)  # 3 tokens, 2 sequences, T_max = 3

HAND = {
    "token-mean": 7 / 3,  # Σ L·M / N_tokens
    "seq-mean-token-mean": (3 / 2 + 4 / 1) / 2,  # mean over rows of the row means = 2.75
    "seq-mean-token-sum": 7 / 2,  # mean over rows of the row sums
    "seq-mean-token-sum-norm": 7 / (2 * 3),  # Σ L·M / (N_seq · T_max)
}


def test_normalizer_from_mask_and_merged():
    assert NORM == Normalizer(num_tokens=3.0, num_seqs=2.0, max_len=3.0)
    assert Normalizer.from_mask(M, max_len=10).max_len == 10.0
    other = Normalizer.from_mask(torch.ones(5, 3))
    assert NORM.merged(other) == Normalizer(18.0, 7.0, 3.0)


@pytest.mark.parametrize("mode", AGGREGATIONS)
def test_each_mode_by_hand(mode):
    assert aggregate(L, M, mode, NORM).item() == pytest.approx(HAND[mode])


def test_normalizer_defaults_and_merged_correct_tokens():
    # built by hand without T_max: the constant is 1, so Dr.GRPO's aggregate is Σ L·M / N_seq
    assert aggregate(L, M, "seq-mean-token-sum-norm", Normalizer(3.0, 2.0)).item() == pytest.approx(7 / 2)
    a = Normalizer.from_mask(M, correct=torch.tensor([True, False]))
    b = Normalizer.from_mask(torch.ones(2, 3), correct=torch.tensor([True, True]))
    assert (a.num_correct_tokens, b.num_correct_tokens) == (2.0, 6.0)
    assert a.merged(b).num_correct_tokens == 8.0


@pytest.mark.parametrize("mode", AGGREGATIONS)
def test_an_empty_step_gives_zero_not_nan(mode):
    """A step with no rows at all (B = 0): every count is 0, and the guards give 0 with zero gradient."""
    loss = torch.zeros(0, 3, requires_grad=True)
    mask = torch.zeros(0, 3)
    out = aggregate(loss, mask, mode, Normalizer.from_mask(mask))
    assert out.item() == 0.0
    out.backward()
    assert loss.grad.shape == (0, 3)


def test_dr_grpo_uses_the_constant_max_len_not_the_padded_width():
    # T_max = 10 (the generation budget): 7 / (2 · 10)
    assert aggregate(L, M, "seq-mean-token-sum-norm", Normalizer.from_mask(M, max_len=10)).item() == pytest.approx(0.35)


def test_a_micro_batch_is_its_share_of_the_step():
    # this micro-batch is 1 of several: the step has 10 tokens, 4 sequences, T_max = 3
    step = Normalizer(10.0, 4.0, 3.0)
    assert aggregate(L, M, "token-mean", step).item() == pytest.approx(7 / 10)
    assert aggregate(L, M, "seq-mean-token-mean", step).item() == pytest.approx((1.5 + 4) / 4)
    assert aggregate(L, M, "seq-mean-token-sum", step).item() == pytest.approx(7 / 4)
    assert aggregate(L, M, "seq-mean-token-sum-norm", step).item() == pytest.approx(7 / 12)


@pytest.mark.parametrize("mode", AGGREGATIONS)
def test_micro_batch_shares_sum_to_the_whole(mode):
    g = torch.Generator().manual_seed(0)
    loss = torch.randn(6, 5, generator=g)
    mask = (torch.rand(6, 5, generator=g) > 0.4).int()
    mask[2] = 0  # a row without valid tokens counts as a sequence, contributes 0
    norm = Normalizer.from_mask(mask)
    whole = aggregate(loss, mask, mode, norm)
    parts = sum(aggregate(loss[s : s + 2], mask[s : s + 2], mode, norm) for s in range(0, 6, 2))
    torch.testing.assert_close(parts, whole)


def test_empty_row_counts_in_seq_mean():
    m = torch.tensor([[1, 1, 0], [0, 0, 0]])
    # row 0 mean 1.5, row 1 has no tokens: (1.5 + 0) / 2
    assert aggregate(L, m, "seq-mean-token-mean", Normalizer.from_mask(m)).item() == pytest.approx(0.75)


@pytest.mark.parametrize("mode", AGGREGATIONS)
def test_all_zero_mask_gives_zero_loss_and_gradient(mode):
    x = L.clone().requires_grad_(True)
    z = torch.zeros_like(M)
    out = aggregate(x, z, mode, Normalizer.from_mask(z))
    out.backward()
    assert out.item() == 0.0
    assert torch.all(x.grad == 0)


@pytest.mark.parametrize("mode", AGGREGATIONS)
def test_masked_nan_does_not_leak_into_value_or_gradient(mode):
    x = L.clone()
    x[0, 2] = float("nan")
    x[1, 1] = float("inf")
    x.requires_grad_(True)
    out = aggregate(x, M, mode, NORM)
    out.backward()
    assert out.item() == pytest.approx(HAND[mode])
    assert torch.isfinite(x.grad).all() and x.grad[0, 2] == 0 and x.grad[1, 1] == 0


def test_gradient_by_hand():
    x = L.clone().requires_grad_(True)
    aggregate(x, M, "seq-mean-token-mean", NORM).backward()
    # ∂/∂L_bt = M_bt / (len_b · N_seq): row 0 → 1/(2·2), row 1 → 1/(1·2)
    torch.testing.assert_close(x.grad, torch.tensor([[0.25, 0.25, 0.0], [0.5, 0.0, 0.0]]))


def test_bool_and_float_masks_agree():
    for mode in AGGREGATIONS:
        a = aggregate(L, M.bool(), mode, NORM)
        b = aggregate(L, M.float(), mode, NORM)
        assert a.item() == b.item()


def test_shape_mismatch_raises():
    with pytest.raises(ValueError, match=r"per_token_loss has shape \(2, 3\) but mask \(2, 2\)"):
        aggregate(L, M[:, :2], "token-mean", NORM)


def test_unknown_mode_lists_valid_and_suggests():
    with pytest.raises(ValueError) as e:
        aggregate(L, M, "token_mean", NORM)
    msg = str(e.value)
    assert "did you mean 'token-mean'" in msg
    assert all(mode in msg for mode in AGGREGATIONS)
