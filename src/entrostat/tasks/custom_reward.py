"""A custom reward given as ``module:function`` (``task.reward``), replacing the task's verifier.

The one signature: ``fn(problem, completion) -> number``, where ``problem`` is the
``Problem`` the completion answers (``.prompt``, ``.answer``, ``.id``; ``.answer``
is what the task stores, e.g. the reasoning-gym entry or the gold answer text)
and ``completion`` the decoded completion text. Return 1.0 (or more) for a
correct completion: pass rate, pass@k and the held-out evaluation count a
reward ≥ 1 as correct, and the reward is also the training signal. Any real
number is accepted: a Python int or float, a numpy scalar (``np.float32(1.0)``)
or a 0-d numpy array or torch tensor; not a bool, NaN or ±inf. A reward that
raises, returns anything else or runs out of time fails the step with a
RewardError, or scores 0 and is counted with ``task.reward_errors: zero``
(``scoring.score_completions`` stops the run when most of a batch fails).

Each call runs under a timeout, ``task.reward_timeout`` seconds (default 10; 0 =
none). In the main thread (the CLI, the trainer) it is a ``SIGALRM`` from
``signal.setitimer``: the reward is interrupted at its next Python bytecode (a
long-running C call, such as one huge regular-expression match, is interrupted
only when it returns to Python), the exception is a ``BaseException`` that the
reward's own ``except Exception`` cannot swallow, and the alarm repeats until
the call has unwound. A timer already running in the process is put back with
what is left of it; a reward that arms ``SIGALRM`` itself (math-verify's
``signal.alarm`` timeout) replaces ours for the duration of its own. Outside the
main thread (no signals there) the call runs in a worker thread that is waited
for up to the timeout; a thread cannot be stopped, so a reward that never
returns keeps running in the background while the run fails or scores it 0.

The task keeps its prompts, canonical answers and answer format; only ``score``
changes.
"""

from __future__ import annotations

import importlib
import math
import numbers
import signal
import threading
import time
from collections.abc import Callable
from typing import Any

from entrostat.config.base import ConfigError
from entrostat.tasks.base import Problem, Task
from entrostat.tasks.scoring import RewardError

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


class RewardTimeout(RewardError):
    """A call of the custom reward ran longer than ``task.reward_timeout``."""


class _Expired(BaseException):
    """Raised by the alarm inside a reward that ran out of time; not an Exception, so the reward cannot catch it
    with ``except Exception``."""


REARM_S = 0.05  # after the first alarm, it fires again this often until the call has unwound


def call_with_timeout(fn: Callable[..., Any], args: tuple, seconds: float, what: str) -> Any:
    """``fn(*args)``, or RewardTimeout naming ``what`` once it has run ``seconds`` (0: no limit; see the module
    docstring for how: SIGALRM in the main thread, else a worker thread)."""
    if not seconds:
        return fn(*args)
    if hasattr(signal, "setitimer") and threading.current_thread() is threading.main_thread():
        return _call_with_alarm(fn, args, seconds, what)
    return _call_in_thread(fn, args, seconds, what)


def _expired(seconds: float, what: str, extra: str = "") -> RewardTimeout:
    return RewardTimeout(f"{what} did not return within {seconds:g} s{extra}; make it faster, or raise "
                         "task.reward_timeout (0: no limit)")


def _call_with_alarm(fn: Callable[..., Any], args: tuple, seconds: float, what: str) -> Any:
    armed = [True]

    def expire(signum, frame) -> None:
        if armed[0]:
            raise _Expired

    def disarm() -> None:
        armed[0] = False
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
        if outer[0] > 0:  # a timer that ran before ours: what is left of it
            signal.setitimer(signal.ITIMER_REAL, max(outer[0] - (time.monotonic() - start), 1e-3), outer[1])

    previous = signal.signal(signal.SIGALRM, expire)
    start = time.monotonic()
    outer = signal.setitimer(signal.ITIMER_REAL, seconds, REARM_S)
    try:
        try:
            return fn(*args)
        finally:
            disarm()
    except _Expired:  # raised in the reward, or in the finally above before the flag was cleared
        if armed[0]:
            disarm()
        raise _expired(seconds, what) from None


def _call_in_thread(fn: Callable[..., Any], args: tuple, seconds: float, what: str) -> Any:
    box: dict[str, Any] = {}

    def run() -> None:
        try:
            box["value"] = fn(*args)
        except BaseException as exc:  # noqa: BLE001 - handed to the caller
            box["error"] = exc

    worker = threading.Thread(target=run, name="entrostat-reward", daemon=True)
    worker.start()
    worker.join(seconds)
    if worker.is_alive():
        raise _expired(seconds, what, " (outside the main thread it keeps running in a background thread, which "
                                      "cannot be stopped)")
    if "error" in box:
        raise box["error"]
    return box["value"]


def as_reward(value: Any) -> float | None:
    """``value`` as a float if it is a finite real number (int, float, numpy scalar, 0-d numpy array or torch
    tensor; not a bool), else None."""
    if not isinstance(value, numbers.Real) and getattr(value, "ndim", None) == 0 and hasattr(value, "item"):
        value = value.item()
    if isinstance(value, bool) or type(value).__name__ == "bool_" or not isinstance(value, numbers.Real):
        return None
    value = float(value)
    return value if math.isfinite(value) else None


class CustomRewardTask:
    """``task`` with ``score`` replaced by the custom reward ``fn(problem, completion)``, each call limited to
    ``timeout`` seconds (0: no limit)."""

    def __init__(self, task: Task, fn: RewardFn, spec: str, timeout: float = 0.0) -> None:
        self.inner, self.fn, self.spec, self.timeout = task, fn, spec, timeout
        self.name = f"{task.name} (reward {spec})"

    def problems(self, split: str, n: int, seed: int) -> list[Problem]:
        return self.inner.problems(split, n, seed)

    def score(self, problem: Problem, completion: str) -> float:
        """The custom reward as a float; TypeError naming the function when it is not a finite number,
        RewardTimeout when it runs longer than the timeout."""
        r = call_with_timeout(self.fn, (problem, completion), self.timeout, f"custom reward {self.spec}")
        value = as_reward(r)
        if value is None:
            raise TypeError(f"custom reward {self.spec} returned {r!r} ({type(r).__name__}); "
                            "it must return a finite number (1.0 for a correct completion)")
        return value

    def canonical(self, problem: Problem, completion: str) -> str | None:
        return self.inner.canonical(problem, completion)

    def __getattr__(self, name: str) -> Any:  # follows_format and any task extras
        if name == "inner":
            raise AttributeError(name)
        return getattr(self.inner, name)
