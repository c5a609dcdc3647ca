"""The trainer: one RL step = rollouts → old log-probs → update → stats → controllers.

Built-in, single process, on the CPU (no GPU training path yet). The step's stages live in their own
modules: ``rollouts`` (the main rollout and the auxiliary ones controllers declare), ``update``
(micro-batching, backward, clipping, the optimizer) and ``stats`` (the metrics record).
Controllers are plug-ins (``train.control``); no method has a branch here. The model runs
in eval mode throughout (no dropout), as RL trainers usually do.
"""

from __future__ import annotations

import copy
import time
from pathlib import Path
from typing import Any

import torch

from entrostat import rundir
from entrostat.config.base import to_dict
from entrostat.config.run import RunConfig, lab_base_recipe
from entrostat.eval.evaluate import evaluate
from entrostat.eval.target import init_weights
from entrostat.models.loading import load_policy
from entrostat.rollout.backends import build_backend
from entrostat.tasks.scoring import build_task
from entrostat.train import checkpoint as ckpt
from entrostat.train.control import (
    apply_actuators,
    aux_requests,
    build_controllers,
    controller_values,
    score_temperatures,
    shape_advantages,
    update_controllers,
)
from entrostat.train.rollouts import StepRollouts
from entrostat.train.stats import policy_stats, reward_stats, step_diagnostics
from entrostat.train.update import TrainingError, Updater

__all__ = ["Trainer", "TrainingError"]


class Trainer:
    """Owns the model, the stages of a step, the generators and counters of one run."""

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
        ref_model = copy.deepcopy(self.model).requires_grad_(False) if cfg.loss.kl_coef > 0 else None
        self.task = build_task(cfg.task, cfg.rollout.max_new_tokens)
        self.generators = {
            "sample": torch.Generator().manual_seed(cfg.trainer.seed),
            "select": torch.Generator().manual_seed(cfg.trainer.seed + 1),
        }
        self.counters = {"nonfinite_skipped": 0, "nonfinite_in_row": 0, "reward_errors": 0}
        self.updater = Updater(cfg, self.model, ref_model, self.generators["select"], self.counters)
        sampler = build_backend(
            cfg.rollout.backend, model=self.model, tokenizer=self.tokenizer, model_name=m.name, work_dir=self.run_dir,
            dtype=m.dtype, seed=cfg.trainer.seed, gpu_memory_utilization=cfg.rollout.vllm_gpu_memory, lora=bool(m.lora),
        )
        self.rollouts = StepRollouts(cfg, self.model, self.tokenizer, self.format_prompt, self.task, sampler,
                                     self.generators["sample"], self.counters,
                                     weights_version=lambda: self.updater.scheduler.last_epoch)
        self.heldout = self.task.problems("heldout", cfg.eval.prompts, cfg.task.heldout_seed)
        self.step_idx = 0  # completed RL steps
        self.controllers = build_controllers(cfg.control)  # state saved in checkpoints

    # ------------------------------------------------------------------ one RL step
    def step(self) -> dict[str, float]:
        """One RL step; returns the step's metrics record."""
        c, times, clock = self.cfg, {}, time.perf_counter
        t0 = clock()
        actuators = controller_values(self.controllers)
        self.updater.loss_cfg, self.updater.step_idx = apply_actuators(c.loss, actuators), self.step_idx
        requests, temperatures = aux_requests(self.controllers), score_temperatures(self.controllers)
        times["time/control"] = clock() - t0
        problems = self.task.problems("train", c.rollout.prompts_per_step, self._data_seed(self.step_idx))
        main = self.rollouts.main(problems)
        times["time/rollout"] = clock() - t0
        t1 = clock()
        joined, extras = self.rollouts.auxiliary(problems, main, requests)
        times["time/aux_rollout"] = clock() - t1
        t2 = clock()
        batch, token_entropy, tempered = self.updater.score_old(joined.batch, temperatures)
        batch, shaping = shape_advantages(self.controllers, batch, tempered)
        times["time/old_logprobs"] = clock() - t2
        t3 = clock()
        update, batch, token_entropy = self.updater.update(batch, token_entropy, extras)
        times["time/update"] = clock() - t3
        self.step_idx += 1
        eta = update["lr"] * c.trainer.mini_batches * c.trainer.epochs
        record = {"step": self.step_idx, **reward_stats(main, c.rollout.group_size),
                  "nonfinite_skipped": float(self.counters["nonfinite_skipped"]),
                  **policy_stats(batch, token_entropy, joined.first_main_row), **joined.stats, **update,
                  **step_diagnostics(batch, token_entropy, joined.first_main_row, eta),
                  **{f"control/{k}": v for k, v in actuators.items()}, **shaping}
        t4 = clock()
        record.update(update_controllers(self.controllers, record, c.trainer.steps))
        times["time/control"] += clock() - t4
        times["time/step"] = clock() - t0
        record.update(times)
        record["throughput/tokens_per_s"] = float(main.completion_mask.sum()) / times["time/step"]
        return record

    def _data_seed(self, step: int) -> int:
        """Prompts of step k come from their own seed: the data position is the step index."""
        return self.cfg.task.train_seed * 1_000_003 + step

    # ------------------------------------------------------------------ eval, checkpoints
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
            "optimizer": self.updater.optimizer.state_dict(),
            "scheduler": self.updater.scheduler.state_dict(),
            "counters": dict(self.counters),
            "controllers": {k: c.state_dict() for k, c in self.controllers.items()},
            "rng": ckpt.rng_state(self.generators),
            "config": to_dict(self.cfg),  # what a resume checks the run's config.yaml against (train.preflight)
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.step_idx = state["step"]
        self.updater.optimizer.load_state_dict(state["optimizer"])
        self.updater.scheduler.load_state_dict(state["scheduler"])
        self.counters.update(state["counters"])
        for k, c in self.controllers.items():
            c.load_state_dict(state["controllers"][k])
        ckpt.set_rng_state(state["rng"], self.generators)

    def save(self) -> Path:
        return ckpt.save_checkpoint(rundir.checkpoints_dir(self.run_dir), self.step_idx, self.model, self.state_dict(),
                                    keep=self.cfg.log.keep_checkpoints)

    def restore_latest(self) -> bool:
        found = ckpt.restore_latest(rundir.checkpoints_dir(self.run_dir), self.model)
        if found is None:
            return False
        self.load_state_dict(found[1])
        return True
