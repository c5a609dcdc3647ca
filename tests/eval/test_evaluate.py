"""Held-out evaluation: summarize on hand-made samples, scoring once per distinct completion, evaluate end to end."""

import pytest
import torch

from entrostat.eval import pass_at_k_many
from entrostat.eval.evaluate import PromptSamples, _score_into, evaluate, summarize
from entrostat.models.lab import build_lab_model, build_lab_tokenizer, format_prompt
from entrostat.rollout import sample_groups, tokenize_prompts
from entrostat.rollout.batch import decode_completions
from entrostat.tasks.base import Problem


class EchoTask:
    """Correct when the completion equals the problem's answer; the canonical answer is the text
    itself (None when empty). Counts its calls."""

    name = "echo"

    def __init__(self):
        self.calls = 0

    def score(self, problem, completion):
        self.calls += 1
        return 1.0 if completion == problem.answer else 0.0

    def canonical(self, problem, completion):
        return completion or None


def test_summarize_hand_made():
    results = [
        PromptSamples("a", rewards=[1.0, 0.0, 1.0, 0.0], answers=["x", "y", "z", "y"]),  # majority y: wrong
        PromptSamples("b", rewards=[0.0, 0.0, 0.0, 1.0], answers=[None, None, None, "x"]),  # only x votes: right
        PromptSamples("c", rewards=[0.5, 0.0, 0.0, 0.0], answers=["q", "q", None, "r"]),  # 0.5 is not correct
    ]
    out = summarize(results, n=4, ks=[1, 3])
    assert out["pass@1"] == pytest.approx((2 / 4 + 1 / 4 + 0) / 3)
    assert out["pass@3"] == pytest.approx(pass_at_k_many([2, 1, 0], 4, [3])[3])
    assert out["mean@n"] == pytest.approx(3.5 / 12)
    assert out["maj@n"] == pytest.approx(1 / 3)
    assert out["distinct_correct"] == pytest.approx((2 + 1 + 0) / 3)
    assert list(summarize(results, n=4)) == ["pass@1", "pass@2", "pass@4", "mean@n", "maj@n", "distinct_correct"]


def test_summarize_without_comparable_answers_and_errors():
    results = [PromptSamples("a", rewards=[1.0, 0.0], answers=[None, None])]
    assert "maj@n" not in summarize(results, n=2)
    with pytest.raises(ValueError, match="has 2 samples, expected n = 3"):
        summarize(results, n=3)
    with pytest.raises(ValueError, match="no prompts"):
        summarize([], n=3)


def test_scoring_once_per_distinct_completion_equals_scoring_every_row():
    tok = build_lab_tokenizer()
    enc = lambda s: tok.convert_tokens_to_ids(list(s))
    problems = [Problem("p", "1+2", "p0"), Problem("q", "3+4", "p1")]
    rows = ["1+2", "1+2", "9", "1+", "3+4", "1+2", "3+4", "3+4"]  # 4 rows per prompt, prompt-major
    width = 5
    ids = torch.full((8, width), tok.pad_token_id)
    mask = torch.zeros(8, width)
    for i, text in enumerate(rows):
        t = enc(text) + [tok.eos_token_id]
        ids[i, : len(t)] = torch.tensor(t)
        mask[i, : len(t)] = 1
        ids[i, len(t):] = 7 + i  # junk after the mask must not split equal completions
    ids[3, 2] = tok.eos_token_id  # "1+" then EOS ...
    mask[3, 3:] = 0  # ... and a masked-out tail
    task = EchoTask()
    out = [PromptSamples("p0"), PromptSamples("p1")]
    _score_into(out, task, problems, tok, ids, mask, g=4)
    texts = decode_completions(tok, ids, mask)
    assert [r for s in out for r in s.rewards] == [task.score(problems[i // 4], t) for i, t in enumerate(texts)]
    assert [a for s in out for a in s.answers] == [t or None for t in texts]
    assert out[0].rewards == [1.0, 1.0, 0.0, 0.0] and out[1].rewards == [1.0, 0.0, 1.0, 1.0]
    assert task.calls - 8 == 5  # distinct (prompt, completion) pairs: 1+2, 9, 1+ | 3+4, 1+2


@pytest.fixture(scope="module")
def model_tok():
    tok = build_lab_tokenizer()
    return build_lab_model(tok, seed=0, hidden_size=32, intermediate_size=64, num_layers=2, num_heads=2).eval(), tok


class FirstCharTask:
    """Correct when the completion starts with a character of ``problem.answer``; canonical: that character."""

    name = "first_char"

    def score(self, problem, completion):
        return 1.0 if completion[:1] and completion[:1] in problem.answer else 0.0

    def canonical(self, problem, completion):
        return completion[:1] or None


PROBLEMS = [Problem("13:385176", "0123456789+", "a"), Problem("7:12", "0123", "b"), Problem("5:4", "+-*=", "c")]


def _eval(model_tok, **kw):
    model, tok = model_tok
    args = dict(format_prompt=format_prompt, n=10, temperature=1.0, max_new_tokens=3, seed=0)
    return evaluate(model, tok, FirstCharTask(), PROBLEMS, **{**args, **kw})


def test_evaluate_equals_sampling_and_scoring_every_row(model_tok):
    model, tok = model_tok
    ids, mask = tokenize_prompts(tok, [format_prompt(p) for p in PROBLEMS])
    comp, cmask, _, _ = sample_groups(model, ids, mask, group_size=10, temperature=1.0, max_new_tokens=3,
                                      eos_token_id=tok.eos_token_id, pad_token_id=tok.pad_token_id,
                                      generator=torch.Generator().manual_seed(7))
    texts, task = decode_completions(tok, comp, cmask), FirstCharTask()
    expected = [PromptSamples(p.id, [task.score(p, t) for t in texts[10 * j: 10 * j + 10]],
                              [task.canonical(p, t) for t in texts[10 * j: 10 * j + 10]]) for j, p in enumerate(PROBLEMS)]
    out = _eval(model_tok, ks=[1, 3, 10], seed=7)
    assert out == summarize(expected, 10, [1, 3, 10])
    assert set(out) == {"pass@1", "pass@3", "pass@10", "mean@n", "maj@n", "distinct_correct"}
    assert 0 < out["pass@1"] < out["pass@10"]  # the check has something to compare


def test_evaluate_is_deterministic_and_splits_large_n(model_tok):
    a = _eval(model_tok, ks=[1, 10], seed=5)
    assert a == _eval(model_tok, ks=[1, 10], seed=5)
    b = _eval(model_tok, ks=[1, 10], seed=5, batch_rows=4)  # n = 10 > 4: calls of 4, 4, 2 samples per prompt
    assert set(a) == set(b) and 0 < b["pass@10"] <= 1
    with pytest.raises(ValueError, match="batch_rows >= 1"):
        _eval(model_tok, batch_rows=0)
