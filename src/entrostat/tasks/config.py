"""The task section of the run config: which task, its seeds, and how its rewards are computed and shaped."""

from __future__ import annotations

from dataclasses import dataclass

from entrostat.config.base import ConfigError, doc


@dataclass
class TaskConfig:
    name: str = doc("lab", "task name from the task registry: lab (the built-in procedural task), reasoning_gym "
                    "(kwargs dataset, config), dataset (kwargs path, prompt_column, answer_column; math-verify)")
    kwargs: dict = doc({}, "the task's parameters, typed by its params dataclass (lab: tasks.lab.LabParams)")
    train_seed: int = doc(0, "seed of the training prompt stream")
    heldout_seed: int = doc(10_000, "seed of the held-out prompts (a different stream from training)")
    reward_errors: str = doc("raise", "a reward function that raises: 'raise' fails the step naming the prompt; 'zero' scores 0 and counts it")
    reward: str | None = doc(None, "custom reward 'package.module:function' replacing the task's verifier in training and "
                             "evaluation, called as fn(problem, completion) -> number; a reward >= 1 counts as correct")
    reward_timeout: float = doc(10.0, "seconds one call of the custom reward (task.reward) may take; a call that runs "
                                "longer fails like a reward that raises (task.reward_errors); 0 = no limit")
    format_reward: float = doc(0.0, "added to the training reward when a completion is in the task's answer format "
                               "(answer tags, a \\boxed{}); never counts towards correctness; 0 = off")
    overlong_penalty: float = doc(0.0, "weight of DAPO's soft overlong punishment (2503.14476; paper: 1): from 0 at "
                                  "max_new_tokens - overlong_buffer down to -1 at max_new_tokens, -1 if truncated; 0 = off")
    overlong_buffer: int = doc(0, "DAPO's L_cache in tokens (paper: 4096 of 20480); 0 = a fifth of rollout.max_new_tokens")

    def validate(self, where: str = "") -> None:
        if self.reward_errors not in ("raise", "zero"):
            raise ConfigError(f"{where}.reward_errors = {self.reward_errors!r}: use 'raise' or 'zero'")
        for name in ("format_reward", "overlong_penalty", "overlong_buffer", "reward_timeout"):
            if not (getattr(self, name) >= 0 and getattr(self, name) < float("inf")):
                raise ConfigError(f"{where}.{name} = {getattr(self, name)} must be >= 0 and finite (0 turns it off)")
        if self.reward is not None and (not isinstance(self.reward, str) or self.reward.count(":") != 1):
            raise ConfigError(f"{where}.reward = {self.reward!r}: write it as 'package.module:function', "
                              "e.g. mypkg.rewards:score")
        import entrostat.tasks  # noqa: F401  (the built-in tasks register themselves)
        from entrostat.tasks.base import task_params

        task_params(self.name, self.kwargs)  # a task.kwargs typo is refused before any model loads
