"""Recipes: YAML files of config overrides, shipped in ``entrostat/configs`` (the repo's ``configs/``)."""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import yaml

from entrostat.config.base import ConfigError, apply_overrides, from_dict, to_dict
from entrostat.registry import unknown_name_message
from entrostat.config.run import RunConfig
from entrostat.losses.config import LossConfig

RECIPE_DIR = Path(__file__).parents[1] / "configs"
DEFAULT_RECIPE = "grpo"


def recipe_names() -> list[str]:
    return sorted(p.stem for p in RECIPE_DIR.glob("*.yaml"))


def load_recipe(name_or_path: str) -> dict[str, Any]:
    """The override dict of a recipe given by name (``grpo``) or by a YAML path."""
    path = Path(name_or_path)
    if not path.suffix:
        path = RECIPE_DIR / f"{name_or_path}.yaml"
        if not path.exists():
            raise ConfigError(unknown_name_message("recipe", name_or_path, recipe_names()))
    elif not path.exists():
        raise ConfigError(f"recipe file {str(path)!r} does not exist")
    data = yaml.safe_load(path.read_text()) or {}
    if not isinstance(data, dict):
        raise ConfigError(f"recipe {str(path)!r} must be a YAML mapping of config sections")
    parent = data.pop("extends", None)
    if parent:
        data = _merge(load_recipe(parent), data)
    data["recipe"] = path.stem
    return data


def _merge(base: dict[str, Any], over: dict[str, Any]) -> dict[str, Any]:
    """``over`` on top of ``base``, section by section."""
    out = dict(base)
    for k, v in over.items():
        out[k] = _merge(out[k], v) if isinstance(v, dict) and isinstance(out.get(k), dict) else v
    return out


def build_config(recipe: str | None = None, overrides: list[str] | None = None) -> RunConfig:
    """RunConfig of a recipe (default: the lab's GRPO) with dotted ``key=value`` overrides."""
    data = apply_overrides(load_recipe(recipe or DEFAULT_RECIPE), overrides or [])
    cfg = from_dict(RunConfig, data)
    return cfg


def recipe_overrides(recipe: str, sections: Iterable[str], skip: Iterable[str] = ()) -> list[str]:
    """``recipe``'s resolved settings in ``sections`` as ``key=value`` overrides (JSON values), to put another
    recipe on them; dotted keys in ``skip`` are left out."""
    data, skip = to_dict(build_config(recipe)), set(skip)
    return [f"{s}.{k}={json.dumps(v)}" for s in sections for k, v in data[s].items() if f"{s}.{k}" not in skip]


def loss_preset(name: str, **overrides: Any) -> LossConfig:
    """The loss section of recipe ``name`` (``grpo``, ``kl_cov``, ...; the YAML recipes are the only presets),
    with field overrides."""
    section = load_recipe(name).get("loss", {})
    return from_dict(LossConfig, {**section, **overrides})
