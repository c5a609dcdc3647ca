"""reasoning-gym datasets as a task: ``reasoning_gym`` with ``dataset`` and its ``config``.

reasoning-gym (pip ``reasoning-gym``) generates procedural problems with their own
verifiers. Here ``problems`` draws entries from
``reasoning_gym.create_dataset(dataset, seed=s, size=m, **config)``, the prompt is the
entry's question followed by an answer-format instruction, the answer is read from
the last ``<answer>...</answer>`` of the completion (reasoning-gym's
``utils.extract_answer``) and scored by the dataset's own ``score_answer``.

Splits. A question belongs to ``heldout`` when a stable hash of its text falls in
the first ``heldout_fraction`` of the hash range, else to ``train``; a draw keeps
only entries of the asked split. So train and held-out problems never share a
question text, whatever the seeds. Each (split, seed) also gets its own generator
seed, a hash of the dataset name, split and seed below 2**31, so successive
training seeds read different streams (most reasoning-gym datasets seed item i
with seed + i, so two hashed seeds closer than a draw's length would share
items: rare, and never across splits). On a small problem space (say one-digit
sums) a question comes back in later draws of its split, as it must. Within one
call the problems are distinct.

Small models rarely write the tags at first: ``fallback='last_number'`` reads
the completion's last number when it has no ``<answer>`` tags (for datasets with
numeric answers); the answer format (``follows_format``, for a format reward)
stays the tags.

Rewards are binary by default: reasoning-gym gives partial credit for some near
misses (e.g. an answer containing the right number among other text scores
len(answer)/len(text)); ``partial_credit=True`` passes those scores through, and
then only a score of 1 counts as correct (pass rate, pass@k).
"""

from __future__ import annotations

import difflib
import hashlib
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from entrostat.config.base import ConfigError, doc
from entrostat.tasks.base import Problem, check_heldout_fraction, check_split, register_task

# Answer-format instructions; "direct" and "default" are reasoning-gym's own
# system prompts (reasoning_gym.utils.SYSTEM_PROMPTS), given in the user turn here.
_INSTRUCTIONS = {
    "short": "Give only the final answer between <answer> and </answer> tags, for example <answer>42</answer>.",
}
_NUMBER = re.compile(r"-?\d+(?:\.\d+)?")
_MAX_ANSWER_CHARS = 2000  # longer "answers" are not answers; they would only slow the verifier down


def _rg():
    try:
        import reasoning_gym
    except ImportError as exc:  # the core installs without it
        raise ImportError(
            "the reasoning_gym task needs the reasoning-gym package: pip install 'entrostat[real]' "
            "(or pip install reasoning-gym)"
        ) from exc
    return reasoning_gym


def dataset_names() -> list[str]:
    """Every dataset name reasoning-gym registers."""
    _rg()
    from reasoning_gym.factory import DATASETS

    return sorted(DATASETS)


def check_dataset_name(name: str) -> None:
    """ValueError naming close matches (difflib) and how to list all, for an unknown dataset name."""
    names = dataset_names()
    if name in names:
        return
    close = difflib.get_close_matches(str(name), names, n=3, cutoff=0.5)
    hint = f" Did you mean {', '.join(repr(c) for c in close)}?" if close else ""
    raise ValueError(
        f"unknown reasoning-gym dataset {name!r}.{hint} List all {len(names)} names with: python -c "
        "\"from entrostat.tasks.reasoning_gym import dataset_names; print(dataset_names())\""
    )


def instruction_text(style: str) -> str:
    """The answer-format instruction of ``style``: 'short' (ours) or a key of reasoning-gym's SYSTEM_PROMPTS."""
    from reasoning_gym.utils import SYSTEM_PROMPTS

    if style in _INSTRUCTIONS:
        return _INSTRUCTIONS[style]
    if style in SYSTEM_PROMPTS:
        return SYSTEM_PROMPTS[style].strip()
    valid = ", ".join(sorted({*_INSTRUCTIONS, *SYSTEM_PROMPTS}))
    raise ValueError(f"unknown prompt_style {style!r}; use one of {valid}, or give instruction='...' yourself")


def _hash01(text: str) -> float:
    """A stable number in [0, 1) from ``text``."""
    return int.from_bytes(hashlib.blake2b(text.encode(), digest_size=8).digest(), "big") / 2**64


@dataclass
class ReasoningGymParams:
    """The reasoning_gym task's parameters (``task.kwargs``); the dataset name and prompt_style are checked
    against reasoning-gym when the task is built (that needs the package)."""

    dataset: str = doc("basic_arithmetic", "reasoning-gym dataset name: basic_arithmetic, chain_sum, leg_counting, ...")
    config: dict[str, Any] | None = doc(None, "that dataset's config fields, without seed and size")
    prompt_style: str = doc("short", "answer-format line after the question: short (ours) or a reasoning-gym system "
                            "prompt (default, direct, simple, chain_of_draft, DeepSeekZero)")
    instruction: str | None = doc(None, "that line written out instead of prompt_style")
    heldout_fraction: float = doc(0.2, "share of question texts held out, in (0, 1)")
    partial_credit: bool = doc(False, "pass reasoning-gym's partial scores through (only 1 counts as correct)")
    fallback: str = doc("none", "without <answer> tags: none (score 0) or last_number (the completion's last number)")

    def validate(self, where: str = "") -> None:
        """ConfigError naming the field and what to write instead."""
        if self.config is not None and not isinstance(self.config, Mapping):
            raise ConfigError(f"{where}.config = {self.config!r}: write a mapping of the dataset's config fields, "
                              "e.g. {min_terms: 2, max_terms: 3}")
        for key in ("seed", "size"):
            if key in (self.config or {}):
                raise ConfigError(f"{where}.config: leave out {key!r}; the task sets it per split and seed")
        check_heldout_fraction(where, self.heldout_fraction)
        if self.fallback not in ("none", "last_number"):
            raise ConfigError(f"{where}.fallback = {self.fallback!r}: use 'none' (answer tags only) or 'last_number'")


@register_task("reasoning_gym")
class ReasoningGymTask:
    """A reasoning-gym dataset with its verifier (see the module docstring).

    Its keyword arguments are the fields of ``ReasoningGymParams``. The answer format is an
    ``<answer>...</answer>`` pair (``follows_format``).
    """

    name = "reasoning_gym"
    Params = ReasoningGymParams

    def __init__(
        self,
        dataset: str = "basic_arithmetic",
        config: dict[str, Any] | None = None,
        prompt_style: str = "short",
        instruction: str | None = None,
        heldout_fraction: float = 0.2,
        partial_credit: bool = False,
        fallback: str = "none",
    ) -> None:
        ReasoningGymParams(dataset=dataset, config=config, prompt_style=prompt_style, instruction=instruction,
                           heldout_fraction=heldout_fraction, partial_credit=partial_credit,
                           fallback=fallback).validate(type(self).__name__)
        rg = _rg()
        check_dataset_name(dataset)
        self.config = dict(config or {})
        self.fallback = fallback
        self.dataset = dataset
        self.instruction = instruction if instruction is not None else instruction_text(prompt_style)
        self.heldout_fraction = heldout_fraction
        self.partial_credit = partial_credit
        try:  # builds (and validates) the config once; this instance also scores
            self._scorer = rg.create_dataset(dataset, seed=0, size=1, **self.config)
        except (TypeError, ValueError, AssertionError) as exc:
            raise ValueError(f"reasoning-gym dataset {dataset!r} rejects config {self.config}: {exc}") from exc

    def split_of(self, question: str) -> str:
        """'heldout' or 'train': a stable hash of the question text against ``heldout_fraction``."""
        return "heldout" if _hash01(f"{self.dataset}\n{question}") < self.heldout_fraction else "train"

    def stream_seed(self, split: str, seed: int) -> int:
        """The generator seed of (split, seed): a hash below 2**31 (numpy-seeded datasets add the index)."""
        return int(_hash01(f"entrostat.reasoning_gym/{self.dataset}/{split}/{seed}") * 2**31)

    def problems(self, split: str, n: int, seed: int) -> list[Problem]:
        """``n`` distinct problems of ``split``, reproducible from ``seed``."""
        check_split(split)
        budget = 50 * n + 1000
        ds = _rg().create_dataset(self.dataset, seed=self.stream_seed(split, seed), size=budget, **self.config)
        out: list[Problem] = []
        seen: set[str] = set()
        for idx in range(budget):
            if len(out) >= n:
                break
            entry = ds[idx]
            q = entry["question"]
            if q in seen or self.split_of(q) != split:
                continue
            seen.add(q)
            pid = f"rg-{self.dataset}-{hashlib.blake2b(q.encode(), digest_size=6).hexdigest()}"
            out.append(Problem(prompt=f"{q.rstrip()}\n\n{self.instruction}", answer=entry, id=pid))
        if len(out) < n:
            raise ValueError(
                f"could only draw {len(out)} distinct {split} problems of {self.dataset!r} with config "
                f"{self.config}, asked for {n}; the problem space is too small: widen the config"
            )
        return out

    def extract(self, completion: str) -> str | None:
        """The text of the last ``<answer>...</answer>`` (stripped); without one, None, or with
        ``fallback='last_number'`` the last integer or decimal number in the completion."""
        from reasoning_gym.utils import extract_answer

        if not isinstance(completion, str):
            return None
        found = extract_answer(completion)
        if found is None and self.fallback == "last_number":
            numbers = _NUMBER.findall(completion)
            found = numbers[-1] if numbers else None
        return found

    def score(self, problem: Problem, completion: str) -> float:
        """The dataset's ``score_answer`` on the extracted answer (binarised unless partial_credit); never raises."""
        answer = self.extract(completion)
        if answer is None or len(answer) > _MAX_ANSWER_CHARS:
            return 0.0
        try:
            s = float(self._scorer.score_answer(answer, problem.answer))
        except Exception:  # noqa: BLE001 - a verifier choking on garbage means a wrong answer
            return 0.0
        if not 0.0 <= s <= 1.0:  # also catches nan
            return 0.0
        return s if self.partial_credit else float(s >= 1.0)

    def canonical(self, problem: Problem, completion: str) -> str | None:
        """The extracted answer with whitespace collapsed, None without answer tags."""
        answer = self.extract(completion)
        return None if answer is None else " ".join(answer.split())

    def follows_format(self, problem: Problem, completion: str) -> bool:
        """The expected format: a non-empty ``<answer>...</answer>`` (a bare number never counts)."""
        from reasoning_gym.utils import extract_answer

        return isinstance(completion, str) and bool(extract_answer(completion))
