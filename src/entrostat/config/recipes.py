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
    """The override dict of a recipe given by name (``grpo``) or by a YAML path.

    A recipe is a YAML mapping of config sections with an optional ``extends: PARENT``: a recipe name (no
    suffix) or a YAML path, which is resolved from the directory of the file that names it. A recipe without
    ``extends`` (an empty file too) starts from the default recipe, grpo, not from the bare dataclass
    defaults; only grpo itself starts from those. Malformed YAML, a missing parent and a cycle of ``extends``
    raise ConfigError (one line naming the file).
    """
    return _load(name_or_path, None, ())


def _resolve(spec: str, base_dir: Path | None, chain: tuple[Path, ...]) -> Path:
    """The file of recipe ``spec``: a name in ``RECIPE_DIR``, or a path (relative ones from ``base_dir``)."""
    path = Path(spec).expanduser()
    if not path.suffix:
        path = RECIPE_DIR / f"{spec}.yaml"
        if not path.is_file():
            raise ConfigError(unknown_name_message("recipe", spec, recipe_names()))
        return path
    if base_dir is not None and not path.is_absolute():
        path = base_dir / path
    if not path.is_file():
        where = f" (named by `extends` in {chain[-1]}, resolved from that file's directory)" if chain else ""
        raise ConfigError(f"recipe file {str(path)!r} does not exist{where}")
    return path


def _load(spec: Any, base_dir: Path | None, chain: tuple[Path, ...]) -> dict[str, Any]:
    if not isinstance(spec, str) or not spec.strip():
        raise ConfigError(f"recipe {chain[-1]}: extends = {spec!r} must name a recipe (e.g. grpo) or a YAML file")
    path = _resolve(spec, base_dir, chain)
    key = path.resolve()
    if key in chain:
        cycle = " -> ".join(str(p) for p in (*chain[chain.index(key):], key))
        raise ConfigError(f"recipe {path}: `extends` makes a cycle ({cycle}); a recipe cannot extend itself")
    try:
        data = yaml.safe_load(path.read_text())
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        at = f"line {mark.line + 1}, column {mark.column + 1}: " if mark is not None else ""
        problem = getattr(exc, "problem", None) or type(exc).__name__
        raise ConfigError(f"recipe {path} is not valid YAML ({at}{problem})") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"recipe {path} cannot be read ({type(exc).__name__}: {exc})") from None
    data = {} if data is None else data
    if not isinstance(data, dict):
        raise ConfigError(f"recipe {str(path)!r} must be a YAML mapping of config sections")
    parent = data.pop("extends", None)
    if parent is None and key != (RECIPE_DIR / f"{DEFAULT_RECIPE}.yaml").resolve():
        parent = DEFAULT_RECIPE  # a recipe starts from grpo unless it says otherwise
    if parent is not None:
        data = _merge(_load(parent, path.parent, (*chain, key)), data)
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
