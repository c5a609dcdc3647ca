"""Metrics sinks: TensorBoard (read back from its event files) and W&B (a fake ``wandb`` module, no network)
get exactly the records of ``metrics.jsonl``; resume appends from the resumed step; a sink whose package is
missing is a one-line ConfigError when the config is built."""

from __future__ import annotations

import math
import shutil
import sys
import types

import pytest
import yaml

from entrostat.cli import main
from entrostat.config.base import ConfigError
from entrostat.config.recipes import build_config
from entrostat.rundir import checkpoints_dir, list_checkpoints, metrics_path, read_metrics
from entrostat.train import resume, train
from entrostat.train.sinks import TENSORBOARD_DIR, WANDB_ID_FILE, Sinks, build_sinks, scalars


def numeric(records: list[dict]) -> dict[str, dict[int, float]]:
    """{key: {step: value}} of every numeric value of ``records`` (as ``scalars`` picks them)."""
    out: dict[str, dict[int, float]] = {}
    for r in records:
        for k, v in scalars(r).items():
            out.setdefault(k, {})[r["step"]] = v
    return out


def tensorboard_scalars(run_dir) -> dict[str, list[tuple[int, float]]]:
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    acc = EventAccumulator(str(run_dir / TENSORBOARD_DIR), size_guidance={"scalars": 0})
    acc.Reload()
    return {tag: [(e.step, e.value) for e in acc.Scalars(tag)] for tag in acc.Tags()["scalars"]}


def assert_same_as_metrics(run_dir) -> None:
    """Every numeric key of metrics.jsonl is a TensorBoard tag with one event per step, of the same value."""
    want = numeric(read_metrics(metrics_path(run_dir)))
    got = tensorboard_scalars(run_dir)
    assert sorted(got) == sorted(want)
    for tag, events in got.items():
        steps = [s for s, _ in events]
        assert steps == sorted(want[tag]), f"{tag}: steps {steps}"
        for step, value in events:  # float32 in the event file
            expect = want[tag][step]
            assert value == pytest.approx(expect, rel=1e-6, abs=1e-30) or (math.isnan(value) and math.isnan(expect)), tag


# ---------------------------------------------------------------------------- TensorBoard
def test_scalars_are_the_numeric_values_without_step():
    record = {"step": 3, "entropy": 0.5, "n": 2, "flag": True, "name": "x", "none": None, "list": [1.0]}
    assert scalars(record) == {"entropy": 0.5, "n": 2.0, "flag": 1.0}


def test_tensorboard_gets_every_metrics_record(tmp_path, tiny_lab_overrides):
    pytest.importorskip("tensorboard")
    run_dir = tmp_path / "run"
    train(build_config(None, [*tiny_lab_overrides, "trainer.steps=3", "log.tensorboard=true"]), run_dir)
    assert_same_as_metrics(run_dir)
    tags = tensorboard_scalars(run_dir)
    assert [s for s, _ in tags["entropy"]] == [1, 2, 3] and [s for s, _ in tags["eval/pass@1"]] == [0, 2, 3]


def test_tensorboard_resume_appends_from_the_resumed_step(tmp_path, tiny_lab_overrides):
    pytest.importorskip("tensorboard")
    run_dir = tmp_path / "run"
    over = [*tiny_lab_overrides, "trainer.steps=3", "log.checkpoint_every=2", "log.keep_checkpoints=5",
            "log.tensorboard=true"]
    train(build_config(None, over), run_dir)
    first = tensorboard_scalars(run_dir)
    assert [s for s, _ in first["entropy"]] == [1, 2, 3]
    shutil.rmtree(list_checkpoints(checkpoints_dir(run_dir))[-1])  # step 3 lost: resume from step 2
    resume(run_dir, steps=4)
    assert len(list((run_dir / TENSORBOARD_DIR).iterdir())) == 2  # a second event file, appended
    assert_same_as_metrics(run_dir)  # steps 3 and 4 once each, with the resumed run's values
    again = tensorboard_scalars(run_dir)
    assert [s for s, _ in again["entropy"]] == [1, 2, 3, 4]
    assert again["time/step"][:2] == first["time/step"][:2]  # steps 1-2 kept from the first process
    assert again["time/step"][2] != first["time/step"][2]  # step 3 from the resumed one


# ---------------------------------------------------------------------------- W&B (a fake module)
class FakeWandb(types.ModuleType):
    """Records ``init`` kwargs and, per run, the ``log`` calls and whether ``finish`` ran."""

    def __init__(self):
        super().__init__("wandb")
        self.runs: list[types.SimpleNamespace] = []
        self.util = types.SimpleNamespace(generate_id=lambda: f"id{len(self.runs)}")

    def init(self, **kwargs):
        run = types.SimpleNamespace(kwargs=kwargs, logged=[], finished=False)
        run.log = lambda data, step=None: run.logged.append((step, dict(data)))
        run.finish = lambda: setattr(run, "finished", True)
        self.runs.append(run)
        return run


@pytest.fixture
def fake_wandb(monkeypatch):
    fake = FakeWandb()
    monkeypatch.setitem(sys.modules, "wandb", fake)
    monkeypatch.setenv("WANDB_MODE", "offline")
    return fake


def logged_as_metrics(run) -> list[dict]:
    """The run's ``wandb.log`` calls as metrics.jsonl would hold them (step back in, NaN as null)."""
    clean = lambda v: None if isinstance(v, float) and math.isnan(v) else v  # noqa: E731
    return [{"step": step, **{k: clean(v) for k, v in data.items()}} for step, data in run.logged]


def test_wandb_gets_every_metrics_record(tmp_path, tiny_lab_overrides, fake_wandb):
    run_dir = tmp_path / "run"
    train(build_config(None, [*tiny_lab_overrides, "trainer.steps=2", "log.wandb=my-project"]), run_dir)
    (run,) = fake_wandb.runs
    assert run.kwargs["project"] == "my-project" and run.kwargs["dir"] == str(run_dir)
    assert run.kwargs["mode"] == "offline" and run.kwargs["resume"] == "allow"
    assert run.kwargs["config"] == yaml.safe_load((run_dir / "config.yaml").read_text())
    assert run.kwargs["id"] == (run_dir / WANDB_ID_FILE).read_text().strip()
    assert logged_as_metrics(run) == read_metrics(metrics_path(run_dir))
    assert [s for s, _ in run.logged] == [0, 1, 2] and run.finished


def test_wandb_true_uses_the_default_project(tmp_path, fake_wandb):
    sinks = build_sinks(build_config(None, ["log.wandb=true"]).log, tmp_path, {})
    assert fake_wandb.runs[0].kwargs["project"] == "entrostat"
    sinks.close()
    assert fake_wandb.runs[0].finished


def test_wandb_resume_continues_the_same_run_from_the_resumed_step(tmp_path, tiny_lab_overrides, fake_wandb):
    run_dir = tmp_path / "run"
    over = [*tiny_lab_overrides, "trainer.steps=3", "log.checkpoint_every=2", "log.keep_checkpoints=5", "log.wandb=true"]
    train(build_config(None, over), run_dir)
    shutil.rmtree(list_checkpoints(checkpoints_dir(run_dir))[-1])
    resume(run_dir, steps=4)
    first, second = fake_wandb.runs
    assert second.kwargs["id"] == first.kwargs["id"] and second.kwargs["resume"] == "allow"
    assert [s for s, _ in second.logged] == [3, 4]
    assert logged_as_metrics(second) == read_metrics(metrics_path(run_dir))[-2:]
    assert first.finished and second.finished


# ---------------------------------------------------------------------------- off by default, missing packages
def test_no_sink_by_default(tmp_path):
    sinks = build_sinks(build_config(None, []).log, tmp_path, {})
    assert sinks == [] and isinstance(sinks, Sinks)


@pytest.mark.parametrize("key", ["tensorboard", "wandb"])
def test_a_missing_package_is_a_one_line_config_error(monkeypatch, capsys, tmp_path, key):
    monkeypatch.setitem(sys.modules, key, None)  # as if not installed
    with pytest.raises(ConfigError, match=rf"log\.{key} = True needs the {key} package.*entrostat\[{key}\]"):
        build_config(None, [f"log.{key}=true"])
    assert main(["train", f"log.{key}=true", "--run-dir", str(tmp_path / "run")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and f"pip install 'entrostat[{key}]'" in err
    assert not (tmp_path / "run").exists()  # refused before anything is written


def test_a_project_name_must_be_a_string_or_bool():
    with pytest.raises(ConfigError, match=r"log\.wandb"):
        build_config(None, ["log.wandb=[1, 2]"])


def test_closing_closes_every_sink_even_when_one_fails():
    closed = []

    class Bad:
        def close(self):
            raise OSError("disk full")

    class Good:
        def close(self):
            closed.append(True)

    with pytest.raises(OSError):
        with Sinks([Bad(), Good()]):
            pass
    assert closed == [True]
