"""Layers point one way: no module of entrostat imports a module of a higher layer (docs/architecture.md).

Every ``import`` / ``from ... import`` of ``entrostat.*`` in the package, including those inside
functions, is read from the source with ``ast``; a module may import its own layer and below.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src" / "entrostat"

# Bottom to top. A key names a module or a package (then every module in it); the most specific key wins.
LAYERS: list[tuple[str, ...]] = [
    ("types", "registry", "config.base", "rundir"),
    ("ops",),
    ("losses",),
    ("tasks", "control", "diagnostics"),
    ("models", "rollout"),
    ("config",),
    ("eval",),
    ("train",),
    ("report", "experiments", "integrations"),
    ("cli", "__init__", "__main__"),
]
LAYER_OF = {key: i for i, keys in enumerate(LAYERS) for key in keys}


def layer(module: str) -> int:
    """The layer of a dotted module name relative to the package (``losses.objective``)."""
    parts = module.split(".")
    for n in range(len(parts), 0, -1):
        key = ".".join(parts[:n])
        if key in LAYER_OF:
            return LAYER_OF[key]
    raise KeyError(f"module entrostat.{module} has no layer: add it to LAYERS in tests/test_layers.py")


def module_name(path: Path) -> str:
    rel = path.relative_to(SRC).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] == "__init__" and len(parts) > 1:
        parts = parts[:-1]
    return ".".join(parts)


def imported(path: Path) -> list[str]:
    """Modules of entrostat imported anywhere in the file, relative to the package."""
    out = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("entrostat"):
            base = node.module[len("entrostat."):] if node.module != "entrostat" else ""
            out += [f"{base}.{a.name}".strip(".") if not base or base + "." + a.name in _MODULES else base
                    for a in node.names]
        elif isinstance(node, ast.Import):
            out += [a.name[len("entrostat."):] for a in node.names if a.name.startswith("entrostat.")]
    return [m for m in out if m]


_MODULES = {module_name(p) for p in SRC.rglob("*.py")}


def violations() -> list[str]:
    found = []
    for path in sorted(SRC.rglob("*.py")):
        me = module_name(path)
        for target in imported(path):
            if layer(target) > layer(me):
                found.append(f"entrostat.{me} (layer {layer(me)}) imports entrostat.{target} (layer {layer(target)})")
    return found


def test_no_module_imports_a_higher_layer():
    assert violations() == []


def test_the_check_sees_an_upward_import(tmp_path, monkeypatch):
    """The checker itself: a planted upward import (losses → train) is reported."""
    fake = tmp_path / "entrostat"
    (fake / "losses").mkdir(parents=True)
    (fake / "train").mkdir()
    (fake / "losses" / "bad.py").write_text("def f():\n    from entrostat.train.trainer import Trainer\n")
    (fake / "train" / "trainer.py").write_text("")
    monkeypatch.setattr(__import__(__name__), "SRC", fake)
    assert violations() == ["entrostat.losses.bad (layer 2) imports entrostat.train.trainer (layer 7)"]


@pytest.mark.parametrize("name", ["aepo", "scope_rl", "scope-rl", "thermostat", "flex_", "adaptive_entropy"])
def test_trainer_has_no_method_branches(name):
    """Methods are plug-ins: the trainer's code never names one."""
    hits = [f"{p.name}:{i}" for p in sorted((SRC / "train").glob("*.py"))
            for i, line in enumerate(p.read_text().lower().splitlines(), 1) if name in line]
    assert hits == []
