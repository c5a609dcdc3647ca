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

# Positions per chunk. Two (chunk, V) fp32 work buffers are live: 128 × V=49152 × 4 B = 24 MiB each,
# small next to the (N, V) logits gradient itself (benchmarks/chunked_logprobs_memory.py).
DEFAULT_CHUNK = 128


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
# Shifted logits below this are exp() == 0 in fp32 and fp64; clamping to it keeps 0·(−inf) (banned
# tokens with −inf logits) out of the Σ p·z sums, which would otherwise turn the entropy into NaN.
_NEG_FLOOR = -1e4


def _compute_dtype(dtype: torch.dtype) -> torch.dtype:
    """fp32 for bf16 / fp16 / fp32 logits, fp64 for fp64 (so gradcheck in float64 is exact)."""
    return torch.promote_types(dtype, torch.float32)


class _ChunkedLogprobEntropy(torch.autograd.Function):
    """Forward: (log π(a), H) per position; backward recomputes the softmax chunk by chunk.

    Gradients (z = logits / T, p = softmax(z)):
      ∂logπ(a)/∂z = onehot(a) − p;   ∂H/∂z = −p ⊙ (log p + H).
    Per chunk of c positions it uses two reused (c, V) work buffers in the compute dtype and
    reads the caller's logits directly (bf16 → fp32 happens inside the first op); only the
    logits, labels and the per-position log-sum-exp / entropy are saved for backward.
    """

    @staticmethod
    def forward(ctx, logits, labels, temperature, chunk, want_entropy):  # logits (N, V), labels (N,)
        n, v = logits.shape
        cdt = _compute_dtype(logits.dtype)
        new = dict(dtype=cdt, device=logits.device)
        logp, lse = torch.empty(n, **new), torch.empty(n, **new)
        ent = torch.empty(n if want_entropy else 0, **new)
        c = min(chunk, n)
        buf_q, buf_e = torch.empty(c, v, **new), torch.empty(c, v, **new)  # reused by every chunk
        for s in range(0, n, chunk):
            x = logits[s : s + chunk]
            k = x.shape[0]
            q = buf_q[:k]  # (k, V): z − max(z); max(x / T) = max(x) / T for T > 0
            if x.dtype == cdt:
                m = x.amax(-1, keepdim=True)  # (k, 1)
                torch.sub(x, m, out=q)
            else:  # upcast into the buffer first: a mixed-dtype op would allocate a hidden fp32 copy
                q.copy_(x)
                m = q.amax(-1, keepdim=True)
                q.sub_(m)
            if temperature != 1.0:
                q.div_(temperature)
            q_label = q.gather(-1, labels[s : s + chunk, None]).squeeze(-1)
            if want_entropy:
                q.clamp_(min=_NEG_FLOOR)
            e = torch.exp(q, out=buf_e[:k])
            total = e.sum(-1)  # (k,)
            log_total = total.log()
            logp[s : s + chunk] = q_label - log_total
            lse[s : s + chunk] = m.squeeze(-1) / temperature + log_total
            if want_entropy:
                # H = log Σe − Σ e·q / Σe  (q = z − max z); the dot product needs no (k, V) temporary.
                dot = torch.bmm(e.unsqueeze(1), q.unsqueeze(2)).view(k)
                ent[s : s + chunk] = log_total - dot / total
        ctx.save_for_backward(logits, labels, lse, ent)
        ctx.temperature, ctx.chunk, ctx.want_entropy = temperature, chunk, want_entropy
        return logp, ent

    @staticmethod
    def backward(ctx, g_logp, g_ent):
        logits, labels, lse, ent = ctx.saved_tensors
        t, chunk = ctx.temperature, ctx.chunk
        n, v = logits.shape
        cdt = lse.dtype
        use_ent = ctx.want_entropy and g_ent is not None
        grad = torch.empty_like(logits)
        buf_w = torch.empty(min(chunk, n), v, dtype=cdt, device=logits.device)
        buf_p = torch.empty(min(chunk, n), v, dtype=cdt, device=logits.device) if use_ent else None
        for s in range(0, n, chunk):
            x = logits[s : s + chunk]
            k = x.shape[0]
            # 1/T of dz/dlogits folded into the per-position upstream gradients
            gl = (g_logp[s : s + chunk].to(cdt) if g_logp is not None else torch.zeros(k, dtype=cdt, device=x.device)) / t
            w = buf_w[:k]  # log p = x / T − lse, (k, V)
            if x.dtype == cdt:
                torch.add(-lse[s : s + chunk, None], x, alpha=1.0 / t, out=w)
            else:  # upcast into the buffer (no hidden mixed-dtype copy), then in place
                w.copy_(x)
                if t != 1.0:
                    w.div_(t)
                w.sub_(lse[s : s + chunk, None])
            if use_ent:
                ge = g_ent[s : s + chunk].to(cdt) / t
                w.clamp_(min=_NEG_FLOOR)
                p = torch.exp(w, out=buf_p[:k])
                # gz = p ⊙ (−gl − ge·(log p + H)) + onehot(a)·gl
                w.mul_(-ge[:, None]).add_((-gl - ge * ent[s : s + chunk])[:, None]).mul_(p)
            else:
                w.exp_().mul_(-gl[:, None])  # gz = −gl·p + onehot(a)·gl
            w.scatter_add_(-1, labels[s : s + chunk, None], gl[:, None])
            grad[s : s + chunk].copy_(w)
        return grad, None, None, None, None


def _flatten(logits: torch.Tensor, labels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    if logits.shape[:-1] != labels.shape:
        raise ValueError(
            f"logits have shape {tuple(logits.shape)} and labels {tuple(labels.shape)}; "
            "expected logits (..., V) with labels (...) of the same leading shape"
        )
    return logits.reshape(-1, logits.shape[-1]), labels.reshape(-1).long()


def _check_args(temperature: float, chunk: int) -> None:
    if not temperature > 0:
        raise ValueError(f"temperature must be > 0, got {temperature}")
    if not int(chunk) >= 1:
        raise ValueError(f"chunk must be a positive number of positions, got {chunk}")


def logprobs_and_entropy(
    logits: torch.Tensor, labels: torch.Tensor, temperature: float = 1.0, chunk: int = DEFAULT_CHUNK
) -> tuple[torch.Tensor, torch.Tensor]:
    """(log π(label), exact token entropy), both fp32 (fp64 for fp64 logits) with the labels' shape, differentiable.

    logits (..., V) any float dtype; labels (...) int. One pass over the logits for both.
    """
    _check_args(temperature, chunk)
    flat, lab = _flatten(logits, labels)
    logp, ent = _ChunkedLogprobEntropy.apply(flat, lab, float(temperature), int(chunk), True)
    return logp.view(labels.shape), ent.view(labels.shape)


def logprobs_from_logits(
    logits: torch.Tensor, labels: torch.Tensor, temperature: float = 1.0, chunk: int = DEFAULT_CHUNK
) -> torch.Tensor:
    """log softmax(logits / temperature) at ``labels``; fp32 (fp64 for fp64 logits), shape of ``labels``; chunked."""
    _check_args(temperature, chunk)
    flat, lab = _flatten(logits, labels)
    logp, _ = _ChunkedLogprobEntropy.apply(flat, lab, float(temperature), int(chunk), False)
    return logp.view(labels.shape)


def token_entropy_from_logits(logits: torch.Tensor, temperature: float = 1.0, chunk: int = DEFAULT_CHUNK) -> torch.Tensor:
    """Exact entropy of softmax(logits / temperature) per position; fp32 (fp64 for fp64 logits), shape logits.shape[:-1]."""
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
