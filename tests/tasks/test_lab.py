"""The lab task: verifier, several correct answers per prompt, disjoint splits, registry errors."""

import random

import pytest

from entrostat.config.base import ConfigError
from entrostat.tasks import (
    TASKS,
    LabAnswer,
    LabTask,
    Problem,
    Task,
    get_task,
    register_task,
)
from entrostat.tasks.lab import THOUGHT_LETTERS, sample_demonstration, zipf_weights


@pytest.fixture(scope="module")
def task():
    return get_task("lab")


@pytest.fixture(scope="module")
def problems(task):
    return task.problems("train", 300, seed=0)


def _key(p: Problem):
    return tuple(sorted(p.answer.digits)), p.answer.target


def test_registry_and_protocol(task):
    assert isinstance(task, LabTask) and isinstance(task, Task)
    assert task.name == "lab" and TASKS.get("lab").factory is LabTask
    assert get_task("lab", n_digits=7).n_digits == 7


def test_unknown_task_lists_valid_names():
    with pytest.raises(ConfigError, match=r"unknown task 'nope'.*Valid task names: .*lab"):
        get_task("nope")
    with pytest.raises(ConfigError, match=r"unknown task 'lba'; did you mean 'lab'\?"):
        get_task("lba")


def test_register_twice_is_an_error():
    with pytest.raises(ValueError, match="already registered"):
        register_task("lab")(LabTask)


def test_problems_are_reproducible_and_distinct(task, problems):
    again = task.problems("train", 300, seed=0)
    assert [p.prompt for p in again] == [p.prompt for p in problems]
    assert len({p.prompt for p in problems}) == len({p.id for p in problems}) == 300
    other = task.problems("train", 300, seed=1)
    assert [p.prompt for p in other] != [p.prompt for p in problems]
    with pytest.raises(ValueError, match="split"):
        task.problems("test", 1, seed=0)


def test_several_distinct_correct_answers(task, problems):
    for p in problems:
        sols = p.answer.solutions
        assert len(sols) >= 2
        for s in sols:
            a, b = s.split("+")
            assert task.score(p, f"{a}+{b}") == 1.0 and task.score(p, f"{b}+{a}") == 1.0
        assert len({task.canonical(p, s) for s in sols}) == len(sols)


def test_score_correct_and_incorrect(task):
    p = next(q for q in task.problems("train", 50, seed=3))
    digits, target = p.answer.digits, p.answer.target
    a, b = (int(x) for x in p.answer.solutions[0].split("+"))
    assert task.score(p, f"{a}+{b}") == 1.0
    assert task.score(p, f" {b} + {a}\n") == 1.0  # whitespace is ignored
    wrong_sum = next(f"{x}+{y}" for x in digits for y in digits if x != y and x + y != target)
    assert task.score(p, wrong_sum) == 0.0
    missing = [d for d in range(10) if d not in digits]
    unavailable = [f"{x}+{target - x}" for x in digits if (target - x) in missing]
    for ans in unavailable:
        assert task.score(p, ans) == 0.0
    assert task.score(p, f"{a}+{b}+0") == 0.0  # wrong number of terms


def test_same_digit_twice_is_wrong():
    task = LabTask()
    p = Problem("8:402136", LabAnswer((4, 0, 2, 1, 3, 6), 8, 2, ("2+6",)), "x")
    assert task.score(p, "4+4") == 0.0 and task.score(p, "6+2") == 1.0


@pytest.mark.parametrize("garbage", ["", " ", "abc", "8+", "+5", "8++5", "85", "18+5", "8-5", "8+5=13", "<eos>",
                                     "８+５", "8+5" * 50, None, 42])
def test_garbage_scores_zero_and_never_raises(task, problems, garbage):
    assert task.score(problems[0], garbage) == 0.0
    assert task.canonical(problems[0], garbage) is None


def test_canonical_is_order_free(task, problems):
    p = problems[0]
    assert task.canonical(p, "8+5") == task.canonical(p, "5 + 8") == "5+8"
    assert task.canonical(p, "9+9") == "9+9"  # parseable even when wrong


def test_train_and_heldout_do_not_overlap(task):
    train = task.problems("train", 3000, seed=0)
    heldout = task.problems("heldout", 300, seed=0)
    assert not {p.prompt for p in train} & {p.prompt for p in heldout}
    assert not {_key(p) for p in train} & {_key(p) for p in heldout}  # not even a reordering
    assert not {_key(p) for p in task.problems("train", 500, seed=9)} & {_key(p) for p in heldout}


def test_demonstrations_mix_correct_and_near_misses(task, problems):
    rng = random.Random(0)
    good = [task.score(p, sample_demonstration(p, rng, 1.0)) for p in problems]
    bad = [sample_demonstration(p, rng, 0.0) for p in problems]
    assert all(g == 1.0 for g in good)
    assert all(task.score(p, b) == 0.0 and task.canonical(p, b) is not None for p, b in zip(problems, bad))
    mixed = [task.score(p, sample_demonstration(p, rng, 0.3)) for p in problems for _ in range(5)]
    assert 0.2 < sum(mixed) / len(mixed) < 0.4


def test_three_term_variant():
    task = LabTask(n_terms=3, n_digits=7)
    for p in task.problems("heldout", 50, seed=0):
        assert len(p.answer.solutions) >= 2
        x, y, z = p.answer.solutions[-1].split("+")
        assert task.score(p, f"{z}+{x}+{y}") == 1.0
        assert task.score(p, f"{x}+{y}") == 0.0


def test_bad_difficulty_parameters():
    with pytest.raises(ValueError, match="n_terms"):
        LabTask(n_terms=7, n_digits=6)
    with pytest.raises(ValueError, match="heldout_fraction"):
        LabTask(heldout_fraction=1.0)


def test_zipf_weights():
    w = zipf_weights(26, 1.2)
    assert sum(w) == pytest.approx(1.0) and all(a > b for a, b in zip(w, w[1:]))
    assert w[0] / w[9] == pytest.approx(10 ** 1.2)
    assert zipf_weights(4, 0.0) == [0.25] * 4


def test_thought_is_drawn_from_the_zipf_law_and_ignored_by_the_verifier():
    task = LabTask(thought_len=3, thought_zipf=1.2)
    rng = random.Random(0)
    thoughts = [task.sample_thought(rng) for _ in range(4000)]
    assert all(len(t) == 3 and t.isalpha() and t.islower() for t in thoughts)
    letters = "".join(thoughts)
    share = {ch: letters.count(ch) / len(letters) for ch in THOUGHT_LETTERS}
    for ch, w in zip(THOUGHT_LETTERS, zipf_weights(26, 1.2)):
        assert share[ch] == pytest.approx(w, abs=0.01)
    p = task.problems("train", 5, seed=0)[0]
    a, b = p.answer.solutions[0].split("+")
    for thought in ("", "q", "qza", "abcdefgh", " qza "):
        assert task.score(p, f"{thought}{a}+{b}") == 1.0
        assert task.canonical(p, f"{thought}{b}+{a}") == f"{a}+{b}" and task.follows_format(p, f"{thought}{a}+{b}")
    assert task.score(p, f"{a}+{b}q") == 0.0 and task.score(p, f"Q{a}+{b}") == 0.0  # after the answer / not a..z
    assert LabTask().score(p, f"qza{a}+{b}") == 0.0  # without a thought, letters are wrong
    assert LabTask().sample_thought(rng) == ""


def test_bad_thought_parameters():
    with pytest.raises(ValueError, match="thought_len"):
        LabTask(thought_len=-1)
    with pytest.raises(ValueError, match="thought_len"):
        LabTask(thought_len=1.5)
    with pytest.raises(ValueError, match="thought_zipf"):
        LabTask(thought_zipf=-0.5)
