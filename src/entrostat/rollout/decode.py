"""The cached decoding loop shared by ``sample_completions`` and ``sample_groups``.

From a prefilled state (last logits, KV cache, prompt attention mask, next
positions) it samples one token per row per step (``sampling.sample_step``) and
feeds it back, until every row has emitted EOS or ``max_new_tokens`` tokens are
drawn. Outputs, the attention mask and the positions live in tensors allocated
once; the mask handed to the model each step is a prefix view, not a new
``torch.cat``.

Finished rows leave the batch (and the cache). With a ``kv_cache.GrowingLayer``
cache, leaving costs a copy of the kept rows' cached prefix, so rows are dropped
when it pays: once ``finished × steps_left ≥ rows in the batch`` — the wasted
row-steps of keeping them exceed about one decoding step, which bounds what a
compaction costs (it moves the cache once; a step reads it once and does the
matmuls). Until then a finished row decodes on unseen: its tokens are never
written and its extra draws do not change any other row's distribution. With an
HF ``DynamicCache`` (which copies the whole cache every step anyway) rows leave
at once.
"""

from __future__ import annotations

import torch
from torch import Tensor

from entrostat.rollout.kv_cache import cache_kwargs, is_growing
from entrostat.rollout.sampling import sample_step


def _should_compact(finished: int, batch_rows: int, steps_left: int, lazy: bool) -> bool:
    """Drop the ``finished`` rows of a batch of ``batch_rows`` now? (see the module docstring)"""
    if not finished or not steps_left:
        return False
    return not lazy or finished * steps_left >= batch_rows


@torch.no_grad()
def decode(
    model, logits: Tensor, cache, attn: Tensor, next_pos: Tensor, temperature: Tensor, *, max_new_tokens: int,
    eos_token_id: int, pad_token_id: int, generator: torch.Generator | None = None, top_p: float = 1.0,
) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """Decode B rows from a prefilled state.

    logits (B, V) at the last prompt position; ``cache`` holds the B rows' prompts;
    attn (B, T_prompt) long prompt mask (left padding 0); next_pos (B, 1) position of
    the first new token; temperature (B,) (<= 0: greedy). Returns ``completion_ids``
    (B, T) right-padded with ``pad_token_id``, ``completion_mask`` (B, T) float (1 up
    to and including EOS), ``sampler_logprobs`` (B, T) (0 where masked) and
    ``is_truncated`` (B,) bool (no EOS within ``max_new_tokens``); T = steps decoded.
    """
    bsz, device = logits.shape[0], logits.device
    ids = torch.full((bsz, max_new_tokens), pad_token_id, dtype=torch.long, device=device)  # (B, T_max)
    mask = torch.zeros((bsz, max_new_tokens), device=device)  # (B, T_max)
    logps = torch.zeros((bsz, max_new_tokens), device=device)  # (B, T_max)
    t_prompt = attn.shape[1]
    attn_all = attn.new_ones(bsz, t_prompt + max_new_tokens)  # (B, T_prompt + T_max): new positions are real
    attn_all[:, :t_prompt] = attn
    rows = torch.arange(bsz, device=device)  # output row of each batch row
    live = torch.ones(bsz, dtype=torch.bool, device=device)  # batch rows that have not emitted EOS
    lazy, steps = is_growing(cache), 0
    cache_kw = cache_kwargs(model, cache)  # the same cache object all along (rows leave it in place)
    for step in range(max_new_tokens):
        tok, lp = sample_step(logits, temperature, generator, top_p)  # (B_batch,)
        out_rows = rows[live]
        ids[out_rows, step], mask[out_rows, step], logps[out_rows, step] = tok[live], 1.0, lp[live]
        live = live & (tok != eos_token_id)
        steps = step + 1
        n_live = int(live.sum())
        if n_live == 0 or steps == max_new_tokens:
            break
        if _should_compact(live.numel() - n_live, live.numel(), max_new_tokens - steps, lazy):
            keep = live.nonzero().squeeze(-1)
            cache.batch_select_indices(keep)
            rows, tok, live, attn_all = rows[keep], tok[keep], live[keep], attn_all[keep]
            next_pos, temperature = next_pos[keep], temperature[keep]
        out = model(input_ids=tok[:, None], attention_mask=attn_all[:, : t_prompt + steps], position_ids=next_pos,
                    use_cache=True, **cache_kw)
        logits = out.logits[:, -1, :]
        next_pos = next_pos + 1
    truncated = torch.zeros(bsz, dtype=torch.bool, device=device)
    truncated[rows[live]] = True
    return ids[:, :steps], mask[:, :steps], logps[:, :steps], truncated
