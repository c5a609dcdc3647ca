"""Problems, the ``Task`` protocol and the task registry.

A task is a prompt source plus a verifier: ``problems`` draws a reproducible
list of problems from one split, ``score`` gives the verifiable reward (1.0 or
0.0, never raising on garbage text) and ``canonical`` the normalised answer used
to count distinct answers and for maj@n. A task may also define
``follows_format(problem, completion) -> bool``, whether the completion is in the
task's answer format (answer tags, a ``\\boxed{}``), which ``task.format_reward`` uses.

Tasks are registered by name in ``TASKS`` (a ``Registry``) with a params dataclass
that types their keyword arguments (``task.kwargs``): ``task_params`` builds and
validates it alone (cheap: a config check before any model loads), ``get_task``
builds it and then the task.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Callable, Protocol, TypeVar, runtime_checkable

from entrostat.config.base import ConfigError, from_dict
from entrostat.registry import Registry

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
_F = TypeVar("_F", bound=TaskFactory)


@dataclass(frozen=True)
class TaskEntry:
    """A registered task: its factory and the dataclass of the factory's keyword arguments."""

    factory: TaskFactory
    params: type


TASKS: Registry[TaskEntry] = Registry("task")


def register_task(name: str, params: type | None = None) -> Callable[[_F], _F]:
    """Decorator: register a task factory (a class or function) under ``name`` with its params dataclass.

    ``params`` (fields made with ``doc(default, help)``, optionally a ``validate(where)``
    method) defaults to the factory's ``Params`` attribute, so a subclass of a registered
    task takes the same parameters. The factory is called with every field as a keyword.
    """

    def deco(factory: _F) -> _F:
        cls = params if params is not None else getattr(factory, "Params", None)
        if not (isinstance(cls, type) and dataclasses.is_dataclass(cls)):
            raise TypeError(f"task {name!r} declares no parameters: pass a dataclass, "
                            f"register_task({name!r}, params=MyParams), or give the factory a Params attribute")
        TASKS.register(name)(TaskEntry(factory, cls))
        return factory

    return deco


def task_params(name: str, kwargs: Mapping[str, Any]) -> Any:
    """The params dataclass of task ``name`` built from ``kwargs`` and validated, without building the task.

    Cheap (no dataset read, no optional package imported), so a config can be checked
    before any model loads. Unknown names and unknown or mistyped keys raise ConfigError
    with a did-you-mean; a rule of the params' ``validate`` says what to write instead.
    """
    entry = TASKS.get(name)
    if not isinstance(kwargs, Mapping):
        raise ConfigError(f"task.kwargs = {kwargs!r}: write a mapping of the parameters of task {name!r} "
                          f"({', '.join(f.name for f in dataclasses.fields(entry.params)) or 'it takes none'})")
    return from_dict(entry.params, dict(kwargs), where="task.kwargs")


def get_task(name: str, **kwargs: Any) -> Task:
    """Build the task registered as ``name`` from its checked params (``task_params``)."""
    params = task_params(name, kwargs)
    fields = {f.name: getattr(params, f.name) for f in dataclasses.fields(params)}
    return TASKS.get(name).factory(**fields)


def check_heldout_fraction(where: str, value: float) -> None:
    """ConfigError unless the held-out share ``value`` lies strictly between 0 and 1."""
    if not 0.0 < value < 1.0:
        raise ConfigError(f"{where}.heldout_fraction = {value}: use a share strictly between 0 and 1, e.g. 0.2")


def check_split(split: str) -> None:
    """Raise ValueError unless ``split`` is one of SPLITS."""
    if split not in SPLITS:
        raise ValueError(f"unknown split {split!r}; use one of {', '.join(SPLITS)}")
