"""``entrostat train | show-config | eval | models | ...`` — builds a config and calls the library."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import yaml

from entrostat.config.base import ConfigError, describe, to_dict
from entrostat.diagnostics.runs import DiagnosticsError
from entrostat.models.loading import ModelLoadError
from entrostat.tasks.scoring import RewardError
from entrostat.rundir import CheckpointError, RunDirLocked
from entrostat.train.run import TrainingInterrupted
from entrostat.train.trainer import TrainingError


def _split(args: list[str]) -> tuple[str | None, list[str]]:
    recipe = args[0] if args and "=" not in args[0] else None
    return recipe, args[1:] if recipe else args


def cmd_train(ns: argparse.Namespace) -> int:
    from entrostat.config.recipes import build_config
    from entrostat.train import resume, train
    from entrostat.train.run import run_summary

    if ns.resume:
        if ns.args:
            raise ConfigError("--resume takes the run directory only; its config.yaml is reused as it is (to train "
                              "longer: --extend-to N)")
        if ns.run_dir is not None:
            raise ConfigError(f"--run-dir cannot be combined with --resume: a resumed run continues in its own "
                              f"directory, {ns.resume}")
        out = resume(Path(ns.resume), ns.extend_to, progress=False if ns.quiet else None)
    elif ns.extend_to is not None:
        raise ConfigError("--extend-to N lengthens a run being resumed: entrostat train --resume RUN --extend-to N")
    else:
        recipe, overrides = _split(ns.args)
        cfg = build_config(recipe, overrides)
        if ns.quiet:
            cfg.log.progress = False
        out = train(cfg, Path(ns.run_dir) if ns.run_dir else None)
    print(run_summary(out))
    return 0


def cmd_show_config(ns: argparse.Namespace) -> int:
    from entrostat.config.recipes import build_config
    from entrostat.config.run import RunConfig

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


def cmd_models(ns: argparse.Namespace) -> int:
    """`models list`: the known aliases and whether each is prepared; `models prepare`: convert one."""
    from entrostat.models import known

    if ns.action == "list":
        width = max(len(a) for a in known.KNOWN_MODELS)
        for alias, m in known.KNOWN_MODELS.items():
            print(f"{alias:<{width}}  {m.description}\n{'':<{width}}  {known.status(alias)}")
        return 0
    if ns.name in known.KNOWN_MODELS:
        out = known.prepare(ns.name, ns.out, force=ns.force, progress=not ns.quiet)
    elif ns.name.lower().endswith(".gguf"):
        from entrostat.models.gguf import convert_gguf

        out = convert_gguf(ns.name, ns.out, force=ns.force, progress=not ns.quiet)
    else:
        known.known_model(ns.name)  # raises, listing the aliases
    print(out)
    return 0


def cmd_eval(ns: argparse.Namespace) -> int:
    from entrostat.eval.run import evaluate_target, format_results, write_results
    from entrostat.eval.target import resolve_target

    result = evaluate_target(
        resolve_target(ns.target), n=ns.n, ks=ns.k, temperature=ns.temperature, top_p=ns.top_p,
        prompts=ns.prompts, seed=ns.seed, max_new_tokens=ns.max_new_tokens, batch_rows=ns.batch_rows,
        threads=ns.threads, progress=not ns.quiet,
    )
    print(format_results(result))
    if ns.out:
        write_results(result, Path(ns.out))
        print(f"results: {ns.out}")
    return 0


def cmd_report(ns: argparse.Namespace) -> int:
    from entrostat.report.html import write_report

    out = write_report(ns.runs, Path(ns.out), ns.eval or [])
    print(f"report: {out} (figures in {out.parent / (out.stem + '_files')})")
    return 0


def cmd_compare(ns: argparse.Namespace) -> int:
    from entrostat.report.html import compare_table

    print(compare_table(ns.runs))
    return 0


def cmd_fit_law(ns: argparse.Namespace) -> int:
    from entrostat.diagnostics import runs

    return _diagnostics(ns, lambda recs: runs.fit_law_on_run(
        recs, fit_frac=ns.fit_frac, metric=ns.metric, n_boot=ns.bootstrap, seed=ns.seed), runs.format_law_report)


def cmd_diagnose(ns: argparse.Namespace) -> int:
    from entrostat.diagnostics import runs

    return _diagnostics(ns, lambda recs: runs.diagnose_run(recs, smooth=ns.smooth), runs.format_diagnosis)


def _diagnostics(ns: argparse.Namespace, build, fmt) -> int:
    """Load RUN_DIR's metrics, build the report, print it (and write --json); exit 2 on a bad run."""
    from entrostat.diagnostics import runs

    try:
        rep = build(runs.load_run_metrics(Path(ns.run_dir)))
    except runs.DiagnosticsError as exc:
        print(f"entrostat: error: {exc}", file=sys.stderr)
        return 2
    print(fmt(rep))
    if ns.json:
        runs.write_json(rep, Path(ns.json))
    return 0


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="entrostat", description="Entropy-controlled RL post-training of language models")
    sub = p.add_subparsers(dest="command", required=True)
    _add_run_commands(sub)
    _add_analysis_commands(sub)
    return p


def _add_run_commands(sub) -> None:
    """train, show-config, experiment, eval, models: the commands that run models."""
    t = sub.add_parser("train", help="train (no arguments: the CPU lab's GRPO recipe)")
    t.add_argument("args", nargs="*", help="[RECIPE or RECIPE.yaml] [key=value ...], e.g. kl_cov trainer.steps=100; "
                                          "a YAML recipe starts from grpo unless it names another with `extends:` "
                                          "(a recipe name, or a file relative to the recipe's own directory)")
    t.add_argument("--resume", metavar="RUN_DIR",
                   help="continue the run in RUN_DIR from its latest intact checkpoint, with the config that "
                        "checkpoint was written with (an edited RUN_DIR/config.yaml is refused; the log section "
                        "may change)")
    t.add_argument("--extend-to", type=int, metavar="N",
                   help="with --resume: lengthen the run to N steps (N > its trainer.steps) and rewrite its "
                        "config.yaml. Schedules are functions of step/total, re-read against N from the resumed step "
                        "k on: the learning rate continues at the schedule's value for k of N (a linear or cosine "
                        "decay that had reached 0 jumps back up to its value at k/N) and an entropy-target ramp "
                        "jumps to H*(k/N) from the first controller update; constant ones are unchanged")
    t.add_argument("--run-dir", help="where to write a new run (default: log.run_dir); not with --resume")
    t.add_argument("--quiet", action="store_true", help="no progress bar")
    t.set_defaults(func=cmd_train, positional_rest="args")
    s = sub.add_parser("show-config", help="print the resolved config of a recipe with overrides")
    s.add_argument("args", nargs="*", help="[RECIPE] [key=value ...]")
    s.add_argument("--help-fields", action="store_true", help="also print every field's help text")
    s.set_defaults(func=cmd_show_config, positional_rest="args")
    e = sub.add_parser("experiment", help="run a named experiment and draw its figure")
    e.add_argument("name", help="experiment name: asymmetry, authors, schedules, targets")
    e.add_argument("overrides", nargs="*",
                   help="key=value overrides for every run (schedules, targets); schedules also takes base=RECIPE: "
                        "that recipe's model, task, sampling, optimizer and evaluation instead of the thought lab, and "
                        "warmup=N: GRPO steps before the schedules start (default 40; 0: from the base itself)")
    e.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2], help="seeds (base models) to average over")
    e.add_argument("--out", help="output directory (default runs/experiment-NAME)")
    e.set_defaults(func=cmd_experiment, positional_rest="overrides")
    v = sub.add_parser("eval", help="pass@k, mean@n, maj@n of a run, a checkpoint or the base model on held-out prompts")
    v.add_argument("target", metavar="CHECKPOINT_OR_RUN_DIR",
                   help="a run directory (its latest checkpoint), RUN/checkpoints/step-N, or `base` (the lab base model)")
    v.add_argument("--n", type=int, default=1024, help="samples per prompt (default 1024)")
    v.add_argument("--k", help="comma-separated k list, any k <= n, e.g. 1,2,4,10,100 (default 1,2,4,... <= n)")
    v.add_argument("--temperature", type=float, help="sampling temperature (default: the run's eval.temperature)")
    v.add_argument("--top-p", type=float, default=1.0, help="nucleus sampling mass (default 1: off)")
    v.add_argument("--prompts", type=int, default=100, help="held-out prompts (default 100)")
    v.add_argument("--seed", type=int, default=0, help="sampling seed (default 0)")
    v.add_argument("--max-new-tokens", type=int, help="completion budget (default: the run's rollout.max_new_tokens)")
    v.add_argument("--batch-rows", type=int, default=1024, help="sequences per sampler call (default 1024)")
    v.add_argument("--threads", type=int, help="torch CPU threads (default: the run's trainer.threads, else 1 for the lab model; 0: torch's)")
    v.add_argument("--out", help="also write the results (settings included) as JSON here")
    v.add_argument("--quiet", action="store_true", help="no progress bar")
    v.set_defaults(func=cmd_eval)
    m = sub.add_parser("models", help="real models: list the known aliases, prepare one (GGUF -> plain HF directory)")
    msub = m.add_subparsers(dest="action", required=True)
    msub.add_parser("list", help="known aliases and whether each is prepared in the cache")
    mp = msub.add_parser("prepare", help="convert a known alias (or a .gguf file) once into a plain HF directory")
    mp.add_argument("name", help="a known alias (e.g. smollm2-135m) or the path of a .gguf file")
    mp.add_argument("--out", help="write the directory here instead of the cache ($ENTROSTAT_CACHE/gguf)")
    mp.add_argument("--force", action="store_true", help="convert again even if already prepared (replaces --out)")
    mp.add_argument("--quiet", action="store_true", help="no progress output")
    m.set_defaults(func=cmd_models)


def _add_analysis_commands(sub) -> None:
    """report, compare, fit-law, diagnose: the commands that read run directories."""
    r = sub.add_parser("report", help="a static HTML report (with PNG figures) of one or more runs")
    r.add_argument("runs", nargs="+", metavar="RUN_DIR", help="run directories written by `entrostat train`")
    r.add_argument("-o", "--out", default="report.html", help="HTML file; figures go to <name>_files/ beside it")
    r.add_argument("--eval", action="append", metavar="FILE",
                   help="an `entrostat eval --out` file drawn as a reference pass@k curve, e.g. the base model's "
                        "(repeatable)")
    r.set_defaults(func=cmd_report)
    c = sub.add_parser("compare", help="print the summary table of one or more runs")
    c.add_argument("runs", nargs="+", metavar="RUN_DIR", help="run directories written by `entrostat train`")
    c.set_defaults(func=cmd_compare)
    f = sub.add_parser("fit-law", help="fit R = -a*exp(H) + b on the first part of a run; predict its final R")
    f.add_argument("run_dir", metavar="RUN_DIR", help="a run directory written by `entrostat train`")
    f.add_argument("--fit-frac", type=float, default=1 / 3, help="fit on pairs with step <= this fraction of the run (default 1/3)")
    f.add_argument("--metric", help="R: a metrics key (default eval/pass@1 where the run has it, else reward_mean)")
    f.add_argument("--bootstrap", type=int, default=1000, help="bootstrap resamples for the intervals (default 1000)")
    f.add_argument("--seed", type=int, default=0, help="bootstrap seed (default 0)")
    f.add_argument("--json", metavar="OUT", help="also write the report as JSON to OUT")
    f.set_defaults(func=cmd_fit_law)
    d = sub.add_parser("diagnose", help="predicted vs measured entropy change (Cov terms) and token quadrants of a run")
    d.add_argument("run_dir", metavar="RUN_DIR", help="a run directory written by `entrostat train`")
    d.add_argument("--smooth", type=int, default=1, help="also compare moving averages over this many steps (default 1: raw only)")
    d.add_argument("--json", metavar="OUT", help="also write the report as JSON to OUT")
    d.set_defaults(func=cmd_diagnose)


def parse(argv: list[str] | None = None) -> argparse.Namespace:
    """The parsed command line; ``key=value`` words after an option (``experiment targets --seeds 0 lr=1``)
    join the command's positional list, which plain argparse refuses once an option has cut it."""
    parser = build_parser()
    ns, extra = parser.parse_known_args(argv)
    rest = getattr(ns, "positional_rest", None)
    if extra and rest and all("=" in x and not x.startswith("-") for x in extra):
        getattr(ns, rest).extend(extra)
    elif extra:
        parser.error(f"unrecognized arguments: {' '.join(extra)}")
    return ns


def main(argv: list[str] | None = None) -> int:
    ns = parse(argv)
    try:
        return ns.func(ns)
    except (ConfigError, OSError, ModelLoadError, TrainingError, RewardError, RunDirLocked, CheckpointError,
            DiagnosticsError, yaml.YAMLError) as exc:
        # OSError: a missing, existing or unwritable path (FileNotFoundError, RunDirError, PermissionError, ...)
        print(f"entrostat: error: {' '.join(str(exc).split()) or type(exc).__name__}", file=sys.stderr)
        return 2
    except TrainingInterrupted as exc:
        print(f"entrostat: {exc}", file=sys.stderr)
        return 130
    except KeyboardInterrupt:
        print("entrostat: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
