"""math-verify rewards on tricky answers: fractions, LaTeX, units, separators, ####, negatives, garbage."""

from __future__ import annotations

import threading

import pytest

pytest.importorskip("math_verify")

from entrostat.tasks.math_answers import (
    completion_answer,
    gold_answer,
    has_boxed,
    last_boxed,
    math_canonical,
    math_score,
    normalize,
)

CORRECT = [
    ("1/2", "so the answer is \\boxed{0.5}"),
    ("0.5", "\\boxed{\\frac{1}{2}}"),
    ("\\frac{1}{2}", "the answer is 1/2"),
    ("\\frac{3}{4}", "\\boxed{\\dfrac34}"),
    ("5", "\\boxed{5 \\text{ cm}}"),
    ("5", "\\boxed{\\text{5 cm}}"),
    ("5", "It costs $5"),
    ("5", "\\boxed{\\$5}"),
    ("5", "\\boxed{5 dollars}"),
    ("1000", "\\boxed{1,000}"),
    ("1,000", "so 1000"),
    ("1,234,567", "\\boxed{1234567}"),
    ("Natalia sold 48/2 = 24 clips in May.\n#### 72", "She sold 72 clips.\n#### 72"),
    ("#### 72", "The total is 72."),
    ("#### -3", "\\boxed{-3}"),
    ("-3", "\\boxed{\u22123}"),
    ("\\boxed{\\sqrt{2}}", "\\boxed{\\sqrt 2}"),
    ("5", "\\boxed{x = 5}"),
    (42, "\\boxed{42}"),
    (0.5, "1/2"),
    ("12", "\\boxed{12\\text{ legs}}"),
    ("3", "first 2 then 3 apples"),
]
WRONG = [("-3", "\\boxed{3}"), ("72", "\\boxed{73}"), ("1/2", "\\boxed{2}"), ("1000", "\\boxed{100}"),
         ("72", "\\boxed{7} and then 72")]  # the boxed answer wins over a later number
GARBAGE = ["", "garbage", "\\boxed{", "\\boxed{}", "\\boxed{\\frac{", "}}}{{{\\\\\\", "\\boxed{" + "9" * 5000 + "}",
           "#### ", "\\boxed{\\begin{matrix}}", "$$$$", "\x00\uffff", "\\boxed{\\frac{1}{0}}", "\\boxed{nan}"]


@pytest.mark.parametrize("gold,completion", CORRECT)
def test_correct_answers_score_one(gold, completion):
    assert math_score(gold, completion) == 1.0


@pytest.mark.parametrize("gold,completion", WRONG)
def test_wrong_answers_score_zero(gold, completion):
    assert math_score(gold, completion) == 0.0


@pytest.mark.parametrize("completion", GARBAGE + [None, 17])
def test_garbage_scores_zero_without_raising(completion):
    assert math_score("72", completion) == 0.0
    math_canonical(completion)


def test_extraction_order_boxed_then_hashes_then_last_number():
    assert completion_answer("1 and \\boxed{2} then 3") == "2"
    assert completion_answer("x \\boxed{a} y \\boxed{\\frac{1}{2}}") == "\\frac{1}{2}"
    assert completion_answer("1 #### 2\nthen 3") == "2"
    assert completion_answer("first 1, then -2.5") == "-2.5"
    assert completion_answer("no number") is None
    assert last_boxed("\\boxed{\\frac{a}{b}} end") == "\\frac{a}{b}"


def test_gold_forms_and_normalisation():
    assert gold_answer("steps... #### 1,000") == "1,000"
    assert gold_answer("\\boxed{7}") == "7"
    assert gold_answer(3) == "3"
    assert normalize("$5$") == "5" and normalize("\\$5") == "5" and normalize("5 cm") == "5"
    assert normalize("1,000") == "1000" and normalize("\u22127") == "-7" and normalize("50%") == "50\\%"


def test_canonical_groups_equal_answers():
    assert math_canonical("\\boxed{0.5}") == math_canonical("1/2") == math_canonical("\\boxed{\\frac{1}{2}}")
    assert math_canonical("\\boxed{1,000}") == math_canonical("so 1000")
    assert math_canonical("no answer here") is None


def test_boxed_format():
    assert has_boxed("so \\boxed{3}") and not has_boxed("3") and not has_boxed("\\boxed{ }") and not has_boxed(None)


def test_scoring_off_the_main_thread_works():
    """math-verify's signal timeout raises outside the main thread; we run without it there."""
    out = []
    t = threading.Thread(target=lambda: out.append(math_score("1/2", "\\boxed{0.5}")))
    t.start()
    t.join(30)
    assert out == [1.0]
