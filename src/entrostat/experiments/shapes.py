"""Shape criteria for entropy trajectories: does a run look like its schedule's name (2602.09782)?

Flexible Entropy Control names its schedules after the entropy curve they aim for:
ID (increase then decrease), DID (decrease, increase, decrease) and OD (oscillatory
decay). The paper gives no test, so these criteria are ours. Every check reads the
centred moving average s of the entropy (window max(5, n/20) steps, so the per-step
sampling noise of the lab, ≈ 0.025 nats, averages out) and asks for moves of at least
``delta`` nats (default 0.02):

- ``id``: the peak of s over steps [n/20, n/2] lies ≥ δ above s at the start, and s at
  the end lies ≥ δ below that peak.
- ``did``: the trough of s over the first half lies ≥ δ below the start, a later peak
  ≥ δ above the trough, and the end ≥ δ below that peak.
- ``od``: at least two peaks of s, each with ≥ δ of descent on both sides, with
  falling heights.
"""

from __future__ import annotations

from typing import Sequence

from entrostat.report.figures import smooth


def peaks(s: Sequence[float], delta: float) -> list[int]:
    """Indices of the peaks of ``s`` that stand ≥ delta above the lowest point on each side before a higher point."""
    found = []
    for i in range(1, len(s) - 1):
        if not (s[i] >= s[i - 1] and s[i] > s[i + 1]):
            continue
        left = right = s[i]
        for j in range(i - 1, -1, -1):
            if s[j] > s[i]:
                break
            left = min(left, s[j])
        for j in range(i + 1, len(s)):
            if s[j] > s[i]:
                break
            right = min(right, s[j])
        if s[i] - left >= delta and s[i] - right >= delta:
            found.append(i)
    return found


def shape_check(shape: str, h: Sequence[float], delta: float = 0.02) -> tuple[bool, str]:
    """(passed, what was measured) for ``shape`` in {'id', 'did', 'od'} on the entropy trajectory ``h``."""
    n = len(h)
    if n < 20:
        raise ValueError(f"need at least 20 steps to judge a shape, got {n}")
    s = smooth(h, max(5, n // 20))
    if shape == "id":
        k = max(range(n // 20, n // 2), key=s.__getitem__)
        ok = s[k] >= s[0] + delta and s[-1] <= s[k] - delta
        return ok, f"start {s[0]:.3f}, first-half peak {s[k]:.3f} at step {k + 1}, end {s[-1]:.3f}"
    if shape == "did":
        k1 = min(range(n // 2), key=s.__getitem__)
        k2 = max(range(k1, n), key=s.__getitem__)
        ok = s[k1] <= s[0] - delta and s[k2] >= s[k1] + delta and s[-1] <= s[k2] - delta
        return ok, (f"start {s[0]:.3f}, trough {s[k1]:.3f} at step {k1 + 1}, peak {s[k2]:.3f} at step {k2 + 1}, "
                    f"end {s[-1]:.3f}")
    if shape == "od":
        ps = peaks(s, delta)
        heights = [s[i] for i in ps]
        ok = len(ps) >= 2 and all(a > b for a, b in zip(heights, heights[1:]))
        return ok, "peaks " + (", ".join(f"{s[i]:.3f} at step {i + 1}" for i in ps) or "none")
    raise ValueError(f"shape must be 'id', 'did' or 'od', got {shape!r}")
