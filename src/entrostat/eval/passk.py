"""The unbiased pass@k estimator (Chen et al. 2021, arXiv 2107.03374), ALGORITHMS.md §4.

From n samples of which c are correct, pass@k = 1 − C(n−c, k) / C(n, k), the
probability that a random k-subset of the n samples holds a correct one. It is
computed in product form, 1 − Π_{i=n−c+1}^{n} (1 − k/i), which needs no large
binomials and stays finite and accurate for n in the thousands.
"""

from __future__ import annotations

import math
from typing import Iterable, Sequence


def _check_counts(n: int, c: int, k: int) -> None:
    """Raise ValueError with the reason when (n, c, k) is not a valid pass@k query."""
    for name, v in (("n", n), ("c", c), ("k", k)):
        if isinstance(v, bool) or int(v) != v:
            raise ValueError(f"pass@k: {name} must be an integer, got {v!r}")
        if v < 0:
            raise ValueError(f"pass@k: {name} must be >= 0, got {name}={v}")
    if c > n:
        raise ValueError(f"pass@k: c (correct samples) = {c} exceeds n (samples) = {n}")
    if k > n:
        raise ValueError(f"pass@k: k = {k} exceeds n = {n}; draw at least k samples per prompt")


def pass_at_k(n: int, c: int, k: int) -> float:
    """Unbiased pass@k for one prompt with ``c`` correct out of ``n`` samples (0 ≤ c ≤ n, 0 ≤ k ≤ n)."""
    _check_counts(n, c, k)
    n, c, k = int(n), int(c), int(k)
    if n - c < k:  # every k-subset holds a correct sample
        return 1.0
    return 1.0 - math.prod(1.0 - k / i for i in range(n - c + 1, n + 1))


def pass_at_k_many(n_correct: Sequence[int], n: int, ks: Iterable[int]) -> dict[int, float]:
    """Mean pass@k over prompts, for each k in ``ks``; ``n_correct[j]`` is prompt j's correct count of ``n``."""
    counts = list(n_correct)
    if not counts:
        raise ValueError("pass_at_k_many: n_correct is empty; need at least one prompt")
    return {int(k): sum(pass_at_k(n, c, k) for c in counts) / len(counts) for k in ks}
