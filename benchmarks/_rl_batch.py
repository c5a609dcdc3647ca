"""Shared pieces of the RL-batch benchmarks (generation_speed.py, train_mfu.py).

``load_model`` loads the policy through ``entrostat.models.loading.load_policy``
(the alias ``smollm2-135m`` by default, or any local HF directory) and says
clearly what to do when the alias is not available. ``reasoning_prompts``
builds P chat-formatted arithmetic word problems of roughly 60–150 tokens, the
shape of an RL batch on a reasoning task; they are procedural (seeded) so the
benchmarks need no data set.
"""

from __future__ import annotations

import os
import random
import sys

import torch

DEFAULT_MODEL = "smollm2-135m"
_FALLBACK_DIR = "/tmp/smollm2-hf"

_NAMES = ["Ava", "Ben", "Chloe", "Dmitri", "Esme", "Farid", "Grace", "Hugo", "Ines", "Jonas", "Kira", "Liam"]
_ITEMS = ["apples", "marbles", "stickers", "books", "coins", "pencils", "cards", "shells"]
_INSTRUCTION = "Think step by step and end with 'Answer: <number>'."


def load_model(name: str, dtype: str):
    """(model, tokenizer, format_prompt) of ``name`` in ``dtype`` (float32 | bfloat16), in eval mode.

    Exits with a message naming ``--model DIR`` when the alias is unknown to ``load_policy``.
    """
    from entrostat.models.loading import ModelLoadError, load_policy

    try:
        model, tok, fmt = load_policy(name, dtype=dtype, progress=False)
    except ModelLoadError as exc:
        hint = f" (a copy may be at {_FALLBACK_DIR})" if os.path.isdir(_FALLBACK_DIR) else ""
        sys.exit(f"cannot load model {name!r}: {exc}\nPass --model DIR with a local Hugging Face model directory{hint}.")
    return model.eval(), tok, fmt


def reasoning_prompts(n: int, seed: int = 0) -> list[str]:
    """``n`` multi-step arithmetic word problems (plain text, before the chat template)."""
    rng = random.Random(seed)
    out = []
    for _ in range(n):
        a, b = rng.sample(_NAMES, 2)
        item = rng.choice(_ITEMS)
        x, y, z, k = rng.randint(5, 60), rng.randint(2, 9), rng.randint(3, 40), rng.randint(2, 5)
        story = f"{a} has {x} {item}. {b} has {y} times as many {item} as {a}."
        if rng.random() < 0.7:  # longer, multi-step variants: prompt lengths spread over ~60-150 tokens
            story += f" {b} gives away {z} of them, then {a} and {b} share all their {item} equally among {k} friends."
        if rng.random() < 0.5:
            story += f" On the way home each friend loses one of the {item}, and {a} finds {y} more in a drawer."
        out.append(f"{story} How many {item} does each friend end up with? {_INSTRUCTION}")
    return out


def problems_for(texts: list[str]):
    """Problems (entrostat.tasks.base.Problem) carrying ``texts`` as prompts, for ``generate_rollout``."""
    from entrostat.tasks.base import Problem

    return [Problem(prompt=t, answer="", id=f"bench-{i}") for i, t in enumerate(texts)]


def set_threads(threads: int) -> int:
    """Set torch's CPU threads (0 keeps the default); returns the number in use."""
    if threads:
        torch.set_num_threads(threads)
    return torch.get_num_threads()


def load_average() -> str:
    """The 1-minute load average: other jobs share the cores, and a timing means little without it."""
    return f"{os.getloadavg()[0]:.2f}"


def machine_line() -> str:
    """CPU model, core count and 1-minute load average (other jobs share the cores)."""
    model = "unknown CPU"
    try:
        with open("/proc/cpuinfo") as f:
            model = next(line.split(":", 1)[1].strip() for line in f if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    return f"{model}, {os.cpu_count()} CPUs, load average {load_average()}, torch {torch.__version__}"
