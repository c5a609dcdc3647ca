"""The dataset task on jsonl, parquet and save_to_disk data written here; splits, draws, errors."""

from __future__ import annotations

import json

import pytest

from entrostat.tasks import get_task
from entrostat.tasks.dataset import DatasetTask

ROWS = [{"question": f"What is {i} + {i}?", "answer": f"{i} + {i} = {2 * i}\n#### {2 * i:,}"} for i in range(1, 41)]


def write_jsonl(path, rows):
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def gsm(path, **kw):
    return get_task("dataset", path=str(path), prompt_column="question", answer_column="answer", **kw)


def check_task(task: DatasetTask):
    train, held = task.problems("train", 30, seed=0), task.problems("heldout", 4, seed=0)
    assert not {p.prompt for p in train} & {p.prompt for p in held}
    assert task.split_sizes() == {"train": 36, "heldout": 4}
    p = held[0]
    assert "\\boxed{}" in p.prompt and p.prompt.startswith("What is")
    i = int(p.prompt.split()[2])
    assert p.answer == f"{2 * i:,}"  # the text after ####
    assert task.score(p, f"so the total is \\boxed{{{2 * i}}}") == 1.0
    assert task.score(p, f"\\boxed{{{2 * i + 1}}}") == 0.0
    assert task.score(p, "garbage \\boxed{") == 0.0
    assert task.follows_format(p, "\\boxed{1}") and not task.follows_format(p, "1")
    assert task.canonical(p, f"\\boxed{{{2 * i}.0}}") == str(2 * i)


def test_jsonl(tmp_path):
    check_task(gsm(write_jsonl(tmp_path / "gsm.jsonl", ROWS)))


def test_parquet(tmp_path):
    pa = pytest.importorskip("pyarrow")
    import pyarrow.parquet as pq

    path = tmp_path / "gsm.parquet"
    pq.write_table(pa.Table.from_pylist(ROWS), path)
    check_task(gsm(path))


def test_save_to_disk_dataset_and_datasetdict(tmp_path):
    datasets = pytest.importorskip("datasets")
    ds = datasets.Dataset.from_list(ROWS)
    ds.save_to_disk(str(tmp_path / "flat"))
    check_task(gsm(tmp_path / "flat"))
    dd = datasets.DatasetDict({"train": ds, "test": datasets.Dataset.from_list(ROWS[:4])})
    dd.save_to_disk(str(tmp_path / "dict"))
    task = gsm(tmp_path / "dict", split="train", heldout_path=str(tmp_path / "dict"), heldout_split="test")
    assert task.split_sizes() == {"train": 36, "heldout": 4}  # train rows whose prompt is held out are dropped
    with pytest.raises(ValueError, match="holds the splits train, test"):
        gsm(tmp_path / "dict", split="validation")


def test_draws_reproducible_and_cycle_when_n_exceeds_rows(tmp_path):
    task = gsm(write_jsonl(tmp_path / "gsm.jsonl", ROWS))
    assert [p.id for p in task.problems("train", 10, 5)] == [p.id for p in task.problems("train", 10, 5)]
    assert [p.id for p in task.problems("train", 10, 5)] != [p.id for p in task.problems("train", 10, 6)]
    many = task.problems("heldout", 10, seed=0)  # 4 rows: passes of 4, 4, then 2
    assert len(many) == 10 and len({p.id for p in many[:4]}) == 4 and {p.id for p in many} == {p.id for p in many[:4]}
    assert gsm(tmp_path / "gsm.jsonl").split_sizes() == task.split_sizes()  # the split is fixed by split_seed


def test_duplicate_prompts_never_cross_splits(tmp_path):
    rows = ROWS + ROWS[:20]
    task = gsm(write_jsonl(tmp_path / "dup.jsonl", rows), heldout_fraction=0.3)
    train = {p.prompt for p in task.problems("train", 200, 0)}
    assert not train & {p.prompt for p in task.problems("heldout", 50, 0)}


def test_template_and_default_columns(tmp_path):
    path = write_jsonl(tmp_path / "plain.jsonl", [{"prompt": f"p{i}", "answer": i} for i in range(10)])
    task = get_task("dataset", path=str(path), template="Q: {prompt}\nA:")
    (p,) = task.problems("heldout", 1, 0)
    assert p.prompt.startswith("Q: p") and p.prompt.endswith("A:")
    with pytest.raises(ValueError, match="no {prompt} placeholder"):
        get_task("dataset", path=str(path), template="Answer in \\boxed{}.")


def test_missing_answer_column_names_file_row_and_columns(tmp_path):
    rows = [{"question": "1+1?", "answer": "2"}, {"question": "2+2?", "solution": "4"}]
    path = write_jsonl(tmp_path / "bad.jsonl", rows)
    msg = r"bad\.jsonl: row 1 has no 'answer' value \(columns present: question, solution\)"
    with pytest.raises(ValueError, match=msg):
        gsm(path)
    with pytest.raises(ValueError, match="columns present: question, answer.*prompt_column"):
        get_task("dataset", path=str(path))  # default prompt column "prompt"


def test_bad_paths_and_files(tmp_path):
    with pytest.raises(ValueError, match="does not exist"):
        gsm(tmp_path / "missing.jsonl")
    (tmp_path / "x.csv").write_text("a,b\n")
    with pytest.raises(ValueError, match="unsupported file type"):
        gsm(tmp_path / "x.csv")
    (tmp_path / "broken.jsonl").write_text('{"question": "a", "answer": 1}\n{oops\n')
    with pytest.raises(ValueError, match="line 2 is not valid JSON"):
        gsm(tmp_path / "broken.jsonl")


def test_hub_name_without_hub_is_a_clear_error(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(ValueError, match="(?s)not a local file or directory, and HF_HUB_OFFLINE is set.*save_to_disk"):
        get_task("dataset", path="openai/gsm8k", subset="main")
