"""Per-token surrogates (ALGORITHMS.md §1.3): hand-computed values, clip masks, closed-form gradients.

Tokens are given as (r, A) pairs with log π_old = −3 and log π_θ = −3 + ln r, so the ratios are exact.
"""

from __future__ import annotations

import math

import pytest
import torch

from entrostat.losses import SURROGATES, ClipParams, FlexBounds, importance_ratio

INF = float("inf")
OLD = -3.0


def tokens(pairs, old=OLD):
    """(logprobs (1, K) leaf with grad, old_logprobs (1, K), advantages (1, K)) from (r, A) pairs."""
    r = torch.tensor([[p[0] for p in pairs]], dtype=torch.float64)
    adv = torch.tensor([[p[1] for p in pairs]], dtype=torch.float64)
    old_lp = torch.full_like(r, old) if not isinstance(old, torch.Tensor) else old.double().view(1, -1)
    logp = (old_lp + r.log()).requires_grad_(True)
    return logp, old_lp, adv


def run(name, pairs, params=ClipParams(), old=OLD):
    """(loss list, ∂(Σ loss)/∂logπ list, SurrogateOut)."""
    logp, old_lp, adv = tokens(pairs, old)
    out = SURROGATES.get(name)(logp, old_lp, adv, params)
    out.loss.sum().backward()
    return out.loss.detach()[0].tolist(), logp.grad[0].tolist(), out


def masks(out):
    return out.clipped_low[0].tolist(), out.clipped_high[0].tolist(), out.dual_clipped[0].tolist()


# ---------------------------------------------------------------- ppo_clip
def test_ppo_clip_symmetric_with_dual_clip_by_hand():
    # ε = 0.2 / 0.2, c = 3.  loss = max(−A·r, −A·clip(r, 0.8, 1.2)), then min(·, −A·c) for A < 0
    pairs = [(0.5, 1), (1.5, 1), (1.1, 1), (0.5, -1), (1.5, -1), (4.0, -1), (4.0, -2), (2.5, -1), (1.0, 0)]
    loss, grad, out = run("ppo_clip", pairs)
    expected = [
        -0.5,  # max(−0.5, −0.8)           A > 0, r low: not clipped
        -1.2,  # max(−1.5, −1.2)           clipped high
        -1.1,  # inside the trust region
        0.8,  # max(0.5, 0.8)              clipped low
        1.5,  # max(1.5, 1.2)              A < 0, r high: not clipped
        3.0,  # max(4, 1.2) = 4 → min(4, 3)   dual clip
        6.0,  # max(8, 2.4) = 8 → min(8, 6)   dual clip
        2.5,  # 2.5 < 3: no dual clip
        0.0,
    ]
    assert loss == pytest.approx(expected)
    # ∂L/∂logπ = ∂L/∂r · r: −A·r where unclipped, 0 where clipped or dual-clipped
    assert grad == pytest.approx([-0.5, 0.0, -1.1, 0.0, 1.5, 0.0, 0.0, 2.5, 0.0])
    low, high, dual = masks(out)
    assert low == [False, False, False, True, False, False, False, False, False]
    assert high == [False, True, False, False, False, False, False, False, False]
    assert dual == [False, False, False, False, False, True, True, False, False]


def test_ppo_clip_decoupled_bounds_by_hand():
    # ε_low = 0.1 (r ≥ 0.9), ε_high = 0.3 (r ≤ 1.3), no dual clip
    p = ClipParams(eps_low=0.1, eps_high=0.3, dual_clip=None)
    pairs = [(1.25, 1), (1.4, 1), (0.85, -1), (0.75, 1), (4.0, -1)]
    loss, grad, out = run("ppo_clip", pairs, p)
    assert loss == pytest.approx([-1.25, -1.3, 0.9, -0.75, 4.0])
    assert grad == pytest.approx([-1.25, 0.0, 0.0, -0.75, 4.0])
    low, high, dual = masks(out)
    assert low == [False, False, True, False, False] and high == [False, True, False, False, False]
    assert not any(dual)
    # the same tokens under symmetric ε = 0.2: 1.25 is clipped (→ −1.2), 1.4 too (→ −1.2), 0.85 is not (→ 0.85)
    loss_sym, _, _ = run("ppo_clip", pairs[:3], ClipParams(dual_clip=None))
    assert loss_sym == pytest.approx([-1.2, -1.2, 0.85])


def test_ppo_clip_dapo_dual_clip_10():
    loss, grad, out = run("ppo_clip", [(4.0, -1), (12.0, -1), (12.0, 1)], ClipParams(eps_high=0.28, dual_clip=10.0))
    assert loss == pytest.approx([4.0, 10.0, -1.28])
    assert grad == pytest.approx([4.0, 0.0, 0.0])
    assert masks(out)[2] == [False, True, False]


def test_ppo_clip_per_token_tensor_bounds():
    logp, old, adv = tokens([(1.25, 1), (1.25, 1)])
    eps_high = torch.tensor([[0.1, 0.3]])
    out = SURROGATES.get("ppo_clip")(logp, old, adv, ClipParams(eps_high=eps_high))
    assert out.loss[0].tolist() == pytest.approx([-1.1, -1.25])
    assert out.clipped_high[0].tolist() == [True, False]


def test_infinite_bounds_clip_nothing_ppo_clip_equals_pg():
    g = torch.Generator().manual_seed(0)
    logp = (torch.randn(4, 9, generator=g, dtype=torch.float64) - 2).requires_grad_(True)
    old = logp.detach() + torch.randn(4, 9, generator=g, dtype=torch.float64) * 1.5  # ratios e^±3
    adv = torch.randn(4, 9, generator=g, dtype=torch.float64)
    a = SURROGATES.get("ppo_clip")(logp, old, adv, ClipParams(eps_low=INF, eps_high=INF, dual_clip=None))
    (ga,) = torch.autograd.grad(a.loss.sum(), logp)
    b = SURROGATES.get("pg")(logp, old, adv, ClipParams())
    (gb,) = torch.autograd.grad(b.loss.sum(), logp)
    torch.testing.assert_close(a.loss, b.loss)
    torch.testing.assert_close(ga, gb)
    assert not (a.clipped_low.any() or a.clipped_high.any() or a.dual_clipped.any())
    # ... while the default bounds do clip these tokens (the comparison above could fail)
    c = SURROGATES.get("ppo_clip")(logp, old, adv, ClipParams())
    assert c.clipped_low.any() and c.clipped_high.any() and not torch.allclose(c.loss, b.loss)


# ---------------------------------------------------------------- pg / reinforce
def test_pg_by_hand():
    loss, grad, out = run("pg", [(4.0, -1), (1.5, 1), (0.5, 2)])
    assert loss == pytest.approx([4.0, -1.5, -1.0])  # −A·r, no clipping whatever the bounds
    assert grad == pytest.approx([4.0, -1.5, -1.0])
    assert not any(sum(masks(out), []))


def test_reinforce_by_hand():
    # −A·logπ: logπ = −3 + ln r
    loss, grad, out = run("reinforce", [(0.5, 1), (1.0, -2), (2.0, 0.5)])
    assert loss == pytest.approx([3 + math.log(2), 2 * -3.0, -0.5 * (-3 + math.log(2))])
    assert grad == pytest.approx([-1.0, 2.0, -0.5])  # −A
    assert not any(sum(masks(out), []))


@pytest.mark.parametrize("name", ["ppo_clip", "pg", "gppo", "ce_gppo", "flex_clip"])
def test_reinforce_gradient_equals_others_at_ratio_one(name):
    g = torch.Generator().manual_seed(1)
    logp = (torch.rand(3, 7, generator=g, dtype=torch.float64) * -4).requires_grad_(True)
    old = logp.detach().clone()  # r = 1 exactly
    adv = torch.randn(3, 7, generator=g, dtype=torch.float64)
    (g_ref,) = torch.autograd.grad(SURROGATES.get("reinforce")(logp, old, adv, ClipParams()).loss.sum(), logp)
    (g_other,) = torch.autograd.grad(SURROGATES.get(name)(logp, old, adv, ClipParams()).loss.sum(), logp)
    torch.testing.assert_close(g_other, g_ref)
    torch.testing.assert_close(g_ref, -adv)


# ---------------------------------------------------------------- gppo / ce_gppo: ∇L = −F·A·∇logπ
# (r, A) → region: the four corners of (ratio low / high) × (A < 0 / A > 0), the middle, the dual clip.
REGIONS = [(0.5, -1.0), (0.5, 1.0), (1.5, 1.0), (1.5, -1.0), (1.0, 1.0), (1.0, -1.0), (0.95, -2.0), (4.0, -1.0)]


def closed_form_factor(r, a, beta1, beta2, eps_low=0.2, eps_high=0.2, c=3.0):
    if r < 1 - eps_low and a < 0:
        return beta1 * (1 - eps_low)
    if r > 1 + eps_high and a > 0:
        return beta2 * (1 + eps_high)
    if a < 0 and -a * r > -a * c:
        return 0.0  # dual clip: constant
    return r


@pytest.mark.parametrize("name, beta1, beta2", [("gppo", 1.0, 1.0), ("ce_gppo", 0.5, 1.0), ("ce_gppo", 0.3, 2.0)])
def test_gradient_factor_in_every_region(name, beta1, beta2):
    loss, grad, out = run(name, REGIONS, ClipParams(beta1=beta1, beta2=beta2))
    for (r, a), gi in zip(REGIONS, grad):
        assert gi == pytest.approx(-closed_form_factor(r, a, beta1, beta2) * a), (r, a)
    # values: clipped regions −β·bound·A (r/sg(r) = 1), elsewhere −A·r, dual clip −A·c
    b1, b2 = (1.0, 1.0) if name == "gppo" else (beta1, beta2)
    assert loss == pytest.approx([b1 * 0.8, -0.5, -b2 * 1.2, 1.5, -1.0, 1.0, 1.9, 3.0])
    low, high, dual = masks(out)
    assert low == [True] + [False] * 7 and high == [False, False, True] + [False] * 5
    assert dual == [False] * 7 + [True]


def test_gppo_by_hand_numbers():
    # ce_gppo defaults β₁ = 0.5, β₂ = 1: (0.5, −2) → value −0.5·0.8·(−2) = 0.8, ∂/∂logπ = −0.4·(−2) = 0.8
    #                                     (1.5, +2) → value −1·1.2·2 = −2.4, ∂/∂logπ = −1.2·2 = −2.4
    loss, grad, _ = run("ce_gppo", [(0.5, -2.0), (1.5, 2.0)])
    assert loss == pytest.approx([0.8, -2.4]) and grad == pytest.approx([0.8, -2.4])
    # gppo forces β₁ = β₂ = 1 whatever the params say: (0.5, −2) → 1.6
    loss, grad, _ = run("gppo", [(0.5, -2.0), (1.5, 2.0)], ClipParams(beta1=0.5, beta2=3.0))
    assert loss == pytest.approx([1.6, -2.4]) and grad == pytest.approx([1.6, -2.4])


def test_gppo_gradient_differs_from_ppo_clip_only_where_clipped():
    g = torch.Generator().manual_seed(2)
    logp = (torch.rand(4, 8, generator=g, dtype=torch.float64) * -4).requires_grad_(True)
    old = logp.detach() + torch.randn(4, 8, generator=g, dtype=torch.float64) * 0.5
    adv = torch.randn(4, 8, generator=g, dtype=torch.float64)
    a = SURROGATES.get("gppo")(logp, old, adv, ClipParams())
    b = SURROGATES.get("ppo_clip")(logp, old, adv, ClipParams())
    (ga,) = torch.autograd.grad(a.loss.sum(), logp)
    (gb,) = torch.autograd.grad(b.loss.sum(), logp)
    clipped = b.clipped_low | b.clipped_high
    assert clipped.any()
    torch.testing.assert_close(ga[~clipped], gb[~clipped])
    assert torch.all(gb[clipped] == 0) and torch.all(ga[clipped] != 0)
    torch.testing.assert_close(a.loss, b.loss)  # β = 1: the forward values equal ppo_clip's


# ---------------------------------------------------------------- flex_clip
def test_flex_bounds_by_hand():
    # ε⁺(p) = 0.28 − 0.18·p, ε⁻(p) = 0.30 − 0.20·p
    lo, hi = FlexBounds().bounds(torch.tensor([[0.5, 0.1, 1.0]]).log())
    torch.testing.assert_close(hi, torch.tensor([[0.19, 0.262, 0.10]]))
    torch.testing.assert_close(lo, torch.tensor([[0.20, 0.28, 0.10]]))
    # blending with ε_std = 0.2: w = 0.5 → 0.5·0.262 + 0.5·0.2 = 0.231; w = 0 → ε_std
    lo, hi = FlexBounds(weight_high=0.5, weight_low=0.0).bounds(torch.tensor([[0.1]]).log())
    assert hi.item() == pytest.approx(0.231) and lo.item() == pytest.approx(0.2)


def test_flex_clip_per_token_bounds_by_hand():
    p_old = torch.tensor([0.5, 0.1, 0.1, 0.5, 1.0])
    pairs = [(1.25, 1), (1.25, 1), (0.75, -1), (0.75, -1), (1.15, 1)]
    loss, grad, out = run("flex_clip", pairs, old=p_old.log())
    # a: hi = 1.19 → clipped −1.19;  b: hi = 1.262 → −1.25;  c: lo = 0.72 → 0.75;
    # d: lo = 0.80 → clipped 0.8;   e: hi = 1.10 → clipped −1.10
    assert loss == pytest.approx([-1.19, -1.25, 0.75, 0.8, -1.10])
    assert grad == pytest.approx([0.0, -1.25, 0.75, 0.0, 0.0])
    low, high, _ = masks(out)
    assert low == [False, False, False, True, False] and high == [True, False, False, False, True]
    # schedule blend: weight_high = 0 gives the standard ε⁺ = 0.2 (b: −1.2, e: −1.15); weight_low = 0: ε⁻ = 0.2 (c: 0.8)
    flex = FlexBounds(weight_high=0.0, weight_low=0.0)
    loss, _, _ = run("flex_clip", pairs, ClipParams(flex=flex), old=p_old.log())
    assert loss == pytest.approx([-1.2, -1.2, 0.8, 0.8, -1.15])


def test_flex_clip_ignores_scalar_eps():
    pairs = [(1.25, 1)]
    a, _, _ = run("flex_clip", pairs, ClipParams(eps_high=5.0), old=torch.tensor([0.1]).log())
    b, _, _ = run("flex_clip", pairs, ClipParams(eps_high=0.0), old=torch.tensor([0.1]).log())
    assert a == b == pytest.approx([-1.25])


# ---------------------------------------------------------------- ratio, registry
def test_importance_ratio_clamps_log_ratio_at_20():
    logp = torch.tensor([[50.0, -50.0, 1.0]], requires_grad=True)
    r = importance_ratio(logp, torch.zeros(1, 3))
    torch.testing.assert_close(r, torch.tensor([[math.exp(20), math.exp(-20), math.e]]))
    r.sum().backward()
    assert logp.grad[0, :2].tolist() == [0.0, 0.0]  # beyond the clamp: constant


def test_registry_names_and_unknown_name():
    assert {"ppo_clip", "pg", "reinforce", "gppo", "ce_gppo", "flex_clip"} <= set(SURROGATES.names())
    with pytest.raises(ValueError) as e:
        SURROGATES.get("ppo_clp")
    assert "did you mean 'ppo_clip'" in str(e.value) and "reinforce" in str(e.value)


# ---------------------------------------------------------------- edges: ties at the bounds, zero advantages
def test_a_positive_advantage_below_one_clipped_high_is_not_counted_low():
    # A = 0.5 > 0 at r = 1.5 > 1.2: clipped high only (the sign of A decides the side, not its size)
    _, _, out = run("ppo_clip", [(1.5, 0.5), (0.5, -0.5)])
    assert masks(out) == ([False, True], [True, False], [False, False])


@pytest.mark.parametrize("name", ["ppo_clip", "gppo", "ce_gppo"])
def test_zero_advantage_tokens_are_never_counted_clipped(name):
    loss, grad, out = run(name, [(0.1, 0.0), (3.0, 0.0), (1.0, 0.0)])
    assert loss == [0.0, 0.0, 0.0] and grad == [0.0, 0.0, 0.0]
    assert masks(out) == ([False] * 3, [False] * 3, [False] * 3)


def test_gppo_bounds_are_strict():
    """At r exactly on a bound the token is not clipped: its value is the plain −A·r, not β·bound·A (ε = 0 puts
    both bounds at r = 1, where exp(0) is exact; β ≠ 1 makes the two values differ)."""
    p = ClipParams(eps_low=0.0, eps_high=0.0, dual_clip=None, beta1=0.5, beta2=2.0)
    loss, grad, out = run("ce_gppo", [(1.0, -1.0), (1.0, 1.0)], p)
    assert loss == [1.0, -1.0] and grad == [1.0, -1.0]
    assert masks(out) == ([False, False], [False, False], [False, False])
