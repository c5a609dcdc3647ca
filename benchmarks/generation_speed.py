"""Generation speed of entrostat's RL-batch sampler against ``model.generate`` on the same batch (issue 6, b).

One RL rollout batch: P chat-formatted reasoning prompts (~60–150 tokens) × G
samples, temperature T, ``max_new_tokens`` new tokens, in one dtype. Both
samplers see the same prompts, dtype and thread count:

- entrostat: ``rollout.hf.sample_groups`` — the path ``generate_rollout`` (the
  trainer's rollout) takes: each prompt prefilled once, KV cache repeated G
  times and preallocated, finished rows dropped, exact sampler log-probs.
- previous: entrostat's training sampler before issue 6 (commit 19d8a61),
  replicated here: all P·G rows prefilled, ``DynamicCache`` (``torch.cat`` per
  step), ``torch.multinomial`` sampling, finished rows decoding pad tokens until
  every row is done.
- HF: ``model.generate(do_sample=True, temperature=T, top_k=0, top_p=1.0,
  max_new_tokens=...)`` on the P·G repeated, left-padded prompts (top_k=0
  switches off transformers' default top-k of 50, so both sample the full
  softmax(logits / T)).

Generated tokens are counted the same way for both: real tokens up to and
including the first EOS (a row without EOS counts all its tokens). tokens/s =
generated tokens / wall time of the sampling call (prefill included, tokenising
and model loading excluded). Repeats use fresh seeds and interleave the samplers;
the best repeat of each is kept (the machine is shared, so the best is the least
disturbed); the load average is printed before and after. The mean length and
truncation rate of both are printed: they estimate the same distribution and
should agree within noise.

    python benchmarks/generation_speed.py [--model smollm2-135m|DIR] [--prompts 8] [--group-size 8]
        [--max-new-tokens 128] [--dtype float32,bfloat16] [--threads 1] [--repeats 1] [--temperature 1.0]
"""

from __future__ import annotations

import argparse
import time

import torch

from _rl_batch import DEFAULT_MODEL, load_average, load_model, machine_line, problems_for, reasoning_prompts, set_threads


def real_tokens(generated: torch.Tensor, eos_token_id: int) -> torch.Tensor:
    """(B,) count of tokens up to and including the first EOS of each row of ``generated`` (B, T)."""
    is_eos = generated == eos_token_id  # (B, T)
    seen_before = is_eos.long().cumsum(-1) - is_eos.long()  # EOS strictly before each position
    return (seen_before == 0).sum(-1)


def run_entrostat(model, tok, ids, mask, a, seed: int) -> tuple[float, torch.Tensor]:
    """(seconds, real tokens per row (P·G,)) of one rollout by sample_groups."""
    from entrostat.rollout.hf import sample_groups

    gen = torch.Generator().manual_seed(seed)
    t0 = time.perf_counter()
    _, cmask, _, _ = sample_groups(model, ids, mask, group_size=a.group_size, temperature=a.temperature,
                                   max_new_tokens=a.max_new_tokens, eos_token_id=tok.eos_token_id,
                                   pad_token_id=tok.pad_token_id, generator=gen)
    return time.perf_counter() - t0, cmask.sum(-1)


@torch.no_grad()
def run_previous(model, tok, ids, mask, a, seed: int) -> tuple[float, torch.Tensor]:
    """(seconds, real tokens per row) of the pre-issue-6 training sampler (replica of commit 19d8a61)."""
    from transformers import DynamicCache

    rep_ids, rep_mask = ids.repeat_interleave(a.group_size, 0), mask.repeat_interleave(a.group_size, 0)
    gen, bsz = torch.Generator().manual_seed(seed), rep_ids.shape[0]
    t0 = time.perf_counter()
    attn = rep_mask.long()  # (B, T_prompt)
    pos = (attn.cumsum(-1) - 1).clamp(min=0)
    out = model(input_ids=rep_ids, attention_mask=attn, position_ids=pos, past_key_values=DynamicCache(config=model.config),
                use_cache=True, logits_to_keep=1)
    logits, cache, next_pos = out.logits[:, -1], out.past_key_values, pos[:, -1:] + 1
    done, masks = torch.zeros(bsz, dtype=torch.bool), []
    for step in range(a.max_new_tokens):
        logp = torch.log_softmax(logits.float() / a.temperature, -1)  # (B, V)
        tok_ = torch.multinomial(logp.exp(), 1, generator=gen).squeeze(-1)  # (B,)
        masks.append(~done)
        done = done | (tok_ == tok.eos_token_id)
        if step == a.max_new_tokens - 1 or bool(done.all()):
            break
        attn = torch.cat([attn, attn.new_ones(bsz, 1)], dim=1)
        out = model(input_ids=tok_[:, None], attention_mask=attn, position_ids=next_pos, past_key_values=cache,
                    use_cache=True)
        logits, next_pos = out.logits[:, -1], next_pos + 1
    return time.perf_counter() - t0, torch.stack(masks, 1).sum(-1)


@torch.no_grad()
def run_generate(model, tok, ids, mask, a, seed: int) -> tuple[float, torch.Tensor]:
    """(seconds, real tokens per row (P·G,)) of one ``model.generate`` call on the repeated prompts."""
    rep_ids, rep_mask = ids.repeat_interleave(a.group_size, 0), mask.repeat_interleave(a.group_size, 0)
    torch.manual_seed(seed)
    t0 = time.perf_counter()
    out = model.generate(input_ids=rep_ids, attention_mask=rep_mask, do_sample=True, temperature=a.temperature,
                         top_k=0, top_p=1.0, max_new_tokens=a.max_new_tokens, eos_token_id=tok.eos_token_id,
                         pad_token_id=tok.pad_token_id)
    seconds = time.perf_counter() - t0
    return seconds, real_tokens(out[:, rep_ids.shape[1]:], tok.eos_token_id)


def measure(samplers: dict, repeats: int, max_new_tokens: int) -> list[dict]:
    """Best repeat of each sampler; repeats interleave the samplers, so a burst of load from other jobs
    hits all of them alike."""
    best: dict[str, dict] = {}
    for r in range(repeats):
        for name, fn in samplers.items():
            seconds, lengths = fn(seed=1000 + r)
            rec = {"sampler": name, "s": seconds, "tokens": int(lengths.sum()), "tok_s": float(lengths.sum()) / seconds,
                   "mean_len": float(lengths.float().mean()),
                   "trunc": float((lengths == max_new_tokens).float().mean())}  # no EOS (or EOS exactly last: rare)
            if name not in best or rec["tok_s"] > best[name]["tok_s"]:
                best[name] = rec
    return list(best.values())


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--model", default=DEFAULT_MODEL, help="load_policy name or local HF directory")
    ap.add_argument("--prompts", type=int, default=8, help="P distinct prompts")
    ap.add_argument("--group-size", type=int, default=8, help="G samples per prompt")
    ap.add_argument("--max-new-tokens", type=int, default=128)
    ap.add_argument("--dtype", default="float32", help="float32, bfloat16 or both comma-separated")
    ap.add_argument("--threads", type=int, default=1, help="torch CPU threads (0: torch's default)")
    ap.add_argument("--repeats", type=int, default=1)
    ap.add_argument("--temperature", type=float, default=1.0)
    ap.add_argument("--skip-generate", action="store_true", help="do not time model.generate")
    ap.add_argument("--skip-previous", action="store_true", help="do not time the pre-issue-6 sampler")
    a = ap.parse_args()

    threads = set_threads(a.threads)
    print(f"machine: {machine_line()}; torch threads {threads}")
    print(f"batch: {a.prompts} prompts × {a.group_size} samples, max_new_tokens {a.max_new_tokens}, "
          f"temperature {a.temperature}, model {a.model}")
    print(f"{'dtype':9} {'sampler':16} {'seconds':>8} {'tokens':>7} {'tok/s':>7} {'mean len':>8} {'trunc':>6}")
    for dtype in a.dtype.split(","):
        model, tok, fmt = load_model(a.model, dtype)
        from entrostat.rollout.hf import tokenize_prompts

        ids, mask = tokenize_prompts(tok, [fmt(p) for p in problems_for(reasoning_prompts(a.prompts))])
        samplers = {"entrostat": lambda seed: run_entrostat(model, tok, ids, mask, a, seed)}
        for name, fn, skip in (("previous", run_previous, a.skip_previous), ("model.generate", run_generate, a.skip_generate)):
            if not skip:
                samplers[name] = lambda seed, fn=fn: fn(model, tok, ids, mask, a, seed)
        rows = measure(samplers, a.repeats, a.max_new_tokens)
        for r in rows:
            print(f"{dtype:9} {r['sampler']:16} {r['s']:8.1f} {r['tokens']:7d} {r['tok_s']:7.1f} "
                  f"{r['mean_len']:8.1f} {r['trunc']:6.2f}")
        for r in rows[1:]:
            print(f"{dtype:9} {'ratio':16} entrostat / {r['sampler']} tokens/s = {rows[0]['tok_s'] / r['tok_s']:.2f}x")
        print(f"{dtype:9} prompt lengths {int(mask.sum(1).min())}–{int(mask.sum(1).max())} tokens")
        del model
    print(f"load average at the end {load_average()}")


if __name__ == "__main__":
    main()
