"""The composed objective (losses/objective.py): micro-batch and rank invariance, regularisers, bad input."""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass

import pytest
import torch

from entrostat import ops
from entrostat.config.recipes import load_recipe, loss_preset, recipe_names
from entrostat.losses import (
    AGGREGATIONS,
    AuxiliaryInputs,
    auxiliary_reinforce_loss,
    KL_ESTIMATORS,
    Normalizer,
    PolicyInputs,
    Selection,
    compute_advantages,
    group_ids_from_size,
    objective,
    needs_selection_prepass,
    needs_token_entropy,
    policy_loss,
    select_tokens,
)

# The loss sections of the YAML recipes, the only presets (flex_clip: the flex recipes' surrogate).
LOSS_PRESETS = {n: load_recipe(n).get("loss", {}) for n in recipe_names()}
SELECTION_PRESETS = sorted(n for n, p in LOSS_PRESETS.items() if p.get("selection", "none") != "none")
B, T, V, D = 8, 6, 11, 5


# ---------------------------------------------------------------- a tiny differentiable "policy"
@dataclass
class Problem:
    model: torch.nn.Linear
    feats: torch.Tensor  # (B, T, D)
    labels: torch.Tensor  # (B, T)
    mask: torch.Tensor  # (B, T) ragged
    old: torch.Tensor  # (B, T) perturbed from the current log-probs: clipping happens
    ref: torch.Tensor  # (B, T)
    adv: torch.Tensor  # (B,)
    correct: torch.Tensor  # (B,) bool

    def forward(self, sl=slice(None)):
        logits = self.model(self.feats[sl])  # (b, T, V) float64
        return ops.logprobs_and_entropy(logits, self.labels[sl], chunk=7)

    def inputs(self, sl=slice(None)):
        logp, ent = self.forward(sl)
        return PolicyInputs(logp, self.old[sl], self.adv[sl], self.mask[sl], token_entropy=ent,
                            ref_logprobs=self.ref[sl], is_correct=self.correct[sl])


def make_problem(seed=0) -> Problem:
    g = torch.Generator().manual_seed(seed)
    model = torch.nn.Linear(D, V, dtype=torch.float64)
    with torch.no_grad():
        model.weight.copy_(torch.randn(V, D, generator=g, dtype=torch.float64) * 1.5)
        model.bias.copy_(torch.randn(V, generator=g, dtype=torch.float64))
    feats = torch.randn(B, T, D, generator=g, dtype=torch.float64)
    labels = torch.randint(0, V, (B, T), generator=g)
    lengths = torch.tensor([6, 1, 3, 6, 2, 5, 4, 6])
    mask = (torch.arange(T)[None, :] < lengths[:, None]).int()
    with torch.no_grad():
        logp = ops.logprobs_from_logits(model(feats), labels)
    old = logp + torch.randn(B, T, generator=g, dtype=torch.float64) * 0.4
    ref = logp + torch.randn(B, T, generator=g, dtype=torch.float64) * 0.3
    rewards = torch.randn(B, generator=g, dtype=torch.float64)
    adv = compute_advantages("grpo", rewards, group_ids_from_size(B, 4)) * 2.0
    return Problem(model, feats, labels, mask, old, ref, adv, rewards > 0)


def config(preset: str, aggregation: str, **extra):
    # Ratios raised from the presets' 2e-4 / 2e-3 so that several tokens of this tiny batch are selected;
    # Clip-Cov bounds lowered so that candidates exist (both asserted below).
    over = {"clip_cov": dict(clip_cov_ratio=0.2, clip_cov_lb=0.2, clip_cov_ub=6.0),
            "kl_cov": dict(kl_cov_ratio=0.2), "top_entropy": {}}
    sel = LOSS_PRESETS[preset].get("selection", "none")
    return loss_preset(preset, **{"aggregation": aggregation, **over.get(sel, {}), **extra})


def whole_selection(cfg, prob: Problem, seed=0) -> Selection | None:
    """The contract for minibatch scope: one selection over the detached whole mini-batch."""
    if not needs_selection_prepass(cfg):
        return None
    with torch.no_grad():
        logp, ent = prob.forward()
    return select_tokens(cfg, advantages=prob.adv, logprobs=logp, old_logprobs=prob.old, mask=prob.mask,
                         token_entropy=ent, generator=torch.Generator().manual_seed(seed))


def step(cfg, prob: Problem, n_micro: int, selection, rows=slice(None), normalizer=None):
    """One optimizer step's gradient, accumulated over ``n_micro`` micro-batches of ``rows``."""
    prob.model.zero_grad()
    idx = torch.arange(B)[rows]
    norm = normalizer or Normalizer.from_mask(prob.mask)
    total, metrics = 0.0, {}
    for part in idx.chunk(n_micro):
        sl = slice(int(part[0]), int(part[-1]) + 1)
        out = policy_loss(cfg, prob.inputs(sl), norm, None if selection is None else selection.rows(sl))
        out.loss.backward()
        total += out.loss.item()
        for k, v in out.metrics.items():
            metrics[k] = metrics.get(k, 0.0) + v.item()
    grads = torch.cat([p.grad.reshape(-1).clone() for p in prob.model.parameters()])
    return total, grads, metrics


def assert_same(a, b):
    (la, ga, ma), (lb, gb, mb) = a, b
    assert la == pytest.approx(lb, rel=1e-6, abs=1e-12)
    torch.testing.assert_close(ga, gb, rtol=1e-6, atol=1e-6 * float(gb.abs().max()))
    assert ma.keys() == mb.keys()
    for k in ma:
        assert ma[k] == pytest.approx(mb[k], rel=1e-6, abs=1e-12), k


# ---------------------------------------------------------------- micro-batch invariance
@pytest.mark.parametrize("aggregation", AGGREGATIONS)
@pytest.mark.parametrize("preset", sorted(LOSS_PRESETS))
def test_micro_batch_invariance(preset, aggregation):
    prob = make_problem()
    cfg = config(preset, aggregation, kl_coef=0.05)  # KL to the reference on top of every preset
    sel = whole_selection(cfg, prob)
    one = step(cfg, prob, 1, sel)
    assert one[1].abs().max() > 0
    for n in (2, 4):
        assert_same(step(cfg, prob, n, sel), one)

    # the test is meaningful: clipping happens, selections are not empty
    m = one[2]
    if cfg.surrogate in ("ppo_clip", "gppo", "ce_gppo", "flex_clip") and cfg.eps_low < 1:  # not clip_cov_paper
        assert m["clip_frac_low"] > 0 and m["clip_frac_high"] > 0
    if cfg.selection in ("clip_cov", "top_entropy"):
        assert 0 < m["dropped_frac"] < 1
    if cfg.selection == "kl_cov":
        assert 0 < m["penalized_frac"] < 1


@pytest.mark.parametrize("preset", SELECTION_PRESETS)
def test_minibatch_selection_differs_from_per_micro_batch_selection(preset):
    """Why the minibatch scope exists: per-micro-batch selection changes with the micro-batch size."""
    prob = make_problem()
    # kl_cov at k = 0.1: ⌊0.1·33⌋ = 3 tokens for the whole batch, ⌊1.6⌋ + ⌊1.7⌋ = 2 per half
    cfg = config(preset, "token-mean", **({"kl_cov_ratio": 0.1} if preset == "kl_cov" else {}))
    sel = whole_selection(cfg, prob)
    with torch.no_grad():
        logp, ent = prob.forward()
    per_micro = []
    for sl in (slice(0, 4), slice(4, 8)):
        s = select_tokens(cfg, advantages=prob.adv[sl], logprobs=logp[sl], old_logprobs=prob.old[sl],
                          mask=prob.mask[sl], token_entropy=ent[sl], generator=torch.Generator().manual_seed(0))
        per_micro.append(s.drop if s.drop is not None else s.penalize)
    whole = sel.drop if sel.drop is not None else sel.penalize
    assert not torch.equal(torch.cat(per_micro), whole)


@pytest.mark.parametrize("preset", ["grpo", "dr_grpo", "clip_cov", "kl_cov", "top_entropy", "gppo", "entropy_adv"])
def test_rank_count_invariance(preset):
    """Two "ranks" with half the rows each and the merged Normalizer sum to the one-rank gradient."""
    prob = make_problem(seed=1)
    cfg = config(preset, LOSS_PRESETS[preset].get("aggregation", "seq-mean-token-mean"), kl_coef=0.05)
    sel = whole_selection(cfg, prob)  # gathered over both ranks
    single = step(cfg, prob, 2, sel)
    halves = (slice(0, 4), slice(4, 8))
    merged = Normalizer.from_mask(prob.mask[halves[0]]).merged(Normalizer.from_mask(prob.mask[halves[1]]))
    assert merged == Normalizer.from_mask(prob.mask)
    ranks = [step(cfg, prob, 2, sel, rows=h, normalizer=merged) for h in halves]
    summed = (sum(r[0] for r in ranks), ranks[0][1] + ranks[1][1],
              {k: ranks[0][2][k] + ranks[1][2][k] for k in ranks[0][2]})
    assert_same(summed, single)
    # a rank that normalised by its own counts would differ (the check can fail)
    own = [step(cfg, prob, 1, sel, rows=h, normalizer=Normalizer.from_mask(prob.mask[h])) for h in halves]
    assert not torch.allclose(own[0][1] + own[1][1], single[1], rtol=1e-3)


def test_minibatch_scope_requires_a_selection():
    prob = make_problem()
    with pytest.raises(ValueError, match="select_tokens"):
        policy_loss(loss_preset("clip_cov"), prob.inputs(), Normalizer.from_mask(prob.mask))


def test_needs_helpers():
    assert needs_token_entropy(loss_preset("top_entropy")) and needs_token_entropy(loss_preset("entropy_adv"))
    assert needs_token_entropy(loss_preset("entropy_bonus")) and not needs_token_entropy(loss_preset("grpo"))
    assert needs_selection_prepass(loss_preset("clip_cov"))
    assert not needs_selection_prepass(loss_preset("clip_cov", selection_scope="microbatch"))
    assert not needs_selection_prepass(loss_preset("grpo"))


# ---------------------------------------------------------------- regularisers by hand
def test_kl_estimators_by_hand():
    # logπ = ln ½, logπ_ref = ln ¼: δ = ln ½ = −0.693147
    lp = torch.tensor([[math.log(0.5)]], requires_grad=True)
    ref = torch.tensor([[math.log(0.25)]], requires_grad=True)
    d = math.log(0.5)
    expected = {"k1": (-d, 1.0), "k2": (0.5 * d * d, -d), "k3": (math.exp(d) - d - 1, 1 - math.exp(d))}
    for name, (value, grad) in expected.items():  # k1 = −δ, k2 = ½δ², k3 = e^δ − δ − 1 (= 0.193147)
        lp.grad = None
        out = KL_ESTIMATORS.get(name)(lp, ref)
        out.sum().backward()
        assert out.item() == pytest.approx(value, rel=1e-6), name
        assert lp.grad.item() == pytest.approx(grad, rel=1e-6), name
        assert ref.grad is None  # the reference is a constant
    assert KL_ESTIMATORS.get("k3")(lp, lp.detach()).item() == 0.0


def test_kl_estimators_clamp_the_log_ratio_at_20():
    """|logπ_ref − logπ| is clamped at 20 (exp(100) would overflow k3): beyond it the value stops growing."""
    lp, ref = torch.tensor([[0.0, 0.0]]), torch.tensor([[-100.0, 100.0]])
    assert KL_ESTIMATORS.get("k1")(lp, ref).tolist() == [[20.0, -20.0]]
    assert KL_ESTIMATORS.get("k2")(lp, ref).tolist() == [[200.0, 200.0]]
    torch.testing.assert_close(KL_ESTIMATORS.get("k3")(lp, ref), torch.tensor([[math.expm1(-20.0) + 20, math.expm1(20.0) - 20]]))


def test_kl_estimator_shape_mismatch_and_unknown_name():
    with pytest.raises(ValueError, match="ref_logprobs has shape"):
        KL_ESTIMATORS.get("k3")(torch.zeros(2, 3), torch.zeros(2, 2))
    with pytest.raises(ValueError, match="did you mean 'k3'") as e:
        KL_ESTIMATORS.get("k3x")
    assert "k1, k2, k3" in str(e.value)


def _hand_inputs(**kw):
    # two rows: lengths 2 and 1; r = 1 (old = logπ); A = 0 unless given, so the policy term is 0
    logp = torch.tensor([[math.log(0.5), math.log(0.25), -9.0], [math.log(0.8), -9.0, -9.0]], requires_grad=True)
    mask = torch.tensor([[1, 1, 0], [1, 0, 0]])
    base = dict(logprobs=logp, old_logprobs=logp.detach().clone(), advantages=torch.zeros(2), mask=mask)
    base.update(kw)
    return PolicyInputs(**base), logp


def test_entropy_bonus_by_hand():
    h = torch.tensor([[1.0, 2.0, 50.0], [3.0, 50.0, 50.0]], requires_grad=True)
    x, _ = _hand_inputs(token_entropy=h)
    out = policy_loss(loss_preset("grpo", entropy_coef=0.1), x, Normalizer.from_mask(x.mask))
    out.loss.backward()
    # token-mean H = (1 + 2 + 3)/3 = 2 → loss −0.1·2; ∂/∂H = −0.1/3 on valid tokens
    assert out.loss.item() == pytest.approx(-0.2)
    assert out.metrics["entropy_bonus"].item() == pytest.approx(2.0)
    torch.testing.assert_close(h.grad, torch.tensor([[-0.1 / 3, -0.1 / 3, 0.0], [-0.1 / 3, 0.0, 0.0]]))
    # same aggregation as the policy loss: seq-mean-token-mean → (1.5 + 3)/2 = 2.25
    out = policy_loss(loss_preset("grpo", entropy_coef=0.1, aggregation="seq-mean-token-mean"), x,
                      Normalizer.from_mask(x.mask))
    assert out.loss.item() == pytest.approx(-0.225)
    # a negative coefficient is a penalty (the thermostat's u_min < 0), not silently dropped
    h.grad = None
    out = policy_loss(loss_preset("grpo", entropy_coef=-0.1), x, Normalizer.from_mask(x.mask))
    out.loss.backward()
    assert out.loss.item() == pytest.approx(0.2)
    torch.testing.assert_close(h.grad, torch.tensor([[0.1 / 3, 0.1 / 3, 0.0], [0.1 / 3, 0.0, 0.0]]))


def test_kl_term_in_policy_loss_by_hand():
    # ref = logπ − ln 2 everywhere → k1 = ln 2 per token; token-mean over 3 tokens = ln 2
    x, logp = _hand_inputs()
    x = PolicyInputs(**{**x.__dict__, "ref_logprobs": logp.detach() - math.log(2)})
    out = policy_loss(loss_preset("grpo", kl_coef=0.5, kl_estimator="k1"), x, Normalizer.from_mask(x.mask))
    assert out.loss.item() == pytest.approx(0.5 * math.log(2))
    assert out.metrics["kl_ref"].item() == pytest.approx(math.log(2))


def test_positive_nll_by_hand():
    # rows correct = (True, False): 0.1·(−ln ½ − ln ¼)/3 (the step's token count: all 3 valid tokens)
    x, logp = _hand_inputs(is_correct=torch.tensor([True, False]))
    out = policy_loss(loss_preset("grpo", positive_nll_coef=0.1), x, Normalizer.from_mask(x.mask))
    out.loss.backward()
    assert out.loss.item() == pytest.approx(0.1 * (math.log(2) + math.log(4)) / 3)
    torch.testing.assert_close(logp.grad, torch.tensor([[-0.1 / 3, -0.1 / 3, 0.0], [0.0, 0.0, 0.0]]))


def test_positive_nll_over_correct_tokens_by_hand():
    # Klear's normaliser: the 2 tokens of the correct row only, counted over the step by the host
    correct = torch.tensor([True, False])
    x, logp = _hand_inputs(is_correct=correct)
    norm = Normalizer.from_mask(x.mask, correct=correct)
    assert norm.num_correct_tokens == 2.0
    out = policy_loss(loss_preset("grpo", positive_nll_coef=0.1, positive_nll_norm="correct_tokens"), x, norm)
    out.loss.backward()
    assert out.loss.item() == pytest.approx(0.1 * (math.log(2) + math.log(4)) / 2)
    torch.testing.assert_close(logp.grad, torch.tensor([[-0.05, -0.05, 0.0], [0.0, 0.0, 0.0]]))
    # split into one-row micro-batches with the step's normaliser: the same total
    halves = [policy_loss(loss_preset("grpo", positive_nll_coef=0.1, positive_nll_norm="correct_tokens"),
                          _hand_inputs(is_correct=correct)[0].__class__(
                              **{f: (v[sl] if torch.is_tensor(v) else v) for f, v in vars(x).items()}), norm).loss
              for sl in (slice(0, 1), slice(1, 2))]
    assert sum(h.item() for h in halves) == pytest.approx(out.loss.item())
    # no correct sample in the step: the term is 0, not 0/0
    none = torch.tensor([False, False])
    x0, _ = _hand_inputs(is_correct=none)
    out0 = policy_loss(loss_preset("grpo", positive_nll_coef=0.1, positive_nll_norm="correct_tokens"), x0,
                       Normalizer.from_mask(x0.mask, correct=none))
    assert out0.loss.item() == 0.0 and out0.metrics["positive_nll"].item() == 0.0


def test_policy_term_and_clip_metrics_by_hand():
    # tokens (r, A): (1.5, +1) clipped high → −1.2; (0.5, −1) clipped low → 0.8; (4, −1) dual → 3; (1, 1) → −1
    lp = torch.tensor([[math.log(1.5), math.log(0.5)], [math.log(4.0), 0.0]]) - 2.0
    lp.requires_grad_(True)
    x = PolicyInputs(lp, torch.full((2, 2), -2.0), torch.tensor([[1.0, -1.0], [-1.0, 1.0]]), torch.ones(2, 2))
    out = policy_loss(loss_preset("grpo"), x, Normalizer.from_mask(x.mask))
    assert out.loss.item() == pytest.approx((-1.2 + 0.8 + 3.0 - 1.0) / 4)
    assert out.metrics["clip_frac_low"].item() == 0.25
    assert out.metrics["clip_frac_high"].item() == 0.25
    assert out.metrics["dual_clip_frac"].item() == 0.25


def test_drop_and_penalty_selections_by_hand():
    # r = e^0.5 on every token, A = 1: per-token −e^0.5; KL-Cov penalty β·|log r| = 0.5·β
    lp = torch.full((1, 3), -1.0, requires_grad=True)
    x = PolicyInputs(lp, torch.full((1, 3), -1.5), torch.ones(1), torch.ones(1, 3))
    sel = Selection(penalize=torch.tensor([[True, False, False]]))
    out = policy_loss(loss_preset("kl_cov", kl_cov_coef=2.0), x, Normalizer.from_mask(x.mask), sel)
    out.loss.backward()
    r = math.exp(0.5)
    assert out.loss.item() == pytest.approx((-3 * r + 2.0 * 0.5) / 3)
    torch.testing.assert_close(lp.grad, torch.tensor([[(-r + 2.0) / 3, -r / 3, -r / 3]]))
    lp.grad = None
    sel = Selection(drop=torch.tensor([[False, True, False]]))
    out = policy_loss(loss_preset("clip_cov", eps_high=10.0), x, Normalizer.from_mask(x.mask), sel)
    out.loss.backward()
    assert out.loss.item() == pytest.approx(-2 * r / 3)  # dropped token: 0, still counted in N
    assert lp.grad[0, 1].item() == 0.0 and lp.grad[0, 0].item() == pytest.approx(-r / 3)


# ---------------------------------------------------------------- bad input
@pytest.mark.parametrize("preset", sorted(LOSS_PRESETS))
def test_all_zero_mask_gives_zero_loss_and_gradient(preset):
    prob = make_problem()
    prob.mask = torch.zeros_like(prob.mask)
    cfg = loss_preset(preset, kl_coef=0.1)
    sel = whole_selection(cfg, prob)
    prob.model.zero_grad()
    out = policy_loss(cfg, prob.inputs(), Normalizer.from_mask(prob.mask), sel)
    out.loss.backward()
    assert out.loss.item() == 0.0
    assert all(torch.isfinite(v).all() for v in out.metrics.values())
    for p in prob.model.parameters():
        assert torch.all(p.grad == 0)


@pytest.mark.parametrize("what", ["advantages", "old_logprobs", "ref_logprobs"])
@pytest.mark.parametrize("preset", sorted(LOSS_PRESETS))
def test_non_finite_values_off_the_mask_are_harmless(preset, what):
    """_validate only checks valid tokens; NaN / inf elsewhere (padding, a row without valid tokens)
    must not reach the loss or the gradient."""
    prob = make_problem()
    prob.mask[1] = 0  # a row without valid tokens
    pad = prob.mask == 0
    if what == "advantages":
        prob.adv = prob.adv.clone()
        prob.adv[1] = float("nan")  # that row's (B,) advantage
    elif what == "old_logprobs":
        prob.old = prob.old.clone()
        prob.old[pad] = float("nan")
    else:
        prob.ref = prob.ref.clone()
        prob.ref[pad] = float("inf")
    cfg = loss_preset(preset, kl_coef=0.1, selection_scope="microbatch")
    prob.model.zero_grad()
    out = policy_loss(cfg, prob.inputs(), Normalizer.from_mask(prob.mask))
    out.loss.backward()
    assert math.isfinite(out.loss.item())
    for p in prob.model.parameters():
        assert torch.isfinite(p.grad).all()


def test_non_finite_token_advantages_off_the_mask_are_harmless():
    prob = make_problem()
    adv = prob.adv[:, None].expand(B, T).clone()
    adv[prob.mask == 0] = float("nan")
    x = PolicyInputs(*prob.forward()[:1], prob.old, adv, prob.mask)
    out = policy_loss(loss_preset("grpo"), x, Normalizer.from_mask(prob.mask))
    out.loss.backward()
    assert all(torch.isfinite(p.grad).all() for p in prob.model.parameters())


@pytest.mark.parametrize("field", ["old_logprobs", "advantages", "ref_logprobs"])
@pytest.mark.parametrize("bad", [float("nan"), float("inf")])
def test_non_finite_inputs_at_valid_tokens_raise_naming_them(field, bad):
    prob = make_problem()
    x = prob.inputs()
    t = getattr(x, field).clone()
    if t.dim() == 1:
        t[0] = bad
    else:
        t[0, 0] = bad
    with pytest.raises(ValueError, match=field):
        policy_loss(loss_preset("grpo", kl_coef=0.1), PolicyInputs(**{**x.__dict__, field: t}),
                    Normalizer.from_mask(prob.mask))


@pytest.mark.parametrize("preset", ["grpo", "kl_cov", "gppo", "flex_id"])
def test_nan_in_current_logprobs_gives_nan_loss(preset):
    """Pinned: a NaN in the model's own log-probs is not hidden; the trainer skips non-finite updates."""
    prob = make_problem()
    logp, ent = prob.forward()
    logp = logp.clone()
    logp[0, 0] = float("nan")
    x = PolicyInputs(logp, prob.old, prob.adv, prob.mask, token_entropy=ent, is_correct=prob.correct)
    out = policy_loss(loss_preset(preset, selection_scope="microbatch"), x, Normalizer.from_mask(prob.mask))
    assert math.isnan(out.loss.item())


@pytest.mark.parametrize("field", ["logprobs", "old_logprobs", "advantages", "mask", "ref_logprobs", "token_entropy"])
def test_shape_mismatch_raises_naming_the_argument(field):
    prob = make_problem()
    x = prob.inputs()
    t = getattr(x, field)
    bad = t[:, :-1] if field != "advantages" else t[:-1]
    with pytest.raises(ValueError, match=field):
        policy_loss(loss_preset("grpo"), PolicyInputs(**{**x.__dict__, field: bad}), Normalizer.from_mask(prob.mask))


@pytest.mark.parametrize("cfg_kw, missing, message", [
    ({"entropy_coef": 0.1}, "token_entropy", "entropy_coef"),
    ({"entropy_adv": True}, "token_entropy", "entropy_adv"),
    ({"kl_coef": 0.1}, "ref_logprobs", "ref_logprobs"),
    ({"positive_nll_coef": 0.1}, "is_correct", "is_correct"),
    ({"selection": "top_entropy", "selection_scope": "microbatch"}, "token_entropy", "token_entropy"),
])
def test_missing_inputs_raise(cfg_kw, missing, message):
    prob = make_problem()
    x = PolicyInputs(**{**prob.inputs().__dict__, missing: None})
    with pytest.raises(ValueError, match=message):
        policy_loss(loss_preset("grpo", **cfg_kw), x, Normalizer.from_mask(prob.mask))


# ---------------------------------------------------------------- per-token advantages (as veRL's, and DCPO's)
@pytest.mark.parametrize("aggregation", AGGREGATIONS)
@pytest.mark.parametrize("preset", sorted(LOSS_PRESETS))
def test_per_token_advantages_equal_broadcast_sequence_advantages(preset, aggregation):
    """Every surrogate, selection and aggregation takes (B, T) advantages: the broadcast (B,) ones give the same
    loss, gradient and metrics, and a per-token change moves the loss."""
    cfg, prob = config(preset, aggregation), make_problem(5)
    sel = whole_selection(cfg, prob, seed=2)
    seq = step(cfg, prob, 2, sel)
    per_token = dataclasses.replace(prob, adv=prob.adv[:, None].expand(B, T).clone())
    sel_t = whole_selection(cfg, per_token, seed=2)
    assert_same(step(cfg, per_token, 2, sel_t), seq)
    bumped = per_token.adv + torch.randn(B, T, generator=torch.Generator().manual_seed(3), dtype=torch.float64)
    moved = step(cfg, dataclasses.replace(per_token, adv=bumped), 2, whole_selection(cfg, dataclasses.replace(
        per_token, adv=bumped), seed=2))
    assert not torch.allclose(moved[1], seq[1])


def test_objective_computes_advantages_from_rewards_and_groups():
    cfg, prob = config("grpo", "token-mean"), make_problem(6)
    rewards = torch.tensor([1.0, 0.0, 0.0, 1.0, 1.0, 1.0, 0.0, 1.0], dtype=torch.float64)
    groups = group_ids_from_size(B, 4)
    logp, ent = prob.forward()
    via_rewards = objective(PolicyInputs(logp, prob.old, None, prob.mask, rewards=rewards, group_ids=groups), cfg)
    given = objective(PolicyInputs(logp, prob.old, compute_advantages("grpo", rewards, groups), prob.mask), cfg)
    assert via_rewards.loss.item() == given.loss.item() != 0.0
    with pytest.raises(ValueError, match="advantages, or rewards and group_ids"):
        objective(PolicyInputs(logp, prob.old, None, prob.mask), cfg)
    with pytest.raises(ValueError, match="advantages, or rewards and group_ids"):  # one of the two is not enough
        objective(PolicyInputs(logp, prob.old, None, prob.mask, rewards=rewards), cfg)
    with pytest.raises(ValueError, match="advantages, or rewards and group_ids"):
        objective(PolicyInputs(logp, prob.old, None, prob.mask, group_ids=groups), cfg)


def test_objective_adds_the_auxiliary_term_to_the_policy_loss():
    """One call with policy rows and auxiliary rows: loss = policy loss + α·Σ(−1[counts]·Σ_t logπ)/rows."""
    cfg, prob = config("grpo", "token-mean"), make_problem(7)
    logp, ent = prob.forward()
    aux_lp = torch.tensor([[-1.0, -2.0], [-0.5, -4.0]], dtype=torch.float64, requires_grad=True)
    aux = AuxiliaryInputs(aux_lp, torch.ones(2, 2, dtype=torch.float64), torch.tensor([True, False]), 0.5)
    x = PolicyInputs(logp, prob.old, prob.adv, prob.mask)
    policy = objective(x, cfg).loss
    both = objective(x, cfg, aux=aux)
    assert both.loss.item() == pytest.approx(policy.item() + 0.5 * 3.0 / 2)
    assert both.metrics["aux_loss"].item() == pytest.approx(0.75) and "pg_loss" in both.metrics
    with pytest.raises(ValueError, match="policy inputs, auxiliary rows, or both"):
        objective(None, cfg)


def test_auxiliary_term_split_over_calls_and_bad_shapes():
    lp = torch.tensor([[-1.0, -2.0], [-0.5, -4.0], [-3.0, -1.0]])
    mask, counts = torch.ones(3, 2), torch.tensor([True, False, True])
    whole = auxiliary_reinforce_loss(lp, mask, counts, 0.5).loss.item()
    assert whole == pytest.approx(0.5 * (3.0 + 4.0) / 3)
    # two calls that pass the total row count add up to the whole
    parts = [auxiliary_reinforce_loss(lp[s], mask[s], counts[s], 0.5, n_rows=3).loss.item()
             for s in (slice(0, 1), slice(1, 3))]
    assert sum(parts) == pytest.approx(whole)
    assert auxiliary_reinforce_loss(lp[:0], mask[:0], counts[:0], 0.5).loss.item() == 0.0  # no rows: 0, not 0/0
    with pytest.raises(ValueError, match="must be \\(B, T\\), \\(B, T\\) and \\(B,\\)"):
        auxiliary_reinforce_loss(lp, mask[:, :1], counts, 0.5)
    with pytest.raises(ValueError, match="must be \\(B, T\\)"):
        auxiliary_reinforce_loss(lp, mask, counts[:2], 0.5)
