"""All per-step diagnostics of a training batch as one ``diag/...`` record (the trainer's one call).

Keys (all floats):
  diag/entropy/{mean,p10,p50,p90,p99,high_frac}   token-entropy statistics (entropy_stats.py)
  diag/cov_pg, diag/cov_npg                        Cov(log π, π·A), Cov(log π, A) (covariance.py)
  diag/dH_pred_pg, diag/dH_pred_npg                −η·cov: the entropy change each form predicts for
                                                   this step's update (compare with entropy[k+1] −
                                                   entropy[k]: ``entropy_change.py``)
  diag/quadrant/<name>/{share,cov_contrib}         token quadrants (covariance.py)

η (``step_size``) is the learning rate times the number of optimizer steps taken on the
rollout (mini-batches × epochs): each mini-batch step moves the parameters by about one
full-batch gradient step. With AdamW the real step is not η·gradient, so ΔH_pred is in the
units of plain gradient ascent on the logits: its scale is not the measured one, its sign and
its ups and downs are what to compare (Pearson correlation, sign agreement).
"""

from __future__ import annotations

import torch

from entrostat.diagnostics.covariance import (
    HIGH_PROB,
    covariance_terms,
    predicted_entropy_change,
    quadrant_breakdown,
)
from entrostat.diagnostics.entropy_stats import HIGH_ENTROPY_NATS, token_entropy_stats


def policy_diagnostics(
    token_entropy: torch.Tensor,
    logprobs: torch.Tensor,
    advantages: torch.Tensor,
    mask: torch.Tensor,
    step_size: float,
    high_entropy: float = HIGH_ENTROPY_NATS,
    high_prob: float = HIGH_PROB,
) -> dict[str, float]:
    """The ``diag/...`` metrics of one step's batch before its update.

    token_entropy, logprobs (sampled tokens, T = 1, detached), mask: (B, T); advantages (B,) or
    (B, T). All values are computed as tensors and moved to the host in one transfer.
    """
    named: dict[str, torch.Tensor] = {}
    for k, v in token_entropy_stats(token_entropy, mask, high_entropy).items():
        named[f"diag/entropy/{k}"] = v
    for form, cov in covariance_terms(logprobs, advantages, mask).items():
        named[f"diag/cov_{form}"] = cov
        named[f"diag/dH_pred_{form}"] = predicted_entropy_change(cov, step_size)
    for quadrant, parts in quadrant_breakdown(logprobs, advantages, mask, high_prob).items():
        for k, v in parts.items():
            named[f"diag/quadrant/{quadrant}/{k}"] = v
    values = torch.stack([v.detach().float().reshape(()) for v in named.values()]).tolist()
    return dict(zip(named, values))
