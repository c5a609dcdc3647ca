"""``entrostat report``: a static HTML page (plain HTML, inline CSS, no script, no network) with PNGs beside it.

``write_report(run_dirs, "report.html")`` writes ``report.html`` and
``report_files/*.png`` (referenced by relative paths, so the pair can be moved or
archived together). A quantity no run logged gets no figure, only a note.
"""

from __future__ import annotations

import html
import math
import time
import warnings
from collections.abc import Callable
from pathlib import Path

from entrostat.report import analysis as an
from entrostat.report import figures as fg
from entrostat.report.runs import Run, load_runs, pass_at_k, read_eval_file, series

_CSS = """body{font-family:system-ui,sans-serif;max-width:1200px;margin:1.5em auto;padding:0 1em;color:#222}
table{border-collapse:collapse;margin:.6em 0;font-size:.9em}th,td{border:1px solid #ccc;padding:.25em .6em}
td.n{text-align:right;font-variant-numeric:tabular-nums}th{background:#f3f3f3}
img{max-width:100%;border:1px solid #eee}.note{color:#8a5a00}figure{margin:1.2em 0}
figcaption{font-size:.9em;color:#555;max-width:60em}code{background:#f5f5f5;padding:0 .2em}"""


def _curves(runs: list[Run], key: str) -> dict[str, fg.Curve]:
    out = {}
    for r in runs:
        xs, ys = series(r.records, key)
        if xs:
            out[r.name] = (xs, ys)
    return out


def _table(header: list[str], rows: list[list[str]], numeric_from: int = 1) -> str:
    head = "".join(f"<th>{html.escape(h)}</th>" for h in header)
    body = "".join(
        "<tr>" + "".join(f"<td{' class=n' if i >= numeric_from else ''}>{html.escape(c)}</td>" for i, c in enumerate(row))
        + "</tr>" for row in rows)
    return f"<table><tr>{head}</tr>{body}</table>"


def _fmt(v: float, spec: str = ".3f") -> str:
    return "–" if v is None or (isinstance(v, float) and math.isnan(v)) else format(v, spec)


class _Page:
    """Collects the page's sections, figures (written into ``files``) and notes."""

    def __init__(self, out: Path):
        self.out = out
        self.files = out.parent / f"{out.stem}_files"
        self.files.mkdir(parents=True, exist_ok=True)
        self.parts: list[str] = []
        self.notes: list[str] = []

    def figure(self, stem: str, title: str, draw: Callable[[Path], Path], caption: str = "", extra: str = "") -> None:
        path = draw(self.files / f"{stem}.png")
        src = f"{self.files.name}/{path.name}"
        self.parts.append(f"<h2>{html.escape(title)}</h2><figure><img src=\"{html.escape(src)}\" alt=\"{html.escape(title)}\">"
                          f"<figcaption>{caption}</figcaption></figure>{extra}")


def _absent(page: _Page, runs: list[Run], shown, title: str) -> None:
    missing = [r.name for r in runs if r.name not in shown]
    if missing:
        page.notes.append(f"{title}: not logged by {html.escape(', '.join(missing))}.")


def _lines(page: _Page, runs: list[Run], colors, key: str, title: str, ylabel: str, caption: str, **kw) -> None:
    curves = _curves(runs, key)
    if not curves:
        page.notes.append(f"{title}: no run logged <code>{key}</code>; figure skipped.")
        return
    _absent(page, runs, curves, title)
    page.figure(key.replace("/", "_").replace("@", "_at_"), title,
                lambda p: fg.line_figure(curves, colors, p, title=title, ylabel=ylabel, **kw), caption)


def _entropy(page: _Page, runs: list[Run], colors) -> None:
    targets = {}
    for r in runs:
        keys = an.target_keys(r.records)
        if keys:
            xs, ys = series(r.records, keys[0])
            targets[r.name] = (xs, ys)
    _lines(page, runs, colors, "entropy", "Token entropy", "entropy (nats, T = 1)",
           "Exact token entropy of the training rollouts, per step; dashed: the controller's target where one was "
           "logged (<code>control/…/target</code>).", dashed=targets)


def _controller(page: _Page, runs: list[Run], colors) -> None:
    keys = sorted({k for r in runs for rec in r.records for k in rec if k.startswith("control/")})
    panels = [(k.removeprefix("control/"), c) for k in keys if (c := _curves(runs, k))]
    if not panels:
        page.notes.append("Controller signals: no run logged <code>control/…</code> keys (no controller); "
                          "figure skipped.")
        return
    page.figure("control", "Controller signals", lambda p: fg.panels_figure(panels, colors, p),
                "One panel per logged key: <code>control/&lt;actuator&gt;</code> is the value the loss used at that "
                "step (temperature, α, clip bounds, coefficients); <code>control/&lt;controller&gt;/&lt;signal&gt;</code> "
                "are the controller's internal signals after the step.")


def _entropy_change(page: _Page, runs: list[Run], colors) -> None:
    data, rows = {}, []
    for r in runs:
        series_ = an.entropy_change_series(r.records)
        if series_:
            data[r.name] = series_
        for key, (_, pred, meas) in series_.items():
            s = an.agreement(pred, meas)
            rows.append([r.name, key, str(int(s["pairs"])), _fmt(s["pearson"]), _fmt(s["sign_agreement"], ".1%")])
    if not data:
        page.notes.append("Predicted vs measured entropy change: no run has two consecutive steps with "
                          "<code>entropy</code> and a predicted change (<code>diag/dH_pred_…</code>, or "
                          "<code>lr</code> and <code>covariance</code>); figure skipped.")
        return
    _absent(page, runs, data, "Predicted vs measured entropy change")
    table = _table(["run", "covariance", "pairs", "Pearson r", "sign agreement"], rows, numeric_from=2)
    page.figure("entropy_change", "Predicted vs measured entropy change",
                lambda p: fg.entropy_change_figure(data, colors, p),
                "First-order law (Cui et al. 2505.22617): update k changes the entropy by ΔH ≈ −η·Cov(log π, π·A) "
                "(policy gradient, <code>diag/cov_pg</code>) or −η·Cov(log π, A) (natural policy gradient, "
                "<code>diag/cov_npg</code>; runs logged before the <code>diag/…</code> keys: −lr·<code>covariance</code>). "
                "Measured: entropy[k+1] − entropy[k], each on its own step's rollout, so sampling noise is included. "
                "Under Adam the predicted scale is not the measured one: compare signs and ups and downs.",
                table)


def _law(page: _Page, runs: list[Run], colors) -> None:
    h_top = max((max(series(r.records, "entropy")[1], default=0.0) for r in runs), default=0.0) * 1.05 or 1.0
    grid = [h_top * i / 100 for i in range(101)]
    points, fits, rows = {}, {}, []
    for r in runs:
        res, why = an.law_analysis(r.records, grid)
        if res is None:
            page.notes.append(f"Law fit, run {html.escape(r.name)}: {html.escape(why)}; not in the figure.")
            continue
        points[r.name] = (res["h"], res["r"])
        fit = res["fit"]
        fits[r.name] = fit and {**fit, "band": res["band"]}
        if fit is None:
            page.notes.append(f"Law fit, run {html.escape(r.name)}: {html.escape(why)}; points drawn, no fit.")
            continue
        lo, hi = res["ceiling_interval"]
        pre = res["prefix"]
        if pre is None:
            page.notes.append(f"Law prediction, run {html.escape(r.name)}: {html.escape(res['prefix_why'])}")
            pred = "–"
        else:
            f = pre["final"]
            plo, phi = f["predicted_interval"]
            pred = f"{f['predicted']:.3f} [{plo:.3f}, {phi:.3f}] vs {f['actual']:.3f}"
        rows.append([r.name, str(fit["n"]), _fmt(fit["a"], ".4g"), _fmt(fit["b"], ".4g"), _fmt(fit["r2"]),
                     f"{fit['ceiling']:.3f} [{lo:.3f}, {hi:.3f}]", pred])
    if not points:
        return
    table = _table(["run", "points", "a", "b", "R²", "ceiling b − a [95%]",
                    "final pass@1 predicted from first third [95%] vs actual"], rows) if rows else ""
    page.figure("law", "Entropy–performance law", lambda p: fg.law_figure(points, fits, colors, p, grid),
                "Held-out pass@1 of each evaluation against the entropy of the same policy (the next step's "
                "rollout), with the least-squares fit of R = −a·exp(H) + b on all points, its 95% bootstrap band "
                "and its ceiling b − a, the pass@1 predicted at zero entropy. Last column: the law fitted on the "
                "evaluations in the first third of the run, extrapolated to the final entropy "
                "(<code>entrostat fit-law</code>).", table)


REFERENCE_COLOR = "#555555"


def _passk(page: _Page, runs: list[Run], colors, references: list[tuple[str, dict[int, float]]]) -> None:
    curves = []
    for r in runs:
        evals = [rec for rec in r.records if len(pass_at_k(rec)) >= 1]
        if evals:
            c = pass_at_k(evals[-1])
            how = ", ".join(x for x in (f"step {evals[-1].get('step')}", r.eval_settings) if x)
            curves.append((f"{r.name} ({how})", r.name, (list(c), list(c.values())), "-"))
        for fname, c in r.evals:
            curves.append((f"{r.name}: {fname}", r.name, (list(c), list(c.values())), "--"))
    for label, c in references:
        colors = {**colors, label: REFERENCE_COLOR}
        curves.append((label, label, (list(c), list(c.values())), ":"))
    if not curves:
        page.notes.append("pass@k: no evaluation records or eval*.json files; figure skipped.")
        return
    _absent(page, runs, {c[1] for c in curves}, "pass@k")
    page.figure("passk", "pass@k", lambda p: fg.passk_figure(curves, colors, p),
                "Unbiased pass@k of the last evaluation record of each run (solid), of any "
                "<code>eval*.json</code> in the run directory (dashed) and of the reference evaluations given "
                "with <code>--eval</code>, such as the base model's (grey, dotted).")


def write_report(run_dirs: list[Path | str], out: Path | str, evals: list[Path | str] = ()) -> Path:
    """Write the HTML report of ``run_dirs`` to ``out`` (and its PNGs to ``<stem>_files/``); returns ``out``.

    ``evals``: ``entrostat eval --out`` files drawn as reference curves in the pass@k figure (e.g. the base
    model); a missing file is an error, an unreadable one a warning."""
    runs = load_runs(run_dirs)
    references = []
    for path in map(Path, evals):
        if not path.is_file():
            raise FileNotFoundError(f"--eval {path}: no such file (write one with `entrostat eval ... --out FILE`)")
        if (got := read_eval_file(path)) is None:
            warnings.warn(f"--eval {path}: no pass@k values in it; not drawn", stacklevel=2)
        else:
            references.append(got)
    out = Path(out)
    page = _Page(out)
    colors = fg.run_colors([r.name for r in runs])
    page.notes += [f"Run {html.escape(r.name)}: {html.escape(str(r.path))}/metrics.jsonl holds no records yet."
                   for r in runs if not r.records]
    _entropy(page, runs, colors)
    _lines(page, runs, colors, "reward_mean", "Training reward", "mean reward of the rollouts",
           "Mean reward of each step's training rollouts (faint: per step; solid: moving average on long runs).")
    _lines(page, runs, colors, "eval/pass@1", "Held-out pass@1", "pass@1", "Unbiased pass@1 on the held-out "
           "prompts at each evaluation step (step 0: the base model).", markers=True)
    _controller(page, runs, colors)
    _lines(page, runs, colors, "response_length", "Response length", "tokens per completion",
           "Mean completion length of the training rollouts.")
    _entropy_change(page, runs, colors)
    _law(page, runs, colors)
    _passk(page, runs, colors, references)
    summary = [an.summarize(r) for r in runs]
    table = _table(list(an.SUMMARY_COLUMNS), [[an.format_cell(s, c) for c in an.SUMMARY_COLUMNS] for s in summary], 2)
    run_rows = [[r.name, str(r.path), r.recipe, str(r.seed), str(len(r.records))] for r in runs]
    notes = "".join(f"<li class=note>{n}</li>" for n in page.notes)
    doc = (f"<!DOCTYPE html><html lang=en><head><meta charset=utf-8><title>entrostat report</title>"
           f"<style>{_CSS}</style></head><body><h1>entrostat report</h1>"
           f"<p>{len(runs)} run(s), written {html.escape(time.strftime('%Y-%m-%d %H:%M:%S'))}.</p>"
           + _table(["run", "directory", "recipe", "seed", "records"], run_rows, numeric_from=3)
           + "<h2>Summary</h2>" + table
           + f"<p>Entropy and reward: mean of the last {an.FINAL_WINDOW} steps. pass@k: the largest k of the last "
             "evaluation. Tracking error: mean |H − H*|/H* over the second half of the run (runs whose controller "
             "logged a target). Wall time: sum of <code>time/step</code>.</p>"
           + (f"<h2>Notes</h2><ul>{notes}</ul>" if notes else "")
           + "".join(page.parts) + "</body></html>\n")
    out.write_text(doc, encoding="utf-8")
    return out


def compare_table(run_dirs: list[Path | str]) -> str:
    """The report's summary table as aligned text (``entrostat compare``)."""
    return an.format_table([an.summarize(r) for r in load_runs(run_dirs)])
