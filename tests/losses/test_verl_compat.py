"""``selection_scope: microbatch`` reproduces veRL 0.9's policy losses exactly (ALGORITHMS.md §1.4).

The reference functions below are our own transcription of the per-token semantics of veRL 0.9's
``compute_policy_loss_vanilla``, ``compute_policy_loss_clip_cov`` and ``compute_policy_loss_kl_cov``
(verl/trainer/ppo/core_algos.py), written for this test with token-mean aggregation over the
micro-batch. The last test calls the real veRL when it is installed (skipped otherwise).
"""

from __future__ import annotations

import pytest
import torch

from entrostat.config.recipes import loss_preset
from entrostat.losses import (
    Normalizer,
    PolicyInputs,
    policy_loss,
    select_tokens,
)


# ---------------------------------------------------------------- reference transcriptions
def verl_masked_mean(values, mask):
    return (values * mask).sum() / (mask.sum() + 1e-8)


def verl_vanilla(old, logp, adv, mask, eps_low, eps_high, c):
    """Log-ratio clamped to ±20; max(pg1, pg2); for A < 0 min with −A·c (dual clip); token-mean."""
    ratio = torch.exp(torch.clamp(logp - old, -20.0, 20.0))
    pg1 = -adv * ratio
    pg2 = -adv * torch.clamp(ratio, 1 - eps_low, 1 + eps_high)
    l1 = torch.maximum(pg1, pg2)
    pg3 = -adv * c
    per_token = torch.where(adv < 0, torch.min(pg3, l1), l1)
    return verl_masked_mean(per_token, mask), per_token


def verl_clip_cov(old, logp, adv, mask, eps_low, eps_high, ratio_frac, lb, ub):
    """No dual clip, no log-ratio clamp; covariance over the micro-batch; one randperm on the default
    generator over the row-major candidates; the first min(n, #candidates) get corr = 0."""
    ratio = torch.exp(logp - old)
    pg1 = -adv * ratio
    pg2 = -adv * torch.clamp(ratio, 1 - eps_low, 1 + eps_high)
    clip_by_origin = (pg2 > pg1) & (mask > 0)
    cov = (adv - verl_masked_mean(adv, mask)) * (logp - verl_masked_mean(logp.detach(), mask))
    cov = cov.detach().clone()
    cov[mask == 0] = -torch.inf
    cov[clip_by_origin] = -torch.inf
    n = max(int(ratio_frac * mask.sum().item()), 1)
    idx = torch.nonzero((cov < ub) & (cov > lb) & (mask > 0))
    corr = torch.ones_like(adv)
    if len(idx) > 0:
        perm = torch.randperm(len(idx))
        idx = idx[perm[: min(n, len(idx))]]
        corr[idx[:, 0], idx[:, 1]] = 0
    per_token = torch.maximum(pg1, pg2) * corr
    return verl_masked_mean(per_token, mask), per_token, corr == 0


def verl_kl_cov(old, logp, adv, mask, k_frac, coef):
    """r = exp(logπ − old), no clamp; valid tokens flattened row-major; top max(1, ⌊N·k⌋) covariances
    (torch.topk, largest) get −A·r + β·|logπ − old|, the others −A·r."""
    log_ratio = logp - old
    ratio = torch.exp(log_ratio)
    pg1 = -adv * ratio
    pg_kl = -adv * ratio + coef * log_ratio.abs()
    per_token = pg1.clone()
    valid = mask > 0
    valid_idx = torch.nonzero(valid.reshape(-1), as_tuple=True)[0]
    va, vl = adv[valid].detach().reshape(-1), logp[valid].detach().reshape(-1)
    chosen = torch.zeros_like(valid)
    if len(va) > 0:
        cov = (va - va.mean()) * (vl - vl.mean())
        top = torch.topk(cov, max(1, int(len(cov) * k_frac)), largest=True).indices
        flat = valid_idx[top]
        rows, cols = flat // adv.shape[1], flat % adv.shape[1]
        per_token[rows, cols] = pg_kl[rows, cols]
        chosen[rows, cols] = True
    return verl_masked_mean(per_token, mask), per_token, chosen


# ---------------------------------------------------------------- data: several micro-batches
def micro_batches(n=4, b=4, t=10, seed=0):
    g = torch.Generator().manual_seed(seed)
    out = []
    for i in range(n):
        logp = -torch.rand(b, t, generator=g) * 6  # wide spread: covariances reach (1, 5)
        old = logp + torch.randn(b, t, generator=g) * 0.3  # ratios e^±0.3·k: PPO clipping happens
        adv = torch.randn(b, 1, generator=g).expand(b, t) * 1.5 + torch.randn(b, t, generator=g) * 0.2
        lengths = torch.randint(1, t + 1, (b,), generator=g)
        mask = (torch.arange(t)[None, :] < lengths[:, None]).float()
        if i == 2:
            adv = torch.zeros(b, t)  # a micro-batch without Clip-Cov candidates (cov ≡ 0)
        out.append((logp, old, adv.contiguous(), mask))
    return out


def ours(cfg, logp, old, adv, mask):
    """(loss, ∂loss/∂logπ) of our policy_loss on one micro-batch (its own normaliser, as veRL)."""
    lp = logp.clone().requires_grad_(True)
    out = policy_loss(cfg, PolicyInputs(lp, old, adv, mask), Normalizer.from_mask(mask))
    out.loss.backward()
    return out.loss.detach(), lp.grad, out.metrics


def reference(fn, logp, *args):
    lp = logp.clone().requires_grad_(True)
    loss, per_token, *sel = fn(args[0], lp, *args[1:])
    loss.backward()
    return loss.detach(), lp.grad, per_token.detach(), (sel[0] if sel else None)


def our_selection(cfg, logp, old, adv, mask):
    s = select_tokens(cfg, advantages=adv, logprobs=logp, old_logprobs=old, mask=mask)
    return s.drop if s.drop is not None else s.penalize


# ---------------------------------------------------------------- vanilla
@pytest.mark.parametrize("eps_low, eps_high, c", [(0.2, 0.2, 3.0), (0.2, 0.28, 10.0), (0.1, 0.3, 1.5)])
def test_vanilla_equals_verl(eps_low, eps_high, c):
    cfg = loss_preset("grpo", eps_low=eps_low, eps_high=eps_high, dual_clip=c)
    for logp, old, adv, mask in micro_batches(seed=1):
        old = old.clone()
        old[0, 0], old[1, 0] = logp[0, 0] - 25.0, logp[1, 0] + 25.0  # log-ratios beyond the ±20 clamp
        loss, grad, _ = ours(cfg, logp, old, adv, mask)
        ref_loss, ref_grad, per_token, _ = reference(verl_vanilla, logp, old, adv, mask, eps_low, eps_high, c)
        torch.testing.assert_close(loss, ref_loss, rtol=1e-6, atol=1e-6)
        torch.testing.assert_close(grad, ref_grad, rtol=1e-6, atol=1e-7)


# ---------------------------------------------------------------- clip_cov
CLIP_COV_CASES = [
    dict(clip_cov_ratio=0.1),  # several tokens per micro-batch
    dict(clip_cov_ratio=2e-4),  # the paper's ρ = 2e-4: one token per micro-batch
    dict(clip_cov_ratio=0.05, clip_cov_lb=0.5, clip_cov_ub=3.0, eps_low=0.1, eps_high=0.28),
]


@pytest.mark.parametrize("case", CLIP_COV_CASES)
def test_clip_cov_equals_verl_reseeded_per_micro_batch(case):
    # veRL's clip_cov applies no dual clip: dual_clip=None
    cfg = loss_preset("clip_cov", selection_scope="microbatch", dual_clip=None, **case)
    saw_choice, saw_excluded = False, False
    for s, (logp, old, adv, mask) in enumerate(micro_batches()):
        args = (old, adv, mask, cfg.eps_low, cfg.eps_high, cfg.clip_cov_ratio, cfg.clip_cov_lb, cfg.clip_cov_ub)
        torch.manual_seed(s)
        loss, grad, metrics = ours(cfg, logp, old, adv, mask)
        torch.manual_seed(s)
        sel = our_selection(cfg, logp, old, adv, mask)
        torch.manual_seed(s)
        ref_loss, ref_grad, _, ref_drop = reference(verl_clip_cov, logp, *args)
        assert torch.equal(sel, ref_drop)
        torch.testing.assert_close(loss, ref_loss, rtol=1e-6, atol=1e-6)
        torch.testing.assert_close(grad, ref_grad, rtol=1e-6, atol=1e-7)
        assert metrics["dropped_frac"].item() == pytest.approx(ref_drop.sum().item() / mask.sum().item())
        # meaningfulness: a random choice among more candidates than chosen, and PPO-clipped exclusions
        cov = (adv - verl_masked_mean(adv, mask)) * (logp - verl_masked_mean(logp, mask))
        ratio = torch.exp(logp - old)
        clipped = (-adv * torch.clamp(ratio, 1 - cfg.eps_low, 1 + cfg.eps_high) > -adv * ratio) & (mask > 0)
        in_band = (cov > cfg.clip_cov_lb) & (cov < cfg.clip_cov_ub) & (mask > 0)
        saw_choice |= int((in_band & ~clipped).sum()) > int(ref_drop.sum()) > 0
        saw_excluded |= bool((in_band & clipped).any())
    assert saw_choice and saw_excluded


def test_clip_cov_equals_verl_over_one_seeded_stream():
    """One seed for the whole sequence of micro-batches: both draw from the default generator exactly
    as often (no draw for the micro-batch without candidates), so the streams stay in step."""
    cfg = loss_preset("clip_cov", selection_scope="microbatch", dual_clip=None, clip_cov_ratio=0.1)
    batches = micro_batches(seed=3)
    torch.manual_seed(1234)
    ours_out = [ours(cfg, *mb) for mb in batches]
    torch.manual_seed(1234)
    ref_out = [reference(verl_clip_cov, mb[0], mb[1], mb[2], mb[3], 0.2, 0.2, 0.1, 1.0, 5.0) for mb in batches]
    for (loss, grad, _), (ref_loss, ref_grad, _, _) in zip(ours_out, ref_out):
        torch.testing.assert_close(loss, ref_loss, rtol=1e-6, atol=1e-6)
        torch.testing.assert_close(grad, ref_grad, rtol=1e-6, atol=1e-7)
    # a different seed changes the choice (the comparison above depends on the seed)
    torch.manual_seed(99)
    other = [ours(cfg, *mb)[1] for mb in batches]
    assert any(not torch.equal(a, b[1]) for a, b in zip(other, ours_out))


# ---------------------------------------------------------------- kl_cov
@pytest.mark.parametrize("k, beta", [(0.1, 1.0), (0.2, 0.1), (2e-3, 1.0)])
def test_kl_cov_equals_verl(k, beta):
    cfg = loss_preset("kl_cov", selection_scope="microbatch", kl_cov_ratio=k, kl_cov_coef=beta)
    for s, (logp, old, adv, mask) in enumerate(micro_batches(seed=2)):
        torch.manual_seed(s)
        loss, grad, metrics = ours(cfg, logp, old, adv, mask)
        torch.manual_seed(s)
        ref_loss, ref_grad, _, ref_sel = reference(verl_kl_cov, logp, old, adv, mask, k, beta)
        sel = our_selection(cfg, logp, old, adv, mask)
        assert torch.equal(sel, ref_sel)
        assert int(sel.sum()) == max(1, int(mask.sum().item() * k))
        torch.testing.assert_close(loss, ref_loss, rtol=1e-6, atol=1e-6)
        torch.testing.assert_close(grad, ref_grad, rtol=1e-6, atol=1e-7)
        assert metrics["penalized_frac"].item() == pytest.approx(sel.sum().item() / mask.sum().item())


# ---------------------------------------------------------------- the real veRL, when installed
@pytest.mark.parametrize("mode", ["vanilla", "clip_cov", "kl_cov"])
def test_against_installed_verl(mode):
    pytest.importorskip("verl")
    omegaconf = pytest.importorskip("omegaconf")
    from verl.trainer.ppo.core_algos import get_policy_loss_fn

    conf = omegaconf.OmegaConf.create({
        "clip_ratio": 0.2, "clip_ratio_low": 0.2, "clip_ratio_high": 0.2, "clip_ratio_c": 3.0,
        "loss_agg_mode": "token-mean", "global_batch_info": {},
        "policy_loss": {"loss_mode": mode, "clip_cov_ratio": 0.1, "clip_cov_lb": 1.0, "clip_cov_ub": 5.0,
                        "kl_cov_ratio": 0.1, "ppo_kl_coef": 1.0},
    })
    cfg = {
        "vanilla": loss_preset("grpo"),
        "clip_cov": loss_preset("clip_cov", selection_scope="microbatch", dual_clip=None, clip_cov_ratio=0.1),
        "kl_cov": loss_preset("kl_cov", selection_scope="microbatch", kl_cov_ratio=0.1),
    }[mode]
    fn = get_policy_loss_fn(mode)
    for s, (logp, old, adv, mask) in enumerate(micro_batches(seed=4)):
        torch.manual_seed(s)
        loss, _, _ = ours(cfg, logp, old, adv, mask)
        torch.manual_seed(s)
        out = fn(old_log_prob=old, log_prob=logp, advantages=adv, response_mask=mask, loss_agg_mode="token-mean", config=conf)
        verl_loss = out[0] if isinstance(out, tuple) else out
        torch.testing.assert_close(loss, verl_loss.detach().float(), rtol=1e-5, atol=1e-6)
