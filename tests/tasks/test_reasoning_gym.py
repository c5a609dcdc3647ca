"""The reasoning-gym adapter: disjoint reproducible splits, its verifier, garbage, unknown names."""

from __future__ import annotations

import pytest

pytest.importorskip("reasoning_gym")

from entrostat.tasks import get_task
from entrostat.tasks.reasoning_gym import ReasoningGymTask, dataset_names

SMALL_SUMS = {"min_terms": 2, "max_terms": 2, "min_digits": 1, "max_digits": 2}
GARBAGE = ["", "42", "<answer>", "</answer><answer>", "<answer>\x00\uffff</answer>",
           "<answer>" + "9" * 5000 + "</answer>",
           "<answer>[[[{{{</answer>", "<answer>None</answer>", "\\boxed{}", "<answer></answer>"]


@pytest.fixture(scope="module")
def chain_sum():
    return get_task("reasoning_gym", dataset="chain_sum", config=SMALL_SUMS)


def test_registered_and_prompt_has_question_and_format(chain_sum):
    (p,) = chain_sum.problems("train", 1, seed=0)
    assert p.answer["question"] in p.prompt and "<answer>" in p.prompt
    assert p.id.startswith("rg-chain_sum-")


def test_splits_disjoint_and_reproducible(chain_sum):
    train = chain_sum.problems("train", 200, seed=0)
    heldout = chain_sum.problems("heldout", 60, seed=0)
    assert not {p.answer["question"] for p in train} & {p.answer["question"] for p in heldout}
    assert all(chain_sum.split_of(p.answer["question"]) == "heldout" for p in heldout)
    assert [p.id for p in chain_sum.problems("train", 200, seed=0)] == [p.id for p in train]
    assert [p.id for p in chain_sum.problems("train", 50, seed=1)] != [p.id for p in train[:50]]
    assert len({p.id for p in train}) == 200  # distinct within a call


def test_same_seed_differs_between_splits(chain_sum):
    assert chain_sum.stream_seed("train", 0) != chain_sum.stream_seed("heldout", 0)
    assert 0 <= chain_sum.stream_seed("train", 123) < 2**31


def test_correct_wrong_and_garbage(chain_sum):
    for p in chain_sum.problems("heldout", 10, seed=3):
        gold = p.answer["answer"]
        assert chain_sum.score(p, f"I think... <answer>{gold}</answer>") == 1.0
        assert chain_sum.score(p, f"<answer>{int(gold) + 1}</answer>") == 0.0
        assert chain_sum.score(p, f"<answer>{gold} apples</answer>") == 0.0  # partial credit is binarised
        assert chain_sum.canonical(p, f"<answer> {gold}  </answer>") == gold
        assert chain_sum.follows_format(p, f"<answer>{gold}</answer>") and not chain_sum.follows_format(p, gold)
        for text in GARBAGE + [None, 17]:
            assert chain_sum.score(p, text) == 0.0, text
            chain_sum.canonical(p, text)


def test_partial_credit_passes_scores_through():
    task = ReasoningGymTask(dataset="chain_sum", config=SMALL_SUMS, partial_credit=True)
    (p,) = task.problems("train", 1, seed=0)
    s = task.score(p, f"<answer>{p.answer['answer']} apples</answer>")
    assert 0.0 < s < 1.0


def test_other_datasets_score_their_own_answers():
    for name, cfg in [("leg_counting", {"min_animals": 1, "max_animals": 2}), ("basic_arithmetic", SMALL_SUMS)]:
        task = get_task("reasoning_gym", dataset=name, config=cfg)
        for p in task.problems("train", 3, seed=0):
            assert task.score(p, f"<answer>{p.answer['answer']}</answer>") == 1.0


def test_unknown_dataset_names_close_matches_and_how_to_list():
    with pytest.raises(ValueError, match=r"(?s)'chain_sum'.*dataset_names\(\)"):
        ReasoningGymTask(dataset="chain_sums")
    assert "leg_counting" in dataset_names()


def test_bad_config_and_reserved_keys():
    with pytest.raises(ValueError, match="rejects config"):
        ReasoningGymTask(dataset="chain_sum", config={"no_such_field": 1})
    with pytest.raises(ValueError, match="leave out 'seed'"):
        ReasoningGymTask(dataset="chain_sum", config={"seed": 1})
    with pytest.raises(ValueError, match="unknown prompt_style"):
        ReasoningGymTask(dataset="chain_sum", prompt_style="loud")


def test_too_small_problem_space_is_a_clear_error():
    one_digit = {"min_terms": 2, "max_terms": 2, "min_digits": 1, "max_digits": 1}
    task = ReasoningGymTask(dataset="chain_sum", config=one_digit)
    with pytest.raises(ValueError, match="problem space is too small"):
        task.problems("heldout", 500, seed=0)


def test_last_number_fallback_only_without_tags():
    task = ReasoningGymTask(dataset="chain_sum", config=SMALL_SUMS, fallback="last_number")
    (p,) = task.problems("train", 1, seed=0)
    gold = p.answer["answer"]
    assert task.score(p, f"1 + 2 is 3, so {gold}") == 1.0
    assert task.score(p, f"{gold} <answer>{int(gold) + 1}</answer>") == 0.0  # the tags win
    assert not task.follows_format(p, gold) and task.follows_format(p, f"<answer>{gold}</answer>")
    assert task.score(p, "no number here") == 0.0
    with pytest.raises(ValueError, match="fallback"):
        ReasoningGymTask(dataset="chain_sum", fallback="first_word")
