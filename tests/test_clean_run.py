"""A default lab run is clean: with every Python warning turned into an error, ``entrostat train`` exits 0,
prints nothing that says Warning, and imports neither TensorBoard nor W&B."""

from __future__ import annotations

import json
import subprocess
import sys


def test_a_default_lab_run_prints_no_warning(tmp_path, tiny_lab_overrides):
    # The default recipe with the tiny lab model; the progress bar on, as `./dev lab` shows it.
    args = [*tiny_lab_overrides, "trainer.steps=2", "log.progress=true", "--run-dir", str(tmp_path / "run")]
    res = subprocess.run([sys.executable, "-W", "error", "-m", "entrostat.cli", "train", *args],
                         capture_output=True, text=True, timeout=600)
    assert res.returncode == 0, res.stderr[-3000:]
    assert "Warning" not in res.stderr and "Warning" not in res.stdout, res.stderr[-3000:]
    assert "steps 2: entropy" in res.stdout  # the run summary


def test_a_default_run_imports_neither_tensorboard_nor_wandb(tmp_path, tiny_lab_overrides):
    script = (
        "import json, sys\n"
        "from entrostat.config.recipes import build_config\n"
        "from entrostat.train import train\n"
        f"train(build_config(None, {json.dumps([*tiny_lab_overrides, 'trainer.steps=1'])}), {str(tmp_path / 'run')!r})\n"
        "print(json.dumps(sorted(m for m in sys.modules if m.split('.')[0] in ('tensorboard', 'wandb') "
        "or m.startswith('torch.utils.tensorboard'))))\n"
    )
    res = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=600)
    assert res.returncode == 0, res.stderr[-3000:]
    assert json.loads(res.stdout.strip().splitlines()[-1]) == []
    assert not (tmp_path / "run" / "tensorboard").exists()
