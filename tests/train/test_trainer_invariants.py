"""Invariants of a trainer step, checked through the real Trainer / Updater on the rewarded tiny lab.

- The first optimizer step of a rollout is on-policy: its ratio is exactly 1 on every token, at a
  sampling temperature ≠ 1 too, and old and new log-probs are the policy's at T = 1 (ALGORITHMS.md).
- The micro-batch size changes nothing: gradients of every optimizer step agree for micro-batches of
  1, 2 and the whole mini-batch, in every aggregation mode and with Clip-Cov / KL-Cov selections
  (normaliser and selection are taken over the mini-batch, §1.2 and §1.4).
- Dr.GRPO's loss and gradient are Σ L·M / (N_seq · T_max) with T_max = rollout.max_new_tokens, not the
  padded length of the batch (§1.2).

Gradients are captured where the optimizer takes them: ``Updater.apply_gradients`` is wrapped to copy
``p.grad`` before clipping and stepping.
"""

from __future__ import annotations

import copy

import pytest
import torch

from entrostat.config.recipes import build_config
from entrostat.models.forward import completion_logprobs
from entrostat.train import update as update_mod
from entrostat.train.trainer import Trainer
from entrostat.train.update import Updater


class Recorder:
    """Wraps the Updater of every Trainer built while installed: the batch each update saw (with its old
    log-probs), each ``objective`` call's log-probs, and the gradient of each optimizer step."""

    def __init__(self, monkeypatch):
        self.reset()
        real_objective, real_update, real_apply = update_mod.objective, Updater.update, Updater.apply_gradients
        rec = self

        def objective(x, cfg, state=None, aux=None):
            if x is not None:
                rec.calls.append((x.logprobs.detach().clone(), x.old_logprobs.detach().clone(), x.mask.bool()))
            return real_objective(x, cfg, state, aux)

        def update(self, batch, token_entropy, extras):
            out = real_update(self, batch, token_entropy, extras)
            rec.batches.append(out[1])  # old log-probs filled in, fused or not
            return out

        def apply_gradients(self, metrics):
            rec.grads.append([p.grad.detach().clone() for p in self.model.parameters() if p.grad is not None])
            rec.metrics.append(dict(metrics))
            rec.call_counts.append(len(rec.calls))
            return real_apply(self, metrics)

        monkeypatch.setattr(update_mod, "objective", objective)
        monkeypatch.setattr(Updater, "update", update)
        monkeypatch.setattr(Updater, "apply_gradients", apply_gradients)

    def reset(self) -> None:
        self.batches, self.calls, self.grads, self.metrics = [], [], [], []
        self.call_counts: list[int] = []  # objective calls made before each optimizer step

    def first_step_calls(self):
        return self.calls[: self.call_counts[0]]


def run_step(path, overrides, recipe=None):
    """(trainer, a copy of its model before the step, the step's record)."""
    tr = Trainer(build_config(recipe, overrides), path)
    before = copy.deepcopy(tr.model)
    return tr, before, tr.step()


def rel_err(a: list[torch.Tensor], b: list[torch.Tensor]) -> float:
    """‖a − b‖ / ‖b‖ over all parameters."""
    diff = torch.sqrt(sum(((x - y) ** 2).sum() for x, y in zip(a, b)))
    return float(diff / torch.sqrt(sum((y**2).sum() for y in b)))


# ---------------------------------------------------------------------------------------------- ratio = 1
@pytest.mark.parametrize("temperature", [1.0, 0.7])
@pytest.mark.parametrize("updates", [
    [],  # one on-policy update: old log-probs fused into the training forward
    ["trainer.epochs=2"],  # a separate old-log-prob pass over the same micro-batches
    ["trainer.epochs=2", "trainer.micro_batch_size=4"],
    ["trainer.mini_batches=2", "trainer.micro_batch_size=2"],  # the pass sees other rows per forward
])
def test_first_pass_is_on_policy_at_any_temperature(tmp_path, rewarded_lab_overrides, monkeypatch, temperature,
                                                    updates):
    rec = Recorder(monkeypatch)
    tr, before, record = run_step(tmp_path, rewarded_lab_overrides + updates + [f"rollout.temperature={temperature}"])
    assert record["zero_adv_group_frac"] < 1 and record["grad_norm"] > 0
    same_chunks = "trainer.mini_batches=2" not in updates
    for lp, old, m in rec.first_step_calls():
        if same_chunks:  # the same rows through the same forward: bit for bit
            assert torch.equal(lp[m], old[m]), float((lp - old)[m].abs().max())
        else:
            torch.testing.assert_close(lp[m], old[m], rtol=0, atol=1e-6)
    assert record["clip_frac_low"] == record["clip_frac_high"] == 0 or not same_chunks
    # ... and both are the policy's log-probs at T = 1, whatever the sampling temperature
    (batch,) = rec.batches
    m = batch.completion_mask.bool()
    with torch.no_grad():
        at_1, _ = completion_logprobs(before, batch, temperature=1.0)
        at_t, _ = completion_logprobs(before, batch, temperature=temperature)
    torch.testing.assert_close(batch.old_logprobs[m], at_1[m], rtol=0, atol=1e-5)
    new = torch.cat([lp for lp, _, _ in rec.first_step_calls()])
    if not updates:  # fused: the calls cover the batch in order
        torch.testing.assert_close(new[m], at_1[m], rtol=0, atol=1e-5)
    if temperature != 1.0:  # the check can see a temperature mix-up
        assert float((at_t - at_1)[m].abs().max()) > 1e-2
    if len(rec.call_counts) > 1:  # after an optimizer step the ratio moves: the recorder sees real ratios
        lp, old, m2 = rec.calls[rec.call_counts[0]]
        assert float((lp - old)[m2].abs().max()) > 1e-4


# --------------------------------------------------------------------------- micro-batch size invariance
AGGREGATIONS = ["token-mean", "seq-mean-token-mean", "seq-mean-token-sum", "seq-mean-token-sum-norm"]
CASES = {f"grpo/{a}": (None, [f"loss.aggregation={a}"]) for a in AGGREGATIONS}
# Clip-Cov: bounds the tiny lab's covariances fall in, so the selection drops tokens (the recipe's (1, 5) drops none)
CASES["clip_cov"] = ("clip_cov", ["loss.clip_cov_lb=0.01", "loss.clip_cov_ub=100", "loss.clip_cov_ratio=0.2"])
# KL-Cov: two optimizer steps, so the second has r ≠ 1 and the penalty has a gradient
CASES["kl_cov"] = ("kl_cov", ["trainer.mini_batches=2"])
# A second epoch (KL-Cov has its two mini-batches), so later optimizer steps run off-policy: ratios ≠ 1,
# clipping, and a selection pre-pass at weights that moved
OFF_POLICY = ["trainer.epochs=2"]


def step_grads(rec: Recorder, tmp_path, overrides, recipe):
    """The gradients of every optimizer step of one trainer step, and its record."""
    rec.reset()
    record = Trainer(build_config(recipe, overrides), tmp_path).step()
    return rec.grads, record


@pytest.mark.parametrize("case", list(CASES))
def test_gradients_do_not_depend_on_the_micro_batch_size(tmp_path, rewarded_lab_overrides, monkeypatch, case):
    recipe, extra = CASES[case]
    extra = extra + (OFF_POLICY if case != "kl_cov" else [])
    rec = Recorder(monkeypatch)
    runs = {mbs: step_grads(rec, tmp_path / str(mbs), rewarded_lab_overrides + extra + [f"trainer.micro_batch_size={mbs}"],
                            recipe) for mbs in (0, 1, 2)}
    whole, record = runs[0]
    assert record["zero_adv_group_frac"] < 1 and len(whole) >= 2
    if case == "clip_cov":
        assert 0 < record["dropped_frac"] < 1
    if case == "kl_cov":
        assert 0 < record["penalized_frac"] < 1
    for mbs in (1, 2):
        grads, rec_mbs = runs[mbs]
        assert len(grads) == len(whole)
        for k, (g, ref) in enumerate(zip(grads, whole)):
            tol = 1e-6 if k == 0 else 1e-5  # later steps: rounding differences carried through AdamW
            assert rel_err(g, ref) < tol, (mbs, k, rel_err(g, ref))
        assert rec_mbs["loss"] == pytest.approx(record["loss"], rel=1e-5, abs=1e-7)


@pytest.mark.parametrize("recipe", ["clip_cov", "kl_cov"])
def test_microbatch_scope_does_depend_on_the_micro_batch_size(tmp_path, rewarded_lab_overrides, monkeypatch, recipe):
    """veRL's per-micro-batch selection (``selection_scope: microbatch``) is what the check above would catch."""
    extra = CASES[recipe][1] + ["loss.selection_scope=microbatch"]
    rec = Recorder(monkeypatch)
    whole, _ = step_grads(rec, tmp_path / "0", rewarded_lab_overrides + extra, recipe)
    single, _ = step_grads(rec, tmp_path / "1", rewarded_lab_overrides + extra + ["trainer.micro_batch_size=1"], recipe)
    assert max(rel_err(g, ref) for g, ref in zip(single, whole)) > 1e-2


# -------------------------------------------------------------------------------------------- Dr.GRPO
# A lab model pre-trained long enough to end its answers with EOS (the 8-step one runs to the budget), so
# the padded batch is shorter than the budget T_max and a normaliser of the padded length would differ.
# The same recipe as tests/experiments/test_runs.py, so a session builds it once.
SHORT_ANSWERS = ["model.lab_recipe.steps=60", "model.lab_recipe.lr=0.01", "rollout.max_new_tokens=10",
                 "rollout.prompts_per_step=8"]


@pytest.mark.parametrize("micro", [0, 4])
def test_dr_grpo_loss_and_gradient_by_hand(tmp_path, rewarded_lab_overrides, monkeypatch, micro):
    rec = Recorder(monkeypatch)
    tr, before, record = run_step(tmp_path, rewarded_lab_overrides + SHORT_ANSWERS + [f"trainer.micro_batch_size={micro}"],
                                  recipe="dr_grpo")
    c = tr.cfg
    assert c.loss.advantage == "dr_grpo" and c.loss.aggregation == "seq-mean-token-sum-norm"
    (batch,) = rec.batches
    t_max, (b, t) = c.rollout.max_new_tokens, batch.completion_mask.shape
    assert t < t_max, "the check needs a batch that ends before the budget"
    # Dr.GRPO advantages: reward − group mean, no std
    r = batch.rewards.view(-1, c.rollout.group_size)
    adv = (r - r.mean(-1, keepdim=True)).reshape(-1)
    torch.testing.assert_close(batch.advantages, adv, rtol=0, atol=1e-6)
    assert bool((adv != 0).any())
    # on-policy (r = 1): per-token loss −A, summed over tokens, over N_seq · T_max
    mask = batch.completion_mask.float()
    loss = float(-(adv * mask.sum(-1)).sum() / (b * t_max))
    assert record["loss"] == pytest.approx(loss, rel=1e-5, abs=1e-8)
    assert abs(loss) > 1e-4
    # and its gradient: −Σ A · Σ_t ∇logπ / (N_seq · T_max) at the weights that sampled the batch
    lp, _ = completion_logprobs(before, batch)
    hand = -(adv[:, None] * lp * mask).sum() / (b * t_max)
    params = [p for p in before.parameters() if p.requires_grad]
    expected = list(torch.autograd.grad(hand, params))
    (got,) = rec.grads
    assert len(got) == len(expected)
    assert rel_err(got, expected) < 1e-5
