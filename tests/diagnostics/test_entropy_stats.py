"""Token-entropy statistics of a batch: hand-computed quantiles, mean and high-entropy share."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from entrostat.diagnostics import (
    HIGH_ENTROPY_NATS,
    masked_quantiles,
    token_entropy_stats,
)


def test_hand_computed_stats_ignore_masked_tokens():
    h = torch.tensor([[0.1, 0.2, 0.3], [0.4, 0.5, 9.0]])
    mask = torch.tensor([[1, 1, 1], [1, 1, 0]])
    s = token_entropy_stats(h, mask, high_threshold=0.35)
    # sorted valid values 0.1..0.5; the q-quantile sits at index q·4 with linear interpolation
    expected = {"mean": 0.3, "p10": 0.14, "p50": 0.3, "p90": 0.46, "p99": 0.496, "high_frac": 0.4}
    assert {k: round(float(v), 6) for k, v in s.items()} == expected


def test_default_threshold_is_the_80_20_papers_value():
    assert HIGH_ENTROPY_NATS == 0.672
    h = torch.tensor([[0.671, 0.673, 2.0, 0.0]])
    assert float(token_entropy_stats(h, torch.ones(1, 4))["high_frac"]) == pytest.approx(0.5)


def test_quantiles_match_numpy_linear_percentiles():
    g = torch.Generator().manual_seed(0)
    h = torch.rand(7, 11, generator=g) * 3
    mask = torch.rand(7, 11, generator=g) > 0.3
    qs = (0.0, 0.1, 0.5, 0.9, 0.99, 1.0)
    ours = masked_quantiles(h, mask, qs).numpy()
    ref = np.quantile(h[mask].numpy(), qs)  # numpy's default method is 'linear'
    np.testing.assert_allclose(ours, ref, rtol=1e-6)


def test_empty_mask_gives_zeros_not_nan():
    s = token_entropy_stats(torch.rand(2, 3), torch.zeros(2, 3))
    assert all(float(v) == 0.0 for v in s.values())


def test_bad_inputs_raise_with_the_shapes():
    with pytest.raises(ValueError, match="same shape"):
        masked_quantiles(torch.rand(2, 3), torch.ones(3, 2), (0.5,))
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        masked_quantiles(torch.rand(2, 3), torch.ones(2, 3), (50,))
