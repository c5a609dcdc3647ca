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


def default_ks(n: int) -> list[int]:
    """k = 1, 2, 4, … up to n (powers of two only)."""
    return [2**i for i in range(int(n).bit_length()) if 2**i <= n]


def parse_ks(text: str, n: int) -> list[int]:
    """The k list of a comma-separated string such as "1,2,4,10,100", checked against n; sorted, duplicates dropped.

    Any positive integers k ≤ n are allowed (not only powers of two). Raises
    ValueError naming the bad entry and what to write instead.
    """
    parts = [p.strip() for p in str(text).split(",")]
    if not any(parts):
        raise ValueError("the k list is empty; give comma-separated integers such as 1,2,4,8")
    ks = set()
    for p in parts:
        try:
            k = int(p)
        except ValueError:
            raise ValueError(f"k list {text!r}: {p!r} is not an integer; give comma-separated integers such as 1,2,4,8") from None
        if k < 1:
            raise ValueError(f"k list {text!r}: k = {k} must be >= 1")
        if k > n:
            raise ValueError(f"k list {text!r}: k = {k} exceeds n = {n} samples per prompt; raise n or drop k = {k}")
        ks.add(k)
    return sorted(ks)
