"""The SCOPE-RL asymmetry claim (2510.08141 v7) as an experiment, not an assumption.

From one base model: draw samples at temperature T, keep only the correct (positive)
or only the wrong (negative) ones, apply REINFORCE updates on them (A = +1 / −1,
log-probs at T = 1), and measure the change of the policy's exact token entropy on a
fixed probe set (held-out prompts with base-model completions at T = 1, teacher
forced). The claim: hot positives raise entropy, hot negatives lower it.

``warmup_steps`` (ours): the starting policy may be the base model after that many
steps of the lab's GRPO recipe. The lab's pre-trained base imitates a demonstrator
that spreads its answers evenly, so it sits near its entropy maximum and every
update lowers entropy there; the claim is about a policy that RL has already
sharpened (as an LLM's is), and the lab reproduces it from such a policy.
"""

from __future__ import annotations

import copy
import json
from dataclasses import dataclass

import torch

from entrostat.losses import LossConfig, Normalizer, PolicyInputs, policy_loss
from entrostat.models.loading import load_policy
from entrostat.ops import masked_mean
from entrostat.config.recipes import build_config
from entrostat.rollout.batch import generate_rollout
from entrostat.tasks.base import get_task
from entrostat.config.run import lab_base_recipe
from entrostat.models.forward import completion_logprobs
from entrostat.tasks.scoring import score_completions

TEMPERATURES = (0.6, 0.8, 1.0, 1.2, 1.5)


@dataclass
class AsymmetrySettings:
    prompts: int = 64  # prompts per cell (× group_size samples)
    group_size: int = 8
    updates: int = 1  # plain-SGD REINFORCE steps on the cell's samples: the first-order regime
    lr: float = 0.05  # of §2.1's covariance analysis (Adam's sign-like steps would overshoot it)
    max_new_tokens: int = 8
    probe_prompts: int = 64
    warmup_steps: int = 0  # GRPO steps (lab recipe `grpo`) from the base model before the cells are measured
    thought_len: int = 0  # the lab task's free thought before the answer (tasks.lab); 0 = none


def warmed_up_policy(seed: int, steps: int, overrides: list[str] | None = None):
    """(model, tokenizer, format_prompt) after ``steps`` steps of the ``grpo`` recipe from the lab base model."""
    import tempfile
    from pathlib import Path

    from entrostat.train.trainer import Trainer

    cfg = build_config("grpo", [f"trainer.steps={steps}", f"trainer.seed={seed}", "eval.every=0",
                                "log.checkpoint_every=0", "log.progress=false", *(overrides or [])])
    with tempfile.TemporaryDirectory() as run_dir:
        trainer = Trainer(cfg, Path(run_dir))
        for _ in range(steps):
            trainer.step()
    return trainer.model.eval(), trainer.tokenizer, trainer.format_prompt


def draw_probe(model, tokenizer, format_prompt, problems, max_new_tokens: int, generator):
    """The probe set: one completion per held-out problem, sampled once at T = 1 and teacher forced later."""
    return generate_rollout(model, tokenizer, problems, format_prompt=format_prompt, group_size=1, temperature=1.0,
                            max_new_tokens=max_new_tokens, generator=generator)


@torch.no_grad()
def probe_entropy(model, probe) -> float:
    """Mean exact token entropy of ``model`` on the probe's completions (teacher forced)."""
    _, ent = completion_logprobs(model, probe)
    return float(masked_mean(ent, probe.completion_mask))


def _reinforce(model, rows, sign: float, s: AsymmetrySettings) -> None:
    """``updates`` SGD steps of −sign·Σ logπ (token-mean) on ``rows``."""
    opt = torch.optim.SGD(model.parameters(), lr=s.lr)
    cfg = LossConfig(surrogate="reinforce")
    adv = torch.full((rows.batch_size,), sign)
    norm = Normalizer.from_mask(rows.completion_mask)
    for _ in range(s.updates):
        lp, _ = completion_logprobs(model, rows)
        out = policy_loss(cfg, PolicyInputs(lp, lp.detach(), adv, rows.completion_mask), norm)
        opt.zero_grad(set_to_none=True)
        out.loss.backward()
        opt.step()


def run_asymmetry(seed: int, s: AsymmetrySettings | None = None, temperatures=TEMPERATURES,
                  model_name: str = "lab", lab_recipe: dict | None = None, progress=None) -> list[dict]:
    """Rows {seed, warmup_steps, temperature, sign, n_rows, entropy_before, entropy_change} for one start."""
    s = s or AsymmetrySettings()
    torch.manual_seed(seed)
    extra = [f"model.name={model_name}", f"rollout.max_new_tokens={s.max_new_tokens}"]
    extra += [f"task.kwargs.thought_len={s.thought_len}"] if s.thought_len else []
    extra += [f"model.lab_recipe={json.dumps(lab_recipe)}"] if lab_recipe else []
    if s.warmup_steps:
        base, tok, fmt = warmed_up_policy(seed, s.warmup_steps, extra)
    else:
        cfg = build_config("grpo", extra)
        base, tok, fmt = load_policy(model_name, seed=seed, progress=False, lab_recipe=lab_base_recipe(cfg))
    task = get_task("lab", thought_len=s.thought_len)
    gen = torch.Generator().manual_seed(seed)
    probe = draw_probe(base, tok, fmt, task.problems("heldout", s.probe_prompts, 10_000 + seed), s.max_new_tokens, gen)
    h0 = probe_entropy(base, probe)
    out = []
    for t in temperatures:
        batch = generate_rollout(base, tok, task.problems("train", s.prompts, seed * 997 + int(t * 100)),
                                 format_prompt=fmt, group_size=s.group_size, temperature=t,
                                 max_new_tokens=s.max_new_tokens, generator=gen)
        rewards, _ = score_completions(task, batch.meta["problems"], batch.meta["texts"], "zero")
        for sign, keep in ((1.0, rewards >= 1.0), (-1.0, rewards < 1.0)):
            rows = torch.nonzero(keep).squeeze(-1)
            change = float("nan")
            if len(rows):
                model = copy.deepcopy(base)
                _reinforce(model, batch.select(rows), sign, s)
                change = probe_entropy(model, probe) - h0
            out.append({"seed": seed, "warmup_steps": s.warmup_steps, "temperature": t,
                        "sign": "positive" if sign > 0 else "negative", "n_rows": len(rows),
                        "entropy_before": h0, "entropy_change": change})
            if progress is not None:
                progress.update(1)
    return out
