"""Run directories as the report reads them: metrics, recipe and seed, extra evaluation files, unique names."""

from __future__ import annotations

import json
import math
import re
import warnings
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from entrostat.diagnostics.runs import empty_metrics_error
from entrostat.rundir import CONFIG_FILE, METRICS_FILE, read_metrics

_PASS_AT = re.compile(r"^(?:eval/)?pass@(\d+)$")


@dataclass
class Run:
    """One run directory, read once."""

    name: str  # legend label: the directory name, or recipe + seed when directory names collide
    path: Path
    recipe: str
    seed: int | None
    records: list[dict[str, Any]]
    evals: list[tuple[str, dict[int, float]]] = field(default_factory=list)  # (label, pass@k by k) of eval*.json
    eval_settings: str = ""  # sampling settings of the in-training evaluations, e.g. "n=8, T=1.0"


def _number(v: Any) -> float | None:
    """A finite float, or None for what the metrics logger writes for NaN (null) and ±inf (±1e308)."""
    if isinstance(v, bool) or not isinstance(v, (int, float)):
        return None
    v = float(v)
    return v if math.isfinite(v) and abs(v) < 1e300 else None


def series(records: list[dict[str, Any]], key: str) -> tuple[list[int], list[float]]:
    """(steps, values) of the records that hold a finite number under ``key``."""
    steps, values = [], []
    for r in records:
        v = _number(r.get(key))
        if v is not None and "step" in r:
            steps.append(int(r["step"]))
            values.append(v)
    return steps, values


def pass_at_k(record: dict[str, Any]) -> dict[int, float]:
    """{k: pass@k} of a record or a JSON object, from keys ``eval/pass@K`` or ``pass@K``."""
    out = {}
    for key, v in record.items():
        m = _PASS_AT.match(str(key))
        if m and _number(v) is not None:
            out[int(m.group(1))] = float(v)
    return dict(sorted(out.items()))


def _settings(n: Any, temperature: Any) -> str:
    return ", ".join(f"{k}={v}" for k, v in (("n", n), ("T", temperature)) if v is not None)


def _eval_files(run_dir: Path) -> list[tuple[str, dict[int, float]]]:
    """(label, pass@k) of the ``eval*.json`` files in a run directory (``read_eval_file``)."""
    return [got for path in sorted(run_dir.glob("eval*.json")) if (got := read_eval_file(path)) is not None]


def read_eval_file(path: Path) -> tuple[str, dict[int, float]] | None:
    """(label, pass@k) of one ``entrostat eval --out`` file (pass@k under ``metrics``; any top-level or
    once-nested ``pass@K`` keys are read); None when it has no pass@k, and, with a warning, when it is
    not readable JSON.
    The label names the file, the evaluated step and the sampling settings where the file has them."""
    try:
        data = json.loads(Path(path).read_text())
    except (OSError, json.JSONDecodeError) as exc:
        warnings.warn(f"{path}: not readable as JSON ({exc}); skipped", stacklevel=2)
        return None
    if not isinstance(data, dict):
        return None
    curve = pass_at_k(data) or next((c for v in data.values() if isinstance(v, dict) and (c := pass_at_k(v))), {})
    if not curve:
        return None
    settings = data.get("settings") if isinstance(data.get("settings"), dict) else {}
    extra = [f"step {data['step']}"] if data.get("step") is not None else []
    extra += [s] if (s := _settings(settings.get("n"), settings.get("temperature"))) else []
    return (f"{Path(path).name} ({', '.join(extra)})" if extra else Path(path).name), curve


def load_run(run_dir: Path | str) -> Run:
    """Read a run directory written by ``entrostat train``; a directory without metrics.jsonl raises
    FileNotFoundError, one whose metrics.jsonl holds no records ``DiagnosticsError``."""
    run_dir = Path(run_dir)
    metrics = run_dir / METRICS_FILE
    if not metrics.is_file():
        what = "does not exist" if not run_dir.exists() else f"has no {METRICS_FILE}"
        raise FileNotFoundError(f"{run_dir} {what}: give run directories written by `entrostat train`")
    records = [r for r in read_metrics(metrics) if isinstance(r, dict)]
    if not records:  # refused, as fit-law and diagnose refuse it
        raise empty_metrics_error(metrics)
    cfg_path = run_dir / CONFIG_FILE
    cfg = (yaml.safe_load(cfg_path.read_text()) or {}) if cfg_path.is_file() else {}
    ev = cfg.get("eval") or {}
    return Run(name=run_dir.resolve().name, path=run_dir, recipe=str(cfg.get("recipe", "?")),
               seed=(cfg.get("trainer") or {}).get("seed"), records=records, evals=_eval_files(run_dir),
               eval_settings=_settings(ev.get("samples"), ev.get("temperature")))


def load_runs(run_dirs: list[Path | str]) -> list[Run]:
    """Read several runs and make their names unique: directory name, else recipe + seed, else a counter."""
    runs = [load_run(d) for d in run_dirs]
    for label in (lambda r: f"{r.recipe} seed {r.seed}", lambda r: f"{r.name} ({r.path})"):
        paths: dict[str, set] = {}
        for r in runs:
            paths.setdefault(r.name, set()).add(r.path.resolve())
        for r in runs:
            if len(paths[r.name]) > 1:  # different runs under one name
                r.name = label(r)
    counts, seen = Counter(r.name for r in runs), Counter()
    for r in runs:
        if counts[r.name] > 1:  # the same directory given twice
            seen[r.name] += 1
            r.name = f"{r.name} #{seen[r.name]}"
    return runs
