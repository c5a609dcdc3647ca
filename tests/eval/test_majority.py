"""maj@n on hand-made cases: plain majorities, ties, non-comparable answers, errors."""

import itertools

import pytest

from entrostat.eval import maj_at_n, majority_index


def test_majority_index_plain_and_ties():
    assert majority_index(["a", "b", "b", "c"]) == 1  # b wins 2:1:1; its first sample is index 1
    assert majority_index(["a", "b", "b", "a"]) == 0  # tie a:b = 2:2; a's first sample comes first
    assert majority_index(["b", "a", "a", "b"]) == 0  # same tie, other order: b first
    assert majority_index(["c", "a", "b"]) == 0  # all tied at 1: the first sample
    assert majority_index([None, None, "x", None, "y", "y"]) == 4  # None never votes, even when most frequent
    assert majority_index([None, None]) is None
    assert majority_index([]) is None


def test_first_occurrence_tie_break_is_uniform_over_orders():
    """Over all orders of a tied multiset each tied answer wins equally often (= a uniform random tie-break)."""
    wins = {"a": 0, "b": 0, "c": 0}
    for order in set(itertools.permutations(["a", "a", "b", "b", "c"])):
        wins[order[majority_index(order)]] += 1
    assert wins["a"] == wins["b"] > 0 and wins["c"] == 0


def test_maj_at_n_counts_prompts_whose_majority_answer_is_correct():
    answers = [
        ["5+8", "5+8", "4+9"],  # majority 5+8, correct
        ["1+2", "3+4", "3+4"],  # majority 3+4, wrong
        ["6+7", "1+1", "1+1", "6+7"],  # tie: 6+7 first, correct
        ["1+1", "6+7", "6+7", "1+1"],  # same tie, wrong answer first
        [None, None, "6+7"],  # the only comparable answer wins
        [None, None, None],  # nothing comparable: wrong
    ]
    correct = [
        [True, True, False],
        [False, False, False],
        [True, False, False, True],
        [False, True, True, False],
        [False, False, True],
        [False, False, False],
    ]
    assert maj_at_n(answers, correct) == pytest.approx(3 / 6)


def test_majority_verdict_is_its_first_samples():
    # the same canonical answer scored differently (a task whose verdict is not a function of the
    # canonical answer): the first sample of the winning answer decides
    assert maj_at_n([["x", "x", "y"]], [[True, False, False]]) == 1.0
    assert maj_at_n([["x", "x", "y"]], [[False, True, False]]) == 0.0


def test_maj_at_n_not_reported_without_comparable_answers():
    assert maj_at_n([[None, None], [None]], [[True, False], [True]]) is None


def test_maj_at_n_errors():
    with pytest.raises(ValueError, match="no prompts"):
        maj_at_n([], [])
    with pytest.raises(ValueError, match="2 prompts of answers but 1"):
        maj_at_n([["a"], ["b"]], [[True]])
    with pytest.raises(ValueError, match="prompt 0 has 2 answers but 1"):
        maj_at_n([["a", "b"]], [[True]])
