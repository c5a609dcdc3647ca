"""Masked reductions and memory-lean log-prob / token-entropy computation.

``logprobs_from_logits`` and ``token_entropy_from_logits`` work through the
(B·T) positions in chunks with a custom autograd function that recomputes the
softmax in backward, so the extra memory is O(chunk·V) in fp32 instead of the
O(B·T·V) fp32 copies a naive ``log_softmax`` keeps for backward. bf16 / fp16
logits are accumulated in fp32. Entropy is exact (ALGORITHMS.md glossary):
H_t = logsumexp(z) − Σ softmax(z)·z, with z = logits / temperature.
"""

from __future__ import annotations

import torch

DEFAULT_CHUNK = 1024  # positions per chunk: 1024 × V=49152 × 4 B ≈ 200 MB transient


# ---------------------------------------------------------------- masked reductions
def _check_mask(values: torch.Tensor, mask: torch.Tensor) -> None:
    if values.shape != mask.shape:
        raise ValueError(f"mask has shape {tuple(mask.shape)} but values have shape {tuple(values.shape)}; they must match")


def masked_sum(values: torch.Tensor, mask: torch.Tensor, dim: int | None = None) -> torch.Tensor:
    """Σ values·mask (over ``dim`` or everything). Masked-out NaNs do not leak."""
    _check_mask(values, mask)
    v = torch.where(mask.bool(), values, torch.zeros((), dtype=values.dtype, device=values.device))
    return v.sum() if dim is None else v.sum(dim)


def masked_mean(values: torch.Tensor, mask: torch.Tensor, dim: int | None = None) -> torch.Tensor:
    """Σ values·mask / Σ mask; 0 where the mask is empty (never NaN)."""
    total = masked_sum(values, mask, dim)
    count = mask.to(total.dtype).sum() if dim is None else mask.to(total.dtype).sum(dim)
    return total / count.clamp(min=1)


def masked_var(values: torch.Tensor, mask: torch.Tensor, unbiased: bool = True) -> torch.Tensor:
    """Variance of the masked entries (Bessel-corrected when ``unbiased``); 0 with fewer than 2 entries."""
    mean = masked_mean(values, mask)
    n = mask.to(values.dtype).sum()
    sq = masked_sum((values - mean) ** 2, mask)
    denom = (n - 1) if unbiased else n
    return torch.where(denom > 0, sq / denom.clamp(min=1), torch.zeros_like(sq))


def masked_whiten(values: torch.Tensor, mask: torch.Tensor, shift_mean: bool = True, eps: float = 1e-8) -> torch.Tensor:
    """(values − mean) / sqrt(var + eps) over masked entries; masked-out entries are returned as 0."""
    mean = masked_mean(values, mask)
    out = (values - mean) * torch.rsqrt(masked_var(values, mask) + eps)
    if not shift_mean:
        out = out + mean
    return torch.where(mask.bool(), out, torch.zeros_like(out))


# ---------------------------------------------------------------- chunked log-probs / entropy
def _scaled(z: torch.Tensor, temperature: float) -> torch.Tensor:
    z = z.float()
    return z if temperature == 1.0 else z / temperature


class _ChunkedLogprobEntropy(torch.autograd.Function):
    """Forward: (log π(a), H) per position; backward recomputes the softmax chunk by chunk.

    Gradients (z = logits / T, p = softmax(z)):
      ∂logπ(a)/∂z = onehot(a) − p;   ∂H/∂z = −p ⊙ (log p + H).
    """

    @staticmethod
    def forward(ctx, logits, labels, temperature, chunk, want_entropy):  # logits (N, V), labels (N,)
        n = logits.shape[0]
        logp = torch.empty(n, dtype=torch.float32, device=logits.device)
        ent = torch.empty(n if want_entropy else 0, dtype=torch.float32, device=logits.device)
        for s in range(0, n, chunk):
            z = _scaled(logits[s : s + chunk], temperature)  # (c, V) fp32
            lse = torch.logsumexp(z, dim=-1)
            logp[s : s + chunk] = z.gather(-1, labels[s : s + chunk, None]).squeeze(-1) - lse
            if want_entropy:
                ent[s : s + chunk] = lse - (torch.softmax(z, dim=-1) * z).sum(-1)
        ctx.save_for_backward(logits, labels, ent)
        ctx.temperature, ctx.chunk, ctx.want_entropy = temperature, chunk, want_entropy
        return logp, ent

    @staticmethod
    def backward(ctx, g_logp, g_ent):
        logits, labels, ent = ctx.saved_tensors
        t, chunk = ctx.temperature, ctx.chunk
        grad = torch.empty_like(logits)
        for s in range(0, logits.shape[0], chunk):
            z = _scaled(logits[s : s + chunk], t)
            logp_all = torch.log_softmax(z, dim=-1)  # (c, V)
            p = logp_all.exp()
            gl = g_logp[s : s + chunk, None].float() if g_logp is not None else None
            gz = -p * gl if gl is not None else torch.zeros_like(p)
            if gl is not None:
                gz.scatter_add_(-1, labels[s : s + chunk, None], gl)
            if ctx.want_entropy and g_ent is not None:
                h = ent[s : s + chunk, None]
                gz -= g_ent[s : s + chunk, None].float() * p * (logp_all + h)
            grad[s : s + chunk] = (gz / t).to(grad.dtype)
        return grad, None, None, None, None


def _flatten(logits: torch.Tensor, labels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    if logits.shape[:-1] != labels.shape:
        raise ValueError(
            f"logits have shape {tuple(logits.shape)} and labels {tuple(labels.shape)}; "
            "expected logits (..., V) with labels (...) of the same leading shape"
        )
    return logits.reshape(-1, logits.shape[-1]), labels.reshape(-1).long()


def _check_temperature(temperature: float) -> None:
    if not temperature > 0:
        raise ValueError(f"temperature must be > 0, got {temperature}")


def logprobs_and_entropy(
    logits: torch.Tensor, labels: torch.Tensor, temperature: float = 1.0, chunk: int = DEFAULT_CHUNK
) -> tuple[torch.Tensor, torch.Tensor]:
    """(log π(label), exact token entropy), both fp32 with the labels' shape, differentiable.

    logits (..., V) any float dtype; labels (...) int. One pass over the logits for both.
    """
    _check_temperature(temperature)
    flat, lab = _flatten(logits, labels)
    logp, ent = _ChunkedLogprobEntropy.apply(flat, lab, float(temperature), int(chunk), True)
    return logp.view(labels.shape), ent.view(labels.shape)


def logprobs_from_logits(
    logits: torch.Tensor, labels: torch.Tensor, temperature: float = 1.0, chunk: int = DEFAULT_CHUNK
) -> torch.Tensor:
    """log softmax(logits / temperature) at ``labels``; fp32, shape of ``labels``; chunked (see module doc)."""
    _check_temperature(temperature)
    flat, lab = _flatten(logits, labels)
    logp, _ = _ChunkedLogprobEntropy.apply(flat, lab, float(temperature), int(chunk), False)
    return logp.view(labels.shape)


def token_entropy_from_logits(logits: torch.Tensor, temperature: float = 1.0, chunk: int = DEFAULT_CHUNK) -> torch.Tensor:
    """Exact entropy of softmax(logits / temperature) per position; fp32, shape logits.shape[:-1]."""
    labels = torch.zeros(logits.shape[:-1], dtype=torch.long, device=logits.device)
    return logprobs_and_entropy(logits, labels, temperature, chunk)[1]


def check_finite(name: str, tensor: torch.Tensor, mask: torch.Tensor | None = None) -> None:
    """Raise ValueError naming ``name`` if it holds NaN or inf (only where ``mask`` is set, if given)."""
    bad = ~torch.isfinite(tensor)
    if mask is not None:
        bad = bad & mask.bool()
    if bool(bad.any()):
        n = int(bad.sum())
        raise ValueError(f"{name} contains {n} non-finite value(s) (NaN or inf); check the model outputs / inputs")
