"""How well a controller tracks its entropy target (ALGORITHMS.md §3): tracking error, overshoot, oscillation.

With the relative error e_k = (H_k − H*_k) / H*_k of step k (n steps) and the
second half of the run k ≥ ⌊n/2⌋:

- ``tracking_error``: mean |e_k| over the second half (the spec's headline number);
- ``bias``: mean e_k over the second half (> 0: entropy sits above the target);
- ``oscillation``: population standard deviation of e_k over the second half —
  the spread around the bias, so a constant offset is not counted as oscillation;
- ``sign_changes``: how often e_k changes sign over the second half (exact zeros skipped);
- ``first_crossing``: the first k where e_k is zero or has the opposite sign of the
  first non-zero e_k (the run reached its target), −1 if never;
- ``overshoot``: max over k ≥ first_crossing of the relative excess past the
  target on the far side from where the run started (−sign(e_first)·e_k), 0 if
  it never crossed or never went past.
"""

from __future__ import annotations

import math
from typing import Sequence


def _sign(x: float) -> int:
    return (x > 0) - (x < 0)


def tracking_metrics(entropies: Sequence[float], targets: Sequence[float]) -> dict[str, float]:
    """Tracking error, bias, oscillation, sign changes, first crossing and overshoot of H_k against H*_k."""
    if len(entropies) != len(targets) or not entropies:
        raise ValueError(
            f"need equally long, non-empty sequences; got {len(entropies)} entropies and {len(targets)} targets"
        )
    if not all(math.isfinite(h) for h in entropies) or not all(math.isfinite(t) and t > 0 for t in targets):
        raise ValueError("entropies must be finite and targets finite and > 0 (the error is relative to the target)")
    rel = [(h - t) / t for h, t in zip(entropies, targets)]
    tail = rel[len(rel) // 2:]
    bias = sum(tail) / len(tail)
    signs = [_sign(e) for e in tail if e != 0.0]
    start = next((_sign(e) for e in rel if e != 0.0), 0)
    crossing = next((k for k, e in enumerate(rel) if _sign(e) != start), -1) if start else -1
    overshoot = max(0.0, max(-start * e for e in rel[crossing:])) if crossing >= 0 else 0.0
    return {
        "tracking_error": sum(abs(e) for e in tail) / len(tail),
        "bias": bias,
        "oscillation": math.sqrt(sum((e - bias) ** 2 for e in tail) / len(tail)),
        "sign_changes": float(sum(a != b for a, b in zip(signs, signs[1:]))),
        "first_crossing": float(crossing),
        "overshoot": overshoot,
    }
