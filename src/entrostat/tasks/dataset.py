"""The ``dataset`` task: prompts and gold answers from a file or a Hugging Face dataset, scored by math-verify.

``path`` is a ``.jsonl`` file (one JSON object a line), a ``.parquet`` file, a
directory written by ``datasets``' ``save_to_disk`` (a Dataset, or a DatasetDict
of which ``split`` is read), or, where the Hugging Face hub is reachable, a hub
name (``openai/gsm8k`` with ``subset: main``). Without a hub a hub name fails at
once with a ValueError saying how to make a local copy.

Each row gives a prompt (``prompt_column``) and a gold answer (``answer_column``:
a value, text with ``\\boxed{}``, or GSM8K-style ``... #### 42``); the prompt shown
is ``template`` with ``{prompt}`` replaced; answers are checked by
``tasks.math_answers`` (math-verify), the expected format is a ``\\boxed{}``.

Splits are disjoint by prompt text. Without ``heldout_path``, the distinct
prompts are permuted with ``split_seed`` and the last ``heldout_fraction`` of
them (at least one) are held out. With ``heldout_path`` that file is the
held-out split, and training rows whose prompt also appears there are dropped.
``problems(split, n, seed)`` shuffles the split's rows with ``seed`` and takes
the first n; when n exceeds the rows it goes on with a fresh shuffle, so each
row appears once per pass (rows repeat only then). Different seeds are
independent draws: successive training steps see overlapping rows, as with
sampling with replacement between steps.
"""

from __future__ import annotations

import json
import math
import random
import threading
from dataclasses import dataclass
from pathlib import Path

from entrostat.config.base import ConfigError, doc
from entrostat.tasks.base import Problem, check_heldout_fraction, check_split, register_task
from entrostat.tasks.math_answers import (
    gold_answer,
    has_boxed,
    math_canonical,
    math_score,
    require_math_verify,
)

DEFAULT_TEMPLATE = "{prompt}\nPlease reason step by step, and put your final answer within \\boxed{}."
_FILE_SUFFIXES = (".jsonl", ".json", ".parquet")


@dataclass(frozen=True)
class Row:
    prompt: str
    answer: str  # the gold answer as text (after #### / \boxed extraction)
    ref: str  # where it came from, for ids and messages: "<file>#<row>"


def read_records(path: str, split: str = "train", subset: str | None = None) -> tuple[list[dict], str]:
    """(records as dicts, a short name of the source) from a jsonl / parquet file, a save_to_disk directory
    or a hub name (see the module docstring)."""
    p = Path(path).expanduser()
    if p.is_file():
        if p.suffix == ".parquet":
            import pyarrow.parquet as pq

            return pq.read_table(p).to_pylist(), p.name
        if p.suffix in (".jsonl", ".json"):
            return _read_jsonl(p), p.name
        raise ValueError(f"{p}: unsupported file type {p.suffix!r}; give a .jsonl or .parquet file, or a "
                         "directory written by datasets' save_to_disk")
    if p.is_dir():
        return _read_saved(p, split), p.name
    if p.suffix in _FILE_SUFFIXES or str(path).startswith((".", "/", "~")):
        raise ValueError(f"dataset file {str(p)!r} does not exist")
    return _read_hub(str(path), split, subset), str(path)


def _read_jsonl(p: Path) -> list[dict]:
    out = []
    with p.open(encoding="utf-8") as f:
        for i, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                rec = json.loads(line)
            except json.JSONDecodeError as exc:
                raise ValueError(
                    f"{p}: line {i} is not valid JSON ({exc.msg}); write one JSON object per line"
                ) from None
            if not isinstance(rec, dict):
                raise ValueError(f"{p}: line {i} is a {type(rec).__name__}, not a JSON object with named columns")
            out.append(rec)
    return out


def _read_saved(p: Path, split: str) -> list[dict]:
    import datasets

    try:
        ds = datasets.load_from_disk(str(p))
    except Exception as exc:  # noqa: BLE001 - datasets raises several kinds for a non-dataset directory
        raise ValueError(f"{p} is a directory but not one written by datasets' save_to_disk: {exc}") from None
    if isinstance(ds, datasets.DatasetDict):
        if split not in ds:
            raise ValueError(f"{p} holds the splits {', '.join(ds)}; choose one with task.kwargs.split "
                             f"(and task.kwargs.heldout_split), not {split!r}")
        ds = ds[split]
    return ds.to_list()


def _hub_reachable(timeout: float = 3.0) -> bool:
    """One HTTP HEAD to the hub endpoint in a thread (a hanging DNS lookup cannot stall the caller)."""
    answered: list[bool] = []

    def probe() -> None:
        try:
            from huggingface_hub import constants
            from huggingface_hub.utils import get_session

            get_session().head(constants.ENDPOINT, timeout=timeout)
            answered.append(True)
        except Exception:  # noqa: BLE001 - any failure: not reachable
            pass

    t = threading.Thread(target=probe, daemon=True)
    t.start()
    t.join(timeout + 2.0)
    return bool(answered)


def _read_hub(name: str, split: str, subset: str | None) -> list[dict]:
    import os

    advice = (f"Where a hub is reachable run datasets.load_dataset({name!r}{', ' + repr(subset) if subset else ''})"
              ".save_to_disk('DIR') (or export .jsonl / .parquet), copy it here and set task.kwargs.path to it")
    offline = [v for v in ("HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE") if os.environ.get(v, "") not in ("", "0")]
    if offline or not _hub_reachable():
        why = f"{offline[0]} is set" if offline else "the Hugging Face hub is not reachable"
        raise ValueError(f"dataset {name!r} is not a local file or directory, and {why}. {advice}")
    import datasets

    try:
        return datasets.load_dataset(name, subset, split=split).to_list()
    except Exception as exc:  # noqa: BLE001 - network, missing split or config: all end the same way
        raise ValueError(f"dataset {name!r} could not be loaded from the hub: {exc}. {advice}") from None


def to_rows(records: list[dict], source: str, prompt_column: str, answer_column: str) -> list[Row]:
    """Rows from records; a record without either column (or with a null there) is a ValueError naming
    the source, the row and the columns it has."""
    if not records:
        raise ValueError(f"{source}: no rows")
    rows = []
    for i, rec in enumerate(records):
        for col in (prompt_column, answer_column):
            if rec.get(col) is None:
                which = "prompt_column" if col == prompt_column else "answer_column"
                raise ValueError(
                    f"{source}: row {i} has no {col!r} value (columns present: {', '.join(map(str, rec))}); "
                    f"set task.kwargs.{which} to the column that holds it"
                )
        rows.append(Row(str(rec[prompt_column]), gold_answer(rec[answer_column]), f"{source}#{i}"))
    return rows


@dataclass
class DatasetParams:
    """The dataset task's parameters (``task.kwargs``)."""

    path: str = doc("", "a .jsonl or .parquet file, a directory written by datasets' save_to_disk, or a hub name "
                    "(openai/gsm8k)")
    prompt_column: str = doc("prompt", "column holding the prompt text")
    answer_column: str = doc("answer", "column holding the gold answer (a value, \\boxed{} text or '... #### 42')")
    template: str = doc(DEFAULT_TEMPLATE, "the prompt shown, with {prompt} replaced by the row's prompt")
    heldout_fraction: float = doc(0.1, "share of distinct prompts held out when there is no heldout_path, in (0, 1)")
    heldout_path: str | None = doc(None, "the held-out split from its own file or directory (same forms as path)")
    split: str = doc("train", "split of a DatasetDict or hub dataset to read")
    heldout_split: str | None = doc(None, "split of heldout_path to read (default: split)")
    subset: str | None = doc(None, "hub dataset configuration, e.g. main for openai/gsm8k")
    split_seed: int = doc(0, "seed of the permutation that picks the held-out prompts")

    def validate(self, where: str = "") -> None:
        """ConfigError naming the field and what to write instead."""
        if not self.path:
            raise ConfigError(f"{where}.path is empty: set it to a .jsonl or .parquet file, a directory written by "
                              "datasets' save_to_disk, or a hub name such as openai/gsm8k")
        if "{prompt}" not in self.template:
            raise ConfigError(f"{where}.template = {self.template!r} has no {{prompt}} placeholder; "
                              "e.g. write '{prompt}\\nAnswer in \\\\boxed{}.'")
        check_heldout_fraction(where, self.heldout_fraction)


@register_task("dataset")
class DatasetTask:
    """Prompts and answers from a jsonl / parquet / Hugging Face dataset, checked by math-verify (module docstring)."""

    name = "dataset"
    Params = DatasetParams

    def __init__(
        self,
        path: str,
        prompt_column: str = "prompt",
        answer_column: str = "answer",
        template: str = DEFAULT_TEMPLATE,
        heldout_fraction: float = 0.1,
        heldout_path: str | None = None,
        split: str = "train",
        heldout_split: str | None = None,
        subset: str | None = None,
        split_seed: int = 0,
    ) -> None:
        DatasetParams(path=path, prompt_column=prompt_column, answer_column=answer_column, template=template,
                      heldout_fraction=heldout_fraction, heldout_path=heldout_path, split=split,
                      heldout_split=heldout_split, subset=subset, split_seed=split_seed).validate(type(self).__name__)
        require_math_verify()
        self.template = template
        rows = to_rows(*read_records(path, split, subset), prompt_column, answer_column)
        if heldout_path is None:
            self.splits = self._split(rows, heldout_fraction, split_seed)
        else:
            held = to_rows(*read_records(heldout_path, heldout_split or split, subset), prompt_column, answer_column)
            held_prompts = {r.prompt for r in held}
            self.splits = {"train": [r for r in rows if r.prompt not in held_prompts], "heldout": held}
        if not self.splits["train"]:
            raise ValueError(f"{path}: no training rows left (every prompt is held out)")

    @staticmethod
    def _split(rows: list[Row], fraction: float, seed: int) -> dict[str, list[Row]]:
        """Distinct prompts permuted with ``seed``; the last ``fraction`` of them (≥ 1) held out."""
        prompts = list(dict.fromkeys(r.prompt for r in rows))
        if len(prompts) < 2:
            raise ValueError(f"{rows[0].ref.split('#')[0]}: {len(prompts)} distinct prompt(s); need at least 2 to "
                             "hold some out (or give heldout_path)")
        random.Random(f"entrostat.dataset/split/{seed}").shuffle(prompts)
        k = min(len(prompts) - 1, max(1, math.ceil(fraction * len(prompts))))
        held = set(prompts[len(prompts) - k:])
        return {"train": [r for r in rows if r.prompt not in held], "heldout": [r for r in rows if r.prompt in held]}

    def problems(self, split: str, n: int, seed: int) -> list[Problem]:
        """``n`` rows of ``split``: shuffled with ``seed``, cycling through fresh shuffles when n > rows."""
        check_split(split)
        pool = self.splits[split]
        rng = random.Random(f"entrostat.dataset/{split}/{seed}")
        picked: list[Row] = []
        while len(picked) < n:
            order = list(pool)
            rng.shuffle(order)
            picked.extend(order[: n - len(picked)])
        return [Problem(prompt=self.template.replace("{prompt}", r.prompt), answer=r.answer, id=r.ref) for r in picked]

    def score(self, problem: Problem, completion: str) -> float:
        """math-verify: 1.0 when the completion's answer equals the gold answer; never raises."""
        return math_score(problem.answer, completion)

    def canonical(self, problem: Problem, completion: str) -> str | None:
        return math_canonical(completion)

    def follows_format(self, problem: Problem, completion: str) -> bool:
        """The expected format: a non-empty ``\\boxed{...}``."""
        return has_boxed(completion)

    def split_sizes(self) -> dict[str, int]:
        """Rows per split."""
        return {k: len(v) for k, v in self.splits.items()}
