"""The one config package: typed sections, recipes, YAML + dotted overrides, and the checks across sections.

- ``base``: the machinery (dataclasses from dicts with did-you-mean errors, dotted overrides, help).
- ``run``: ``RunConfig`` and its sections; the loss section is ``losses.config.LossConfig``, the
  core objective's own parameters, and each controller and task types its parameters where it lives.
- ``recipes``: the YAML recipes under ``entrostat/configs`` — the only source of presets.

``base`` sits at the bottom of the layers and is imported by every plug-in; ``run`` and ``recipes``
sit above the plug-ins they compose, so this package imports them lazily.
"""

from __future__ import annotations

from typing import Any

from entrostat.config.base import ConfigError, apply_overrides, doc, from_dict, to_dict

_LAZY = {"RunConfig": "run", "run_config_from": "run", "build_config": "recipes", "load_recipe": "recipes",
         "recipe_names": "recipes", "loss_preset": "recipes"}

__all__ = ["ConfigError", "apply_overrides", "doc", "from_dict", "to_dict", *_LAZY]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(f"entrostat.config.{_LAZY[name]}"), name)
    raise AttributeError(f"module 'entrostat.config' has no attribute {name!r}")
