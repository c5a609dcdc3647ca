"""Model FLOP utilisation of entrostat's training step and generation phase on this machine (issue 6, c).

1. Peak: FLOP/s of large square products (n × n @ n × n, 2·n³ FLOP, n up to
   2048) in fp32 and bf16 with the chosen thread count, the best of a few
   repeats, through ``torch.matmul`` and through ``F.linear`` (the model's
   path); the peak is the larger. (On an AVX2 CPU without bf16 instructions
   bf16 ``torch.matmul`` is ~100× slower than bf16 ``F.linear``, itself ~8×
   slower than fp32: the printout shows both.)
2. Training step: the trainer's own pieces on one rollout batch of ``rows`` =
   P·G sequences, each a chat-formatted reasoning prompt (~60–150 tokens) plus
   ``completion-len`` completion tokens (all counted in the mask):
   ``train.forward.completion_logprobs`` (forward with ``logits_to_keep`` =
   T + 1 and the chunked log-prob / exact-entropy op) → ``losses.policy_loss``
   (GRPO defaults, on-policy: old log-probs = detached current ones, as the
   trainer's fused path) → ``backward``; then, timed apart, one AdamW step.
3. Generation: ``rollout.hf.sample_groups`` (the rollout path) on an RL batch of
   ``gen-prompts`` × ``gen-group-size`` rows (default 8 × 8: decoding is
   matmul-bound only with enough rows), ``completion-len`` new tokens, T = 1.

FLOP counts (PaLM, Chowdhery et al. 2204.02311, App. B; attention not halved for
causality, as there):

    train  = 6 · N · B·(T_p + T)  −  6 · N_head · B·(T_p − 1)  +  12 · L · d_attn · B·(T_p + T)²
    gen    = 2 · N · tokens  +  4 · L · d_attn · Σ context lengths

N counts the weights of every matmul (all ``nn.Linear`` layers, the LM head
included, a tied embedding once; embedding lookups and norms are not matmuls).
The LM head runs only on the T + 1 last positions in training (``logits_to_keep``),
hence the subtracted term; d_attn = heads × head_dim, L layers. ``tokens`` in
generation = prompt tokens prefilled (each distinct prompt once) + tokens
generated (up to and including EOS), each attending to its context.
MFU = FLOPs / wall time / peak of the dtype the matmuls run in (fp32, or bf16
for bf16 weights or ``--bf16-autocast``).

    python benchmarks/train_mfu.py [--model smollm2-135m|DIR] [--prompts 2] [--group-size 4]
        [--completion-len 128] [--dtype float32] [--bf16-autocast] [--threads 1] [--repeats 2]
        [--gen-prompts 8] [--gen-group-size 8] [--skip-generation]
"""

from __future__ import annotations

import argparse
import time

import torch

from _rl_batch import DEFAULT_MODEL, load_average, load_model, machine_line, problems_for, reasoning_prompts, set_threads


def matmul_peak(dtype: torch.dtype, sizes=(512, 1024, 2048), budget_s: float = 3.0) -> dict[str, float]:
    """Best FLOP/s of square n × n products in ``dtype``: {"matmul": torch.matmul, "linear": F.linear}.

    Sizes grow while the next one would take less than ``budget_s`` (bf16 ``torch.matmul`` on a CPU
    without bf16 instructions can run at well under 1 GFLOP/s).
    """
    best = {"matmul": 0.0, "linear": 0.0}
    for n in sizes:
        a, b = torch.randn(n, n).to(dtype), torch.randn(n, n).to(dtype)
        slowest = 0.0
        for name, fn in (("matmul", torch.matmul), ("linear", torch.nn.functional.linear)):
            fn(a, b)  # warm-up (oneDNN primitive creation)
            for _ in range(2):
                t0 = time.perf_counter()
                fn(a, b)
                dt = time.perf_counter() - t0
                best[name], slowest = max(best[name], 2 * n**3 / dt), max(slowest, dt)
        if slowest * 8 > budget_s:  # the next size takes 8× longer
            break
    return best


def matmul_params(model) -> tuple[int, int]:
    """(N: weights of all nn.Linear layers, a shared tensor once; N_head: the LM head's)."""
    seen, total = set(), 0
    for module in model.modules():
        if isinstance(module, torch.nn.Linear) and id(module.weight) not in seen:
            seen.add(id(module.weight))
            total += module.weight.numel()
    head = model.get_output_embeddings()
    return total, head.weight.numel() if head is not None else 0


def attention_shape(model) -> tuple[int, int]:
    """(layers L, d_attn = heads × head_dim) from the model config."""
    c = model.config
    head_dim = getattr(c, "head_dim", None) or c.hidden_size // c.num_attention_heads
    return c.num_hidden_layers, c.num_attention_heads * head_dim


def rollout_batch(tok, fmt, prompts: int, group: int, length: int, vocab: int, seed: int = 0):
    """A RolloutBatch of P·G rows: real prompts, random completion tokens (all masked in), GRPO-like advantages."""
    from entrostat.rollout.hf import tokenize_prompts
    from entrostat.types import RolloutBatch

    ids, mask = tokenize_prompts(tok, [fmt(p) for p in problems_for(reasoning_prompts(prompts, seed))])
    rows = prompts * group
    gen = torch.Generator().manual_seed(seed)
    return RolloutBatch(
        prompt_ids=ids.repeat_interleave(group, 0), prompt_mask=mask.repeat_interleave(group, 0),
        completion_ids=torch.randint(3, vocab, (rows, length), generator=gen),  # (B, T)
        completion_mask=torch.ones(rows, length), group_ids=torch.arange(prompts).repeat_interleave(group),
        advantages=torch.randn(rows, generator=gen),  # (B,)
    )


def train_step_seconds(model, batch, bf16: bool, repeats: int) -> tuple[float, float]:
    """(best forward+backward seconds, best AdamW step seconds) of the policy loss on ``batch``."""
    from entrostat.losses import LossConfig, Normalizer, PolicyInputs, policy_loss
    from entrostat.models.forward import completion_logprobs

    opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-7)
    norm, cfg = Normalizer.from_mask(batch.completion_mask), LossConfig()
    fb, step = float("inf"), float("inf")
    for _ in range(repeats):
        t0 = time.perf_counter()
        logprobs, ent = completion_logprobs(model, batch, bf16=bf16)  # (B, T) each
        inputs = PolicyInputs(logprobs=logprobs, old_logprobs=logprobs.detach(), advantages=batch.advantages,
                              mask=batch.completion_mask, token_entropy=ent)
        policy_loss(cfg, inputs, norm).loss.backward()
        t1 = time.perf_counter()
        opt.step()
        opt.zero_grad(set_to_none=True)
        fb, step = min(fb, t1 - t0), min(step, time.perf_counter() - t1)
    return fb, step


def generation(model, tok, fmt, prompts: int, group: int, length: int, repeats: int) -> tuple[float, int, int, float]:
    """(best seconds, prefilled prompt tokens, generated tokens, Σ context length) of sample_groups."""
    from entrostat.rollout.hf import sample_groups, tokenize_prompts

    ids, mask = tokenize_prompts(tok, [fmt(p) for p in problems_for(reasoning_prompts(prompts))])
    best = None
    for r in range(repeats):
        t0 = time.perf_counter()
        _, cmask, _, _ = sample_groups(model, ids, mask, group_size=group, temperature=1.0, max_new_tokens=length,
                                       eos_token_id=tok.eos_token_id, pad_token_id=tok.pad_token_id,
                                       generator=torch.Generator().manual_seed(r))
        seconds = time.perf_counter() - t0
        prompt_len = mask.sum(1).repeat_interleave(group).double()  # (B,)
        n = cmask.sum(1).double()  # (B,) generated tokens per row
        context = float((mask.sum(1).double() ** 2 / 2).sum() + (n * prompt_len + n * (n + 1) / 2).sum())
        rec = (seconds, int(mask.sum()), int(cmask.sum()), context)
        best = rec if best is None or rec[0] / max(rec[2], 1) < best[0] / max(best[2], 1) else best
    return best


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--model", default=DEFAULT_MODEL, help="load_policy name or local HF directory")
    ap.add_argument("--prompts", type=int, default=2, help="P distinct prompts")
    ap.add_argument("--group-size", type=int, default=4, help="G rows per prompt (rows = P·G)")
    ap.add_argument("--completion-len", type=int, default=128, help="T completion tokens per row")
    ap.add_argument("--dtype", default="float32", choices=("float32", "bfloat16"))
    ap.add_argument("--bf16-autocast", action="store_true", help="forward under bf16 autocast (fp32 weights)")
    ap.add_argument("--threads", type=int, default=1, help="torch CPU threads (0: torch's default)")
    ap.add_argument("--repeats", type=int, default=2)
    ap.add_argument("--gen-prompts", type=int, default=8, help="P of the generation phase (an RL batch: P·G rows)")
    ap.add_argument("--gen-group-size", type=int, default=8, help="G of the generation phase")
    ap.add_argument("--skip-generation", action="store_true")
    a = ap.parse_args()

    threads = set_threads(a.threads)
    print(f"machine: {machine_line()}; torch threads {threads}")
    model, tok, fmt = load_model(a.model, a.dtype)  # first: a missing model fails before the slow peak runs
    measured = {dt: matmul_peak(dt) for dt in (torch.float32, torch.bfloat16)}
    for dt, m in measured.items():
        print(f"peak {str(dt)[6:]:9}: torch.matmul {m['matmul'] / 1e9:6.1f} GFLOP/s, F.linear {m['linear'] / 1e9:6.1f} "
              f"GFLOP/s (square, up to 2048²); peak = the larger")
    peaks = {dt: max(m.values()) for dt, m in measured.items()}
    compute = torch.bfloat16 if (a.dtype == "bfloat16" or a.bf16_autocast) else torch.float32
    peak = peaks[compute]
    n_mm, n_head = matmul_params(model)
    layers, d_attn = attention_shape(model)
    print(f"model {a.model}: N = {n_mm / 1e6:.1f}M matmul weights (LM head {n_head / 1e6:.1f}M), L = {layers}, "
          f"d_attn = {d_attn}; weights {a.dtype}, matmuls in {str(compute)[6:]}")

    batch = rollout_batch(tok, fmt, a.prompts, a.group_size, a.completion_len, model.config.vocab_size)
    rows, t_p, t = batch.batch_size, batch.prompt_ids.shape[1], a.completion_len
    seq = t_p + t
    flops = 6 * n_mm * rows * seq - 6 * n_head * rows * (t_p - 1) + 12 * layers * d_attn * rows * seq**2
    fb, opt_s = train_step_seconds(model, batch, a.bf16_autocast, a.repeats)  # eval mode, as the trainer
    print(f"train step: {rows} rows × ({t_p} prompt + {t} completion) tokens = {rows * seq} tokens, "
          f"{flops / 1e12:.2f} TFLOP")
    print(f"  forward+backward {fb:.2f} s → {flops / fb / 1e9:.1f} GFLOP/s, MFU {flops / fb / peak:.1%}; "
          f"AdamW step {opt_s:.2f} s; with it MFU {flops / (fb + opt_s) / peak:.1%}")
    if not a.skip_generation:
        seconds, prefilled, generated, context = generation(model, tok, fmt, a.gen_prompts, a.gen_group_size, t,
                                                            a.repeats)
        gflops = 2 * n_mm * (prefilled + generated) + 4 * layers * d_attn * context
        print(f"generation: {a.gen_prompts} prompts × {a.gen_group_size}, {prefilled} prompt tokens prefilled + {generated} "
              f"generated in {seconds:.2f} s ({generated / seconds:.1f} tok/s), {gflops / 1e12:.3f} TFLOP")
        print(f"  {gflops / seconds / 1e9:.1f} GFLOP/s, MFU {gflops / seconds / peak:.1%} "
              f"(2·N·tokens only: {2 * n_mm * (prefilled + generated) / seconds / peak:.1%})")
    print(f"load average at the end {load_average()}")


if __name__ == "__main__":
    main()
