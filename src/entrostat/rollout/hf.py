"""Sampling completions from any transformers causal LM with its KV cache.

``sample_completions`` draws one completion per row of a left-padded prompt
batch: a prefill pass over the prompts, then one cached decoding step per new
token, multinomial sampling from softmax(logits / temperature_row) with an
optional ``torch.Generator`` (deterministic for a fixed seed on CPU). Position
ids count only real prompt tokens, so a left-padded row sees the same positions
as the same prompt alone. Rows that emitted EOS keep decoding pad tokens until
every row is done or ``max_new_tokens`` is reached; their later tokens are
masked out and replaced by ``pad_token_id``.
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


def _sample_step(logits: Tensor, temperature: Tensor, generator: torch.Generator | None) -> tuple[Tensor, Tensor]:
    """Sample one token per row from softmax(logits / T_row); rows with T <= 0 take the argmax.

    logits (B, V), temperature (B,). Returns tokens (B,) and their log-prob at
    the row's temperature (B,), which is 0 for greedy rows.
    """
    greedy = temperature <= 0  # (B,)
    safe_t = torch.where(greedy, torch.ones_like(temperature), temperature)
    logp = torch.log_softmax(logits.float() / safe_t[:, None], dim=-1)  # (B, V)
    tokens = torch.multinomial(logp.exp(), 1, generator=generator).squeeze(-1)  # (B,)
    tokens = torch.where(greedy, logits.argmax(dim=-1), tokens)
    token_logp = logp.gather(-1, tokens[:, None]).squeeze(-1)  # (B,)
    return tokens, torch.where(greedy, torch.zeros_like(token_logp), token_logp)


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
) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """Sample one completion per prompt row.

    prompt_ids, prompt_mask: (B, T_prompt), left-padded. temperature: (B,)
    per-row sampling temperature (<= 0 means greedy). Returns
    ``completion_ids`` (B, T) right-padded with ``pad_token_id``,
    ``completion_mask`` (B, T) float, 1 up to and including the EOS token,
    ``sampler_logprobs`` (B, T) log-prob of each sampled token under
    softmax(logits / temperature_row) (0 where masked), and ``is_truncated``
    (B,) bool, True for rows that never emitted EOS. T is the number of steps
    actually decoded (at most ``max_new_tokens``).
    """
    if max_new_tokens < 1:
        raise ValueError(f"max_new_tokens must be >= 1, got {max_new_tokens}")
    bsz = prompt_ids.shape[0]
    device = prompt_ids.device
    temperature = torch.as_tensor(temperature, dtype=torch.float32, device=device).expand(bsz)
    attn = prompt_mask.to(device=device, dtype=torch.long)  # (B, T_prompt)
    positions = (attn.cumsum(-1) - 1).clamp(min=0)  # (B, T_prompt): real tokens count from 0
    was_training = model.training
    model.eval()
    try:
        cache = _new_cache(model)
        out = model(input_ids=prompt_ids, attention_mask=attn, position_ids=positions,
                    past_key_values=cache, use_cache=True, **_last_logits_kwargs(model))
        next_pos = positions[:, -1:] + 1  # (B, 1)
        done = torch.zeros(bsz, dtype=torch.bool, device=device)
        ids, masks, logps = [], [], []
        for step in range(max_new_tokens):
            tok, lp = _sample_step(out.logits[:, -1, :], temperature, generator)
            alive = ~done
            ids.append(torch.where(alive, tok, torch.full_like(tok, pad_token_id)))
            masks.append(alive)
            logps.append(torch.where(alive, lp, torch.zeros_like(lp)))
            done = done | (alive & (tok == eos_token_id))
            if step == max_new_tokens - 1 or bool(done.all()):
                break
            attn = torch.cat([attn, attn.new_ones(bsz, 1)], dim=1)
            out = model(input_ids=ids[-1][:, None], attention_mask=attn, position_ids=next_pos,
                        past_key_values=out.past_key_values, use_cache=True)
            next_pos = next_pos + 1
    finally:
        model.train(was_training)
    completion_ids = torch.stack(ids, dim=1)  # (B, T)
    completion_mask = torch.stack(masks, dim=1).float()  # (B, T)
    sampler_logprobs = torch.stack(logps, dim=1)  # (B, T)
    return completion_ids, completion_mask, sampler_logprobs, ~done
