"""Rollout orchestration of one RL step: the main rollout, scored, with advantages, and the
auxiliary rollouts the controllers declared (``types.AuxRequest``), joined by ``rollout.auxiliary``."""

from __future__ import annotations

from typing import Callable, Sequence

import torch

from entrostat.config.run import RunConfig
from entrostat.losses import compute_advantages
from entrostat.rollout.auxiliary import AuxOutcome, AuxRows, aux_prompt_count, join_auxiliary
from entrostat.rollout.batch import generate_rollout
from entrostat.tasks.base import Problem, Task
from entrostat.tasks.scoring import score_rollout
from entrostat.types import AuxRequest, RolloutBatch


class StepRollouts:
    """Samples and scores the rollouts of a step with the current weights."""

    def __init__(self, cfg: RunConfig, model, tokenizer, format_prompt, task: Task, sampler,
                 generator: torch.Generator, counters: dict[str, int], weights_version: Callable[[], int]):
        self.cfg, self.model, self.tokenizer, self.format_prompt, self.task = cfg, model, tokenizer, format_prompt, task
        self.sampler, self.generator, self.counters = sampler, generator, counters
        self.weights_version = weights_version  # changes after every optimizer step
        self._sampler_weights: int | None = None  # weights version the sampler holds

    def main(self, problems: Sequence[Problem]) -> RolloutBatch:
        """The step's main rollout at ``rollout.temperature``, scored, with advantages."""
        c = self.cfg
        main = self.sample(problems, c.rollout.temperature)
        return main.with_(advantages=compute_advantages(c.loss.advantage, main.rewards, main.group_ids))

    def auxiliary(self, problems: Sequence[Problem], main: RolloutBatch,
                  requests: Sequence[AuxRequest]) -> tuple[AuxOutcome, list[AuxRows]]:
        """Fulfil the declared requests in order: each resamples its share of ``problems`` and joins the
        training batch. Returns the last outcome (batch, first main row, merged ``aux/`` stats) and every
        request's additive rows."""
        outcome, extras, stats = AuxOutcome(main), [], {}
        for req in requests:
            aux = self.sample(problems[:aux_prompt_count(len(problems), req.prompt_fraction)], req.temperature)
            joined = join_auxiliary(req, outcome.batch, aux, self.tokenizer.pad_token_id)
            stats.update(joined.stats)
            extras += [joined.extra] if joined.extra is not None else []
            outcome = AuxOutcome(joined.batch, outcome.first_main_row + joined.first_main_row)
        return AuxOutcome(outcome.batch, outcome.first_main_row, None, stats), extras

    def sample(self, problems: Sequence[Problem], temperature: float) -> RolloutBatch:
        """G completions of each problem at ``temperature``, with the task's (shaped) rewards."""
        c = self.cfg
        batch = generate_rollout(
            self.model, self.tokenizer, problems, format_prompt=self.format_prompt, group_size=c.rollout.group_size,
            temperature=temperature, max_new_tokens=c.rollout.max_new_tokens, generator=self.generator,
            sampler=self.synced_sampler(),
        )
        rewards, meta = score_rollout(self.task, batch, c.task, c.rollout.max_new_tokens)  # shaped; verifier's in meta
        self.counters["reward_errors"] += meta["reward_errors"]
        return batch.with_(rewards=rewards, meta={**batch.meta, **meta})

    def synced_sampler(self):
        """The backend's sampler holding the current weights (synced once after any optimizer steps since the
        last rollout, and after a resume; a no-op for the HF sampler, which samples from the model itself)."""
        if self._sampler_weights != self.weights_version():
            self.sampler.sync_weights(self.model)
            self._sampler_weights = self.weights_version()
        return self.sampler
