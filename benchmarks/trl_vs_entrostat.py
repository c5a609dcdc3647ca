"""entrostat vs TRL's GRPOTrainer on the same work: seconds per RL step and tokens/s, one run.

Both trainers get the same model directory, the same prompts in the same order (the
recipe's task: step k uses the problems entrostat draws for step k), P prompts × G
samples per step, the same completion budget, sampling temperature (top-p 1, no top-k),
precision, learning rate, one optimizer update per step (TRL: one generation per step,
``num_iterations=1``), the same micro-batch for the backward passes (``--micro-batch`` rows;
TRL: ``per_device_train_batch_size`` with gradient accumulation over the step's rows), no
reference model (``beta=0``), no
gradient checkpointing, no evaluation or checkpointing, the same task verifier as reward.
TRL generates with ``model.generate`` (its path without vLLM); entrostat with its own
RL-batch sampler, and its training passes share each group's prompt pass
(``trainer.share_prompts``, the default; pass ``--overrides trainer.share_prompts=false`` to
time one pass per row). The loss is GRPO with token-sum / active-token normalisation in both
(TRL ``loss_type="dapo"``, entrostat ``loss.aggregation=token-mean``): the loss algebra is
negligible next to the forward / backward passes.

Timing: after ``--warmup`` steps of each, ``--steps`` steps of entrostat then of TRL, in
the same process and with the same torch thread count. A step is timed from the start
of the rollout to the end of the optimizer step (TRL: ``on_step_begin`` to
``on_step_end``, which brackets its generation inside ``training_step``). Tokens/s counts
completion tokens (up to and including EOS) per second of step time.

    python benchmarks/trl_vs_entrostat.py [--recipe smollm2_rg] [--model DIR] [--steps 3] \
        [--prompts 8] [--group-size 8] [--max-new-tokens 128] [--micro-batch 16] [--dtype float32|bf16] \
        [--threads 2]

Memory: a whole 8 × 8 step in one backward (128 new tokens) went past 24 GiB on this machine (the
vocabulary is 49k); with the default micro-batch of 16 rows the process running both peaked at 12.9 GiB.
"""

from __future__ import annotations

import argparse
import resource
import statistics
import sys
import tempfile
import time

import torch

from entrostat.config.recipes import build_config
from entrostat.train.trainer import Trainer


def entrostat_steps(cfg, n_warm: int, n_steps: int) -> tuple[list[float], list[float], Trainer]:
    """(seconds per step, completion tokens per step) of ``n_steps`` entrostat steps after ``n_warm``."""
    trainer = Trainer(cfg, tempfile.mkdtemp(prefix="bench-entrostat-"))
    rows = cfg.rollout.prompts_per_step * cfg.rollout.group_size
    secs, toks = [], []
    for i in range(n_warm + n_steps):
        t0 = time.perf_counter()
        rec = trainer.step()
        dt = time.perf_counter() - t0
        print(f"entrostat step {i + 1}/{n_warm + n_steps}: {dt:.1f} s", file=sys.stderr, flush=True)
        if i >= n_warm:
            secs.append(dt)
            toks.append(rec["response_length"] * rows)
    return secs, toks, trainer


def trl_steps(cfg, trainer: Trainer, model_dir: str, n_warm: int, n_steps: int, bf16: bool, micro: int):
    """(seconds per step, completion tokens per step) of TRL GRPOTrainer on the same prompts."""
    from datasets import Dataset
    from transformers import AutoModelForCausalLM, AutoTokenizer, TrainerCallback
    from trl import GRPOConfig, GRPOTrainer

    r, total = cfg.rollout, n_warm + n_steps
    problems = [p for k in range(total) for p in trainer.task.problems("train", r.prompts_per_step, trainer._data_seed(k))]
    by_id = {p.id: p for p in problems}
    # Prompts as the exact strings entrostat feeds its tokenizer (chat template applied), so both
    # tokenise the same text.
    data = Dataset.from_dict({"prompt": [trainer.format_prompt(p) for p in problems], "pid": [p.id for p in problems]})

    def reward(prompts, completions, pid, **_):
        return [float(trainer.task.score(by_id[i], c)) for i, c in zip(pid, completions)]

    times: list[float] = []
    lengths: list[float] = []

    class Clock(TrainerCallback):
        def on_step_begin(self, args, state, control, **kw):
            self.t0 = time.perf_counter()

        def on_step_end(self, args, state, control, **kw):
            times.append(time.perf_counter() - self.t0)
            print(f"trl step {len(times)}/{total}: {times[-1]:.1f} s", file=sys.stderr, flush=True)

        def on_log(self, args, state, control, logs=None, **kw):
            if logs and "completions/mean_length" in logs:
                lengths.append(logs["completions/mean_length"])

    rows = r.prompts_per_step * r.group_size
    args = GRPOConfig(
        output_dir=tempfile.mkdtemp(prefix="bench-trl-"), per_device_train_batch_size=micro,
        gradient_accumulation_steps=rows // micro, num_generations=r.group_size, max_completion_length=r.max_new_tokens,
        temperature=r.temperature, top_p=1.0, top_k=0, learning_rate=cfg.optim.lr, beta=0.0, num_iterations=1,
        loss_type="dapo", epsilon=cfg.loss.eps_low, max_grad_norm=cfg.optim.grad_clip, lr_scheduler_type="constant",
        weight_decay=cfg.optim.weight_decay, adam_beta1=cfg.optim.betas[0], adam_beta2=cfg.optim.betas[1],
        bf16=bf16, use_cpu=True, gradient_checkpointing=False, max_steps=total, logging_steps=1,
        save_strategy="no", report_to="none", shuffle_dataset=False, seed=cfg.trainer.seed, log_completions=False,
        disable_tqdm=True, dataloader_num_workers=0,
    )
    model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float32)
    tok = AutoTokenizer.from_pretrained(model_dir, padding_side="left")
    trl = GRPOTrainer(model=model, reward_funcs=reward, args=args, train_dataset=data, processing_class=tok,
                      callbacks=[Clock()])
    trl.train()
    return times[n_warm:], [m * rows for m in lengths[n_warm:]]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--recipe", default="smollm2_rg")
    ap.add_argument("--model", default=None, help="model directory (default: the recipe's model, prepared)")
    ap.add_argument("--steps", type=int, default=3)
    ap.add_argument("--warmup", type=int, default=1)
    ap.add_argument("--prompts", type=int, default=8)
    ap.add_argument("--group-size", type=int, default=8)
    ap.add_argument("--max-new-tokens", type=int, default=128)
    ap.add_argument("--micro-batch", type=int, default=16, help="rows per forward/backward pass (divides P × G)")
    ap.add_argument("--dtype", choices=["float32", "bf16"], default="float32",
                    help="bf16: fp32 weights with bf16 autocast in both (TRL bf16=True)")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--overrides", nargs="*", default=[], help="extra entrostat config overrides")
    a = ap.parse_args()
    if (a.prompts * a.group_size) % a.micro_batch:
        ap.error(f"--micro-batch {a.micro_batch} must divide prompts × group size = {a.prompts * a.group_size}")
    torch.set_num_threads(a.threads)
    bf16 = a.dtype == "bf16"
    over = [f"rollout.prompts_per_step={a.prompts}", f"rollout.group_size={a.group_size}",
            f"rollout.max_new_tokens={a.max_new_tokens}", f"trainer.threads={a.threads}", "trainer.mini_batches=1",
            "trainer.epochs=1", f"trainer.micro_batch_size={a.micro_batch}", "eval.every=0", "log.checkpoint_every=0", "log.progress=false",
            "loss.kl_coef=0", "loss.aggregation=token-mean", f"model.bf16_autocast={str(bf16).lower()}",
            "model.dtype=float32", "trainer.steps=100000", "control.name=none"]
    if a.model:
        over.append(f"model.name={a.model}")
    cfg = build_config(a.recipe, over + list(a.overrides))
    e_secs, e_toks, trainer = entrostat_steps(cfg, a.warmup, a.steps)
    model_dir = a.model or _model_dir(trainer)
    t_secs, t_toks = trl_steps(cfg, trainer, model_dir, a.warmup, a.steps, bf16, a.micro_batch)
    _report(a, e_secs, e_toks, t_secs, t_toks)


def _model_dir(trainer: Trainer) -> str:
    path = getattr(trainer.model, "name_or_path", None) or trainer.model.config._name_or_path
    return str(path)


def _report(a, e_secs, e_toks, t_secs, t_toks) -> None:
    e_s, t_s = statistics.mean(e_secs), statistics.mean(t_secs)
    e_tps, t_tps = sum(e_toks) / sum(e_secs), sum(t_toks) / sum(t_secs)
    print(f"{a.recipe}: {a.prompts} prompts × {a.group_size} samples, max_new_tokens {a.max_new_tokens}, {a.dtype}, "
          f"micro-batch {a.micro_batch}, {a.threads} threads, {a.steps} timed steps after {a.warmup} warm-up")
    print(f"{'trainer':12s} {'s/step':>8s} {'steps':>24s} {'tokens/step':>12s} {'tokens/s':>9s}")
    for name, secs, toks, mean_s, tps in (("entrostat", e_secs, e_toks, e_s, e_tps), ("trl 1.16", t_secs, t_toks, t_s, t_tps)):
        steps = " ".join(f"{s:.1f}" for s in secs)
        print(f"{name:12s} {mean_s:8.2f} {steps:>24s} {statistics.mean(toks):12.0f} {tps:9.1f}")
    print(f"speed-up (TRL s/step ÷ entrostat s/step): {t_s / e_s:.2f}×; tokens/s ratio: {e_tps / t_tps:.2f}×")
    print(f"peak resident memory of the process: {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20:.1f} GiB")


if __name__ == "__main__":
    main()
