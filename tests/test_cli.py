"""End to end: the CLI as a user runs it, in a subprocess, on a tiny lab model."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
import yaml


def run_cli(*args, check=True):
    return subprocess.run([sys.executable, "-m", "entrostat.cli", *args], capture_output=True, text=True, check=check)


def test_train_two_steps_end_to_end(tmp_path, tiny_lab_overrides):
    out = tmp_path / "run"
    run_cli("train", *tiny_lab_overrides, "trainer.steps=2", "log.checkpoint_every=1", "--run-dir", str(out))
    records = [json.loads(x) for x in (out / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in records] == [0, 1, 2]
    assert "eval/pass@1" in records[0] and "eval/pass@1" in records[-1]
    assert records[1]["entropy"] > 0
    cfg = yaml.safe_load((out / "config.yaml").read_text())
    assert cfg["trainer"]["steps"] == 2 and cfg["loss"]["advantage"] == "grpo"
    assert (out / "checkpoints" / "step-00000002" / "model.safetensors").is_file()


def test_cli_reports_config_errors_clearly(tmp_path):
    res = run_cli("train", "optim.lrr=1", "--run-dir", str(tmp_path / "x"), check=False)
    assert res.returncode == 2 and "Did you mean 'optim.lr'" in res.stderr
    res = run_cli("train", "no_such_recipe", check=False)
    assert res.returncode == 2 and "unknown recipe 'no_such_recipe'" in res.stderr


def test_show_config_resolves_recipe_and_overrides():
    res = run_cli("show-config", "kl_cov", "loss.kl_cov_coef=0.5", "--help-fields")
    cfg = yaml.safe_load(res.stdout.split("\n# fields")[0])
    assert cfg["loss"]["selection"] == "kl_cov" and cfg["loss"]["kl_cov_coef"] == 0.5
    assert "# loss.kl_cov_coef" in res.stdout


def test_key_values_after_options_join_the_positional_list():
    from entrostat.cli import parse

    ns = parse(["experiment", "targets", "--seeds", "0", "1", "--out", "o", "trainer.steps=5", "optim.lr=1e-4"])
    assert (ns.name, ns.seeds, ns.out, ns.overrides) == ("targets", [0, 1], "o", ["trainer.steps=5", "optim.lr=1e-4"])
    assert parse(["train", "kl_cov", "--quiet", "trainer.steps=5"]).args == ["kl_cov", "trainer.steps=5"]
    with pytest.raises(SystemExit):
        parse(["experiment", "targets", "--seeds", "0", "--bogus"])
