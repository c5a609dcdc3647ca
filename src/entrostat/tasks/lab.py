"""The lab task: pick digits from a list that add up to a target.

A problem shows a target and ``n_digits`` distinct digits in random order, e.g.
the prompt ``"13:385176"``; a correct answer names ``n_terms`` digits of the
list (each at most once, any order) whose sum is the target, written as
``"8+5"``. The target comes first so that a left-to-right model reading the
digits already knows what they must add up to. Targets are chosen so that at least ``min_solutions`` different
digit sets are correct, so every prompt has several distinct correct answers
("8+5", "5+8", "6+7", "7+6" above) and exploration and pass@k matter.

Train and held-out problems never share a problem: a problem's split is fixed
by a hash of its digit *set* and target (not the order shown), so a held-out
problem is never a reordering of a training one. The two splits also draw
from different random streams.

With ``thought_len`` > 0 the task has a *thought*: the answer may be preceded by
any run of lowercase letters, which the verifier ignores (``"qea8+5"`` is correct
above). The base model is pre-trained to write ``thought_len`` letters drawn
independently from a Zipf law over a..z (``thought_zipf``) before its answer.
This stands in for an LLM's reasoning tokens, which the default lab lacks: free
tokens that carry entropy a correct answer does not constrain, with a long tail
of rare tokens (at exponent 1.2, 2.48 nats per letter, 6.5 % of the mass on
letters of probability below 0.01). Ours; no paper has it.

``sample_demonstration`` makes the deliberately imperfect answers the lab base
model is pre-trained on: a correct answer with probability ``correct_prob``,
otherwise a plausible near miss (a term off by one, the right sum with a digit
that is not in the list, or list digits with the wrong sum).
"""

from __future__ import annotations

import hashlib
import itertools
import random
import re
from dataclasses import dataclass

from entrostat.config.base import ConfigError, doc
from entrostat.tasks.base import Problem, check_heldout_fraction, check_split, register_task

_ANSWER_RE = re.compile(r"[0-9](?:\+[0-9])*")
_THOUGHT_RE = re.compile(r"[a-z]*")
THOUGHT_LETTERS = "abcdefghijklmnopqrstuvwxyz"


@dataclass(frozen=True)
class LabAnswer:
    """What the lab verifier needs: the digits shown, the target, and every correct digit set."""

    digits: tuple[int, ...]  # in prompt order
    target: int
    n_terms: int
    solutions: tuple[str, ...]  # canonical forms (ascending digits, "5+8") of all correct answers


def parse_terms(completion: str) -> list[int] | None:
    """The digits of an answer like ``" 8 + 5"`` (whitespace ignored), None if it is not of that form."""
    if not isinstance(completion, str):
        return None
    text = "".join(completion.split())
    if not _ANSWER_RE.fullmatch(text):
        return None
    return [int(ch) for ch in text.split("+")]


def zipf_weights(n: int, exponent: float) -> list[float]:
    """Probabilities of ranks 1..n under a Zipf law: p_k ∝ k^(−exponent)."""
    raw = [k ** -exponent for k in range(1, n + 1)]
    total = sum(raw)
    return [w / total for w in raw]


def canonical_terms(terms: list[int] | tuple[int, ...]) -> str:
    """Order-free form of an answer: its digits ascending, joined by "+"."""
    return "+".join(str(d) for d in sorted(terms))


@dataclass
class LabParams:
    """The lab task's parameters (``task.kwargs``)."""

    n_digits: int = doc(6, "distinct digits shown per prompt (more: more distractors); n_terms <= n_digits <= 10")
    n_terms: int = doc(2, "digits an answer adds up (2 or more; 3 needs a three-term sum)")
    min_solutions: int = doc(2, "fewest correct digit sets a prompt must have (larger: easier to hit)")
    heldout_fraction: float = doc(0.2, "share of problems (by digit set and target) held out, in (0, 1)")
    thought_len: int = doc(0, "letters of free 'thought' before the answer (0: no thought)")
    thought_zipf: float = doc(1.2, "Zipf exponent of the thought letters (0: uniform)")

    def validate(self, where: str = "") -> None:
        """ConfigError naming the field and what to write instead."""
        if not 2 <= self.n_terms <= self.n_digits <= 10:
            raise ConfigError(f"{where}.n_terms = {self.n_terms}, {where}.n_digits = {self.n_digits}: need "
                              "2 <= n_terms <= n_digits <= 10, e.g. n_terms 2 with n_digits 6")
        if self.min_solutions < 1:
            raise ConfigError(f"{where}.min_solutions = {self.min_solutions}: use 1 or more")
        check_heldout_fraction(where, self.heldout_fraction)
        if self.thought_len < 0 or int(self.thought_len) != self.thought_len:
            raise ConfigError(f"{where}.thought_len = {self.thought_len}: use a whole number >= 0 (0: no thought)")
        if self.thought_zipf < 0:
            raise ConfigError(f"{where}.thought_zipf = {self.thought_zipf}: use an exponent >= 0 (0: uniform letters)")


@register_task("lab")
class LabTask:
    """Digit-sum lab task with several correct answers per prompt (see module docstring).

    Its keyword arguments are the fields of ``LabParams`` (harder: more ``n_digits``,
    ``n_terms=3``, a smaller ``min_solutions``; ``thought_len`` > 0 adds the free thought).
    """

    name = "lab"
    Params = LabParams

    def __init__(
        self, n_digits: int = 6, n_terms: int = 2, min_solutions: int = 2, heldout_fraction: float = 0.2,
        thought_len: int = 0, thought_zipf: float = 1.2,
    ) -> None:
        LabParams(n_digits=n_digits, n_terms=n_terms, min_solutions=min_solutions, heldout_fraction=heldout_fraction,
                  thought_len=thought_len, thought_zipf=thought_zipf).validate(type(self).__name__)
        self.n_digits = n_digits
        self.n_terms = n_terms
        self.min_solutions = min_solutions
        self.heldout_fraction = heldout_fraction
        self.thought_len = int(thought_len)
        self.thought_zipf = thought_zipf
        self._thought_weights = zipf_weights(len(THOUGHT_LETTERS), thought_zipf)

    def sample_thought(self, rng: random.Random) -> str:
        """``thought_len`` letters drawn independently from the Zipf law ("" without drawing when there is none)."""
        if not self.thought_len:
            return ""
        return "".join(rng.choices(THOUGHT_LETTERS, self._thought_weights, k=self.thought_len))

    def _answer(self, completion: str) -> list[int] | None:
        """The answer's digits, after the thought when the task has one (see ``parse_terms``)."""
        if self.thought_len and isinstance(completion, str):
            completion = completion.lstrip()
            completion = completion[_THOUGHT_RE.match(completion).end():]
        return parse_terms(completion)

    def _split_of(self, digits: tuple[int, ...], target: int) -> str:
        """The split a problem belongs to: a stable hash of its digit set, target and n_terms."""
        key = f"{''.join(map(str, sorted(digits)))}:{target}:{self.n_terms}".encode()
        bucket = int.from_bytes(hashlib.blake2b(key, digest_size=8).digest(), "big") % 1_000_000
        return "heldout" if bucket < self.heldout_fraction * 1_000_000 else "train"

    def _draw(self, rng: random.Random) -> Problem | None:
        """One random problem, or None if the drawn digits admit no target with enough solutions."""
        digits = tuple(rng.sample(range(10), self.n_digits))
        by_sum: dict[int, list[str]] = {}
        for combo in itertools.combinations(digits, self.n_terms):
            by_sum.setdefault(sum(combo), []).append(canonical_terms(combo))
        targets = sorted(s for s, sols in by_sum.items() if len(sols) >= self.min_solutions)
        if not targets:
            return None
        target = rng.choice(targets)
        shown = "".join(map(str, digits))
        answer = LabAnswer(digits, target, self.n_terms, tuple(sorted(by_sum[target])))
        return Problem(prompt=f"{target}:{shown}", answer=answer, id=f"lab{self.n_terms}-{target}-{shown}")

    def problems(self, split: str, n: int, seed: int) -> list[Problem]:
        """``n`` distinct problems of ``split``, reproducible from ``seed``."""
        check_split(split)
        rng = random.Random(f"entrostat.lab/{split}/{seed}")
        out: list[Problem] = []
        seen: set[str] = set()
        for _ in range(1000 * n + 10_000):
            if len(out) >= n:
                break
            p = self._draw(rng)
            if p is None or p.prompt in seen or self._split_of(p.answer.digits, p.answer.target) != split:
                continue
            seen.add(p.prompt)
            out.append(p)
        if len(out) < n:
            raise ValueError(f"could only draw {len(out)} distinct {split} problems, asked for {n}")
        return out

    def score(self, problem: Problem, completion: str) -> float:
        """1.0 if the completion names ``n_terms`` distinct listed digits summing to the target."""
        terms = self._answer(completion)
        if terms is None or len(terms) != problem.answer.n_terms:
            return 0.0
        return 1.0 if canonical_terms(terms) in problem.answer.solutions else 0.0

    def canonical(self, problem: Problem, completion: str) -> str | None:
        """Digits of the answer ascending ("5+8" for "8+5"), right or wrong; None if not digits joined by "+"."""
        terms = self._answer(completion)
        return None if terms is None else canonical_terms(terms)

    def follows_format(self, problem: Problem, completion: str) -> bool:
        """The expected format: ``n_terms`` digits joined by "+" (right or wrong), after any thought."""
        terms = self._answer(completion)
        return terms is not None and len(terms) == problem.answer.n_terms


def sample_demonstration(problem: Problem, rng: random.Random, correct_prob: float) -> str:
    """An answer for pre-training: correct (uniform over ordered answers) with probability ``correct_prob``,
    otherwise a wrong near miss."""
    ans: LabAnswer = problem.answer
    if rng.random() < correct_prob:
        terms = [int(ch) for ch in rng.choice(ans.solutions).split("+")]
        rng.shuffle(terms)
        return "+".join(map(str, terms))
    return _near_miss(ans, rng)


def _near_miss(ans: LabAnswer, rng: random.Random) -> str:
    """A plausible wrong answer: off by one, a digit not in the list, or listed digits with the wrong sum."""
    for _ in range(1000):
        kind = rng.randrange(3)
        if kind == 0:  # a correct answer with one term moved by one
            terms = [int(ch) for ch in rng.choice(ans.solutions).split("+")]
            rng.shuffle(terms)
            i = rng.randrange(len(terms))
            terms[i] += rng.choice((-1, 1))
        elif kind == 1:  # right sum, but the last digit is not available (or repeats one)
            terms = rng.sample(ans.digits, ans.n_terms - 1)
            terms.append(ans.target - sum(terms))
        else:  # listed digits, wrong sum
            terms = rng.sample(ans.digits, ans.n_terms)
        if all(0 <= d <= 9 for d in terms) and canonical_terms(terms) not in ans.solutions:
            return "+".join(map(str, terms))
    raise RuntimeError(f"no near miss found for {ans}")  # unreachable for valid problems
