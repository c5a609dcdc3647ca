"""Matplotlib figures (PNG), drawn off-screen."""

from __future__ import annotations

from pathlib import Path


def _plt():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def asymmetry_figure(table: list[dict], path: Path) -> Path:
    """Bars of the mean entropy change (± std over seeds) per temperature, positives vs negatives; one panel
    per starting policy (``warmup_steps``: 0 = the pre-trained base)."""
    plt = _plt()
    temps = sorted({r["temperature"] for r in table})
    starts = sorted({r.get("warmup_steps", 0) for r in table})
    fig, axes = plt.subplots(1, len(starts), figsize=(6.4 * len(starts), 3.8), dpi=120, squeeze=False)
    width = 0.38
    for ax, w in zip(axes[0], starts):
        rows = [r for r in table if r.get("warmup_steps", 0) == w]
        for i, (sign, color) in enumerate((("positive", "tab:green"), ("negative", "tab:red"))):
            cells = [next(r for r in rows if r["temperature"] == t and r["sign"] == sign) for t in temps]
            xs = [j + (i - 0.5) * width for j in range(len(temps))]
            ax.bar(xs, [c["entropy_change_mean"] for c in cells], width,
                   yerr=[c["entropy_change_std"] for c in cells], color=color, alpha=0.8,
                   label=f"{sign}-only REINFORCE", capsize=3)
        ax.axhline(0, color="black", lw=0.8)
        ax.set_xticks(range(len(temps)), [f"T = {t}" for t in temps])
        ax.set_ylabel("entropy change on probe set (nats)")
        h0 = rows[0].get("entropy_before")
        start = "pre-trained base" if w == 0 else f"base + {w} GRPO steps"
        ax.set_title(start + (f" (H = {h0:.2f})" if h0 is not None else ""))
        ax.legend(frameon=False)
    fig.suptitle("Sampling temperature × sample sign → entropy change")
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return path


def trajectories_figure(runs: dict, targets: dict, path: Path, title: str) -> Path:
    """Entropy per step of each label (one line per seed) with its target, if any, dashed."""
    plt = _plt()
    fig, ax = plt.subplots(figsize=(7.2, 4.0), dpi=120)
    colors = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    for i, (label, seed_runs) in enumerate(runs.items()):
        c = colors[i % len(colors)]
        for j, rows in enumerate(seed_runs):
            ax.plot([r["step"] for r in rows], [r["entropy"] for r in rows], color=c, lw=1.2, alpha=0.85,
                    label=label if j == 0 else None)
        if label in targets:
            from entrostat.control.targets import build_target

            tgt = build_target(targets[label])
            n = len(seed_runs[0])
            ax.plot(range(1, n + 1), [tgt(k, n) for k in range(n)], color=c, lw=1.0, ls="--")
    ax.set_xlabel("step")
    ax.set_ylabel("token entropy (nats, T = 1)")
    ax.set_title(title)
    ax.legend(frameon=False, fontsize=8, ncol=2)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return path
