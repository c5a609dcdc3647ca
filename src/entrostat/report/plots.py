"""Matplotlib figures (PNG), drawn off-screen."""

from __future__ import annotations

from pathlib import Path


def _plt():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def asymmetry_figure(table: list[dict], path: Path) -> Path:
    """Bars of the mean entropy change (± std over seeds) per temperature, positives vs negatives."""
    plt = _plt()
    temps = sorted({r["temperature"] for r in table})
    fig, ax = plt.subplots(figsize=(6.4, 3.6), dpi=120)
    width = 0.38
    for i, (sign, color) in enumerate((("positive", "tab:green"), ("negative", "tab:red"))):
        cells = [next(r for r in table if r["temperature"] == t and r["sign"] == sign) for t in temps]
        xs = [j + (i - 0.5) * width for j in range(len(temps))]
        ax.bar(xs, [c["entropy_change_mean"] for c in cells], width, yerr=[c["entropy_change_std"] for c in cells],
               color=color, alpha=0.8, label=f"{sign}-only REINFORCE", capsize=3)
    ax.axhline(0, color="black", lw=0.8)
    ax.set_xticks(range(len(temps)), [f"T = {t}" for t in temps])
    ax.set_ylabel("entropy change on probe set (nats)")
    ax.set_title("Sampling temperature × sample sign → entropy change")
    ax.legend(frameon=False)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return path
