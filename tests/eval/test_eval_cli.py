"""`entrostat eval` on a tiny two-step lab run: the table, the JSON, target resolution, the errors.

The run is trained in-process with ``entrostat.cli.main`` on the lab prompts with a
lenient verifier (any answer starting with a digit is correct) so that the tiny
model scores above zero; its periodic evaluation at step 2 must equal
`entrostat eval` of its step-2 checkpoint with the same settings.
"""

import json
import shutil

import pytest

from entrostat.cli import main
from entrostat.eval.target import resolve_target
from entrostat.tasks.base import register_task
from entrostat.tasks.lab import LabTask
from entrostat.rundir import read_metrics

LENIENT = "eval-test-lenient-lab"


@register_task(LENIENT)
class LenientLab(LabTask):
    """Lab prompts; correct when the completion starts with a digit; canonical answer: that first character."""

    def score(self, problem, completion):
        return 1.0 if completion[:1].isdigit() else 0.0

    def canonical(self, problem, completion):
        return completion[:1] or None


_RUN: dict = {}  # the run is trained once per session, by the first test that asks for it


@pytest.fixture
def run_dir(tmp_path_factory, tiny_lab_overrides):
    if "dir" not in _RUN:
        out = tmp_path_factory.mktemp("eval-cli") / "run"
        assert main(["train", *tiny_lab_overrides, "trainer.steps=2", "log.checkpoint_every=1",
                     f"task.name={LENIENT}", "--run-dir", str(out)]) == 0
        _RUN["dir"] = out
    return _RUN["dir"]


def test_eval_run_dir_prints_table_and_writes_json(run_dir, capsys):
    out_json = run_dir / "eval-test.json"
    args = ["eval", str(run_dir), "--n", "12", "--k", "1,3,12", "--prompts", "4", "--temperature", "1.5",
            "--top-p", "0.9", "--seed", "3", "--out", str(out_json), "--quiet"]
    assert main(args) == 0
    text = capsys.readouterr().out
    assert "checkpoint step 2" in text and "n=12 per prompt, temperature=1.5, top_p=0.9, max_new_tokens=6, seed=3" in text
    for k in (1, 3, 12):
        assert f"\n{k:>6}  " in text
    assert "mean@n" in text and "maj@n" in text
    res = json.loads(out_json.read_text())
    assert res["settings"] == {"n": 12, "ks": [1, 3, 12], "temperature": 1.5, "top_p": 0.9, "max_new_tokens": 6,
                               "prompts": 4, "heldout_seed": 10_000, "seed": 3, "batch_rows": 1024}
    assert res["step"] == 2 and res["checkpoint"].endswith("step-00000002")
    assert set(res["metrics"]) == {"pass@1", "pass@3", "pass@12", "mean@n", "maj@n", "distinct_correct"}
    assert len(res["per_prompt"]) == 4 and all(0 <= p["n_correct"] <= 12 for p in res["per_prompt"])
    assert res["metrics"]["pass@1"] == pytest.approx(sum(p["n_correct"] for p in res["per_prompt"]) / 48)


def test_periodic_eval_equals_cli_eval_of_the_checkpoint(run_dir, tmp_path):
    record = next(r for r in read_metrics(run_dir / "metrics.jsonl") if r["step"] == 2)
    out_json = tmp_path / "e.json"
    # TINY_LAB: eval.samples=4, eval.prompts=8; the trainer's evaluation seed is trainer.seed * 7919 + 17
    ckpt = run_dir / "checkpoints" / "step-00000002"
    assert main(["eval", str(ckpt), "--n", "4", "--prompts", "8", "--seed", "17", "--out", str(out_json), "--quiet"]) == 0
    metrics = json.loads(out_json.read_text())["metrics"]
    assert {f"eval/{k}": v for k, v in metrics.items()} == {k: v for k, v in record.items() if k.startswith("eval/")}
    assert 0 < metrics["pass@1"] < 1 and "maj@n" in metrics  # the comparison has something to compare
    assert main(["eval", str(ckpt), "--n", "4", "--prompts", "8", "--seed", "18", "--out", str(out_json), "--quiet"]) == 0
    assert json.loads(out_json.read_text())["metrics"] != metrics  # and another seed gives other numbers


def test_targets_resolve(run_dir):
    assert resolve_target(str(run_dir)).checkpoint.name == "step-00000002"
    assert resolve_target(str(run_dir / "checkpoints")).checkpoint.name == "step-00000002"
    one = resolve_target(str(run_dir / "checkpoints" / "step-00000001"))
    assert one.step == 1 and one.cfg.rollout.max_new_tokens == 6
    for word in ("base", "lab"):
        base = resolve_target(word)
        assert base.checkpoint is None and base.step is None and base.cfg.model.name == "lab"
        assert base.cfg.model.lab_recipe == {}  # the real default lab base model


def _error(capsys, *args):
    assert main(["eval", *args, "--quiet"]) == 2
    return capsys.readouterr().err


def test_bad_targets_fail_clearly(run_dir, tmp_path, capsys):
    assert "does not exist" in _error(capsys, str(tmp_path / "nope"))
    (tmp_path / "empty").mkdir()
    assert "neither a run directory (no config.yaml) nor a checkpoint" in _error(capsys, str(tmp_path / "empty"))
    bare = tmp_path / "bare-run"
    bare.mkdir()
    shutil.copy(run_dir / "config.yaml", bare / "config.yaml")
    assert "has no checkpoints" in _error(capsys, str(bare))
    lone = tmp_path / "lone" / "step-00000002"
    shutil.copytree(run_dir / "checkpoints" / "step-00000002", lone)
    assert "not inside a run directory" in _error(capsys, str(lone))


@pytest.mark.parametrize(
    "args, match",
    [(["--n", "8", "--k", "1,2,16"], "k = 16 exceeds n = 8"), (["--n", "8", "--k", "1,2.5"], "'2.5' is not an integer"),
     (["--n", "8", "--k", "0,1"], "k = 0 must be >= 1"), (["--n", "0"], "--n 0: the number of samples"),
     (["--top-p", "0"], "--top-p 0.0: must be in (0, 1]"), (["--temperature", "-1"], "must be >= 0"),
     (["--prompts", "0"], "--prompts 0: must be >= 1")],
)
def test_bad_settings_fail_clearly(run_dir, capsys, args, match):
    assert match in _error(capsys, str(run_dir), *args)


def test_non_integer_n_is_an_argparse_error(run_dir, capsys):
    with pytest.raises(SystemExit) as exc:
        main(["eval", str(run_dir), "--n", "2.5"])
    assert exc.value.code == 2 and "invalid int value: '2.5'" in capsys.readouterr().err
