"""A catalogue of bad inputs to the CLI: each is refused with one line and leaves nothing half-written.

Every case runs ``entrostat.cli.main`` in-process (a subprocess only where the real process matters) and
checks that it exits with 2 and that stderr is exactly one line, starting ``entrostat: error:`` and saying
what is wrong — no traceback. A refused ``train`` leaves no run directory (or only what was there before).
The cases come from a fault and bad-input probe of the CLI; each names the defect it pins down.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import subprocess
import sys
import textwrap
import uuid
from pathlib import Path

import pytest
import yaml

from entrostat.cli import main
from entrostat.rundir import CONFIG_FILE, METRICS_FILE, WEIGHTS_FILE, checkpoints_dir, list_checkpoints

THERMOSTAT = "control.name=thermostat"


def refused(argv: list[str], capsys, match: str) -> str:
    """Run the CLI; assert exit code 2 and exactly one stderr line `entrostat: error: ...` matching ``match``."""
    capsys.readouterr()
    rc = main(argv)
    err = capsys.readouterr().err
    lines = err.strip().splitlines()
    assert rc == 2, err
    assert "Traceback" not in err and len(lines) == 1 and lines[0].startswith("entrostat: error: "), err
    assert re.search(match, lines[0]), lines[0]
    return lines[0]


def entries(path: Path) -> list[str]:
    return sorted(p.name for p in path.iterdir()) if path.is_dir() else []


# ---------------------------------------------------------------------------- config: refused before anything loads
CONFIG_CASES = [
    # validation came too late: these passed show-config and failed after the model loaded, with a traceback
    ("group_size_1", ["rollout.group_size=1"], r"rollout\.group_size = 1 with loss\.advantage = 'grpo'.*at least 2"),
    ("micro_batch_negative", ["trainer.micro_batch_size=-4"], r"trainer\.micro_batch_size = -4 must be ≥ 0"),
    ("eval_prompts_0", ["eval.prompts=0"], r"eval\.prompts = 0 must be ≥ 1"),
    ("eval_samples_0", ["eval.samples=0"], r"eval\.samples = 0 must be ≥ 1"),
    ("eval_temperature_negative", ["eval.temperature=-1"], r"eval\.temperature = -1\.0 must be .*≥ 0"),
    ("betas_above_1", ["optim.betas=[1.5,0.9]"], r"optim\.betas = \[1\.5, 0\.9\] must be two numbers in \[0, 1\)"),
    ("betas_one_value", ["optim.betas=[0.9]"], r"optim\.betas = \[0\.9\] must be two numbers"),
    ("weight_decay_negative", ["optim.weight_decay=-1"], r"optim\.weight_decay = -1\.0 must be a finite number ≥ 0"),
    ("grad_clip_negative", ["optim.grad_clip=-1"], r"optim\.grad_clip = -1\.0 must be ≥ 0"),
    ("warmup_negative", ["optim.warmup_steps=-2"], r"optim\.warmup_steps = -2 must be ≥ 0"),
    ("task_name_typo", ["task.name=labb"], r"unknown task 'labb'; did you mean 'lab'"),
    ("task_kwargs_typo", ["task.kwargs={n_digitz: 3}"], r"task\.kwargs\.n_digitz.*Did you mean"),
    ("target_zero", [THERMOSTAT, "control.kwargs={actuator: entropy_coef, target: 0}"],
     r"control\.kwargs\.target: H\* = 0\.0 at step 0 .*must be > 0"),
    ("target_ramp_to_zero", [THERMOSTAT, "control.kwargs={actuator: entropy_coef, target: {kind: linear, start: 0.5, "
                                         "end: 0}}"], r"H\* = 0\.0 at step 4 of 4.*must be > 0"),
    # non-finite training: an infinite learning rate is refused at config time
    ("lr_inf", ["optim.lr=.inf"], r"optim\.lr = inf must be a finite number > 0"),
    ("lr_nan", ["optim.lr=.nan"], r"optim\.lr = nan must be a finite number > 0"),
    ("lr_beyond_float32", ["optim.lr=1e39"], r"optim\.lr = 1e\+39 is beyond the float32 range"),
    # accepted without a word
    ("keep_checkpoints_0", ["log.keep_checkpoints=0"], r"log\.keep_checkpoints = 0 must be ≥ 1"),
    ("checkpoint_every_negative", ["log.checkpoint_every=-5"], r"log\.checkpoint_every = -5 must be ≥ 0"),
    ("eval_every_negative", ["eval.every=-1"], r"eval\.every = -1 must be ≥ 0"),
    ("threads_negative", ["trainer.threads=-1"], r"trainer\.threads = -1 must be ≥ 0"),
    ("reward_timeout_negative", ["task.reward_timeout=-1"], r"task\.reward_timeout = -1\.0 must be >= 0"),
]


@pytest.mark.parametrize("over,match", [c[1:] for c in CONFIG_CASES], ids=[c[0] for c in CONFIG_CASES])
def test_config_refused_before_anything_loads(tmp_path, tiny_lab_overrides, capsys, monkeypatch, over, match):
    import entrostat.train.trainer as trainer_mod

    monkeypatch.setattr(trainer_mod, "load_policy", lambda *a, **k: pytest.fail("the model loaded before the refusal"))
    run = tmp_path / "run"
    refused(["train", *tiny_lab_overrides, *over, "--run-dir", str(run)], capsys, match)
    assert not run.exists()
    refused(["show-config", *tiny_lab_overrides, *over], capsys, match)  # show-config agrees with train


@pytest.mark.parametrize("value,match", [("runs/{foo}", r"log\.run_dir = 'runs/\{foo\}': unknown field \{foo\}"),
                                         ("", r"log\.run_dir is empty"),
                                         ("runs/{recipe", r"log\.run_dir = 'runs/\{recipe'")],
                         ids=["unknown_field", "empty", "unbalanced_brace"])
def test_run_dir_pattern_refused(tmp_path, tiny_lab_overrides, capsys, monkeypatch, value, match):
    monkeypatch.chdir(tmp_path)  # an empty log.run_dir used to write into the current directory
    refused(["train", *tiny_lab_overrides, f"log.run_dir={value}"], capsys, match)
    assert entries(tmp_path) == []


def test_a_config_edited_in_python_is_validated_too(tmp_path, tiny_lab_overrides):
    from entrostat.config.base import ConfigError
    from entrostat.config.recipes import build_config
    from entrostat.train import train

    cfg = build_config(None, tiny_lab_overrides)
    cfg.optim.lr = float("inf")  # past from_dict's validation
    with pytest.raises(ConfigError, match=r"optim\.lr = inf must be a finite number"):
        train(cfg, tmp_path / "run")
    assert entries(tmp_path) == []


# ---------------------------------------------------------------------------- train: flags and the run directory
def test_resume_with_run_dir_is_refused(tmp_path, capsys):
    refused(["train", "--resume", str(tmp_path / "a"), "--run-dir", str(tmp_path / "b")], capsys,
            r"--run-dir cannot be combined with --resume")
    assert entries(tmp_path) == []


def test_extend_to_without_resume_is_refused(tmp_path, tiny_lab_overrides, capsys):
    refused(["train", *tiny_lab_overrides, "--extend-to", "8", "--run-dir", str(tmp_path / "r")], capsys,
            r"--extend-to N lengthens a run being resumed")
    assert entries(tmp_path) == []


def test_resume_of_a_directory_that_is_no_run(tmp_path, capsys):
    refused(["train", "--resume", str(tmp_path)], capsys, r"has no config\.yaml: it is not an entrostat run directory")


def test_run_dir_below_a_file(tmp_path, tiny_lab_overrides, capsys):
    (tmp_path / "afile").write_text("x")
    refused(["train", *tiny_lab_overrides, "--run-dir", str(tmp_path / "afile" / "sub")], capsys,
            r"cannot write in .*afile/sub \(")
    assert entries(tmp_path) == ["afile"]


@contextlib.contextmanager
def unwritable(path: Path):
    """``path`` (a directory) made unwritable — for root too (chattr +i); skip where that cannot be done."""
    if os.geteuid() == 0:
        try:
            made = subprocess.run(["chattr", "+i", str(path)], capture_output=True).returncode == 0
        except FileNotFoundError:
            made = False
        undo = lambda: subprocess.run(["chattr", "-i", str(path)], capture_output=True)  # noqa: E731
    else:
        path.chmod(0o555)
        made, undo = True, lambda: path.chmod(0o755)
    try:
        if made:
            try:
                (path / "probe").write_text("")
                made = False
            except OSError:
                pass
        if not made:
            pytest.skip(f"cannot make {path} unwritable here")
        yield
    finally:
        undo()


def test_unwritable_output_directory(tmp_path, tiny_lab_overrides, capsys, monkeypatch):
    import entrostat.train.trainer as trainer_mod

    monkeypatch.setattr(trainer_mod, "load_policy", lambda *a, **k: pytest.fail("the model loaded before the refusal"))
    parent = tmp_path / "ro"
    parent.mkdir()
    with unwritable(parent):
        refused(["train", *tiny_lab_overrides, "--run-dir", str(parent / "run")], capsys,
                r"cannot write in .*ro/run \((Permission denied|Operation not permitted|Read-only)")
    assert entries(parent) == []


def test_unwritable_checkpoints_found_before_the_first_step(tmp_path, tiny_lab_overrides, capsys, monkeypatch):
    import entrostat.train.trainer as trainer_mod

    monkeypatch.setattr(trainer_mod, "load_policy", lambda *a, **k: pytest.fail("the model loaded before the refusal"))
    run = tmp_path / "run"
    (run / "checkpoints").mkdir(parents=True)
    (run / "notes.txt").write_text("mine")
    with unwritable(run / "checkpoints"):
        refused(["train", *tiny_lab_overrides, "--run-dir", str(run)], capsys, r"cannot write in .*run/checkpoints")
    assert entries(run) == ["checkpoints", "notes.txt"]  # only what was there before


def test_run_dir_below_a_file_in_a_real_process(tmp_path, tiny_lab_overrides):
    (tmp_path / "afile").write_text("x")
    res = subprocess.run([sys.executable, "-m", "entrostat.cli", "train", *tiny_lab_overrides, "--run-dir",
                          str(tmp_path / "afile" / "run")], capture_output=True, text=True)
    assert res.returncode == 2 and "Traceback" not in res.stderr
    (line,) = res.stderr.strip().splitlines()
    assert line.startswith("entrostat: error: cannot write in ") and "(Not a directory)" in line


# ---------------------------------------------------------------------------- refused once the model is loaded
def test_target_above_ln_vocab_is_refused_and_leaves_no_run(tmp_path, tiny_lab_overrides, capsys):
    run = tmp_path / "run"
    refused(["train", *tiny_lab_overrides, THERMOSTAT, "control.kwargs={actuator: entropy_coef, target: 50}",
             "--run-dir", str(run)], capsys, r"H\* = 50 at step 0 exceeds ln V = 3\.9\d\d.*V = 5\d tokens")
    assert not run.exists()


def test_refused_run_in_an_existing_directory_leaves_what_was_there(tmp_path, tiny_lab_overrides, capsys):
    run = tmp_path / "run"
    run.mkdir()
    (run / "notes.txt").write_text("mine")
    refused(["train", *tiny_lab_overrides, THERMOSTAT, "control.kwargs={actuator: entropy_coef, target: 50}",
             "--run-dir", str(run)], capsys, r"exceeds ln V")
    assert entries(run) == ["notes.txt"]


# ---------------------------------------------------------------------------- non-finite training
def test_infinite_weights_stop_at_the_step_that_made_them(tmp_path, tiny_lab_overrides, capsys):
    # the entropy bonus gives a gradient although the tiny lab earns no reward; AdamW's decay by 1 - lr·wd = -3.4e38
    # and its update of lr / (1 - β₁) · 0.1 = 1e37 overflow float32 weights of magnitude ≈ 1 (the norms' gains)
    run = tmp_path / "run"
    refused(["train", *tiny_lab_overrides, "loss.entropy_coef=0.1", "optim.lr=1e37", "optim.weight_decay=34",
             "--run-dir", str(run)], capsys,
            r"the optimizer step of step 1 made \d+ weight tensor\(s\) non-finite \(first: model\..*\) although the "
            r"loss and the gradient norm .* were finite: optim\.lr = 1e\+37 is too large")
    assert not run.exists()  # it failed in its first step: nothing to keep


def test_finite_but_exploded_weights_are_named_as_the_cause(tmp_path, tiny_lab_overrides, capsys):
    # lr 1e12: finite weights of ~1e12 whose logits are not finite; this used to end in an IndexError in the sampler
    run = tmp_path / "run"
    refused(["train", *tiny_lab_overrides, "loss.entropy_coef=0.1", "optim.lr=1e12", "eval.every=0",
             "log.checkpoint_every=1", "--run-dir", str(run)], capsys,
            r"step 2 failed \(.*\) because training diverged: the model's logits are not finite .*optim\.lr = 1e\+12; "
            r"lower optim\.lr")
    rows = [json.loads(x) for x in (run / METRICS_FILE).read_text().splitlines()]
    assert [r["step"] for r in rows] == [1]  # a run that trained a step keeps its record and its checkpoint
    assert [p.name for p in list_checkpoints(checkpoints_dir(run))] == ["step-00000001"]


# ---------------------------------------------------------------------------- recipe files
def test_malformed_yaml_recipe(tmp_path, capsys):
    (tmp_path / "bad.yaml").write_text("optim:\n  lr: [1,\n  betas: }\n")
    refused(["show-config", str(tmp_path / "bad.yaml")], capsys,
            r"recipe .*bad\.yaml is not valid YAML \(line 3, column")


def test_malformed_yaml_recipe_in_a_real_process(tmp_path):
    (tmp_path / "bad.yaml").write_text("optim:\n  lr: [1,\n  betas: }\n")
    res = subprocess.run([sys.executable, "-m", "entrostat.cli", "train", str(tmp_path / "bad.yaml"), "--run-dir",
                          str(tmp_path / "run")], capture_output=True, text=True)
    assert res.returncode == 2 and "Traceback" not in res.stderr
    (line,) = res.stderr.strip().splitlines()  # it was a 62-line traceback
    assert line.startswith("entrostat: error: recipe ") and "is not valid YAML (line 3, column" in line
    assert not (tmp_path / "run").exists()


def test_extends_cycle(tmp_path, capsys):
    (tmp_path / "a.yaml").write_text("extends: b.yaml\n")
    (tmp_path / "b.yaml").write_text("extends: a.yaml\n")
    refused(["show-config", str(tmp_path / "a.yaml")], capsys, r"`extends` makes a cycle \(.*a\.yaml -> .*b\.yaml -> "
                                                               r".*a\.yaml\)")


def test_recipe_that_extends_itself(tmp_path, capsys):
    (tmp_path / "me.yaml").write_text("extends: me.yaml\n")
    refused(["show-config", str(tmp_path / "me.yaml")], capsys, r"cycle .*a recipe cannot extend itself")


def test_relative_extends_is_resolved_from_the_file(tmp_path, capsys, monkeypatch):
    (tmp_path / "recipes").mkdir()
    (tmp_path / "recipes" / "base.yaml").write_text("extends: kl_cov\noptim:\n  lr: 0.0123\n")
    (tmp_path / "recipes" / "child.yaml").write_text("extends: base.yaml\ntrainer:\n  steps: 7\n")
    (tmp_path / "elsewhere").mkdir()
    monkeypatch.chdir(tmp_path / "elsewhere")  # used to be resolved from here
    capsys.readouterr()
    assert main(["show-config", "../recipes/child.yaml"]) == 0
    cfg = yaml.safe_load(capsys.readouterr().out)
    assert (cfg["optim"]["lr"], cfg["trainer"]["steps"], cfg["loss"]["selection"]) == (0.0123, 7, "kl_cov")
    (tmp_path / "recipes" / "orphan.yaml").write_text("extends: nothere.yaml\n")
    refused(["show-config", "../recipes/orphan.yaml"], capsys,
            r"recipe file '.*recipes/nothere\.yaml' does not exist \(named by `extends` in .*orphan\.yaml")


def test_a_recipe_without_extends_starts_from_grpo(tmp_path, capsys):
    (tmp_path / "empty.yaml").write_text("")
    (tmp_path / "short.yaml").write_text("trainer:\n  steps: 3\n")
    capsys.readouterr()
    assert main(["show-config", "grpo"]) == 0
    grpo = yaml.safe_load(capsys.readouterr().out)
    for name, steps in (("empty", grpo["trainer"]["steps"]), ("short", 3)):
        assert main(["show-config", str(tmp_path / f"{name}.yaml")]) == 0
        cfg = yaml.safe_load(capsys.readouterr().out)
        assert cfg["recipe"] == name and cfg["trainer"]["steps"] == steps
        assert {k: v for k, v in cfg.items() if k not in ("recipe", "trainer")} == \
            {k: v for k, v in grpo.items() if k not in ("recipe", "trainer")}  # grpo's, not the bare defaults


def test_recipe_that_is_not_a_mapping(tmp_path, capsys):
    (tmp_path / "list.yaml").write_text("- a\n- b\n")
    refused(["show-config", str(tmp_path / "list.yaml")], capsys, r"must be a YAML mapping of config sections")


# ---------------------------------------------------------------------------- custom rewards
REWARDS = """
import numpy as np

CAUGHT = []

def forever(problem, completion):
    while True:
        try:
            sum(range(1000))
        except Exception as exc:  # a reward that swallows exceptions must not swallow the timeout
            CAUGHT.append(type(exc).__name__)

STOP = []

def until_stopped(problem, completion):
    while not STOP:
        sum(range(1000))
    return 0.0

def numpy_one(problem, completion):
    return np.float32(1.0)

def always_fails(problem, completion):
    raise ValueError("no parser for " + completion)

def fails_on_a_quarter(problem, completion):
    if hash(completion) % 4 == 0:
        raise ValueError("sometimes")
    return 0.0
"""


@pytest.fixture
def rewards(tmp_path, monkeypatch):
    name = f"bad_rewards_{uuid.uuid4().hex[:8]}"
    (tmp_path / f"{name}.py").write_text(textwrap.dedent(REWARDS))
    monkeypatch.syspath_prepend(str(tmp_path))
    yield name
    sys.modules.pop(name, None)


def test_reward_that_never_returns_times_out(tmp_path, tiny_lab_overrides, capsys, rewards):
    run = tmp_path / "run"
    refused(["train", *tiny_lab_overrides, f"task.reward={rewards}:forever", "task.reward_timeout=0.2",
             "--run-dir", str(run)], capsys, rf"custom reward {rewards}:forever did not return within 0\.2 s")
    assert not run.exists()
    assert sys.modules[rewards].CAUGHT == []  # the timeout is no Exception the reward could catch


def test_reward_that_never_returns_times_out_in_training(tmp_path, tiny_lab_overrides, capsys, rewards):
    run = tmp_path / "run"
    refused(["train", *tiny_lab_overrides, f"task.reward={rewards}:forever", "task.reward_timeout=0.1", "eval.every=0",
             "--run-dir", str(run)], capsys, rf"failed on prompt .*did not return within 0\.1 s")
    assert not run.exists()


def test_reward_timeout_outside_the_main_thread(rewards):
    """No signals outside the main thread: the call runs in a worker thread that is waited for up to the timeout."""
    import threading

    from entrostat.config.base import from_dict
    from entrostat.tasks.config import TaskConfig
    from entrostat.tasks.custom_reward import RewardTimeout
    from entrostat.tasks.scoring import build_task

    task = build_task(from_dict(TaskConfig, {"reward": f"{rewards}:until_stopped", "reward_timeout": 0.2}))
    (problem,) = task.problems("train", 1, seed=0)
    got = []
    worker = threading.Thread(target=lambda: got.append(pytest.raises(RewardTimeout, task.score, problem, "1+2")))
    try:
        worker.start()
        worker.join(30)
    finally:
        sys.modules[rewards].STOP.append(True)  # the reward's own thread cannot be stopped: let it return
    assert got and "did not return within 0.2 s (outside the main thread it keeps running" in str(got[0].value)


def test_reward_failing_everywhere_with_reward_errors_zero_stops(tmp_path, tiny_lab_overrides, capsys, rewards):
    run = tmp_path / "run"
    refused(["train", *tiny_lab_overrides, f"task.reward={rewards}:always_fails", "task.reward_errors=zero",
             "eval.every=0", "--run-dir", str(run)], capsys,
            r"failed on 9 of the 9 completions scored so far of a batch of 16 \(first: ValueError: no parser for "
            r".*a reward that fails on most completions is broken")
    assert not run.exists()


def test_reward_failing_sometimes_warns_and_trains(tmp_path, tiny_lab_overrides, capsys, rewards):
    with pytest.warns(RuntimeWarning, match=r"failed on \d+ of 16 completions of this rollout, scored 0"):
        assert main(["train", *tiny_lab_overrides, f"task.reward={rewards}:fails_on_a_quarter",
                     "task.reward_errors=zero", "eval.every=0", "trainer.steps=1", "--run-dir",
                     str(tmp_path / "run")]) == 0


def test_numpy_scalar_reward_is_accepted(tmp_path, tiny_lab_overrides, rewards):
    run = tmp_path / "run"
    assert main(["train", *tiny_lab_overrides, f"task.reward={rewards}:numpy_one", "trainer.steps=1",
                 "--run-dir", str(run)]) == 0
    rows = [json.loads(x) for x in (run / METRICS_FILE).read_text().splitlines()]
    assert rows[-1]["reward_mean"] == 1.0 and rows[-1]["eval/pass@1"] == 1.0


# ---------------------------------------------------------------------------- a trained run, damaged or edited
_TRAINED: dict[str, Path] = {}  # trained once per session, copied for each test


@pytest.fixture
def trained(tmp_path_factory, tmp_path, tiny_lab_overrides):
    """``trained(name)``: a copy of a 2-step tiny run (checkpoints at 1 and 2); ``name`` 'thermostat': with the
    thermostat on eps_high."""

    def make(name: str = "grpo") -> Path:
        if name not in _TRAINED:
            src = tmp_path_factory.mktemp(f"trained-{name}") / "run"
            extra = [THERMOSTAT, "control.kwargs={actuator: eps_high, target: 3.5}"] if name == "thermostat" else []
            assert main(["train", *tiny_lab_overrides, *extra, "trainer.steps=2", "log.checkpoint_every=1",
                         "eval.every=0", "--run-dir", str(src)]) == 0
            _TRAINED[name] = src
        dst = tmp_path / name
        shutil.copytree(_TRAINED[name], dst)
        return dst

    return make


def edit_config(run: Path, **changes) -> None:
    data = yaml.safe_load((run / CONFIG_FILE).read_text())
    for dotted, value in changes.items():
        section, key = dotted.split("__")
        data[section][key] = value
    (run / CONFIG_FILE).write_text(yaml.safe_dump(data, sort_keys=False))


def test_resume_refuses_edited_steps_naming_both_values(trained, capsys, monkeypatch):
    import entrostat.train.trainer as trainer_mod

    run = trained()
    edit_config(run, trainer__steps=8)
    before = (run / METRICS_FILE).read_text()
    monkeypatch.setattr(trainer_mod, "load_policy", lambda *a, **k: pytest.fail("the model loaded before the refusal"))
    refused(["train", "--resume", str(run)], capsys,
            r"config\.yaml no longer matches the run's checkpoint step-00000002: "
            r"trainer\.steps is 8 in config\.yaml but "
            r"2 in the checkpoint.*--extend-to N")
    assert (run / METRICS_FILE).read_text() == before


def test_resume_refuses_an_edited_loss(trained, capsys):
    run = trained()
    edit_config(run, loss__eps_high=0.28)
    refused(["train", "--resume", str(run)], capsys,
            r"loss\.eps_high is 0\.28 in config\.yaml but 0\.2 in the checkpoint")


def test_resume_thermostat_config_on_a_grpo_checkpoint(trained, capsys):
    run = trained()
    edit_config(run, control__name="thermostat", control__kwargs={"actuator": "eps_high", "target": 3.5})
    refused(["train", "--resume", str(run)], capsys, r"control\.name is 'thermostat' in config\.yaml but 'none' in the "
                                                     r"checkpoint")


def test_resume_grpo_config_on_a_thermostat_checkpoint(trained, capsys):
    run = trained("thermostat")  # used to drop the controller state silently
    edit_config(run, control__name="none", control__kwargs={})
    refused(["train", "--resume", str(run)], capsys, r"control\.name is 'none' in config\.yaml but 'thermostat'")


def test_resume_accepts_an_edited_log_section(trained, capsys):
    run = trained()
    edit_config(run, log__keep_checkpoints=5, log__progress=False)
    assert main(["train", "--resume", str(run)]) == 0


def test_extend_to_must_lengthen_the_run(trained, capsys):
    refused(["train", "--resume", str(trained()), "--extend-to", "2"], capsys,
            r"--extend-to 2: the run has trainer\.steps = 2 .*give N > 2")


def test_resume_with_broken_config_yaml(trained, capsys):
    run = trained()
    (run / CONFIG_FILE).write_text("trainer: [\n")
    refused(["train", "--resume", str(run)], capsys, r"config\.yaml is not valid YAML")


def test_init_from_a_run_with_junk_weights(trained, tmp_path, tiny_lab_overrides, capsys, monkeypatch):
    import entrostat.train.trainer as trainer_mod

    src = trained()
    for ckpt in list_checkpoints(checkpoints_dir(src)):
        (ckpt / WEIGHTS_FILE).write_bytes(b"junk" * 100)
    monkeypatch.setattr(trainer_mod, "load_policy", lambda *a, **k: pytest.fail("the model loaded before the refusal"))
    run = tmp_path / "new"
    refused(["train", *tiny_lab_overrides, f"model.init_from={src}", "--run-dir", str(run)], capsys,
            r"checkpoint .*step-00000002: model\.safetensors is truncated or altered")
    assert not run.exists()


def test_init_from_nowhere(tmp_path, tiny_lab_overrides, capsys):
    run = tmp_path / "new"
    refused(["train", *tiny_lab_overrides, f"model.init_from={tmp_path / 'nope'}", "--run-dir", str(run)], capsys,
            r"'.*nope' does not exist")
    assert not run.exists()


def test_eval_of_a_truncated_checkpoint(trained, capsys):
    run = trained()
    weights = list_checkpoints(checkpoints_dir(run))[-1] / WEIGHTS_FILE
    weights.write_bytes(weights.read_bytes()[:100])
    refused(["eval", str(run), "--n", "2", "--prompts", "2", "--quiet"], capsys,
            r"step-00000002: model\.safetensors is truncated or altered \(100 bytes")


# ---------------------------------------------------------------------------- commands that read runs agree
@pytest.mark.parametrize("command", ["report", "compare", "fit-law", "diagnose"])
def test_empty_metrics_refused_by_every_reader(tmp_path, capsys, command):
    run = tmp_path / "run"
    run.mkdir()
    (run / METRICS_FILE).write_text("")
    (run / CONFIG_FILE).write_text("recipe: grpo\n")
    extra = ["-o", str(tmp_path / "report.html")] if command == "report" else []
    refused([command, str(run), *extra], capsys, r"metrics\.jsonl holds no metrics records \(empty file\)")
    assert not (tmp_path / "report.html").exists()


def test_compare_of_a_config_only_directory(tmp_path, capsys):
    (tmp_path / "run").mkdir()
    (tmp_path / "run" / CONFIG_FILE).write_text("recipe: grpo\n")
    refused(["compare", str(tmp_path / "run")], capsys, r"has no metrics\.jsonl")
