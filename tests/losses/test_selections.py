"""Token selections (ALGORITHMS.md §1.4): covariance, Clip-Cov, KL-Cov, top-entropy."""

from __future__ import annotations

import pytest
import torch

from entrostat.config.recipes import loss_preset
from entrostat.losses import (
    Normalizer,
    PolicyInputs,
    Selection,
    clip_cov_select,
    kl_cov_select,
    policy_loss,
    token_covariance,
    top_entropy_select,
)


def _where(mask: torch.Tensor) -> list[tuple[int, int]]:
    return [tuple(i) for i in torch.nonzero(mask).tolist()]


# ---------------------------------------------------------------- slow loop references
def loop_covariance(adv, logp, mask):
    b, t = mask.shape
    valid = [(i, j) for i in range(b) for j in range(t) if mask[i, j]]
    a_bar = sum(float(adv[i, j]) for i, j in valid) / len(valid)
    l_bar = sum(float(logp[i, j]) for i, j in valid) / len(valid)
    out = torch.zeros(b, t)
    for i, j in valid:
        out[i, j] = (float(adv[i, j]) - a_bar) * (float(logp[i, j]) - l_bar)
    return out


def loop_clip_cov(cov, mask, clipped, ratio, lb, ub, generator):
    b, t = mask.shape
    n_valid = sum(1 for i in range(b) for j in range(t) if mask[i, j])
    cands = [(i, j) for i in range(b) for j in range(t)  # row-major
             if mask[i, j] and not clipped[i, j] and lb < float(cov[i, j]) < ub]
    if not cands:
        return []
    n = max(int(ratio * n_valid), 1)
    perm = torch.randperm(len(cands), generator=generator).tolist()  # the one random call
    return sorted(cands[k] for k in perm[: min(n, len(cands))])


def loop_kl_cov(cov, mask, ratio):
    b, t = mask.shape
    valid = [(float(cov[i, j]), (i, j)) for i in range(b) for j in range(t) if mask[i, j]]
    k = max(int(ratio * len(valid)), 1)
    return sorted(pos for _, pos in sorted(valid, key=lambda x: -x[0])[:k])


def loop_top_entropy_kept(h, mask, rho):
    b, t = mask.shape
    vals = sorted((float(h[i, j]) for i in range(b) for j in range(t) if mask[i, j]), reverse=True)
    k = max(-(-round(rho * len(vals), 9) // 1), 1)  # ⌈ρ·N⌉
    thr = vals[int(k) - 1]
    return sorted((i, j) for i in range(b) for j in range(t) if mask[i, j] and float(h[i, j]) >= thr)


def _random(seed, b=6, t=9):
    g = torch.Generator().manual_seed(seed)
    adv = torch.randn(b, 1, generator=g).expand(b, t) * 1.5
    logp = -torch.rand(b, t, generator=g) * 6
    mask = (torch.rand(b, t, generator=g) > 0.25).int()
    mask[0, 0] = 1
    return adv, logp, mask, g


# ---------------------------------------------------------------- covariance
def test_token_covariance_by_hand():
    adv = torch.tensor([[1.0, 1.0], [-1.0, -1.0]])
    logp = torch.tensor([[-1.0, -3.0], [-2.0, 0.0]])
    # all valid: Ā = 0, L̄ = −1.5 → (A − 0)(logπ + 1.5)
    torch.testing.assert_close(token_covariance(adv, logp, torch.ones(2, 2)), torch.tensor([[0.5, -1.5], [0.5, -1.5]]))
    # (1, 1) masked: Ā = 1/3, L̄ = −2 → (2/3)(1), (2/3)(−1), (−4/3)(0), masked → 0
    m = torch.tensor([[1, 1], [1, 0]])
    torch.testing.assert_close(token_covariance(adv, logp, m), torch.tensor([[2 / 3, -2 / 3], [0.0, 0.0]]))


@pytest.mark.parametrize("seed", range(3))
def test_token_covariance_equals_loop(seed):
    adv, logp, mask, g = _random(seed)
    adv = adv + torch.randn(adv.shape, generator=g) * 0.1  # per-token advantages too
    torch.testing.assert_close(token_covariance(adv, logp, mask), loop_covariance(adv, logp, mask), rtol=1e-5, atol=1e-6)


def test_token_covariance_is_detached_and_handles_empty_mask():
    logp = torch.randn(2, 3, requires_grad=True)
    assert not token_covariance(torch.randn(2, 3), logp, torch.ones(2, 3)).requires_grad
    assert torch.all(token_covariance(torch.randn(2, 3), logp, torch.zeros(2, 3)) == 0)


def test_token_covariance_shape_mismatch_raises():
    with pytest.raises(ValueError, match="must all be"):
        token_covariance(torch.zeros(2, 3), torch.zeros(2, 3), torch.ones(2, 4))


# ---------------------------------------------------------------- clip_cov
COV = torch.tensor([[1.0, 5.0, 3.0], [2.0, 4.0, 1.5]])
MASK = torch.tensor([[1, 1, 1], [1, 0, 1]])  # N = 5 valid tokens
CLIPPED = torch.tensor([[0, 0, 0], [1, 0, 0]])
# candidates: (0,0) cov = lb and (0,1) cov = ub are excluded (strict), (1,0) is already PPO-clipped,
# (1,1) is masked out → exactly (0,2) and (1,2)
CANDIDATES = [(0, 2), (1, 2)]


@pytest.mark.parametrize("ratio, n", [(0.5, 2), (0.4, 2), (1.0, 2), (0.39, 1), (0.2, 1), (2e-4, 1)])
def test_clip_cov_count_is_max_floor_rho_n_1_capped_by_candidates(ratio, n):
    # n = min(max(⌊ρ·5⌋, 1), 2): 0.39·5 = 1.95 → 1 (floor, not round); 0.4·5 = 2 (N counts every valid
    # token, not only candidates: ⌊0.4·2⌋ would give 1); ρ = 1 → 5, capped at the 2 candidates
    drop = clip_cov_select(COV, MASK, CLIPPED, ratio=ratio, lb=1.0, ub=5.0, generator=torch.Generator().manual_seed(0))
    chosen = _where(drop)
    assert len(chosen) == n
    assert set(chosen) <= set(CANDIDATES)


def test_clip_cov_bounds_are_strict_and_clipped_tokens_excluded():
    everything = dict(ratio=1.0, generator=torch.Generator().manual_seed(0))
    assert _where(clip_cov_select(COV, MASK, CLIPPED, lb=1.0, ub=5.0, **everything)) == CANDIDATES
    # widen the bounds: lb = 0.5 admits (0,0), ub = 5.5 admits (0,1); (1,0) stays excluded (clipped)
    assert _where(clip_cov_select(COV, MASK, CLIPPED, lb=0.5, ub=5.5, **everything)) == [(0, 0), (0, 1), (0, 2), (1, 2)]
    # not clipped any more: (1,0) becomes a candidate
    assert (1, 0) in _where(clip_cov_select(COV, MASK, torch.zeros_like(CLIPPED), lb=1.0, ub=5.0, **everything))
    # no candidate: nothing dropped, no randperm needed
    assert not clip_cov_select(COV, MASK, CLIPPED, lb=10.0, ub=20.0, **everything).any()


def test_clip_cov_a_single_candidate_is_dropped():
    only = clip_cov_select(COV, MASK, CLIPPED, ratio=1.0, lb=2.5, ub=5.0, generator=torch.Generator().manual_seed(0))
    assert _where(only) == [(0, 2)]  # cov 3: the one candidate in (2.5, 5)


def test_default_ratios_are_the_papers():
    """ρ = 2e-4 (Clip-Cov) and k = 2e-3 (KL-Cov) when not given: over 1000 valid tokens, 1 and 2 tokens."""
    mask = torch.ones(10, 100, dtype=torch.bool)
    cov = torch.arange(1000.0).view(10, 100) / 1000 + 2.0  # every token a Clip-Cov candidate (1 < cov < 5)
    assert int(clip_cov_select(cov, mask, torch.zeros_like(mask), generator=torch.Generator().manual_seed(0)).sum()) == 1
    assert _where(kl_cov_select(cov, mask)) == [(9, 98), (9, 99)]


def test_clip_cov_single_choice_follows_one_randperm():
    for seed in range(6):
        drop = clip_cov_select(COV, MASK, CLIPPED, ratio=0.2, generator=torch.Generator().manual_seed(seed))
        expected = CANDIDATES[torch.randperm(2, generator=torch.Generator().manual_seed(seed))[0]]
        assert _where(drop) == [expected]
        torch.manual_seed(seed)  # generator=None: the default CPU generator, as veRL
        drop_default = clip_cov_select(COV, MASK, CLIPPED, ratio=0.2)
        assert _where(drop_default) == [expected]


@pytest.mark.parametrize("seed", range(5))
def test_clip_cov_equals_loop_reference(seed):
    adv, logp, mask, g = _random(seed, b=8, t=12)
    cov = token_covariance(adv, logp, mask)
    clipped = torch.rand(mask.shape, generator=g) > 0.8
    lb, ub, ratio = 0.3, 4.0, 0.15
    ours = clip_cov_select(cov, mask, clipped, ratio, lb, ub, generator=torch.Generator().manual_seed(100 + seed))
    ref = loop_clip_cov(cov, mask, clipped, ratio, lb, ub, torch.Generator().manual_seed(100 + seed))
    assert 0 < len(ref)  # the reference does select something
    assert _where(ours) == ref
    n_cands = int((mask.bool() & ~clipped & (cov > lb) & (cov < ub)).sum())
    if n_cands > len(ref):  # a different seed gives a different choice
        other = clip_cov_select(cov, mask, clipped, ratio, lb, ub, generator=torch.Generator().manual_seed(999))
        assert len(_where(other)) == len(ref)


def test_clip_cov_different_seeds_choose_differently():
    adv, logp, mask, g = _random(0, b=8, t=12)
    cov = token_covariance(adv, logp, mask)
    picks = {tuple(_where(clip_cov_select(cov, mask, torch.zeros_like(mask), 0.05, 0.0, 10.0,
                                          torch.Generator().manual_seed(s)))) for s in range(5)}
    assert len(picks) > 1


# ---------------------------------------------------------------- kl_cov
KL_COV = torch.tensor([[0.5, 3.0, -1.0], [2.0, 9.0, 1.0]])  # 9.0 is masked out by MASK


@pytest.mark.parametrize("ratio, expected", [
    (0.5, [(0, 1), (1, 0)]),  # ⌊2.5⌋ = 2 → covariances 3 and 2 (the masked 9 never counts)
    (0.59, [(0, 1), (1, 0)]),  # ⌊2.95⌋ = 2
    (2e-3, [(0, 1)]),  # max(⌊0.01⌋, 1) = 1
    (1.0, [(0, 0), (0, 1), (0, 2), (1, 0), (1, 2)]),
])
def test_kl_cov_by_hand(ratio, expected):
    assert _where(kl_cov_select(KL_COV, MASK, ratio)) == expected


@pytest.mark.parametrize("seed", range(4))
def test_kl_cov_equals_loop_reference(seed):
    adv, logp, mask, _ = _random(seed, b=7, t=11)
    cov = token_covariance(adv, logp, mask)
    for ratio in (2e-3, 0.1, 0.33):
        assert _where(kl_cov_select(cov, mask, ratio)) == loop_kl_cov(cov, mask, ratio)


def test_kl_cov_empty_mask():
    assert not kl_cov_select(KL_COV, torch.zeros_like(MASK), 0.5).any()


# ---------------------------------------------------------------- top_entropy
H = torch.tensor([[0.1, 0.9, 0.5], [0.7, 0.3, 5.0]])
H_MASK = torch.tensor([[1, 1, 1], [1, 1, 0]])  # 5.0 is masked out; N = 5


@pytest.mark.parametrize("rho, kept", [
    (0.2, [(0, 1)]),  # ⌈1⌉ = 1: only 0.9 (the masked 5.0 does not count)
    (0.4, [(0, 1), (1, 0)]),  # 0.9, 0.7
    (0.5, [(0, 1), (0, 2), (1, 0)]),  # ⌈2.5⌉ = 3: 0.9, 0.7, 0.5
    (1.0, [(0, 0), (0, 1), (0, 2), (1, 0), (1, 1)]),
])
def test_top_entropy_by_hand(rho, kept):
    drop = top_entropy_select(H, H_MASK, rho)
    kept_mask = H_MASK.bool() & ~drop
    assert _where(kept_mask) == kept
    assert not drop[1, 2]  # masked tokens are never "dropped" (they do not count anyway)


def test_top_entropy_count_is_not_fooled_by_float_rounding():
    h = torch.arange(10.0).view(2, 5)
    m = torch.ones(2, 5)
    assert int((~top_entropy_select(h, m, 0.2)).sum()) == 2  # 0.2·10 → 2
    # ρ from arithmetic (a controller stepping by 0.1): 3·0.1 = 0.30000000000000004, ·10 = 3.0000000000000004
    assert int((~top_entropy_select(h, m, 3 * 0.1)).sum()) == 3  # → 3 kept, not 4


def test_top_entropy_keeps_at_least_one_token_and_defaults_to_the_papers_rho():
    h = torch.arange(10.0).view(2, 5)
    m = torch.ones(2, 5)
    assert _where(~top_entropy_select(h, m, 1e-12)) == [(1, 4)]  # ⌈ρ·N⌉ rounds to 0: still one token kept
    assert int((~top_entropy_select(h, m)).sum()) == 2  # ρ = 0.2 of 10


def test_top_entropy_ties_are_kept():
    h = torch.full((2, 3), 0.5)
    assert not top_entropy_select(h, torch.ones(2, 3), 0.2).any()


@pytest.mark.parametrize("seed", range(4))
def test_top_entropy_equals_loop_reference(seed):
    g = torch.Generator().manual_seed(seed)
    h = torch.rand(6, 10, generator=g) * 3
    mask = (torch.rand(6, 10, generator=g) > 0.3).int()
    for rho in (0.05, 0.2, 0.5, 0.9):
        drop = top_entropy_select(h, mask, rho)
        assert _where(mask.bool() & ~drop) == loop_top_entropy_kept(h, mask, rho)


def test_top_entropy_normaliser_still_counts_every_valid_token():
    # r = 1, A = +1 → per-token loss −1; ρ = 0.4 keeps 2 of the 5 valid tokens:
    # token-mean loss = −2 / 5 (not −2 / 2); gradient −1/5 on kept tokens, 0 on dropped ones
    logp = torch.full((2, 3), -1.0, requires_grad=True)
    cfg = loss_preset("top_entropy", top_entropy_rho=0.4, selection_scope="microbatch")
    x = PolicyInputs(logp, logp.detach().clone(), torch.ones(2), H_MASK, token_entropy=H)
    out = policy_loss(cfg, x, Normalizer.from_mask(H_MASK))
    out.loss.backward()
    assert out.loss.item() == pytest.approx(-0.4)
    torch.testing.assert_close(logp.grad, torch.tensor([[0.0, -0.2, 0.0], [-0.2, 0.0, 0.0]]))
    assert out.metrics["dropped_frac"].item() == pytest.approx(3 / 5)


def test_top_entropy_empty_mask():
    assert not top_entropy_select(H, torch.zeros_like(H_MASK), 0.2).any()


# ---------------------------------------------------------------- Selection
def test_selection_rows_slices_both_masks():
    drop = torch.tensor([[True, False], [False, True], [True, True]])
    sel = Selection(drop=drop, penalize=~drop)
    part = sel.rows(slice(1, 3))
    assert part.drop.tolist() == drop[1:3].tolist() and part.penalize.tolist() == (~drop)[1:3].tolist()
    assert Selection().rows(slice(0, 1)) == Selection()
