"""Problems, the ``Task`` protocol and the task registry.

A task is a prompt source plus a verifier: ``problems`` draws a reproducible
list of problems from one split, ``score`` gives the verifiable reward (1.0 or
0.0, never raising on garbage text) and ``canonical`` the normalised answer used
to count distinct answers and for maj@n. A task may also define
``follows_format(problem, completion) -> bool``, whether the completion is in the
task's answer format (answer tags, a ``\\boxed{}``), which ``task.format_reward`` uses.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Protocol, TypeVar, runtime_checkable

SPLITS = ("train", "heldout")


@dataclass(frozen=True)
class Problem:
    """One prompt with what its verifier needs.

    ``prompt`` is the text before any chat or lab formatting; ``answer`` is
    whatever the task's verifier reads (for tasks with several correct answers,
    a description of the set); ``id`` is stable across runs.
    """

    prompt: str
    answer: Any
    id: str


@runtime_checkable
class Task(Protocol):
    """A prompt source with a verifiable reward."""

    name: str

    def problems(self, split: str, n: int, seed: int) -> list[Problem]:
        """``n`` problems of ``split`` ("train" or "heldout"); the splits never share a problem."""
        ...

    def score(self, problem: Problem, completion: str) -> float:
        """1.0 if ``completion`` is a correct answer to ``problem``, else 0.0; never raises."""
        ...

    def canonical(self, problem: Problem, completion: str) -> str | None:
        """The normalised answer in ``completion`` (right or wrong), None if unparseable."""
        ...


TaskFactory = Callable[..., Task]
TASKS: dict[str, TaskFactory] = {}
_F = TypeVar("_F", bound=TaskFactory)


def register_task(name: str) -> Callable[[_F], _F]:
    """Decorator: register a task factory (a class or function) under ``name``."""

    def deco(factory: _F) -> _F:
        if name in TASKS and TASKS[name] is not factory:
            raise ValueError(f"task {name!r} is already registered (by {TASKS[name]!r})")
        TASKS[name] = factory
        return factory

    return deco


def get_task(name: str, **kwargs: Any) -> Task:
    """Build the task registered as ``name`` with ``kwargs``; ValueError lists the valid names."""
    try:
        factory = TASKS[name]
    except KeyError:
        valid = ", ".join(sorted(TASKS)) or "(none registered)"
        raise ValueError(f"unknown task {name!r}; valid task names: {valid}") from None
    return factory(**kwargs)


def check_split(split: str) -> None:
    """Raise ValueError unless ``split`` is one of SPLITS."""
    if split not in SPLITS:
        raise ValueError(f"unknown split {split!r}; use one of {', '.join(SPLITS)}")
