"""Group advantages (ALGORITHMS.md §1.1) and Entropy-Adv shaping."""

from __future__ import annotations

import math
import statistics
import warnings

import pytest
import torch

from entrostat.losses import (
    ADVANTAGES,
    compute_advantages,
    entropy_adv_shaping,
    group_ids_from_size,
)
from entrostat.losses.advantages import dcpo_advantages, dcpo_alpha


# ---------------------------------------------------------------- slow loop references
def loop_advantages(name: str, rewards: list[float], ids: list[int]) -> list[float]:
    out = []
    for i, (r, g) in enumerate(zip(rewards, ids)):
        group = [rewards[j] for j in range(len(rewards)) if ids[j] == g]
        mean = sum(group) / len(group)
        if name == "grpo":
            std = statistics.stdev(group)  # unbiased, G − 1
            out.append(0.0 if len(set(group)) == 1 else (r - mean) / (std + 1e-6))
        elif name == "dr_grpo":
            out.append(r - mean)
        elif name == "rloo":
            others = [rewards[j] for j in range(len(rewards)) if ids[j] == g and j != i]
            out.append(r - sum(others) / len(others))
    return out


# ---------------------------------------------------------------- hand-computed
def test_grpo_by_hand():
    # group 0: rewards 1,0,0,0 → mean ¼, unbiased var (0.75² + 3·0.25²)/3 = ¼, std ½
    #   A = 0.75/(0.5 + 1e-6) = 1.4999970, −0.25/(0.5 + 1e-6) = −0.4999990
    # group 1: identical rewards 2,2,2,2 → exactly 0
    r = torch.tensor([1.0, 0.0, 0.0, 0.0, 2.0, 2.0, 2.0, 2.0])
    a = compute_advantages("grpo", r, group_ids_from_size(8, 4))
    expected = [0.75 / 0.500001] + [-0.25 / 0.500001] * 3 + [0.0] * 4
    torch.testing.assert_close(a, torch.tensor(expected), rtol=1e-6, atol=0)
    assert torch.all(a[4:] == 0)
    assert a.dtype == torch.float32


def test_dr_grpo_by_hand():
    r = torch.tensor([1.0, 0.0, 0.0, 0.0, 3.0, 5.0])
    a = compute_advantages("dr_grpo", r, torch.tensor([0, 0, 0, 0, 1, 1]))
    assert a.tolist() == [0.75, -0.25, -0.25, -0.25, -1.0, 1.0]


def test_rloo_by_hand():
    # A_0 = 1 − mean(0,0,0) = 1; A_i = 0 − mean(1,0,0) = −1/3; group (3, 5): −2, 2
    r = torch.tensor([1.0, 0.0, 0.0, 0.0, 3.0, 5.0])
    a = compute_advantages("rloo", r, torch.tensor([0, 0, 0, 0, 1, 1]))
    torch.testing.assert_close(a, torch.tensor([1.0, -1 / 3, -1 / 3, -1 / 3, -2.0, 2.0]))


def test_grpo_small_spread_is_not_treated_as_identical():
    # rewards 0 and 1.4e-6: std 9.9e-7 → A = ∓7e-7 / (9.9e-7 + 1e-6) = ∓0.3518 (the spec formula)
    a = compute_advantages("grpo", torch.tensor([0.0, 1.4e-6], dtype=torch.float64), torch.tensor([0, 0]))
    std = 1.4e-6 / math.sqrt(2)
    assert a.tolist() == pytest.approx([-0.7e-6 / (std + 1e-6), 0.7e-6 / (std + 1e-6)], rel=1e-9)
    # a large offset does not swamp the spread either
    a = compute_advantages("grpo", torch.tensor([1e6, 1e6 + 1e-3], dtype=torch.float64), torch.tensor([0, 0]))
    std = 1e-3 / math.sqrt(2)
    assert a.tolist() == pytest.approx([-5e-4 / (std + 1e-6), 5e-4 / (std + 1e-6)], rel=1e-6)


@pytest.mark.parametrize("name", ["grpo", "dr_grpo", "rloo"])
@pytest.mark.parametrize("value", [0.0, 0.1, 1.0, -3.7, 1e6, 1 / 3])
def test_identical_rewards_give_exact_zeros_without_warnings(name, value):
    r = torch.tensor([value] * 5 + [0.0, 1.0, 1.0])
    ids = torch.tensor([4, 4, 4, 4, 4, 9, 9, 9])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        a = compute_advantages(name, r, ids)
    assert torch.isfinite(a).all()
    if name == "grpo":
        assert torch.all(a[:5] == 0)  # exactly, not ~1e-17
    else:
        assert torch.all(a[:5].abs() <= 1e-9 * max(1.0, abs(value)))
    assert a[5] < 0 < a[6]


@pytest.mark.parametrize("value", [0.1, -0.1, 1 / 3, -7.3])
def test_identical_float64_rewards_give_exact_zeros(value):
    """In float64 the group mean of three 0.1s is 0.10000000000000002: the spread is rounding, not signal."""
    r = torch.tensor([value] * 3 + [0.0, 1.0], dtype=torch.float64)
    a = compute_advantages("grpo", r, torch.tensor([0, 0, 0, 1, 1]))
    assert torch.all(a[:3] == 0) and a[3] < 0 < a[4]


@pytest.mark.parametrize("name", ["grpo", "dr_grpo", "rloo"])
def test_an_empty_batch_gives_empty_advantages(name):
    a = compute_advantages(name, torch.zeros(0), torch.zeros(0, dtype=torch.long))
    assert a.shape == (0,)


def test_integer_rewards_give_float_advantages():
    for name in ("grpo", "dr_grpo", "rloo"):
        a = compute_advantages(name, torch.tensor([1, 0, 0, 1]), torch.tensor([0, 0, 0, 0]))
        assert a.dtype == torch.float32


# ---------------------------------------------------------------- loop reference
@pytest.mark.parametrize("name", ["grpo", "dr_grpo", "rloo"])
@pytest.mark.parametrize("seed", range(4))
def test_vectorised_equals_loop_with_random_noncontiguous_groups(name, seed):
    g = torch.Generator().manual_seed(seed)
    sizes = torch.randint(2, 7, (5,), generator=g).tolist()
    labels = (torch.randperm(1000, generator=g)[:5] - 300).tolist()  # arbitrary, also negative, labels
    ids = torch.tensor([lab for lab, n in zip(labels, sizes) for _ in range(n)])
    ids = ids[torch.randperm(len(ids), generator=g)]  # groups interleaved, not contiguous
    rewards = torch.randn(len(ids), generator=g, dtype=torch.float64)
    if seed == 0:  # one group with identical rewards, one with binary rewards
        rewards[ids == labels[0]] = 0.5
        rewards[ids == labels[1]] = (torch.rand(int((ids == labels[1]).sum()), generator=g) > 0.5).double()
    got = compute_advantages(name, rewards, ids)
    ref = loop_advantages(name, rewards.tolist(), ids.tolist())
    torch.testing.assert_close(got, torch.tensor(ref, dtype=torch.float64), rtol=1e-9, atol=1e-12)


def test_contiguous_group_ids_from_size():
    assert group_ids_from_size(8, 4).tolist() == [0, 0, 0, 0, 1, 1, 1, 1]
    assert group_ids_from_size(3, 1).tolist() == [0, 1, 2]


# ---------------------------------------------------------------- Entropy-Adv
def test_entropy_adv_by_hand():
    # α = 0.4, κ = 2.  Row 0, A = 1: min(0.4·0.5, 1/2) = 0.2 → 1.2;  min(0.4·3, 1/2) = 0.5 → 1.5
    #                  Row 1, A = −2: min(0.4·1, 2/2) = 0.4 → −1.6; min(0.4·10, 2/2) = 1 → −1.0
    adv = torch.tensor([1.0, -2.0])
    h = torch.tensor([[0.5, 3.0], [1.0, 10.0]], requires_grad=True)
    out = entropy_adv_shaping(adv, h)
    torch.testing.assert_close(out, torch.tensor([[1.2, 1.5], [-1.6, -1.0]]))
    assert not out.requires_grad  # sg(H): no gradient flows into the entropy
    # (B, T) advantages and other α, κ: min(0.1·0.5, 4/4) = 0.05
    out2 = entropy_adv_shaping(torch.tensor([[4.0, 0.0]]), torch.tensor([[0.5, 0.5]]), alpha=0.1, kappa=4.0)
    torch.testing.assert_close(out2, torch.tensor([[4.05, 0.0]]))  # A = 0 gets no bonus (|A|/κ = 0)


# ---------------------------------------------------------------- bad input
@pytest.mark.parametrize("name", ["grpo", "rloo"])
def test_group_of_one_raises_for_grpo_and_rloo(name):
    with pytest.raises(ValueError, match="at least 2 samples per group"):
        compute_advantages(name, torch.tensor([1.0, 0.0, 1.0]), torch.tensor([0, 0, 1]))


def test_group_of_one_gives_zero_for_dr_grpo():
    a = compute_advantages("dr_grpo", torch.tensor([1.0, 0.0, 7.0]), torch.tensor([0, 0, 1]))
    assert a.tolist() == [0.5, -0.5, 0.0]


@pytest.mark.parametrize("b, g", [(7, 2), (8, 3), (4, 0)])
def test_group_ids_from_size_rejects_partial_groups(b, g):
    with pytest.raises(ValueError, match="whole groups"):
        group_ids_from_size(b, g)


@pytest.mark.parametrize("name", ["grpo", "dr_grpo", "rloo"])
def test_bad_group_ids_and_rewards_raise(name):
    r = torch.tensor([1.0, 0.0, 1.0, 0.0])
    with pytest.raises(ValueError, match="group_ids"):
        compute_advantages(name, r, torch.tensor([0, 0, 1]))  # wrong shape
    with pytest.raises(ValueError, match="group_ids"):
        compute_advantages(name, r, torch.tensor([[0, 0], [1, 1]]))
    with pytest.raises(ValueError, match="group_ids must be integers"):
        compute_advantages(name, r, torch.tensor([0.0, 0.0, 1.0, 1.0]))
    with pytest.raises(ValueError, match="group_ids must be integers"):
        compute_advantages(name, r, torch.tensor([True, True, False, False]))
    with pytest.raises(ValueError, match="rewards must have shape"):
        compute_advantages(name, r.view(2, 2), torch.tensor([0, 0]))
    for bad in (float("nan"), float("inf"), float("-inf")):
        with pytest.raises(ValueError, match="rewards contain NaN or inf"):
            compute_advantages(name, torch.tensor([1.0, bad, 1.0, 0.0]), torch.tensor([0, 0, 1, 1]))


def test_unknown_advantage_name_lists_valid_and_suggests():
    with pytest.raises(ValueError) as e:
        compute_advantages("grpoo", torch.tensor([1.0, 0.0]), torch.tensor([0, 0]))
    msg = str(e.value)
    assert "did you mean 'grpo'" in msg
    for valid in ("dr_grpo", "grpo", "rloo"):
        assert valid in msg
    assert set(ADVANTAGES.names()) >= {"grpo", "dr_grpo", "rloo"}


# ---------------------------------------------------------------- DCPO (ALGORITHMS.md §2.3b)
def test_dcpo_alpha_by_hand():
    # a = gap / pass_rate, α = a / (1 + a): gap 0.1, pass rate 0.5 → a = 0.2, α = 0.2 / 1.2
    assert dcpo_alpha(0.1, 0.5) == pytest.approx(0.2 / 1.2)
    assert dcpo_alpha(0.3, 0.1) == pytest.approx(3 / 4)
    assert dcpo_alpha(0.1, 0.0) == 0.0  # nothing passed: no division by zero, plain GRPO


def test_dcpo_advantages_by_hand():
    # A' = (1 − α)·A + α·c·w, w = exp(logπ_T − logπ_1); α = 0.25
    adv = torch.tensor([2.0, -1.0])
    correct = torch.tensor([True, False])
    old = torch.log(torch.tensor([[0.5, 0.1], [0.4, 0.2]]))
    tempered = torch.log(torch.tensor([[0.4, 0.2], [0.3, 0.3]]))
    got, w = dcpo_advantages(adv, correct, old, tempered, 0.25)
    torch.testing.assert_close(w, torch.tensor([[0.8, 2.0], [0.75, 1.5]]))
    want = torch.tensor([[0.75 * 2 + 0.25 * 0.8, 0.75 * 2 + 0.25 * 2.0], [-0.75, -0.75]])
    torch.testing.assert_close(got, want)
    # (B, T) advantages are used per token as given
    got2, _ = dcpo_advantages(torch.tensor([[2.0, 0.0], [-1.0, 4.0]]), correct, old, tempered, 0.25)
    torch.testing.assert_close(got2, torch.tensor([[1.7, 0.5], [-0.75, 3.0]]))
