"""pass@k: exact against brute-force enumeration, stable at n = 4096, clear errors."""

import itertools
import math
from fractions import Fraction

import pytest

from entrostat.eval import default_ks, parse_ks, pass_at_k, pass_at_k_many


def brute_pass_at_k(n: int, c: int, k: int) -> Fraction:
    """Fraction of k-subsets of n samples (the first c correct) that hold a correct sample."""
    subsets = list(itertools.combinations(range(n), k))
    return Fraction(sum(1 for s in subsets if any(i < c for i in s)), len(subsets))


def test_equals_brute_force_for_all_small_cases():
    for n in range(1, 13):
        for c in range(n + 1):
            for k in range(n + 1):  # k = 0 included
                assert pass_at_k(n, c, k) == pytest.approx(float(brute_pass_at_k(n, c, k)), abs=1e-12), (n, c, k)


def test_edge_values():
    assert pass_at_k(10, 0, 5) == 0.0
    assert pass_at_k(10, 10, 1) == 1.0
    assert pass_at_k(10, 3, 1) == pytest.approx(0.3)
    assert pass_at_k(10, 3, 8) == 1.0  # only 7 wrong samples: every 8-subset has a correct one
    assert pass_at_k(5, 2, 0) == 0.0


def test_large_n_finite_monotone_and_exact():
    n = 4096
    for c in (0, 1, 7, 100, 2048, 4095, 4096):
        values = [pass_at_k(n, c, k) for k in (1, 2, 8, 64, 512, 2048, 4096)]
        assert all(math.isfinite(v) and 0.0 <= v <= 1.0 for v in values)
        assert values == sorted(values), c  # non-decreasing in k
    for c in (1, 3, 100, 2048, 4000):
        every_k = [pass_at_k(n, c, k) for k in range(1, n + 1)]
        assert all(math.isfinite(v) for v in every_k)
        assert all(a <= b for a, b in zip(every_k, every_k[1:])), c  # every k, not only powers of two
        assert every_k[-1] == 1.0 and every_k[0] == pytest.approx(c / n)
    for k in (1, 64, 1000):
        by_c = [pass_at_k(n, c, k) for c in range(0, n + 1, 128)]
        assert by_c == sorted(by_c), k  # non-decreasing in c
    for c, k in ((1, 1), (10, 100), (3, 4000), (500, 64)):
        exact = 1 - math.comb(n - c, k) / math.comb(n, k)  # big-int division is correctly rounded
        assert pass_at_k(n, c, k) == pytest.approx(exact, rel=1e-12, abs=1e-15)


@pytest.mark.parametrize(
    "n, c, k, match",
    [(4, 1, 5, "k = 5 exceeds n = 4"), (4, 5, 1, "exceeds n"), (-1, 0, 0, "n must be >= 0"),
     (4, -1, 1, "c must be >= 0"), (4, 1, -2, "k must be >= 0"), (4, 1.5, 1, "integer")],
)
def test_errors(n, c, k, match):
    with pytest.raises(ValueError, match=match):
        pass_at_k(n, c, k)


def test_many_averages_over_prompts():
    out = pass_at_k_many([0, 2, 4], n=4, ks=[1, 2, 4])
    assert out[1] == pytest.approx((0 + 0.5 + 1) / 3)
    assert out[2] == pytest.approx((0 + 5 / 6 + 1) / 3)
    assert out[4] == pytest.approx(2 / 3)
    with pytest.raises(ValueError, match="empty"):
        pass_at_k_many([], n=4, ks=[1])
    with pytest.raises(ValueError, match="exceeds n"):
        pass_at_k_many([1], n=4, ks=[8])


def test_parse_ks_any_positive_integers_up_to_n():
    assert parse_ks("1,2,4,8", 8) == [1, 2, 4, 8]
    assert parse_ks(" 10, 3 ,3,1000,1", 1000) == [1, 3, 10, 1000]  # sorted, duplicates dropped, not powers of two
    assert default_ks(1024) == [2**i for i in range(11)]
    assert default_ks(12) == [1, 2, 4, 8]
    assert default_ks(1) == [1]


@pytest.mark.parametrize(
    "text, n, match",
    [("1,2,16", 8, "k = 16 exceeds n = 8"), ("1,2.5", 8, "'2.5' is not an integer"), ("1,,2", 8, "'' is not"),
     ("0,1", 8, "k = 0 must be >= 1"), ("-2", 8, "must be >= 1"), ("", 8, "empty"), ("1,two", 8, "'two'")],
)
def test_parse_ks_errors(text, n, match):
    with pytest.raises(ValueError, match=match):
        parse_ks(text, n)
