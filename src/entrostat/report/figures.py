"""The report's figures (PNG, Agg backend): several runs overlaid, one colour per run throughout.

Curves are ``{run name: (xs, ys)}``; ``colors`` maps run names to matplotlib colours
(``run_colors``). Every function writes ``path`` and returns it; none is called with
nothing to draw (the page builder skips and notes missing quantities instead).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path

from entrostat.report.plots import _plt

Curve = tuple[Sequence[float], Sequence[float]]
_COV_MARKERS = {"covariance": "o", "diag/cov_npg": "^", "diag/cov_pg": "s"}
_COV_STYLES = {"covariance": "--", "diag/cov_npg": ":", "diag/cov_pg": "-."}


def run_colors(names: Sequence[str]) -> dict[str, str]:
    plt = _plt()
    cycle = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    return {n: cycle[i % len(cycle)] for i, n in enumerate(names)}


def smooth(ys: Sequence[float], window: int) -> list[float]:
    """Centred moving average over ``window`` points (shrinking at the ends); window ≤ 1 returns ys."""
    if window <= 1:
        return list(ys)
    half = window // 2
    return [sum(ys[max(0, i - half): i + half + 1]) / len(ys[max(0, i - half): i + half + 1]) for i in range(len(ys))]


def _window(n: int) -> int:
    return n // 25 if n >= 75 else 1  # only long, noisy per-step series are smoothed


def _change_window(n: int) -> int:
    return max(1, n // 10) if n >= 30 else 1  # per-step ΔH is mostly batch-to-batch sampling noise


def _save(fig, plt, path: Path) -> Path:
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return path


def _draw_runs(ax, curves: dict[str, Curve], colors: dict[str, str], *, markers: bool, smoothed: bool = True) -> None:
    for name, (xs, ys) in curves.items():
        c = colors[name]
        w = _window(len(ys)) if smoothed else 1
        if w > 1:  # raw per-step values faint, their moving average on top
            ax.plot(xs, ys, color=c, lw=0.7, alpha=0.3)
            ax.plot(xs, smooth(ys, w), color=c, lw=1.6, label=name)
        else:
            ax.plot(xs, ys, color=c, lw=1.4, marker="o" if markers else None, ms=3.5, label=name)


def line_figure(curves: dict[str, Curve], colors: dict[str, str], path: Path, *, title: str, ylabel: str,
                dashed: dict[str, Curve] | None = None, dashed_label: str = "target", markers: bool = False) -> Path:
    """One quantity per step, runs overlaid; ``dashed`` adds e.g. each run's entropy target."""
    plt = _plt()
    fig, ax = plt.subplots(figsize=(7.2, 3.8), dpi=110)
    _draw_runs(ax, curves, colors, markers=markers)
    for i, (name, (xs, ys)) in enumerate((dashed or {}).items()):
        ax.plot(xs, ys, color=colors[name], lw=1.0, ls="--", label=f"{name} {dashed_label}")
    ax.set_xlabel("step")
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.grid(alpha=0.25)
    ax.legend(frameon=False, fontsize=8)
    return _save(fig, plt, path)


def panels_figure(panels: list[tuple[str, dict[str, Curve]]], colors: dict[str, str], path: Path) -> Path:
    """A grid with one panel per signal (title, curves), runs overlaid, one legend for the figure.

    Not smoothed: controller signals are mostly deterministic (targets, steps, saturation flags).
    """
    plt = _plt()
    ncols = min(3, len(panels))
    nrows = math.ceil(len(panels) / ncols)
    fig, axes = plt.subplots(nrows, ncols, figsize=(4.2 * ncols, 2.9 * nrows + 0.3), dpi=110, squeeze=False)
    for ax, (name, curves) in zip(axes.flat, panels):
        _draw_runs(ax, curves, colors, markers=False, smoothed=False)
        ax.set_title(name, fontsize=9)
        ax.set_xlabel("step", fontsize=8)
        ax.tick_params(labelsize=7)
        ax.grid(alpha=0.25)
    for ax in list(axes.flat)[len(panels):]:
        ax.set_visible(False)
    shown = sorted({n for _, curves in panels for n in curves}, key=list(colors).index)
    handles = [plt.Line2D([], [], color=colors[n], lw=2) for n in shown]
    fig.legend(handles, shown, loc="upper center", ncol=min(4, len(shown)), frameon=False, fontsize=8)
    fig.tight_layout(rect=(0, 0, 1, 1 - 0.3 / fig.get_figheight()))
    fig.savefig(path)
    plt.close(fig)
    return path


def entropy_change_figure(data: dict[str, dict[str, tuple[list[int], list[float], list[float]]]],
                          colors: dict[str, str], path: Path) -> Path:
    """Predicted ΔH = −lr·Cov (x) vs measured H_{k+1} − H_k (y), and both along the run.

    ``data[run][cov_key] = (steps, predicted, measured)``. The time series puts the
    prediction on its own (right) axis: the first-order law predicts the sign and
    shape of the change, while its scale is off under Adam (the step is not lr·∇).
    """
    plt = _plt()
    fig, (sc, ts) = plt.subplots(1, 2, figsize=(11.5, 5.0), dpi=110)
    tw = ts.twinx()
    for name, by_key in data.items():
        c = colors[name]
        for key, (steps, pred, meas) in by_key.items():
            sc.scatter(pred, meas, s=9, color=c, alpha=0.55, marker=_COV_MARKERS[key],
                       label=f"{name} ({key})", edgecolors="none")
            tw.plot(steps, smooth(pred, _change_window(len(pred))), color=c, lw=1.1, ls=_COV_STYLES[key])
        steps, _, meas = next(iter(by_key.values()))
        ts.plot(steps, smooth(meas, _change_window(len(meas))), color=c, lw=1.5, label=f"{name} measured")
    for ax in (sc, ts):
        ax.axhline(0, color="black", lw=0.6)
        ax.grid(alpha=0.25)
    sc.axvline(0, color="black", lw=0.6)
    sc.set_xlabel("predicted ΔH = −η·Cov(log π, ·)")
    sc.set_ylabel("measured ΔH = H[k+1] − H[k] (nats)")
    sc.set_title("entropy change per update: predicted vs measured", fontsize=10)
    sc.legend(frameon=False, fontsize=7)
    ts.set_xlabel("step")
    ts.set_ylabel("measured ΔH (solid, nats)")
    tw.set_ylabel("predicted ΔH (dashed/dotted)")
    ts.set_title("along the run (moving average over ~10% of the steps)", fontsize=10)
    keys = sorted({k for by_key in data.values() for k in by_key}, key=list(_COV_STYLES).index)
    proxies = [plt.Line2D([], [], color="gray", ls=_COV_STYLES[k], label=f"predicted, −η·{k} (right axis)") for k in keys]
    ts.legend(handles=ts.get_legend_handles_labels()[0] + proxies, frameon=False, fontsize=7, loc="upper center",
              bbox_to_anchor=(0.5, -0.16), ncol=2)
    return _save(fig, plt, path)


def law_figure(points: dict[str, Curve], fits: dict[str, dict | None], colors: dict[str, str], path: Path,
               grid: Sequence[float]) -> Path:
    """(H, R) points with the fitted law R = −a·e^H + b over ``grid`` and its ceiling b − a (R at H = 0), per run.

    ``fits[run]`` holds ``a, b, r2, ceiling`` and optionally ``band``, a (lo, hi) pair per
    grid point (bootstrap interval, shaded); None: not fitted, the points are still drawn.
    """
    plt = _plt()
    fig, ax = plt.subplots(figsize=(7.2, 4.2), dpi=110)
    for name, (hs, rs) in points.items():
        c = colors[name]
        ax.scatter(hs, rs, color=c, s=22, zorder=3, label=f"{name} (evaluations)")
        fit = fits.get(name)
        if fit:
            ax.plot(grid, [-fit["a"] * math.exp(h) + fit["b"] for h in grid], color=c, lw=1.3,
                    label=f"fit a={fit['a']:.3g}, b={fit['b']:.3g}, R²={fit['r2']:.2f}")
            if fit.get("band"):
                ax.fill_between(grid, [lo for lo, _ in fit["band"]], [hi for _, hi in fit["band"]], color=c, alpha=0.12,
                                lw=0)
            ax.axhline(fit["ceiling"], color=c, lw=1.0, ls=":", label=f"ceiling b − a = {fit['ceiling']:.3f}")
    ax.set_xlim(0, grid[-1])
    ax.set_ylim(-0.02, 1.02)  # pass@1 lies in [0, 1]; a wide bootstrap band far from the points is cut off
    ax.set_xlabel("entropy H (nats)")
    ax.set_ylabel("held-out pass@1 R")
    ax.set_title("R = −a·exp(H) + b (Cui et al. 2505.22617); shaded: 95% bootstrap band", fontsize=10)
    ax.grid(alpha=0.25)
    ax.legend(frameon=False, fontsize=7)
    return _save(fig, plt, path)


def passk_figure(curves: list[tuple[str, str, Curve, str]], colors: dict[str, str], path: Path) -> Path:
    """pass@k against k (log scale); ``curves`` = [(label, run name, (ks, values), linestyle)]."""
    plt = _plt()
    fig, ax = plt.subplots(figsize=(7.2, 3.8), dpi=110)
    for label, name, (ks, vals), ls in curves:
        ax.plot(ks, vals, color=colors[name], ls=ls, marker="o", ms=3.5, lw=1.3, label=label)
    ax.set_xscale("log", base=2)
    ks = sorted({k for _, _, (kk, _), _ in curves for k in kk})
    ax.set_xticks(ks, [str(k) for k in ks])
    ax.minorticks_off()
    ax.set_xlabel("k")
    ax.set_ylabel("pass@k (held-out)")
    ax.set_ylim(0, 1.02)
    ax.set_title("pass@k: last evaluation of each run", fontsize=10)
    ax.grid(alpha=0.25)
    ax.legend(frameon=False, fontsize=8)
    return _save(fig, plt, path)
