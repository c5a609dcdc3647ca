"""The trainer: one RL step = rollout → scores → old log-probs → advantages → update → stats.

Built-in, single process (CPU or one GPU). The normaliser of each optimizer step
and the token selections in ``minibatch`` scope are computed here over the whole
mini-batch, so results do not depend on the micro-batch size. The model runs in
eval mode throughout (no dropout), as RL trainers usually do.
"""

from __future__ import annotations

import copy
import math
import time
import warnings
from pathlib import Path
from typing import Any

import torch

from entrostat.diagnostics.step import policy_diagnostics
from entrostat.eval.evaluate import evaluate
from entrostat.eval.target import init_weights
from entrostat.losses import (
    Normalizer,
    PolicyInputs,
    auxiliary_reinforce_loss,
    compute_advantages,
    needs_selection_prepass,
    policy_loss,
    select_tokens,
    token_covariance,
)
from entrostat.models.loading import load_policy
from entrostat.models.lora import trainable_parameters
from entrostat.ops import masked_mean
from entrostat.rollout.batch import generate_rollout
from entrostat.rollout.vllm import build_sampler
from entrostat import rundir
from entrostat.train import checkpoint as ckpt
from entrostat.train.auxiliary import aepo_substitute, aux_prompt_count, positive_rows
from entrostat.config.run import RunConfig, lab_base_recipe
from entrostat.train.control import (
    apply_actuators,
    build_controllers,
    controller_values,
    update_controllers,
)
from entrostat.models.forward import completion_logprobs
from entrostat.tasks.scoring import build_task, correct_mask, score_rollout
from entrostat.types import RolloutBatch


class TrainingError(RuntimeError):
    """Training cannot go on (e.g. too many non-finite losses in a row)."""


def lr_factor(step: int, total: int, schedule: str, warmup: int) -> float:
    """Multiplier of the base learning rate at optimizer step ``step`` (0-based) of ``total``."""
    if warmup and step < warmup:
        return (step + 1) / warmup
    frac = min(max(step - warmup, 0) / max(total - warmup, 1), 1.0)
    if schedule == "linear":
        return 1.0 - frac
    if schedule == "cosine":
        return 0.5 * (1.0 + math.cos(math.pi * frac))
    return 1.0


class Trainer:
    """Owns the model, optimizer, generators and counters of one run."""

    def __init__(self, cfg: RunConfig, run_dir: Path):
        self.cfg, self.run_dir = cfg, Path(run_dir)
        if cfg.trainer.threads:
            torch.set_num_threads(cfg.trainer.threads)
        torch.manual_seed(cfg.trainer.seed)
        m = cfg.model
        self.model, self.tokenizer, self.format_prompt = load_policy(
            m.name, dtype=m.dtype, seed=cfg.trainer.seed, cache_dir=m.cache_dir, progress=cfg.log.progress,
            lab_recipe=lab_base_recipe(cfg), lora=m.lora,
        )
        if m.init_from:
            init_weights(self.model, m.init_from)
        self.model.eval()
        self.ref_model = copy.deepcopy(self.model).requires_grad_(False) if cfg.loss.kl_coef > 0 else None
        self.task = build_task(cfg.task, cfg.rollout.max_new_tokens)
        o = cfg.optim
        self.optimizer = torch.optim.AdamW(trainable_parameters(self.model), lr=o.lr, betas=tuple(o.betas), weight_decay=o.weight_decay)
        total = cfg.trainer.steps * cfg.trainer.mini_batches * cfg.trainer.epochs
        self.scheduler = torch.optim.lr_scheduler.LambdaLR(
            self.optimizer, lambda s: lr_factor(s, total, o.schedule, o.warmup_steps)
        )
        self.sampler = build_sampler(  # None: the built-in rollout.hf sampler
            cfg.rollout.backend, model=self.model, tokenizer=self.tokenizer, model_name=m.name, work_dir=self.run_dir,
            dtype=m.dtype, seed=cfg.trainer.seed, gpu_memory_utilization=cfg.rollout.vllm_gpu_memory, lora=bool(m.lora),
        )
        self._sampler_weights: int | None = None  # scheduler step whose weights the vLLM sampler holds
        self.generators = {
            "sample": torch.Generator().manual_seed(cfg.trainer.seed),
            "select": torch.Generator().manual_seed(cfg.trainer.seed + 1),
        }
        self.heldout = self.task.problems("heldout", cfg.eval.prompts, cfg.task.heldout_seed)
        self.step_idx = 0  # completed RL steps
        self.counters = {"nonfinite_skipped": 0, "nonfinite_in_row": 0, "reward_errors": 0}
        self.controllers = build_controllers(cfg.control)  # state saved in checkpoints
        self.loss_cfg = cfg.loss  # this step's loss config: cfg.loss with the controllers' actuators applied

    # ------------------------------------------------------------------ one RL step
    def step(self) -> dict[str, float]:
        """One RL step; returns the step's metrics record."""
        c, times = self.cfg, {}
        t0 = time.perf_counter()
        actuators = controller_values(self.controllers)
        self.loss_cfg = apply_actuators(c.loss, actuators)
        times["time/control"] = time.perf_counter() - t0
        problems = self.task.problems("train", c.rollout.prompts_per_step, self._data_seed(self.step_idx))
        main = self.rollout(problems, c.rollout.temperature)
        main = main.with_(advantages=compute_advantages(c.loss.advantage, main.rewards, main.group_ids))
        times["time/rollout"] = time.perf_counter() - t0
        t1 = time.perf_counter()
        batch, aux, aux_stats = self.auxiliary(problems, main, actuators)
        times["time/aux_rollout"] = time.perf_counter() - t1
        t2 = time.perf_counter()
        batch, token_entropy = self.score_old(batch, self.fused_old_logprobs())
        times["time/old_logprobs"] = time.perf_counter() - t2
        t3 = time.perf_counter()
        update, fused = self.update(batch, token_entropy, aux)
        if fused is not None:  # on-policy: old log-probs and entropy came from the training forward
            batch, token_entropy = batch.with_(old_logprobs=fused[0]), fused[1]
        times["time/update"] = time.perf_counter() - t3
        self.step_idx += 1
        first_main_row = int(aux_stats.get("aux/substituted", 0))  # AEPO rows replace the first ones
        record = {"step": self.step_idx, **self.reward_stats(main),
                  **self.policy_stats(batch, token_entropy, first_main_row), **aux_stats, **update}
        rows = slice(first_main_row, None)  # diag/...: η = lr × optimizer steps on this rollout
        record.update(policy_diagnostics(token_entropy[rows], batch.old_logprobs[rows], batch.advantages[rows],
                                         batch.completion_mask[rows], update["lr"] * c.trainer.mini_batches * c.trainer.epochs))
        record.update({f"control/{k}": v for k, v in actuators.items()})
        t4 = time.perf_counter()
        record.update(update_controllers(self.controllers, record, c.trainer.steps))
        times["time/control"] += time.perf_counter() - t4
        times["time/step"] = time.perf_counter() - t0
        record.update(times)
        record["throughput/tokens_per_s"] = float(main.completion_mask.sum()) / times["time/step"]
        return record

    def auxiliary(self, problems, main: RolloutBatch, actuators: dict[str, float]):
        """(training batch, SCOPE-RL auxiliary rows or None, aux metrics) for this step.

        No ``aux_temperature`` actuator: no auxiliary rollout. With ``aux_alpha`` (SCOPE-RL): a
        fraction α of the prompt groups resampled, kept apart for the additive term. Otherwise
        (AEPO): the first prompt_fraction of prompts resampled, positives substituted into ``main``.
        """
        if "aux_temperature" not in actuators:
            return main, None, {}
        a, t = self.cfg.aux, actuators["aux_temperature"]
        alpha = actuators.get("aux_alpha")
        n = aux_prompt_count(len(problems), alpha if alpha is not None else a.prompt_fraction)
        aux = self.rollout(problems[:n], t)
        stats = {"aux/temperature": t, "aux/rows": float(aux.batch_size),
                 "aux/tokens": float(aux.completion_mask.sum()), "aux/reward_mean": float(aux.rewards.mean())}
        if alpha is not None:
            positive = positive_rows(aux, a.positive_filter, a.positive_threshold)
            return main, aux.with_(advantages=positive.float(), meta={**aux.meta, "alpha": alpha}), stats
        n_reg = a.n_reg if a.n_reg_frac is None else max(1, round(a.n_reg_frac * main.batch_size))
        batch, k = aepo_substitute(main, aux, n_reg=n_reg, keep_frac=actuators.get("aux_keep_frac", 1.0),
                                   pad_token_id=self.tokenizer.pad_token_id, threshold=a.positive_threshold)
        return batch, None, {**stats, "aux/substituted": float(k)}

    def fused_old_logprobs(self) -> bool:
        """On-policy steps (one optimizer step per rollout) take old log-probs from the training
        forward, detached — they are the same numbers — instead of a separate pass (as TRL does
        with one iteration). A mini-batch selection over several micro-batches still needs the pass."""
        c = self.cfg
        one_update = c.trainer.epochs == 1 and c.trainer.mini_batches == 1
        rows = c.rollout.prompts_per_step * c.rollout.group_size
        one_micro = not c.trainer.micro_batch_size or c.trainer.micro_batch_size >= rows
        return one_update and (one_micro or not needs_selection_prepass(self.loss_cfg))

    def _data_seed(self, step: int) -> int:
        """Prompts of step k come from their own seed: the data position is the step index."""
        return self.cfg.task.train_seed * 1_000_003 + step

    def rollout(self, problems, temperature: float) -> RolloutBatch:
        c = self.cfg
        batch = generate_rollout(
            self.model, self.tokenizer, problems, format_prompt=self.format_prompt, group_size=c.rollout.group_size,
            temperature=temperature, max_new_tokens=c.rollout.max_new_tokens, generator=self.generators["sample"],
            sampler=self.synced_sampler(),
        )
        rewards, meta = score_rollout(self.task, batch, c.task, c.rollout.max_new_tokens)  # shaped; verifier's in meta
        self.counters["reward_errors"] += meta["reward_errors"]
        return batch.with_(rewards=rewards, meta={**batch.meta, **meta})

    def synced_sampler(self):
        """The vLLM sampler holding the current weights (synced once after any optimizer steps since the
        last rollout, and after a resume), or None for the built-in sampler."""
        if self.sampler is not None and self._sampler_weights != self.scheduler.last_epoch:
            self.sampler.sync_weights(self.model)
            self._sampler_weights = self.scheduler.last_epoch
        return self.sampler

    @torch.no_grad()
    def score_old(self, batch: RolloutBatch, fused: bool) -> tuple[RolloutBatch, torch.Tensor | None]:
        """Old (rollout-time, T = 1) log-probs and exact token entropy (B, T), unless ``fused`` into
        the update; reference log-probs when a KL term needs them."""
        bf16 = self.cfg.model.bf16_autocast
        old, ent = (None, None) if fused else self._chunked_forward(self.model, batch, bf16)
        ref = self._chunked_forward(self.ref_model, batch, bf16)[0] if self.ref_model is not None else None
        return batch.with_(old_logprobs=old, ref_logprobs=ref), ent

    def _chunked_forward(self, model, batch: RolloutBatch, bf16: bool) -> tuple[torch.Tensor, torch.Tensor]:
        size = self.cfg.trainer.micro_batch_size or batch.batch_size
        share = self.cfg.trainer.share_prompts
        parts = [completion_logprobs(model, batch.select(torch.arange(s, min(s + size, batch.batch_size))), bf16=bf16,
                                     share_prompts=share)
                 for s in range(0, batch.batch_size, size)]
        return torch.cat([p[0] for p in parts]), torch.cat([p[1] for p in parts])

    # ------------------------------------------------------------------ update
    def update(self, batch: RolloutBatch, token_entropy: torch.Tensor | None, aux: RolloutBatch | None = None):
        """Epochs × mini-batches of optimizer steps over the rollout.

        Returns the update metrics averaged over optimizer steps, and (old log-probs, token
        entropy) of the whole batch when they were fused into the training forward (else None).
        """
        c = self.cfg
        if token_entropy is None:
            metrics, fused = self.optimizer_step(batch, None, aux, fused=True)
            return metrics, fused
        n_groups = batch.batch_size // c.rollout.group_size
        sums: dict[str, float] = {}
        n_updates, stale = 0, False  # stale: an optimizer step happened since the rollout
        for _ in range(c.trainer.epochs):
            order = torch.randperm(n_groups, generator=self.generators["select"]) if c.trainer.mini_batches > 1 else torch.arange(n_groups)
            for groups in order.chunk(c.trainer.mini_batches):
                rows = (groups[:, None] * c.rollout.group_size + torch.arange(c.rollout.group_size)).reshape(-1)
                metrics, _ = self.optimizer_step(batch.select(rows), None if stale else token_entropy[rows], aux)
                stale = True
                for k, v in metrics.items():
                    sums[k] = sums.get(k, 0.0) + v
                n_updates += 1
        return {k: v / n_updates for k, v in sums.items()}, None

    def optimizer_step(self, mb: RolloutBatch, fresh_entropy, aux: RolloutBatch | None = None, fused: bool = False):
        """Accumulate micro-batch gradients with the mini-batch normaliser, then one AdamW step.

        ``fresh_entropy`` is the mini-batch's token entropy at the current parameters when no
        optimizer step happened since the rollout (then old log-probs are current too and the
        selection pre-pass costs nothing). ``fused``: old log-probs are the detached current ones
        (see ``fused_old_logprobs``); they are returned with the entropy, else None. ``aux``: SCOPE-RL
        rows whose additive REINFORCE term joins every optimizer step's loss.
        """
        c = self.cfg
        norm = Normalizer.from_mask(mb.completion_mask, max_len=c.rollout.max_new_tokens)
        prepass = needs_selection_prepass(self.loss_cfg)
        selection = self.minibatch_selection(mb, fresh_entropy) if prepass and not fused else None
        size = c.trainer.micro_batch_size or mb.batch_size
        totals: dict[str, torch.Tensor] = {}
        seen: list[tuple[torch.Tensor, torch.Tensor]] = []
        for s in range(0, mb.batch_size, size):
            sl = slice(s, s + size)
            micro = mb.select(torch.arange(mb.batch_size)[sl])
            logprobs, ent = completion_logprobs(self.model, micro, bf16=c.model.bf16_autocast,
                                                share_prompts=c.trainer.share_prompts)
            if fused:
                micro = micro.with_(old_logprobs=logprobs.detach())
                seen.append((logprobs.detach(), ent.detach()))
                if prepass:  # one micro-batch is the whole mini-batch here (sl covers every row)
                    selection = self.minibatch_selection(micro, ent.detach())
            inputs = PolicyInputs(
                logprobs=logprobs, old_logprobs=micro.old_logprobs, advantages=micro.advantages,
                mask=micro.completion_mask, token_entropy=ent, ref_logprobs=micro.ref_logprobs,
                is_correct=correct_mask(micro),
            )
            out = policy_loss(self.loss_cfg, inputs, norm, None if selection is None else selection.rows(sl))
            out.loss.backward()
            for k, v in {"loss": out.loss.detach(), **out.metrics}.items():
                totals[k] = totals.get(k, 0.0) + v
        if aux is not None:
            aux_lp, _ = completion_logprobs(self.model, aux, bf16=c.model.bf16_autocast,
                                            share_prompts=c.trainer.share_prompts)
            out = auxiliary_reinforce_loss(aux_lp, aux.completion_mask, aux.advantages > 0, aux.meta["alpha"])
            out.loss.backward()
            totals["loss"] = totals["loss"] + out.loss.detach()
            totals.update(out.metrics)
        metrics = self._apply_gradients({k: float(v) for k, v in totals.items()})
        return metrics, (torch.cat([x[0] for x in seen]), torch.cat([x[1] for x in seen])) if fused else None

    def minibatch_selection(self, mb: RolloutBatch, fresh_entropy: torch.Tensor | None):
        """Token selection over the whole mini-batch (needs current log-probs: free when fresh)."""
        if fresh_entropy is not None:
            logprobs, ent = mb.old_logprobs, fresh_entropy
        else:
            with torch.no_grad():
                logprobs, ent = self._chunked_forward(self.model, mb, self.cfg.model.bf16_autocast)
        return select_tokens(
            self.loss_cfg, advantages=mb.advantages, logprobs=logprobs, old_logprobs=mb.old_logprobs,
            mask=mb.completion_mask, token_entropy=ent, generator=self.generators["select"],
        )

    def _apply_gradients(self, metrics: dict[str, float]) -> dict[str, float]:
        """Clip and step, or skip and count a non-finite loss / gradient."""
        params = [p for p in self.model.parameters() if p.grad is not None]
        clip = self.cfg.optim.grad_clip if self.cfg.optim.grad_clip > 0 else float("inf")
        grad_norm = float(torch.nn.utils.clip_grad_norm_(params, clip)) if params else 0.0
        metrics["grad_norm"] = grad_norm
        metrics["lr"] = self.optimizer.param_groups[0]["lr"]
        if math.isfinite(metrics["loss"]) and math.isfinite(grad_norm):
            self.optimizer.step()
            self.counters["nonfinite_in_row"] = 0
        else:
            self.counters["nonfinite_skipped"] += 1
            self.counters["nonfinite_in_row"] += 1
            if self.counters["nonfinite_in_row"] >= self.cfg.trainer.max_nonfinite_in_row:
                raise TrainingError(
                    f"{self.counters['nonfinite_in_row']} non-finite losses in a row (step {self.step_idx + 1}); "
                    "lower optim.lr or check the model / rewards (trainer.max_nonfinite_in_row sets the limit)"
                )
        self.optimizer.zero_grad(set_to_none=True)
        with warnings.catch_warnings():  # a skipped update still advances the schedule: no warning for that
            warnings.filterwarnings("ignore", message="Detected call of `lr_scheduler.step", category=UserWarning)
            self.scheduler.step()
        return metrics

    # ------------------------------------------------------------------ stats, eval, checkpoints
    def reward_stats(self, main: RolloutBatch) -> dict[str, float]:
        """Rewards and lengths of the step's main rollout."""
        rewards = main.rewards.view(-1, self.cfg.rollout.group_size)
        return {
            "reward_mean": float(main.rewards.mean()),
            "pass_rate": float(correct_mask(main).float().mean()),  # the verifier's, never the shaped reward
            "response_length": float(main.completion_mask.sum(-1).mean()),
            "truncation_rate": float(main.is_truncated.float().mean()),
            "zero_adv_group_frac": float((rewards.max(-1).values == rewards.min(-1).values).float().mean()),
            "reward_errors": float(main.meta.get("reward_errors", 0)),
            "nonfinite_skipped": float(self.counters["nonfinite_skipped"]),
            **main.meta.get("shaping", {}),  # reward/verifier_mean, format_rate, overlong_penalty_mean when shaping is on
        }

    @staticmethod
    def policy_stats(batch: RolloutBatch, token_entropy: torch.Tensor, first_row: int = 0) -> dict[str, float]:
        """Exact entropy, nll (both at T = 1) and the covariance term over the main-rollout rows
        ``first_row:`` of the training batch."""
        rows = slice(first_row, None)
        mask, old = batch.completion_mask[rows], batch.old_logprobs[rows]
        adv_tok = batch.advantages[rows, None].expand_as(mask)
        return {
            "entropy": float(masked_mean(token_entropy[rows], mask)),
            "nll": float(masked_mean(-old, mask)),
            "covariance": float(masked_mean(token_covariance(adv_tok, old, mask), mask)),
        }

    def evaluate(self) -> dict[str, float]:
        e = self.cfg.eval
        res = evaluate(
            self.model, self.tokenizer, self.task, self.heldout, format_prompt=self.format_prompt, n=e.samples,
            temperature=e.temperature, max_new_tokens=self.cfg.rollout.max_new_tokens,
            seed=self.cfg.trainer.seed * 7919 + 17,
        )
        return {f"eval/{k}": v for k, v in res.items()}

    def state_dict(self) -> dict[str, Any]:
        return {
            "step": self.step_idx,
            "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict(),
            "counters": dict(self.counters),
            "controllers": {k: c.state_dict() for k, c in self.controllers.items()},
            "rng": ckpt.rng_state(self.generators),
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.step_idx = state["step"]
        self.optimizer.load_state_dict(state["optimizer"])
        self.scheduler.load_state_dict(state["scheduler"])
        self.counters.update(state["counters"])
        for k, c in self.controllers.items():
            c.load_state_dict(state["controllers"][k])
        ckpt.set_rng_state(state["rng"], self.generators)

    def save(self) -> Path:
        return ckpt.save_checkpoint(rundir.checkpoints_dir(self.run_dir), self.step_idx, self.model, self.state_dict(),
                                    keep=self.cfg.log.keep_checkpoints)

    def restore_latest(self) -> bool:
        root = rundir.checkpoints_dir(self.run_dir)
        ckpt.clean_temporaries(root)
        found = rundir.latest_checkpoint(root)
        if found is None:
            return False
        self.load_state_dict(ckpt.load_checkpoint(found, self.model))
        return True
