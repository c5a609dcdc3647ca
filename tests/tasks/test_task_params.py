"""Typed task parameters: ``task.kwargs`` is checked against each task's params dataclass before the task is built."""

from __future__ import annotations

import inspect
import sys
from dataclasses import MISSING, dataclass, fields

import pytest

from entrostat.config.base import ConfigError, doc
from entrostat.tasks import TASKS, LabTask, get_task, register_task
from entrostat.tasks.base import task_params
from entrostat.tasks.lab import LabParams

BUILT_IN = ("lab", "dataset", "reasoning_gym")


@dataclass
class CountdownParams:
    """An outside task's parameters."""

    start: int = doc(3, "the first number counted down from")
    word: str = doc("go", "said after zero")

    def validate(self, where: str = "") -> None:
        if self.start < 0:
            raise ConfigError(f"{where}.start = {self.start}: count down from 0 or more")


@register_task("test_countdown", params=CountdownParams)
def countdown(start: int, word: str) -> dict:
    """A toy factory registered from outside the package (a function, not a class)."""
    return {"name": "test_countdown", "numbers": list(range(start, -1, -1)), "word": word}


@register_task("test_lab_subclass")
class LabSubclass(LabTask):
    """A subclass registered without params takes its parent's (``LabTask.Params``)."""


def test_unknown_kwarg_suggests_the_closest_key():
    with pytest.raises(ConfigError, match=r"unknown config key 'task\.kwargs\.thought_lenn'\. "
                                          r"Did you mean 'task\.kwargs\.thought_len'\?"):
        get_task("lab", thought_lenn=3)
    with pytest.raises(ConfigError, match=r"Did you mean 'task\.kwargs\.prompt_column'\?.*Valid keys here: path"):
        task_params("dataset", {"path": "x.jsonl", "promt_column": "q"})


@pytest.mark.parametrize("name, kwargs, match", [
    ("lab", {"n_digits": "six"}, r"task\.kwargs\.n_digits: expected an integer, got 'six'"),
    ("lab", {"thought_len": 1.5}, r"task\.kwargs\.thought_len: expected an integer, got 1\.5"),
    ("lab", {"thought_zipf": "steep"}, r"task\.kwargs\.thought_zipf: expected a number"),
    ("reasoning_gym", {"partial_credit": "yes"}, r"task\.kwargs\.partial_credit: expected true or false"),
    ("dataset", {"path": 3}, r"task\.kwargs\.path: expected a string, got 3"),
])
def test_mistyped_kwarg_is_refused(name, kwargs, match):
    with pytest.raises(ConfigError, match=match):
        task_params(name, kwargs)


def test_values_are_coerced_to_the_declared_types():
    p = task_params("lab", {"n_digits": 7.0, "thought_zipf": 1})
    assert p.n_digits == 7 and type(p.n_digits) is int
    assert p.thought_zipf == 1.0 and type(p.thought_zipf) is float
    assert get_task("lab", n_digits=7.0).n_digits == 7


@pytest.mark.parametrize("name, kwargs, match", [
    ("lab", {"n_terms": 7}, r"task\.kwargs\.n_terms = 7, task\.kwargs\.n_digits = 6: need 2 <= n_terms"),
    ("lab", {"n_terms": 1}, r"n_terms = 1.*e\.g\. n_terms 2 with n_digits 6"),
    ("lab", {"n_digits": 11, "n_terms": 2}, r"n_digits = 11: need 2 <= n_terms <= n_digits <= 10"),
    ("lab", {"min_solutions": 0}, r"task\.kwargs\.min_solutions = 0: use 1 or more"),
    ("lab", {"heldout_fraction": 1.0}, r"task\.kwargs\.heldout_fraction = 1\.0: use a share strictly between 0 and 1"),
    ("lab", {"heldout_fraction": 0}, r"task\.kwargs\.heldout_fraction = 0\.0: use a share"),
    ("lab", {"thought_len": -1}, r"task\.kwargs\.thought_len = -1: use a whole number >= 0"),
    ("lab", {"thought_zipf": -0.5}, r"task\.kwargs\.thought_zipf = -0\.5: use an exponent >= 0"),
    ("dataset", {}, r"task\.kwargs\.path is empty: set it to a \.jsonl or \.parquet file"),
    ("dataset", {"path": "x.jsonl", "template": "Q:"}, r"task\.kwargs\.template = 'Q:' has no \{prompt\}.*write"),
    ("dataset", {"path": "x.jsonl", "heldout_fraction": 1.5}, r"task\.kwargs\.heldout_fraction = 1\.5"),
    ("reasoning_gym", {"config": "min_terms=2"}, r"task\.kwargs\.config = 'min_terms=2': write a mapping"),
    ("reasoning_gym", {"config": {"seed": 1}}, r"task\.kwargs\.config: leave out 'seed'"),
    ("reasoning_gym", {"config": {"size": 9}}, r"task\.kwargs\.config: leave out 'size'"),
    ("reasoning_gym", {"heldout_fraction": -0.1}, r"task\.kwargs\.heldout_fraction = -0\.1"),
    ("reasoning_gym", {"fallback": "first_word"}, r"task\.kwargs\.fallback = 'first_word': use 'none'"),
])
def test_each_validate_rule(name, kwargs, match):
    with pytest.raises(ConfigError, match=match):
        task_params(name, kwargs)


def test_a_direct_constructor_applies_the_same_rules():
    with pytest.raises(ConfigError, match=r"LabTask\.thought_len = 1\.5: use a whole number"):
        LabTask(thought_len=1.5)


def test_task_params_neither_imports_nor_reads(monkeypatch):
    """Valid params of the heavy tasks are built without reasoning-gym and without touching the file."""
    monkeypatch.setitem(sys.modules, "reasoning_gym", None)  # any import of it now fails
    assert task_params("reasoning_gym", {"dataset": "chain_sum"}).dataset == "chain_sum"
    assert task_params("dataset", {"path": "/no/such/file.jsonl"}).path == "/no/such/file.jsonl"
    with pytest.raises(ImportError):
        get_task("reasoning_gym", dataset="chain_sum")


def test_unknown_task_and_non_mapping_kwargs():
    with pytest.raises(ConfigError, match=r"unknown task 'reasoning-gym'; did you mean 'reasoning_gym'\?"):
        task_params("reasoning-gym", {})
    with pytest.raises(ConfigError, match=r"task\.kwargs = 3: write a mapping of the parameters of task 'lab' \(n_"):
        task_params("lab", 3)


def test_outside_registered_toy_task_works_through_get_task():
    assert "test_countdown" in TASKS
    assert get_task("test_countdown") == {"name": "test_countdown", "numbers": [3, 2, 1, 0], "word": "go"}
    assert get_task("test_countdown", start=1.0, word="now")["numbers"] == [1, 0]
    with pytest.raises(ConfigError, match=r"Did you mean 'task\.kwargs\.start'\?"):
        get_task("test_countdown", strat=2)
    with pytest.raises(ConfigError, match=r"task\.kwargs\.start = -1: count down from 0 or more"):
        get_task("test_countdown", start=-1)


def test_a_subclass_inherits_its_parents_params():
    assert TASKS.get("test_lab_subclass").params is LabParams
    assert isinstance(get_task("test_lab_subclass", thought_len=2), LabSubclass)
    with pytest.raises(ConfigError, match="Did you mean 'task.kwargs.n_terms'"):
        get_task("test_lab_subclass", n_term=3)


def test_registering_without_params_is_refused():
    with pytest.raises(TypeError, match=r"task 'test_bare' declares no parameters.*params=MyParams"):
        register_task("test_bare")(lambda: None)
    assert "test_bare" not in TASKS


@pytest.mark.parametrize("name", BUILT_IN)
def test_params_match_the_constructor(name):
    """The params dataclass and the constructor's keywords agree, defaults included (a constructor without a default
    for a field, like the dataset's path, gets the field's validated placeholder)."""
    entry = TASKS.get(name)
    signature = inspect.signature(entry.factory).parameters
    assert [f.name for f in fields(entry.params)] == list(signature)
    for f in fields(entry.params):
        default = f.default if f.default is not MISSING else f.default_factory()
        if signature[f.name].default is not inspect.Parameter.empty:
            assert signature[f.name].default == default, f.name
