"""A custom reward 'module:function': loading, its errors, non-number rewards, and its use in a run."""

from __future__ import annotations

import sys
import textwrap

import pytest

from entrostat.config.base import ConfigError
from entrostat.config.recipes import build_config
from entrostat.tasks import get_task
from entrostat.tasks.custom_reward import CustomRewardTask, load_reward
from entrostat.tasks.config import TaskConfig
from entrostat.tasks.scoring import RewardError, build_task, score_completions
from entrostat.train.trainer import Trainer

MODULE = """
from entrostat.tasks.lab import parse_terms

def sums_right(problem, completion):
    terms = parse_terms(completion)
    return float(terms is not None and sum(terms) == problem.answer.target)

def none_reward(problem, completion):
    return None

def text_reward(problem, completion):
    return "1"

def boom(problem, completion):
    raise KeyError("boom")

NOT_CALLABLE = 3
"""


@pytest.fixture
def rewards_module(tmp_path, monkeypatch):
    (tmp_path / "my_rewards_mod.py").write_text(textwrap.dedent(MODULE))
    monkeypatch.syspath_prepend(str(tmp_path))
    yield "my_rewards_mod"
    sys.modules.pop("my_rewards_mod", None)


def test_loads_and_replaces_only_score(rewards_module):
    fn = load_reward(f"{rewards_module}:sums_right")
    task = CustomRewardTask(get_task("lab"), fn, f"{rewards_module}:sums_right")
    (p,) = task.problems("train", 1, seed=0)
    sol = p.answer.solutions[0]
    assert task.score(p, sol) == 1.0 and task.score(p, "0+0+0+0") in (0.0, 1.0)
    assert task.canonical(p, sol) == sol and task.follows_format(p, sol)
    assert "reward my_rewards_mod:sums_right" in task.name


@pytest.mark.parametrize("spec,match", [
    ("no_colon_here", "write it as 'package.module:function'"),
    ("a:b:c", "write it as"),
    (":score", "write it as"),
    ("surely_missing_pkg_xyz.rewards:score", "module 'surely_missing_pkg_xyz.rewards' cannot be imported"),
    ("{mod}:missing", "has no attribute 'missing'; its callables: .*sums_right"),
    ("{mod}:NOT_CALLABLE", "'NOT_CALLABLE' is a int, not a function"),
])
def test_bad_specs_are_config_errors(rewards_module, spec, match):
    with pytest.raises(ConfigError, match=match):
        load_reward(spec.format(mod=rewards_module))


def test_config_field_checks_the_spec_shape():
    with pytest.raises(ConfigError, match="package.module:function"):
        build_config(None, ["task.reward=mypkg.rewards.score"])


@pytest.mark.parametrize("fn,match", [("none_reward", r"returned None \(NoneType\)"),
                                      ("text_reward", r"returned '1' \(str\)"),
                                      ("boom", "KeyError: 'boom'")])
def test_non_number_or_raising_reward_is_a_reward_error(rewards_module, fn, match):
    task = build_task(TaskConfig(reward=f"{rewards_module}:{fn}"))
    problems = task.problems("train", 2, seed=0)
    with pytest.raises(RewardError, match=f"(?s)reward {rewards_module}:{fn}.*prompt '.*{match}.*reward_errors=zero"):
        score_completions(task, problems, ["1+2", "3+4"])
    rewards, errors = score_completions(task, problems, ["1+2", "3+4"], on_error="zero")
    assert errors == 2 and rewards.tolist() == [0.0, 0.0]


def test_plain_task_returning_non_number_is_a_reward_error():
    class Bad:
        name = "bad"

        def score(self, problem, completion):
            return [1.0]

    (p,) = get_task("lab").problems("train", 1, seed=0)
    with pytest.raises(RewardError, match=r"reward must be a finite number, got \[1.0\] \(list\)"):
        score_completions(Bad(), [p], ["x"])
    with pytest.raises(RewardError, match="got nan"):
        Bad.score = lambda self, problem, completion: float("nan")
        score_completions(Bad(), [p], ["x"])


def test_a_run_trains_on_the_custom_reward(tmp_path, tiny_lab_overrides, rewards_module):
    cfg = build_config(None, tiny_lab_overrides + [f"task.reward={rewards_module}:sums_right"])
    tr = Trainer(cfg, tmp_path)
    assert isinstance(tr.task, CustomRewardTask)
    rec = tr.step()
    assert 0.0 <= rec["pass_rate"] <= 1.0 and rec["reward_mean"] == pytest.approx(rec["pass_rate"])
