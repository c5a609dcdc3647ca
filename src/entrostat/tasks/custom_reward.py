"""A custom reward given as ``module:function`` (``task.reward``), replacing the task's verifier.

The one signature: ``fn(problem, completion) -> number``, where ``problem`` is the
``Problem`` the completion answers (``.prompt``, ``.answer``, ``.id``; ``.answer``
is what the task stores, e.g. the reasoning-gym entry or the gold answer text)
and ``completion`` the decoded completion text. Return 1.0 (or more) for a
correct completion: pass rate, pass@k and the held-out evaluation count a
reward ≥ 1 as correct, and the reward is also the training signal. A reward
that raises or returns a non-number fails the step with a RewardError, or
scores 0 and is counted with ``task.reward_errors: zero``.

The task keeps its prompts, canonical answers and answer format; only ``score``
changes.
"""

from __future__ import annotations

import importlib
import math
from collections.abc import Callable
from typing import Any

from entrostat.config.base import ConfigError
from entrostat.tasks.base import Problem, Task

RewardFn = Callable[[Problem, str], float]


def load_reward(spec: str) -> RewardFn:
    """The callable named by ``'package.module:function'`` (ConfigError saying what is wrong otherwise)."""
    where = f"task.reward = {spec!r}"
    if not isinstance(spec, str) or spec.count(":") != 1 or not all(part.strip() for part in spec.split(":")):
        raise ConfigError(f"{where}: write it as 'package.module:function', e.g. 'mypkg.rewards:score'")
    module_name, attr = (part.strip() for part in spec.split(":"))
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        raise ConfigError(
            f"{where}: module {module_name!r} cannot be imported ({exc}); install it or put its directory on PYTHONPATH"
        ) from None
    except Exception as exc:
        raise ConfigError(f"{where}: importing {module_name!r} failed: {type(exc).__name__}: {exc}") from exc
    obj: Any = module
    for part in attr.split("."):
        if not hasattr(obj, part):
            public = sorted(n for n in dir(module) if not n.startswith("_") and callable(getattr(module, n)))
            raise ConfigError(f"{where}: {module_name!r} has no attribute {attr!r}; its callables: "
                              f"{', '.join(public) or '(none)'}")
        obj = getattr(obj, part)
    if not callable(obj):
        raise ConfigError(f"{where}: {attr!r} is a {type(obj).__name__}, not a function; name a function "
                          "fn(problem, completion) -> number")
    return obj


class CustomRewardTask:
    """``task`` with ``score`` replaced by the custom reward ``fn(problem, completion)``."""

    def __init__(self, task: Task, fn: RewardFn, spec: str) -> None:
        self.inner, self.fn, self.spec = task, fn, spec
        self.name = f"{task.name} (reward {spec})"

    def problems(self, split: str, n: int, seed: int) -> list[Problem]:
        return self.inner.problems(split, n, seed)

    def score(self, problem: Problem, completion: str) -> float:
        """The custom reward as a float; TypeError naming the function when it is not a finite number."""
        r = self.fn(problem, completion)
        if isinstance(r, bool) or not isinstance(r, (int, float)) or not math.isfinite(r):
            raise TypeError(f"custom reward {self.spec} returned {r!r} ({type(r).__name__}); "
                            "it must return a finite number (1.0 for a correct completion)")
        return float(r)

    def canonical(self, problem: Problem, completion: str) -> str | None:
        return self.inner.canonical(problem, completion)

    def __getattr__(self, name: str) -> Any:  # follows_format and any task extras
        if name == "inner":
            raise AttributeError(name)
        return getattr(self.inner, name)
