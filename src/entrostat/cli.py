"""``entrostat train | show-config`` — builds a config and calls the library."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import yaml

from entrostat.configbase import ConfigError, describe, to_dict
from entrostat.models.loading import ModelLoadError
from entrostat.train.scoring import RewardError
from entrostat.train.trainer import TrainingError


def _split(args: list[str]) -> tuple[str | None, list[str]]:
    recipe = args[0] if args and "=" not in args[0] else None
    return recipe, args[1:] if recipe else args


def cmd_train(ns: argparse.Namespace) -> int:
    from entrostat.recipes import build_config
    from entrostat.train import resume, train

    if ns.resume:
        if ns.args:
            raise ConfigError("--resume takes the run directory only; its config.yaml is reused as it is")
        out = resume(Path(ns.resume))
    else:
        recipe, overrides = _split(ns.args)
        cfg = build_config(recipe, overrides)
        if ns.quiet:
            cfg.log.progress = False
        out = train(cfg, Path(ns.run_dir) if ns.run_dir else None)
    print(f"run directory: {out}")
    return 0


def cmd_show_config(ns: argparse.Namespace) -> int:
    from entrostat.recipes import build_config
    from entrostat.train.config import RunConfig

    recipe, overrides = _split(ns.args)
    cfg = build_config(recipe, overrides)
    print(yaml.safe_dump(to_dict(cfg), sort_keys=False), end="")
    if ns.help_fields:
        print("\n# fields")
        for name, default, text in describe(RunConfig):
            print(f"# {name} (default {default}): {text}")
    return 0


def cmd_experiment(ns: argparse.Namespace) -> int:
    from entrostat.experiments import run_experiment

    out = Path(ns.out or f"runs/experiment-{ns.name}")
    run_experiment(ns.name, out, ns.seeds, ns.overrides)
    print(f"results and figure in {out}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="entrostat", description="Entropy-controlled RL post-training of language models")
    sub = p.add_subparsers(dest="command", required=True)
    t = sub.add_parser("train", help="train (no arguments: the CPU lab's GRPO recipe)")
    t.add_argument("args", nargs="*", help="[RECIPE or RECIPE.yaml] [key=value ...], e.g. kl_cov trainer.steps=100")
    t.add_argument("--resume", metavar="RUN_DIR", help="continue the run in RUN_DIR from its latest checkpoint")
    t.add_argument("--run-dir", help="where to write the run (default: log.run_dir)")
    t.add_argument("--quiet", action="store_true", help="no progress bar")
    t.set_defaults(func=cmd_train)
    s = sub.add_parser("show-config", help="print the resolved config of a recipe with overrides")
    s.add_argument("args", nargs="*", help="[RECIPE] [key=value ...]")
    s.add_argument("--help-fields", action="store_true", help="also print every field's help text")
    s.set_defaults(func=cmd_show_config)
    e = sub.add_parser("experiment", help="run a named experiment and draw its figure")
    e.add_argument("name", help="experiment name: asymmetry, schedules, targets")
    e.add_argument("overrides", nargs="*", help="key=value overrides for every run (schedules, targets)")
    e.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2], help="seeds (base models) to average over")
    e.add_argument("--out", help="output directory (default runs/experiment-NAME)")
    e.set_defaults(func=cmd_experiment)
    return p


def main(argv: list[str] | None = None) -> int:
    ns = build_parser().parse_args(argv)
    try:
        return ns.func(ns)
    except (ConfigError, FileNotFoundError, FileExistsError, ModelLoadError, TrainingError, RewardError) as exc:
        print(f"entrostat: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
