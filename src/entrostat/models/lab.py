"""The tiny lab model: a local character tokenizer, a small Llama, and its pre-trained base.

``load_lab_base_model`` returns the lab's *base model*: a ~0.34 M-parameter
Llama (small so that it pre-trains in about half a minute on two CPU cores)
given a short supervised pre-training on the lab task in two phases. First,
correct demonstrations only (spread evenly over every valid answer), so the
model learns the skill; then a deliberately imperfect mixture, correct with
probability ``correct_prob`` and plausible near misses otherwise, so the model
gets sloppy. Correct answers end up in the model's support but not dominant
(held-out pass@1 about 0.2 at temperature 1, pass@64 about 1.0, token entropy
about 1 nat), which leaves RL room to improve and makes exploration matter.

The result is cached under ``$ENTROSTAT_CACHE`` (default ``~/.cache/entrostat``)
in a directory keyed by a hash of the recipe and seed, written to a temporary
directory first and moved into place with ``os.replace`` so an interrupted run
never leaves a half-written cache. Nothing is downloaded.

Prompt format: ``format_prompt(problem)`` is ``problem.prompt + "="``, e.g.
``"13:385176="``; the model answers ``"8+5"`` then ``<eos>``.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import os
import random
import shutil
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from entrostat.models.hfutil import quiet_transformers
from entrostat.tasks.base import Problem
from entrostat.tasks.lab import LabTask, sample_demonstration

SPECIAL_TOKENS = ("<pad>", "<bos>", "<eos>", "<unk>")
CHARS = "0123456789+-*=:,.?() abcdefghijklmnopqrstuvwxyz"
PROMPT_SUFFIX = "="  # the model writes its answer right after "<target>:<digits>="
MAX_NEW_TOKENS = 8  # enough for any lab answer ("a+b+c" and EOS) with room to ramble
# Plain attention: for sequences of ~15 tokens it trains ~25 % faster on CPU than SDPA's flash kernel.
ATTN_IMPLEMENTATION = "eager"


def build_lab_tokenizer():
    """A character-level ``PreTrainedTokenizerFast`` for the lab (pad 0, bos 1, eos 2, unk 3).

    Every character is one token; ``<bos>`` is prepended on encoding; padding is
    on the left; decoding concatenates characters. Built locally, no download.
    """
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors
    from transformers import PreTrainedTokenizerFast

    vocab = {tok: i for i, tok in enumerate([*SPECIAL_TOKENS, *CHARS])}
    core = Tokenizer(models.WordLevel(vocab, unk_token="<unk>"))
    core.pre_tokenizer = pre_tokenizers.FixedLength(length=1)
    core.decoder = decoders.Fuse()
    core.post_processor = processors.TemplateProcessing(
        single="<bos> $A", pair="<bos> $A $B", special_tokens=[("<bos>", vocab["<bos>"])]
    )
    return PreTrainedTokenizerFast(
        tokenizer_object=core, bos_token="<bos>", eos_token="<eos>", pad_token="<pad>",
        unk_token="<unk>", padding_side="left",
    )


def build_lab_model(tokenizer, seed: int, *, hidden_size: int = 96, num_layers: int = 3,
                    num_heads: int = 4, intermediate_size: int = 256, max_positions: int = 64):
    """A freshly initialised small ``LlamaForCausalLM`` (about 0.34 M parameters at the defaults).

    Initialisation uses its own RNG seeded by ``seed``; the global torch RNG is left untouched.
    """
    from transformers import LlamaConfig, LlamaForCausalLM

    config = LlamaConfig(
        vocab_size=len(tokenizer), hidden_size=hidden_size, intermediate_size=intermediate_size,
        num_hidden_layers=num_layers, num_attention_heads=num_heads, num_key_value_heads=num_heads,
        max_position_embeddings=max_positions, tie_word_embeddings=True,
        bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id, attention_dropout=0.0,
        attn_implementation=ATTN_IMPLEMENTATION,
    )
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = LlamaForCausalLM(config)
    return model


def format_prompt(problem: Problem) -> str:
    """The text the lab model is given for ``problem``: its prompt followed by "="."""
    return problem.prompt + PROMPT_SUFFIX


@dataclass(frozen=True)
class LabRecipe:
    """Everything that determines the lab base model; its hash (with the seed) keys the cache."""

    model: dict[str, int] = field(default_factory=dict)  # build_lab_model size overrides
    task: dict[str, Any] = field(default_factory=dict)  # LabTask kwargs
    n_problems: int = 4096  # distinct training problems the demonstrations are drawn for
    clean_frac: float = 0.65  # first fraction of steps: correct demonstrations only (learn the skill)
    correct_prob: float = 0.35  # afterwards: fraction of demonstrations that are correct (get sloppy)
    steps: int | None = None  # None: 320, or 640 when the task has a thought (its base then reaches the bare lab's
    #                           pass@1: seeds 0 / 2, 0.11 / 0.07 at 320 steps, 0.23 / 0.18 at 640)
    batch_size: int = 128
    lr: float = 3e-3
    warmup_steps: int = 30
    weight_decay: float = 0.01
    version: int = 1  # bump when the pre-training code changes what it produces

    def __post_init__(self) -> None:
        if self.steps is None:  # resolved here, so the cache key holds the number of steps actually taken
            object.__setattr__(self, "steps", 640 if self.task.get("thought_len") else 320)

    def key(self, seed: int) -> str:
        """A short stable hash of the recipe and seed."""
        blob = json.dumps({"recipe": dataclasses.asdict(self), "seed": seed}, sort_keys=True)
        return hashlib.sha256(blob.encode()).hexdigest()[:16]


def _encode_batch(tokenizer, prompts: list[str], answers: list[str]) -> tuple[torch.Tensor, ...]:
    """Left-padded ``<bos> prompt answer <eos>`` rows: ids, attention mask, position ids, loss mask, each (B, L).

    Maps characters through the vocabulary directly (the lab tokenizer is
    character-level), which is ~10x faster than calling the tokenizer per row.
    """
    vocab = tokenizer.get_vocab()
    unk = tokenizer.unk_token_id
    rows = [[tokenizer.bos_token_id, *(vocab.get(ch, unk) for ch in p + a), tokenizer.eos_token_id]
            for p, a in zip(prompts, answers)]
    width = max(len(r) for r in rows)
    ids = torch.full((len(rows), width), tokenizer.pad_token_id, dtype=torch.long)  # (B, L)
    attn = torch.zeros_like(ids)  # (B, L)
    loss_mask = torch.zeros(ids.shape, dtype=torch.float32)  # (B, L): 1 on answer tokens and <eos>
    for i, (row, a) in enumerate(zip(rows, answers)):
        ids[i, width - len(row):] = torch.tensor(row)
        attn[i, width - len(row):] = 1
        loss_mask[i, width - len(a) - 1:] = 1.0
    positions = (attn.cumsum(-1) - 1).clamp(min=0)
    return ids, attn, positions, loss_mask


def _lr_factor(step: int, recipe: LabRecipe) -> float:
    """Linear warm-up, then cosine decay to 10 % of the peak."""
    if step < recipe.warmup_steps:
        return (step + 1) / recipe.warmup_steps
    frac = (step - recipe.warmup_steps) / max(1, recipe.steps - recipe.warmup_steps)
    return 0.1 + 0.9 * 0.5 * (1.0 + math.cos(math.pi * frac))


def pretrain_lab_model(model, tokenizer, recipe: LabRecipe, seed: int, progress: bool = True):
    """Supervised pre-training of ``model`` on imperfect lab demonstrations (in place; returns the model).

    Each step draws ``batch_size`` training problems and a fresh demonstration
    for each (see ``sample_demonstration``), after a thought when the task has
    one (``LabTask.sample_thought``); the loss is the token-mean
    cross-entropy over answer tokens and EOS.
    """
    from tqdm.auto import tqdm

    task = LabTask(**recipe.task)
    pool = [(format_prompt(p), p) for p in task.problems("train", recipe.n_problems, seed=10_000 + seed)]
    rng = random.Random(f"entrostat.lab.pretrain/{seed}")
    opt = torch.optim.AdamW(model.parameters(), lr=recipe.lr, betas=(0.9, 0.98), weight_decay=recipe.weight_decay)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: _lr_factor(s, recipe))
    model.train()
    bar = tqdm(range(recipe.steps), desc="pre-training lab base model", disable=not progress, leave=False)
    clean_steps = round(recipe.clean_frac * recipe.steps)
    for step in bar:
        correct_prob = 1.0 if step < clean_steps else recipe.correct_prob
        batch = [rng.choice(pool) for _ in range(recipe.batch_size)]
        answers = [task.sample_thought(rng) + sample_demonstration(p, rng, correct_prob) for _, p in batch]
        ids, attn, positions, loss_mask = _encode_batch(tokenizer, [t for t, _ in batch], answers)
        logits = model(input_ids=ids, attention_mask=attn, position_ids=positions).logits  # (B, L, V)
        nll = torch.nn.functional.cross_entropy(
            logits[:, :-1].flatten(0, 1), ids[:, 1:].flatten(), reduction="none").view(ids.shape[0], -1)
        loss = (nll * loss_mask[:, 1:]).sum() / loss_mask[:, 1:].sum()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        sched.step()
        bar.set_postfix(loss=f"{loss.item():.3f}", refresh=False)
    model.eval()
    return model


def default_cache_dir() -> Path:
    """``$ENTROSTAT_CACHE`` if set, else ``~/.cache/entrostat``."""
    return Path(os.environ.get("ENTROSTAT_CACHE") or Path.home() / ".cache" / "entrostat")


def load_lab_base_model(cache_dir: str | None = None, seed: int = 0, progress: bool = True,
                        recipe: LabRecipe | None = None):
    """The lab base model and tokenizer: loaded from the cache, or pre-trained and cached.

    ``recipe`` defaults to ``LabRecipe()``; tests pass a tiny one. Returns
    ``(model, tokenizer)`` with the model in eval mode on CPU.
    """
    from transformers import LlamaForCausalLM, PreTrainedTokenizerFast

    recipe = recipe or LabRecipe()
    root = Path(cache_dir) if cache_dir is not None else default_cache_dir()
    final = root / "lab" / f"base-{recipe.key(seed)}"
    if not (final / "config.json").exists():
        _build_and_cache(final, recipe, seed, progress)
    with quiet_transformers():
        model = LlamaForCausalLM.from_pretrained(final, local_files_only=True, attn_implementation=ATTN_IMPLEMENTATION)
        tokenizer = PreTrainedTokenizerFast.from_pretrained(final, local_files_only=True)
    tokenizer.padding_side = "left"
    return model.eval(), tokenizer


def _build_and_cache(final: Path, recipe: LabRecipe, seed: int, progress: bool) -> None:
    """Pre-train and save into a temporary sibling directory, then move it to ``final`` atomically."""
    tokenizer = build_lab_tokenizer()
    model = build_lab_model(tokenizer, seed, **recipe.model)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        pretrain_lab_model(model, tokenizer, recipe, seed, progress)
    final.parent.mkdir(parents=True, exist_ok=True)
    for stale in final.parent.glob(f".{final.name}-*"):  # left by a killed build more than an hour ago
        if time.time() - stale.stat().st_mtime > 3600:
            shutil.rmtree(stale, ignore_errors=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{final.name}-", dir=final.parent))
    try:
        with quiet_transformers():
            model.save_pretrained(tmp)
            tokenizer.save_pretrained(tmp)
        (tmp / "recipe.json").write_text(json.dumps({"recipe": dataclasses.asdict(recipe), "seed": seed}, indent=2))
        os.replace(tmp, final)
    except OSError:
        if not (final / "config.json").exists():  # not a lost race with another process: a real error
            raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
