"""The update of one RL step: old log-probs, epochs × mini-batches of optimizer steps, gradient clipping.

The normaliser of each optimizer step and the token selections in ``minibatch`` scope are
computed here over the whole mini-batch, so results do not depend on the micro-batch size.
Every loss comes from the core ``losses.objective``; auxiliary rows a controller declared
(``rollout.auxiliary.AuxRows``) join every optimizer step as a micro-batch of their own.
"""

from __future__ import annotations

import math
import warnings

import torch

from entrostat.config.run import RunConfig
from entrostat.losses import (
    AuxiliaryInputs,
    LossConfig,
    Normalizer,
    ObjectiveState,
    PolicyInputs,
    needs_selection_prepass,
    objective,
    select_tokens,
)
from entrostat.models.forward import completion_logprobs, completion_scores
from entrostat.models.lora import trainable_parameters
from entrostat.rollout.auxiliary import AuxRows
from entrostat.tasks.scoring import correct_mask
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


class Updater:
    """Owns the optimizer and schedule; turns a scored rollout into optimizer steps."""

    def __init__(self, cfg: RunConfig, model: torch.nn.Module, ref_model: torch.nn.Module | None,
                 select_generator: torch.Generator, counters: dict[str, int]):
        self.cfg, self.model, self.ref_model = cfg, model, ref_model
        self.generator, self.counters = select_generator, counters
        o = cfg.optim
        self.optimizer = torch.optim.AdamW(trainable_parameters(model), lr=o.lr, betas=tuple(o.betas),
                                           weight_decay=o.weight_decay)
        total = cfg.trainer.steps * cfg.trainer.mini_batches * cfg.trainer.epochs
        self.scheduler = torch.optim.lr_scheduler.LambdaLR(
            self.optimizer, lambda s: lr_factor(s, total, o.schedule, o.warmup_steps)
        )
        self.loss_cfg: LossConfig = cfg.loss  # this step's: cfg.loss with the controllers' actuators applied
        self.step_idx = 0  # for messages: the RL step being updated (0-based)

    # ------------------------------------------------------------------ forward passes
    def fused_old_logprobs(self) -> bool:
        """On-policy steps (one optimizer step per rollout) take old log-probs from the training
        forward, detached — they are the same numbers — instead of a separate pass (as TRL does
        with one iteration). A mini-batch selection over several micro-batches still needs the pass."""
        c = self.cfg
        one_update = c.trainer.epochs == 1 and c.trainer.mini_batches == 1
        rows = c.rollout.prompts_per_step * c.rollout.group_size
        one_micro = not c.trainer.micro_batch_size or c.trainer.micro_batch_size >= rows
        return one_update and (one_micro or not needs_selection_prepass(self.loss_cfg))

    @torch.no_grad()
    def score_old(self, batch: RolloutBatch, temperatures: tuple[float, ...] = ()
                  ) -> tuple[RolloutBatch, torch.Tensor | None, dict[float, torch.Tensor]]:
        """Old (rollout-time, T = 1) log-probs and exact token entropy (B, T), unless fused into the
        update (then None); reference log-probs when a KL term needs them; {T: log π_T} of the sampled
        tokens from the same forward for each of ``temperatures`` (which rules out the fused path)."""
        bf16 = self.cfg.model.bf16_autocast
        old, ent, tempered = None, None, {}
        if temperatures or not self.fused_old_logprobs():
            old, ent, tempered = self.chunked_forward(self.model, batch, bf16, temperatures)
        ref = self.chunked_forward(self.ref_model, batch, bf16)[0] if self.ref_model is not None else None
        return batch.with_(old_logprobs=old, ref_logprobs=ref), ent, tempered

    def chunked_forward(self, model, batch: RolloutBatch, bf16: bool, temperatures: tuple[float, ...] = ()
                        ) -> tuple[torch.Tensor, torch.Tensor, dict[float, torch.Tensor]]:
        size = self.cfg.trainer.micro_batch_size or batch.batch_size
        share = self.cfg.trainer.share_prompts
        parts = [completion_scores(model, batch.select(torch.arange(s, min(s + size, batch.batch_size))), temperatures,
                                   bf16=bf16, share_prompts=share)
                 for s in range(0, batch.batch_size, size)]
        tempered = {t: torch.cat([p[2][t] for p in parts]) for t in temperatures}
        return torch.cat([p[0] for p in parts]), torch.cat([p[1] for p in parts]), tempered

    def _forward(self, batch: RolloutBatch) -> tuple[torch.Tensor, torch.Tensor]:
        return completion_logprobs(self.model, batch, bf16=self.cfg.model.bf16_autocast,
                                   share_prompts=self.cfg.trainer.share_prompts)

    # ------------------------------------------------------------------ optimizer steps
    def update(self, batch: RolloutBatch, token_entropy: torch.Tensor | None, extras: list[AuxRows]):
        """Epochs × mini-batches of optimizer steps over the rollout.

        Returns (update metrics averaged over optimizer steps, batch, token entropy); when old
        log-probs and entropy were fused into the training forward (``token_entropy`` None) the
        returned batch and entropy carry them.
        """
        c = self.cfg
        if token_entropy is None:
            metrics, (old, ent) = self.optimizer_step(batch, None, extras, fused=True)
            return metrics, batch.with_(old_logprobs=old), ent
        n_groups = batch.batch_size // c.rollout.group_size
        sums: dict[str, float] = {}
        n_updates, stale = 0, False  # stale: an optimizer step happened since the rollout
        for _ in range(c.trainer.epochs):
            order = torch.randperm(n_groups, generator=self.generator) if c.trainer.mini_batches > 1 else torch.arange(n_groups)
            for groups in order.chunk(c.trainer.mini_batches):
                rows = (groups[:, None] * c.rollout.group_size + torch.arange(c.rollout.group_size)).reshape(-1)
                metrics, _ = self.optimizer_step(batch.select(rows), None if stale else token_entropy[rows], extras)
                stale = True
                for k, v in metrics.items():
                    sums[k] = sums.get(k, 0.0) + v
                n_updates += 1
        return {k: v / n_updates for k, v in sums.items()}, batch, token_entropy

    def optimizer_step(self, mb: RolloutBatch, fresh_entropy, extras: list[AuxRows], fused: bool = False):
        """Accumulate micro-batch gradients with the mini-batch normaliser, then one AdamW step.

        ``fresh_entropy`` is the mini-batch's token entropy at the current parameters when no
        optimizer step happened since the rollout (then old log-probs are current too and the
        selection pre-pass costs nothing). ``fused``: old log-probs are the detached current ones
        (see ``fused_old_logprobs``); they are returned with the entropy, else None.
        """
        norm = Normalizer.from_mask(mb.completion_mask, max_len=self.cfg.rollout.max_new_tokens, correct=correct_mask(mb))
        prepass = needs_selection_prepass(self.loss_cfg)
        selection = self.minibatch_selection(mb, fresh_entropy) if prepass and not fused else None
        size = self.cfg.trainer.micro_batch_size or mb.batch_size
        totals: dict[str, torch.Tensor] = {}
        seen: list[tuple[torch.Tensor, torch.Tensor]] = []
        for s in range(0, mb.batch_size, size):
            sl = slice(s, s + size)
            micro = mb.select(torch.arange(mb.batch_size)[sl])
            logprobs, ent = self._forward(micro)
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
            state = ObjectiveState(norm, None if selection is None else selection.rows(sl))
            self._accumulate(objective(inputs, self.loss_cfg, state), totals)
        for rows in extras:  # declared auxiliary rows: one more micro-batch of the same optimizer step
            aux_lp, _ = self._forward(rows.batch)
            aux = AuxiliaryInputs(aux_lp, rows.batch.completion_mask, rows.counts, rows.weight)
            self._accumulate(objective(None, self.loss_cfg, aux=aux), totals)
        metrics = self.apply_gradients({k: float(v) for k, v in totals.items()})
        return metrics, (torch.cat([x[0] for x in seen]), torch.cat([x[1] for x in seen])) if fused else None

    @staticmethod
    def _accumulate(out, totals: dict[str, torch.Tensor]) -> None:
        """Backward of one call's loss; its loss and metric shares summed into ``totals``."""
        out.loss.backward()
        for k, v in {"loss": out.loss.detach(), **out.metrics}.items():
            totals[k] = totals.get(k, 0.0) + v

    def minibatch_selection(self, mb: RolloutBatch, fresh_entropy: torch.Tensor | None):
        """Token selection over the whole mini-batch (needs current log-probs: free when fresh)."""
        if fresh_entropy is not None:
            logprobs, ent = mb.old_logprobs, fresh_entropy
        else:
            with torch.no_grad():
                logprobs, ent, _ = self.chunked_forward(self.model, mb, self.cfg.model.bf16_autocast)
        return select_tokens(
            self.loss_cfg, advantages=mb.advantages, logprobs=logprobs, old_logprobs=mb.old_logprobs,
            mask=mb.completion_mask, token_entropy=ent, generator=self.generator,
        )

    def apply_gradients(self, metrics: dict[str, float]) -> dict[str, float]:
        """Clip and step, or skip and count a non-finite loss / gradient.

        After the step the updated weights are checked: if any is non-finite (a finite gradient times a huge
        learning rate overflows), TrainingError names the step, the tensor and the fix. The run stops rather
        than restoring the weights, which would need a copy of them before every step (twice the memory) and
        would only repeat the overflow at the same learning rate; the last checkpoint's weights are finite.
        """
        params = [p for p in self.model.parameters() if p.grad is not None]
        clip = self.cfg.optim.grad_clip if self.cfg.optim.grad_clip > 0 else float("inf")
        grad_norm = float(torch.nn.utils.clip_grad_norm_(params, clip)) if params else 0.0
        metrics["grad_norm"] = grad_norm
        metrics["lr"] = self.optimizer.param_groups[0]["lr"]
        if math.isfinite(metrics["loss"]) and math.isfinite(grad_norm):
            self.optimizer.step()
            self.counters["nonfinite_in_row"] = 0
            stepped = [p for g in self.optimizer.param_groups for p in g["params"]]
            if stepped and not bool(torch.stack([torch.isfinite(p).all() for p in stepped]).all()):  # one sync
                bad = [n for n, p in self.model.named_parameters()
                       if p.requires_grad and not bool(torch.isfinite(p).all())]
                raise TrainingError(
                    f"the optimizer step of step {self.step_idx + 1} made {len(bad)} weight tensor(s) non-finite "
                    f"(first: {bad[0] if bad else '?'}) although the loss and the gradient norm ({grad_norm:.3g}) were "
                    f"finite: optim.lr = {self.cfg.optim.lr:g} is too large for this model. Start a new run with a "
                    "lower optim.lr (model.init_from=RUN starts it from the last checkpoint, whose weights are finite)"
                )
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
