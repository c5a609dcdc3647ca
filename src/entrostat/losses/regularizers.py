"""Regularisers (ALGORITHMS.md §1.5): per-token terms aggregated like the policy loss.

The entropy bonus −c·aggregate(H_t) is composed in ``objective.py``; here are the
per-token KL estimators to a frozen reference model (Schulman, "Approximating KL
divergence", 2020), with δ = logπ_ref − logπ_θ:
k1 = −δ,  k2 = ½·δ²,  k3 = exp(δ) − δ − 1 (unbiased, non-negative, low variance).
"""

from __future__ import annotations

from typing import Callable

import torch

from entrostat.registry import Registry

KLFn = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]
KL_ESTIMATORS: Registry[KLFn] = Registry("KL estimator")
KL_LOG_RATIO_CLAMP = 20.0


def _delta(logprobs: torch.Tensor, ref_logprobs: torch.Tensor) -> torch.Tensor:
    if logprobs.shape != ref_logprobs.shape:
        raise ValueError(
            f"ref_logprobs has shape {tuple(ref_logprobs.shape)} but logprobs {tuple(logprobs.shape)}; they must match"
        )
    return (ref_logprobs.detach() - logprobs).clamp(-KL_LOG_RATIO_CLAMP, KL_LOG_RATIO_CLAMP)


@KL_ESTIMATORS.register("k1")
def kl_k1(logprobs: torch.Tensor, ref_logprobs: torch.Tensor) -> torch.Tensor:
    """k1 = logπ_θ − logπ_ref (B, T)."""
    return -_delta(logprobs, ref_logprobs)


@KL_ESTIMATORS.register("k2")
def kl_k2(logprobs: torch.Tensor, ref_logprobs: torch.Tensor) -> torch.Tensor:
    """k2 = ½(logπ_θ − logπ_ref)² (B, T)."""
    return 0.5 * _delta(logprobs, ref_logprobs) ** 2


@KL_ESTIMATORS.register("k3")
def kl_k3(logprobs: torch.Tensor, ref_logprobs: torch.Tensor) -> torch.Tensor:
    """k3 = exp(δ) − δ − 1 with δ = logπ_ref − logπ_θ (B, T)."""
    d = _delta(logprobs, ref_logprobs)
    return torch.expm1(d) - d
