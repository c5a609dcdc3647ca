"""Token-entropy statistics of one step's batch: mean, percentiles, share of high-entropy tokens.

The high-entropy threshold is a fixed number of nats, not a batch quantile: a batch
quantile (the 80/20 paper's top-20% selection, ``losses.top_entropy_select``) would make
the share 20% by construction and say nothing about how the distribution moves. The
default, 0.672 nats, is the 80th percentile of Qwen3-8B chain-of-thought token entropy
reported by Wang et al. (2506.01939, "Beyond the 80/20 rule"): a token above it is a
"forking" token by that paper's convention. It is a property of that model, not of
ours; on a tiny model with a small vocabulary read the share as a trend, not an
absolute. A fair two-way choice has entropy ln 2 = 0.693 nats, so the threshold is
close to "at least two plausible next tokens".
"""

from __future__ import annotations

import torch

from entrostat.ops import masked_mean

HIGH_ENTROPY_NATS = 0.672  # 80th percentile of Qwen3-8B CoT token entropy (2506.01939)
PERCENTILES = (10, 50, 90, 99)


def masked_quantiles(values: torch.Tensor, mask: torch.Tensor, qs: tuple[float, ...]) -> torch.Tensor:
    """Quantiles ``qs`` (each in [0, 1]) of the entries of ``values`` where ``mask`` is set, (len(qs),).

    Linear interpolation between order statistics (numpy's default ``linear`` method). One sort
    of the valid entries, so any batch size works (``torch.quantile`` refuses inputs over 2^24).
    Zeros when the mask is empty.
    """
    if values.shape != mask.shape:
        raise ValueError(f"values {tuple(values.shape)} and mask {tuple(mask.shape)} must have the same shape")
    q = torch.tensor(qs, dtype=torch.float64, device=values.device)
    if bool(((q < 0) | (q > 1)).any()):
        raise ValueError(f"quantiles must lie in [0, 1], got {qs}")
    v = values.detach().float()[mask.bool()]
    if v.numel() == 0:
        return torch.zeros(len(qs), dtype=torch.float32, device=values.device)
    v = v.sort().values
    pos = q * (v.numel() - 1)  # fractional index into the sorted values
    lo = pos.floor().long()
    hi = pos.ceil().long()
    w = (pos - lo).float()
    return v[lo] * (1 - w) + v[hi] * w


def token_entropy_stats(
    token_entropy: torch.Tensor,
    mask: torch.Tensor,
    high_threshold: float = HIGH_ENTROPY_NATS,
    percentiles: tuple[int, ...] = PERCENTILES,
) -> dict[str, torch.Tensor]:
    """Mean, percentiles and high-entropy share of exact token entropy H_t over the valid tokens.

    token_entropy, mask: (B, T). Returns 0-d tensors: ``mean`` (equals the step metric
    ``entropy``), ``p<k>`` for each k in ``percentiles``, and ``high_frac``, the share of valid
    tokens with H_t > ``high_threshold`` nats (see the module docstring for the default).
    """
    m = mask.bool()
    h = token_entropy.detach().float()
    qs = masked_quantiles(h, m, tuple(p / 100 for p in percentiles))
    out = {"mean": masked_mean(h, m)}
    out.update({f"p{p}": qs[i] for i, p in enumerate(percentiles)})
    out["high_frac"] = masked_mean((h > high_threshold).float(), m)
    return out
