"""Drawing one token per row from softmax(logits / T_row), with its exact log-prob.

``sample_step`` is the sampler of every HF decoding loop in ``rollout``. It draws
by inversion of the CDF with ONE uniform per row, in two levels: a block of
``BLOCK`` consecutive vocabulary ids is chosen from the block masses, then a
token inside the block. ``torch.multinomial`` draws one exponential per
vocabulary entry (B × V random numbers per step), which on a CPU costs more than
the softmax itself (measured, 1 CPU thread, 64 rows × 49152 ids: ~97 ms per step
with multinomial, ~85 ms of it the exponentials; ~8 ms with this sampler, which
works in place); inversion needs B.

Accuracy: the unnormalised probabilities ``exp(z − max z)`` are fp32 (as in a
softmax); block masses are fp32 sums of 256 values, and both cumulative sums are
fp64, so a token's sampling probability is its fp32 softmax probability up to a
relative error of ~1e-6 — unlike a single fp32 cumsum over the whole vocabulary,
whose rounding (one ulp of the running sum, ~6e-8 absolute per token) silently
drops or inflates tokens whose probability is below ~1e-7. The draws differ from
``torch.multinomial``'s for the same generator; the distribution does not.
A token of zero probability (e.g. outside a top-p nucleus) is never drawn.

Optional nucleus sampling (``top_p`` < 1, Holtzman et al. 1904.09751) keeps the
most probable tokens whose cumulative probability first reaches ``top_p``
(always at least one) and renormalises; ``top_p = 1`` skips it entirely.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

BLOCK = 256  # vocabulary ids per block of the two-level inversion


def top_p_logprobs(logp: Tensor, top_p: float) -> Tensor:
    """Log-probs (B, V) renormalised over each row's nucleus: the most probable tokens whose
    cumulative probability first reaches ``top_p`` (the token that crosses it included); -inf elsewhere."""
    sorted_logp, order = logp.sort(dim=-1, descending=True)  # (B, V)
    before = sorted_logp.exp().cumsum(-1) - sorted_logp.exp()  # (B, V) mass of strictly more probable tokens
    keep_sorted = before < top_p
    keep_sorted[:, 0] = True
    keep = torch.zeros_like(keep_sorted).scatter(-1, order, keep_sorted)  # (B, V)
    return torch.log_softmax(logp.masked_fill(~keep, float("-inf")), dim=-1)


def sample_categorical_(z: Tensor, generator: torch.Generator | None) -> tuple[Tensor, Tensor]:
    """One draw per row from softmax(z) by two-level CDF inversion (one fp64 uniform per row).

    z (B, V) float32 unnormalised log-probs (-inf allowed, at least one finite per row); it is
    overwritten (with exp(z − max z)): big temporaries cost page faults on a CPU, so the
    sampler works in place. Returns tokens (B,) long and log softmax(z) at them (B,) float32.
    """
    bsz, vocab = z.shape
    top = z.amax(-1, keepdim=True)  # (B, 1)
    e = z.sub_(top).exp_()  # (B, V), max entry 1
    if vocab % BLOCK:
        e = F.pad(e, (0, BLOCK - vocab % BLOCK))  # zero mass: never drawn
    blocks = e.view(bsz, -1, BLOCK)  # (B, NB, BLOCK)
    mass = blocks.sum(-1).double()  # (B, NB)
    cdf = mass.cumsum(-1)  # (B, NB)
    total = cdf[:, -1:]  # (B, 1) ≥ 1
    u = torch.rand((bsz, 1), generator=generator, dtype=torch.float64, device=z.device) * total
    u = torch.minimum(u, total * (1 - 1e-12))  # strictly inside: the first block with cdf > u has mass
    b = torch.searchsorted(cdf, u, right=True).clamp_(max=cdf.shape[1] - 1)  # (B, 1) block index
    inner = blocks.gather(1, b[:, :, None].expand(bsz, 1, BLOCK)).squeeze(1).double().cumsum(-1)  # (B, BLOCK)
    # position inside the block, rescaled from the block's fp32 mass to its fp64 cumsum
    r = (u - (cdf.gather(-1, b) - mass.gather(-1, b))) / mass.gather(-1, b) * inner[:, -1:]
    r = r.clamp(min=0.0).minimum(inner[:, -1:] * (1 - 1e-12))
    t = torch.searchsorted(inner, r, right=True).clamp_(max=BLOCK - 1)  # (B, 1)
    tokens = b * BLOCK + t  # (B, 1)
    # log e_tok = z_tok − max z to an fp32 ulp; e_tok > 0 for any token drawn
    logp = e.gather(-1, tokens).log() - total.log().float()  # (B, 1)
    return tokens.squeeze(-1), logp.squeeze(-1)


def sample_step(
    logits: Tensor, temperature: Tensor, generator: torch.Generator | None, top_p: float = 1.0
) -> tuple[Tensor, Tensor]:
    """Sample one token per row from softmax(logits / T_row) (its top-p nucleus when top_p < 1);
    rows with T <= 0 take the argmax.

    logits (B, V) any float dtype, temperature (B,). Returns tokens (B,) and their
    log-prob under the distribution sampled from (B,) float32, which is 0 for greedy
    rows. Every row consumes one uniform from ``generator``, greedy rows included.
    """
    greedy = temperature <= 0  # (B,)
    safe_t = torch.where(greedy, torch.ones_like(temperature), temperature)
    z = logits.float() / safe_t[:, None]  # (B, V), a fresh buffer: sample_categorical_ overwrites it
    if top_p < 1.0:
        z = top_p_logprobs(torch.log_softmax(z, dim=-1), top_p)
    tokens, token_logp = sample_categorical_(z, generator)  # overwrites z
    if bool(greedy.any()):
        tokens = torch.where(greedy, logits.argmax(dim=-1), tokens)
        token_logp = torch.where(greedy, torch.zeros_like(token_logp), token_logp)
    return tokens, token_logp
