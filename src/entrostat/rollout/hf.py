"""Sampling completions from any transformers causal LM with its KV cache.

``sample_completions`` draws one completion per row of a left-padded prompt
batch: a prefill pass over the prompts, then one cached decoding step per new
token, multinomial sampling from softmax(logits / temperature_row) with an
optional ``torch.Generator`` (deterministic for a fixed seed on CPU). Position
ids count only real prompt tokens, so a left-padded row sees the same positions
as the same prompt alone. Rows that emitted EOS keep decoding pad tokens until
every row is done or ``max_new_tokens`` is reached; their later tokens are
masked out and replaced by ``pad_token_id``.

``sample_groups`` draws G completions of each prompt for evaluation with large
G: one prefill per distinct prompt (its KV cache repeated G times) and rows
leave the batch as soon as they emit EOS. Same distribution as
``sample_completions`` on the repeated prompts, not the same draws (the batch
shapes differ, hence rounding and the generator's consumption).

Optional nucleus sampling (``top_p`` < 1, Holtzman et al. 1904.09751) keeps the
most probable tokens whose cumulative probability first reaches ``top_p``
(always at least one) and renormalises; ``top_p = 1`` skips it entirely.
"""

from __future__ import annotations

import inspect
from typing import Sequence

import torch
from torch import Tensor


def tokenize_prompts(tokenizer, texts: Sequence[str]) -> tuple[Tensor, Tensor]:
    """Token ids and attention mask of ``texts``, left-padded: ``(B, T_prompt)`` long tensors each."""
    enc = tokenizer(list(texts), padding=True, padding_side="left", return_tensors="pt")
    return enc["input_ids"].long(), enc["attention_mask"].long()


def _new_cache(model):
    """An empty DynamicCache for ``model`` (None lets the model make its own on older transformers)."""
    try:
        from transformers import DynamicCache

        return DynamicCache(config=model.config)
    except (ImportError, TypeError):
        return None


def _last_logits_kwargs(model) -> dict:
    """``logits_to_keep=1`` where the model's forward accepts it (skips the LM head on prompt positions)."""
    try:
        params = inspect.signature(model.forward).parameters
    except (TypeError, ValueError):
        return {}
    return {"logits_to_keep": 1} if "logits_to_keep" in params else {}


def top_p_logprobs(logp: Tensor, top_p: float) -> Tensor:
    """Log-probs (B, V) renormalised over each row's nucleus: the most probable tokens whose
    cumulative probability first reaches ``top_p`` (the token that crosses it included); -inf elsewhere."""
    sorted_logp, order = logp.sort(dim=-1, descending=True)  # (B, V)
    before = sorted_logp.exp().cumsum(-1) - sorted_logp.exp()  # (B, V) mass of strictly more probable tokens
    keep_sorted = before < top_p
    keep_sorted[:, 0] = True
    keep = torch.zeros_like(keep_sorted).scatter(-1, order, keep_sorted)  # (B, V)
    return torch.log_softmax(logp.masked_fill(~keep, float("-inf")), dim=-1)


def _sample_step(
    logits: Tensor, temperature: Tensor, generator: torch.Generator | None, top_p: float = 1.0
) -> tuple[Tensor, Tensor]:
    """Sample one token per row from softmax(logits / T_row) (its top-p nucleus when top_p < 1);
    rows with T <= 0 take the argmax.

    logits (B, V), temperature (B,). Returns tokens (B,) and their log-prob under
    the distribution sampled from (B,), which is 0 for greedy rows.
    """
    greedy = temperature <= 0  # (B,)
    safe_t = torch.where(greedy, torch.ones_like(temperature), temperature)
    logp = torch.log_softmax(logits.float() / safe_t[:, None], dim=-1)  # (B, V)
    if top_p < 1.0:
        logp = top_p_logprobs(logp, top_p)
    tokens = torch.multinomial(logp.exp(), 1, generator=generator).squeeze(-1)  # (B,)
    tokens = torch.where(greedy, logits.argmax(dim=-1), tokens)
    token_logp = logp.gather(-1, tokens[:, None]).squeeze(-1)  # (B,)
    return tokens, torch.where(greedy, torch.zeros_like(token_logp), token_logp)


def _check_args(max_new_tokens: int, top_p: float) -> None:
    if max_new_tokens < 1:
        raise ValueError(f"max_new_tokens must be >= 1, got {max_new_tokens}")
    if not 0.0 < top_p <= 1.0:
        raise ValueError(f"top_p must be in (0, 1], got {top_p}; 1 disables nucleus sampling")


def _prefill(model, prompt_ids: Tensor, prompt_mask: Tensor):
    """One forward over the prompts: (last logits (B, V), cache, attention mask (B, T_prompt), next position (B, 1))."""
    attn = prompt_mask.to(device=prompt_ids.device, dtype=torch.long)  # (B, T_prompt)
    positions = (attn.cumsum(-1) - 1).clamp(min=0)  # (B, T_prompt): real tokens count from 0
    out = model(input_ids=prompt_ids, attention_mask=attn, position_ids=positions,
                past_key_values=_new_cache(model), use_cache=True, **_last_logits_kwargs(model))
    return out.logits[:, -1, :], out.past_key_values, attn, positions[:, -1:] + 1


@torch.no_grad()
def sample_completions(
    model,
    prompt_ids: Tensor,
    prompt_mask: Tensor,
    *,
    temperature: Tensor,
    max_new_tokens: int,
    eos_token_id: int,
    pad_token_id: int,
    generator: torch.Generator | None = None,
    top_p: float = 1.0,
) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """Sample one completion per prompt row.

    prompt_ids, prompt_mask: (B, T_prompt), left-padded. temperature: (B,)
    per-row sampling temperature (<= 0 means greedy). Returns
    ``completion_ids`` (B, T) right-padded with ``pad_token_id``,
    ``completion_mask`` (B, T) float, 1 up to and including the EOS token,
    ``sampler_logprobs`` (B, T) log-prob of each sampled token under
    softmax(logits / temperature_row) (renormalised over the nucleus when
    ``top_p`` < 1; 0 where masked), and ``is_truncated``
    (B,) bool, True for rows that never emitted EOS. T is the number of steps
    actually decoded (at most ``max_new_tokens``).
    """
    _check_args(max_new_tokens, top_p)
    bsz = prompt_ids.shape[0]
    temperature = torch.as_tensor(temperature, dtype=torch.float32, device=prompt_ids.device).expand(bsz)
    was_training = model.training
    model.eval()
    try:
        logits, cache, attn, next_pos = _prefill(model, prompt_ids, prompt_mask)
        done = torch.zeros(bsz, dtype=torch.bool, device=prompt_ids.device)
        ids, masks, logps = [], [], []
        for step in range(max_new_tokens):
            tok, lp = _sample_step(logits, temperature, generator, top_p)
            alive = ~done
            ids.append(torch.where(alive, tok, torch.full_like(tok, pad_token_id)))
            masks.append(alive)
            logps.append(torch.where(alive, lp, torch.zeros_like(lp)))
            done = done | (alive & (tok == eos_token_id))
            if step == max_new_tokens - 1 or bool(done.all()):
                break
            attn = torch.cat([attn, attn.new_ones(bsz, 1)], dim=1)
            out = model(input_ids=ids[-1][:, None], attention_mask=attn, position_ids=next_pos,
                        past_key_values=cache, use_cache=True)
            logits, cache = out.logits[:, -1, :], out.past_key_values
            next_pos = next_pos + 1
    finally:
        model.train(was_training)
    completion_ids = torch.stack(ids, dim=1)  # (B, T)
    completion_mask = torch.stack(masks, dim=1).float()  # (B, T)
    sampler_logprobs = torch.stack(logps, dim=1)  # (B, T)
    return completion_ids, completion_mask, sampler_logprobs, ~done


@torch.no_grad()
def sample_groups(
    model,
    prompt_ids: Tensor,
    prompt_mask: Tensor,
    *,
    group_size: int,
    temperature: float,
    max_new_tokens: int,
    eos_token_id: int,
    pad_token_id: int,
    generator: torch.Generator | None = None,
    top_p: float = 1.0,
) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """``group_size`` completions of each of the P prompt rows, at one temperature (<= 0: greedy).

    prompt_ids, prompt_mask: (P, T_prompt), left-padded. Returns the tensors of
    ``sample_completions`` for B = P·G rows, rows p·G … p·G + G − 1 belonging to
    prompt p. The prompts are prefilled once and their KV cache repeated G times;
    a row leaves the batch (cache included) when it emits EOS. On a model whose
    cache cannot be repeated in place this falls back to ``sample_completions``
    on the repeated prompts.
    """
    _check_args(max_new_tokens, top_p)
    if group_size < 1:
        raise ValueError(f"group_size must be >= 1, got {group_size}")
    bsz = prompt_ids.shape[0] * group_size
    temp = torch.full((bsz,), float(temperature), dtype=torch.float32, device=prompt_ids.device)
    if not hasattr(_new_cache(model), "batch_select_indices"):
        return sample_completions(
            model, prompt_ids.repeat_interleave(group_size, 0), prompt_mask.repeat_interleave(group_size, 0),
            temperature=temp, max_new_tokens=max_new_tokens, eos_token_id=eos_token_id,
            pad_token_id=pad_token_id, generator=generator, top_p=top_p,
        )
    was_training = model.training
    model.eval()
    try:
        logits, cache, attn, next_pos = _prefill(model, prompt_ids, prompt_mask)
        cache.batch_repeat_interleave(group_size)
        logits, attn, next_pos = (x.repeat_interleave(group_size, 0) for x in (logits, attn, next_pos))
        return _decode_dropping_finished(model, logits, cache, attn, next_pos, temp, max_new_tokens=max_new_tokens,
                                         eos_token_id=eos_token_id, pad_token_id=pad_token_id,
                                         generator=generator, top_p=top_p)
    finally:
        model.train(was_training)


def _decode_dropping_finished(model, logits, cache, attn, next_pos, temperature, *, max_new_tokens, eos_token_id,
                              pad_token_id, generator, top_p) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """Decode from prefilled state; rows that emit EOS leave the batch (and the cache) at once."""
    bsz, device = logits.shape[0], logits.device
    ids = torch.full((bsz, max_new_tokens), pad_token_id, dtype=torch.long, device=device)  # (B, T_max)
    mask = torch.zeros((bsz, max_new_tokens), device=device)  # (B, T_max)
    logps = torch.zeros((bsz, max_new_tokens), device=device)  # (B, T_max)
    rows = torch.arange(bsz, device=device)  # rows still decoding, as indices into the full batch
    steps = 0
    for step in range(max_new_tokens):
        tok, lp = _sample_step(logits, temperature, generator, top_p)
        ids[rows, step], mask[rows, step], logps[rows, step] = tok, 1.0, lp
        steps = step + 1
        going = tok != eos_token_id  # (B_alive,)
        if step == max_new_tokens - 1 or not bool(going.any()):
            rows = rows[going]
            break
        if not bool(going.all()):
            keep = going.nonzero().squeeze(-1)
            rows, tok, attn, next_pos, temperature = rows[keep], tok[keep], attn[keep], next_pos[keep], temperature[keep]
            cache.batch_select_indices(keep)
        attn = torch.cat([attn, attn.new_ones(attn.shape[0], 1)], dim=1)
        out = model(input_ids=tok[:, None], attention_mask=attn, position_ids=next_pos,
                    past_key_values=cache, use_cache=True)
        logits, cache = out.logits[:, -1, :], out.past_key_values
        next_pos = next_pos + 1
    truncated = torch.zeros(bsz, dtype=torch.bool, device=device)
    truncated[rows] = True
    return ids[:, :steps], mask[:, :steps], logps[:, :steps], truncated
