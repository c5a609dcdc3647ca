"""The bookkeeping of a trainer step, through the real Trainer / Updater on the rewarded tiny lab: the
learning-rate schedule, the step's timings, which forward passes run, the reference model, gradient
clipping, non-finite steps, restore, sampler syncs and the rows the statistics cover."""

from __future__ import annotations

import copy
import math
import types

import pytest
import torch

from entrostat.config.recipes import build_config
from entrostat.models.forward import completion_logprobs
from entrostat.ops import masked_mean
from entrostat.rollout.backends import BACKENDS, HFSampler
from entrostat.train import trainer as trainer_mod
from entrostat.train import update as update_mod
from entrostat.train.stats import policy_stats
from entrostat.train.trainer import Trainer, TrainingError
from entrostat.train.update import Updater, lr_factor
from entrostat.types import LossOutput


def make(tmp_path, overrides, extra=(), recipe=None):
    return Trainer(build_config(recipe, [*overrides, *extra]), tmp_path)


def capture_updates(monkeypatch) -> list:
    """(metrics, batch, token entropy) of every ``Updater.update`` call."""
    seen, real = [], Updater.update

    def update(self, batch, token_entropy, extras):
        out = real(self, batch, token_entropy, extras)
        seen.append(out)
        return out

    monkeypatch.setattr(Updater, "update", update)
    return seen


# ---------------------------------------------------------------------------------------- schedule
def test_lr_factor_by_hand():
    # warmup: (step + 1) / warmup; then frac = (step − warmup) / (total − warmup), clamped to [0, 1]
    assert [lr_factor(s, 10, "constant", 4) for s in range(5)] == [0.25, 0.5, 0.75, 1.0, 1.0]
    assert [lr_factor(s, 6, "linear", 2) for s in (2, 3, 4, 5, 6, 9)] == [1.0, 0.75, 0.5, 0.25, 0.0, 0.0]
    assert lr_factor(3, 10, "linear", 0) == pytest.approx(0.7)
    assert lr_factor(5, 10, "cosine", 0) == pytest.approx(0.5)
    assert lr_factor(2, 10, "cosine", 0) == pytest.approx(0.5 * (1 + math.cos(math.pi * 0.2)))
    assert lr_factor(0, 10, "cosine", 0) == 1.0 and lr_factor(12, 10, "cosine", 0) == pytest.approx(0.0)
    assert lr_factor(7, 10, "constant", 0) == 1.0
    assert lr_factor(0, 1, "linear", 0) == 1.0 and lr_factor(3, 3, "linear", 3) == 1.0  # no division by 0
    assert lr_factor(0, 2, "linear", 0) == 1.0 and lr_factor(1, 2, "linear", 0) == 0.5


def test_the_schedule_spans_every_optimizer_step_of_the_run(tmp_path, rewarded_lab_overrides):
    """4 RL steps × 2 mini-batches × 2 epochs = 16 optimizer steps; the record's lr is the mean of its 4."""
    tr = make(tmp_path, rewarded_lab_overrides, ["optim.schedule=linear", "optim.lr=0.01", "trainer.mini_batches=2",
                                                 "trainer.epochs=2"])
    recs = [tr.step() for _ in range(2)]
    for k, rec in enumerate(recs):
        want = 0.01 * sum(1 - s / 16 for s in range(4 * k, 4 * k + 4)) / 4
        assert rec["lr"] == pytest.approx(want, rel=1e-6)
    # the step's η for the entropy prediction: lr × optimizer steps on this rollout
    assert recs[0]["diag/dH_pred_npg"] == pytest.approx(-recs[0]["lr"] * 4 * recs[0]["diag/cov_npg"], rel=1e-5)
    assert recs[0]["diag/cov_npg"] != 0


# ---------------------------------------------------------------------------------------- timings
def test_step_timings_are_the_intervals_between_the_stages(tmp_path, rewarded_lab_overrides, monkeypatch):
    """With a clock that advances by 1 per reading (starting far from 0), each stage's time is the number
    of readings it spans: control 1 + 1, rollout 2 (measured from the step's start), aux, old log-probs
    and update 1 each, the step 11. Nothing here measures real time."""
    ticks = iter(range(1000, 10**6))
    monkeypatch.setattr(trainer_mod, "time", types.SimpleNamespace(perf_counter=lambda: float(next(ticks))))
    rec = make(tmp_path, rewarded_lab_overrides).step()
    times = {k: v for k, v in rec.items() if k.startswith("time/")}
    assert times == {"time/control": 2.0, "time/rollout": 2.0, "time/aux_rollout": 1.0, "time/old_logprobs": 1.0,
                     "time/update": 1.0, "time/step": 11.0}
    tokens = rec["response_length"] * 16
    assert rec["throughput/tokens_per_s"] == pytest.approx(tokens / 11.0)


# ------------------------------------------------------------------------------ forward passes
@pytest.mark.parametrize("extra, selection, fused", [
    ([], "none", True),  # one on-policy update: old log-probs from the training forward
    (["trainer.micro_batch_size=4"], "none", True),  # several micro-batches, no selection: still fused
    (["trainer.micro_batch_size=16"], "clip_cov", True),  # one micro-batch holds the mini-batch: the selection too
    (["trainer.micro_batch_size=4"], "clip_cov", False),  # a mini-batch selection over several micro-batches
    (["trainer.epochs=2"], "none", False),
    (["trainer.mini_batches=2"], "none", False),
])
def test_which_steps_fuse_old_logprobs_into_the_update(tmp_path, rewarded_lab_overrides, extra, selection, fused):
    sel = [] if selection == "none" else [f"loss.selection={selection}"]
    tr = make(tmp_path, rewarded_lab_overrides, extra + sel)
    assert tr.updater.fused_old_logprobs() is fused
    calls = []
    real = tr.updater.chunked_forward
    tr.updater.chunked_forward = lambda *a, **k: calls.append(1) or real(*a, **k)
    tr.step()
    assert bool(calls) is not fused  # a separate old-log-prob pass exactly when not fused


def test_separate_old_logprob_pass_gives_exact_entropy_and_tempered_logprobs(tmp_path, rewarded_lab_overrides,
                                                                             monkeypatch):
    seen = capture_updates(monkeypatch)
    tr = make(tmp_path, rewarded_lab_overrides, ["trainer.epochs=2", "trainer.micro_batch_size=4"])
    before = copy.deepcopy(tr.model)
    rec = tr.step()
    (_, batch, entropy), = seen
    with torch.no_grad():
        lp, ent = completion_logprobs(before, batch)
    m = batch.completion_mask.bool()
    torch.testing.assert_close(entropy[m], ent[m], rtol=0, atol=1e-5)  # exact H_t, not log-probs
    assert rec["entropy"] == pytest.approx(float(masked_mean(ent, batch.completion_mask)), rel=1e-5)
    # log π_T of the sampled tokens from the same pass, for a controller's score request
    _, _, tempered = tr.updater.score_old(batch, (0.5, 2.0))
    with torch.no_grad():
        for t in (0.5, 2.0):
            at_t, _ = completion_logprobs(tr.model, batch, temperature=t)
            torch.testing.assert_close(tempered[t][m], at_t[m], rtol=0, atol=1e-5)


def test_later_selections_use_the_current_weights(tmp_path, rewarded_lab_overrides, monkeypatch):
    """KL-Cov's covariance at the second epoch comes from the policy after the first epoch's optimizer step,
    not from the rollout-time log-probs."""
    tr = make(tmp_path, rewarded_lab_overrides, ["loss.selection=kl_cov", "loss.surrogate=pg", "trainer.epochs=2"])
    current, used = [], []
    real_selection, real_select = Updater.minibatch_selection, update_mod.select_tokens

    def minibatch_selection(self, mb, fresh_entropy):
        with torch.no_grad():
            current.append((completion_logprobs(self.model, mb)[0], mb.completion_mask.bool()))
        return real_selection(self, mb, fresh_entropy)

    def select_tokens(cfg, **kw):
        used.append(kw["logprobs"].clone())
        return real_select(cfg, **kw)

    monkeypatch.setattr(Updater, "minibatch_selection", minibatch_selection)
    monkeypatch.setattr(update_mod, "select_tokens", select_tokens)
    tr.step()
    assert len(used) == len(current) == 2
    for (now, m), lp in zip(current, used):
        torch.testing.assert_close(lp[m], now[m], rtol=0, atol=1e-5)
    m = current[0][1]
    assert float((current[1][0] - current[0][0])[m].abs().max()) > 1e-4  # the weights did move in between


# ------------------------------------------------------------------------------ reference model
def test_a_reference_model_only_with_a_kl_term_and_it_is_the_initial_policy(tmp_path, rewarded_lab_overrides):
    assert make(tmp_path / "plain", rewarded_lab_overrides).updater.ref_model is None
    tr = make(tmp_path / "kl", rewarded_lab_overrides, ["loss.kl_coef=0.1"])
    assert tr.updater.ref_model is not None
    assert not any(p.requires_grad for p in tr.updater.ref_model.parameters())
    rec = tr.step()  # one on-policy update: the policy is still the reference, KL 0
    assert rec["kl_ref"] == pytest.approx(0.0, abs=1e-7) and rec["grad_norm"] > 0
    rec = tr.step()  # the policy moved off the frozen reference
    assert rec["kl_ref"] > 1e-6


def test_the_two_generators_draw_different_streams(tmp_path, rewarded_lab_overrides):
    g = make(tmp_path, rewarded_lab_overrides).generators
    assert g["sample"].initial_seed() != g["select"].initial_seed()


# ------------------------------------------------------------------------------ clipping, non-finite
def _grad_norm_at_step(tr) -> list[float]:
    """The global gradient norm the optimizer steps with (after clipping), per optimizer step."""
    norms = []

    def pre_hook(optimizer, args, kwargs):
        grads = [p.grad for g in optimizer.param_groups for p in g["params"] if p.grad is not None]
        norms.append(float(torch.linalg.vector_norm(torch.stack([torch.linalg.vector_norm(g) for g in grads]))))

    tr.updater.optimizer.register_step_pre_hook(pre_hook)
    return norms


@pytest.mark.parametrize("clip", [0.0, 1e-3, 1.0])
def test_gradient_clipping(tmp_path, rewarded_lab_overrides, clip):
    tr = make(tmp_path, rewarded_lab_overrides, [f"optim.grad_clip={clip}"])
    norms = _grad_norm_at_step(tr)
    rec = tr.step()
    assert rec["grad_norm"] > 2e-3  # the norm before clipping
    if clip == 0.0:  # 0: no clipping
        assert norms[0] == pytest.approx(rec["grad_norm"], rel=1e-5)
    else:
        assert norms[0] == pytest.approx(min(clip, rec["grad_norm"]), rel=1e-4)


def test_a_nan_loss_with_finite_gradients_is_skipped_and_a_good_step_resets_the_count(tmp_path,
                                                                                      rewarded_lab_overrides,
                                                                                      monkeypatch):
    tr = make(tmp_path, rewarded_lab_overrides, ["trainer.max_nonfinite_in_row=2"])
    real, bad_steps = update_mod.objective, {1, 3}
    state = {"step": 0}

    def objective(*a, **k):
        out = real(*a, **k)
        if state["step"] in bad_steps:  # the value is NaN, the gradient stays finite
            return LossOutput(out.loss + float("nan") * out.loss.detach(), out.metrics)
        return out

    monkeypatch.setattr(update_mod, "objective", objective)
    for k in range(4):  # good, NaN, good, NaN: never two in a row
        state["step"] = k
        before = {n: p.clone() for n, p in tr.model.named_parameters()}
        rec = tr.step()
        moved = any(not torch.equal(before[n], p) for n, p in tr.model.named_parameters())
        assert moved is (k not in bad_steps), k
        assert rec["nonfinite_skipped"] == sum(b <= k for b in bad_steps)
    assert tr.counters["nonfinite_in_row"] == 1


def test_non_finite_weights_name_a_non_finite_tensor(tmp_path, rewarded_lab_overrides):
    # AdamW's first step (β₁ = 0: no bias correction of lr): w ← w·(1 − lr·wd) − lr·sign(g) about, so a norm
    # weight near 1 leaves the float32 range
    tr = make(tmp_path, rewarded_lab_overrides, ["optim.lr=3e38", "optim.weight_decay=1.0", "optim.grad_clip=0",
                                                 "optim.betas=[0.0, 0.999]"])
    with pytest.raises(TrainingError, match=r"made \d+ weight tensor\(s\) non-finite \(first: ") as e:
        tr.step()
    named = dict(tr.model.named_parameters())
    bad = [n for n, p in named.items() if p.requires_grad and not bool(torch.isfinite(p).all())]
    first = str(e.value).split("(first: ")[1].split(")")[0]
    assert first == bad[0] and f"made {len(bad)} weight tensor(s)" in str(e.value)


# ------------------------------------------------------------------------------ restore, sampler, stats
def test_restore_latest_in_process(tmp_path, rewarded_lab_overrides):
    over = [*rewarded_lab_overrides, "trainer.mini_batches=2"]
    assert make(tmp_path, over).restore_latest() is False  # nothing saved yet
    tr = make(tmp_path, over)
    tr.step()
    tr.save()
    again = make(tmp_path, over)
    assert again.restore_latest() is True and again.step_idx == 1
    for (n, p), q in zip(tr.model.named_parameters(), again.model.parameters()):
        assert torch.equal(p, q), n
    assert again.updater.scheduler.last_epoch == tr.updater.scheduler.last_epoch == 2


class CountingSampler(HFSampler):
    """The HF sampler, counting the weights syncs the trainer asks for (and checking they are current)."""

    def __init__(self):
        self.syncs: list[int] = []

    def sync_weights(self, model):
        self.syncs.append(sum(int(torch.isfinite(p).all()) for p in model.parameters()))


@pytest.fixture
def counting_backend():
    if "test_counting_hf" not in BACKENDS:
        BACKENDS.register("test_counting_hf")(lambda **_: CountingSampler())
    return "test_counting_hf"


def test_the_sampler_is_synced_once_after_each_rollouts_optimizer_steps(tmp_path, rewarded_lab_overrides,
                                                                       counting_backend):
    tr = make(tmp_path, rewarded_lab_overrides, [f"rollout.backend={counting_backend}", "trainer.mini_batches=2",
                                                 "control.name=aepo", "control.kwargs={target: 9.0}"])
    sampler = tr.rollouts.sampler
    assert isinstance(sampler, CountingSampler)
    tr.step()  # the main rollout and the auxiliary one: one sync, before the first
    assert len(sampler.syncs) == 1
    tr.step()
    assert len(sampler.syncs) == 2


def test_policy_stats_cover_every_row_by_default_and_the_main_rows_after_a_substitution(
        tmp_path, rewarded_lab_overrides, monkeypatch):
    seen = capture_updates(monkeypatch)
    tr = make(tmp_path, rewarded_lab_overrides, ["rollout.prompts_per_step=8", "control.name=aepo",
                                                 "control.kwargs={target: 9.0}"])
    recs = [tr.step() for _ in range(2)]
    k = [int(r["aux/substituted"]) for r in recs]
    assert any(k), "AEPO substituted no row"
    for r, n, (_, batch, ent) in zip(recs, k, seen):
        main = slice(n, None)
        assert r["entropy"] == pytest.approx(float(masked_mean(ent[main], batch.completion_mask[main])), rel=1e-6)
        everything = policy_stats(batch, ent)
        assert everything["entropy"] == pytest.approx(float(masked_mean(ent, batch.completion_mask)), rel=1e-6)
