"""The README and docs/ say what the code does: the API example runs as written, every command in them
parses (and every `entrostat train` builds its config), every recipe is listed, every link resolves, and the
README stays a short page that keeps the two commands and claims no GPU training."""

from __future__ import annotations

import importlib.util
import re
import shlex
import sys
import types
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
README = ROOT / "README.md"
DOCS = sorted((ROOT / "docs").glob("*.md"))
RECIPES = sorted(p.stem for p in (ROOT / "src" / "entrostat" / "configs").glob("*.yaml"))


def section(text: str, title: str) -> str:
    """The body of the ``## title`` section of a markdown text."""
    match = re.search(rf"^## {re.escape(title)}\n(.*?)(?=^## |\Z)", text, re.S | re.M)
    assert match, f"no section '## {title}'"
    return match.group(1)


def code_blocks(text: str, lang: str) -> list[str]:
    return re.findall(rf"^```{lang}\n(.*?)^```", text, re.S | re.M)


def commands(text: str) -> list[list[str]]:
    """The ``entrostat ...`` and ``./dev lab ...`` commands of the bash blocks (``\\`` continuations joined,
    ``# comments`` dropped), as argument lists after the program name; ``./dev lab`` is ``entrostat train``."""
    out = []
    for block in code_blocks(text, "bash"):
        for line in block.replace("\\\n", " ").splitlines():
            words = shlex.split(line, comments=True)
            if words[:1] == ["entrostat"]:
                out.append(words[1:])
            elif words[:2] == ["./dev", "lab"]:
                out.append(["train", *words[2:]])
    return out


def all_commands() -> list[tuple[str, list[str]]]:
    return [(path.name, cmd) for path in [README, *DOCS] for cmd in commands(path.read_text())]


def test_readme_api_example_runs(capsys):
    code = re.search(r"## API\n\n```python\n(.*?)```", README.read_text(), re.S).group(1)
    exec(compile(code, "README.md", "exec"), {})
    assert "pg_loss" in capsys.readouterr().out


def test_readme_is_short_and_keeps_the_two_commands():
    text = README.read_text()
    assert len(text.splitlines()) <= 250
    block = section(text, "Two commands")
    assert re.search(r"^\./dev lab +# the main job", block, re.M) and re.search(r"^\./dev test +# the test suite", block, re.M)


def test_readme_claims_no_gpu_training():
    """The policy trains on the CPU: a sentence of the README that names a GPU is about vLLM sampling or says
    there is no GPU training."""
    text = " ".join(README.read_text().split())
    for sentence in re.split(r"(?<=[.:;])\s", text):
        if "GPU" in sentence:
            assert "vllm" in sentence.lower() or "no GPU" in sentence, sentence
    assert "no GPU or multi-GPU training path" in text


def test_every_recipe_is_listed_once_in_the_readme():
    listed = re.findall(r"^- (`[a-z0-9_]+`(?:, `[a-z0-9_]+`)*) — ", section(README.read_text(), "Recipes"), re.M)
    names = [n.strip("`") for group in listed for n in group.split(", ")]
    assert sorted(names) == RECIPES


def test_the_commands_were_found():
    found = all_commands()
    assert sum(name == "README.md" for name, _ in found) >= 15
    assert any(cmd[:1] == ["experiment"] for _, cmd in found)


@pytest.mark.parametrize("where,cmd", all_commands(), ids=lambda x: x if isinstance(x, str) else " ".join(x)[:60])
def test_every_documented_command_parses_and_its_config_builds(where, cmd, monkeypatch):
    from entrostat.cli import _split, parse
    from entrostat.config.recipes import build_config

    for package in ("tensorboard", "wandb"):  # the docs say to install them first; here a stand-in will do
        if importlib.util.find_spec(package) is None:
            monkeypatch.setitem(sys.modules, package, types.ModuleType(package))

    ns = parse(cmd)
    if ns.command in ("train", "show-config") and not getattr(ns, "resume", None):
        recipe, overrides = _split(ns.args)
        if recipe is None or not recipe.endswith(".yaml"):  # `my_recipe.yaml` stands for the reader's own file
            build_config(recipe, overrides)


def test_every_relative_link_resolves():
    for path in [README, *DOCS]:
        for target in re.findall(r"\]\(([^)\s]+)\)", path.read_text()):
            if re.match(r"[a-z]+://", target):
                continue
            file, _, anchor = target.partition("#")
            dest = (path.parent / file).resolve() if file else path
            if ROOT not in dest.parents:  # the design notes beside the checkout (../shared/design/) are not part of it
                continue
            assert dest.exists(), f"{path.name}: link to {target}"
            if anchor and dest.suffix == ".md":
                slugs = {_slug(h) for h in re.findall(r"^#+ (.+)$", dest.read_text(), re.M)}
                assert anchor in slugs, f"{path.name}: no heading for #{anchor} in {dest.name}"


def _slug(heading: str) -> str:
    """GitHub's anchor of a heading: lower case, punctuation dropped, spaces to hyphens."""
    return re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")
