"""Load the policy: the built-in lab model or a local Hugging Face model directory."""

from __future__ import annotations

from pathlib import Path
from typing import Callable

import torch

from entrostat.tasks.base import Problem


class ModelLoadError(RuntimeError):
    """The model could not be loaded; the message says why and what to do."""


def load_policy(
    name: str, *, dtype: str = "float32", seed: int = 0, cache_dir: str | None = None, progress: bool = True,
    lab_recipe: dict | None = None,
):
    """(model, tokenizer, format_prompt) for ``name``: 'lab' or a local HF directory.

    A local directory must hold a causal-LM checkpoint and a tokenizer. The prompt
    format is the lab's for the lab model and the tokenizer's chat template (when it
    has one) otherwise.
    """
    torch_dtype = {"float32": torch.float32, "bfloat16": torch.bfloat16}[dtype]
    if name == "lab":
        from entrostat.models.lab import LabRecipe, format_prompt, load_lab_base_model

        recipe = LabRecipe(**(lab_recipe or {}))
        model, tok = load_lab_base_model(cache_dir=cache_dir, seed=seed, progress=progress, recipe=recipe)
        return model.to(torch_dtype), tok, format_prompt
    path = Path(name).expanduser()
    if not path.exists():
        raise ModelLoadError(
            f"model {name!r} is neither 'lab' nor an existing local directory; no model hub is reachable from "
            "here, so point model.name at a local Hugging Face model directory (config.json, weights, tokenizer)"
        )
    from transformers import AutoModelForCausalLM, AutoTokenizer

    try:
        tok = AutoTokenizer.from_pretrained(str(path))
    except Exception as exc:  # noqa: BLE001 - transformers raises many kinds
        raise ModelLoadError(f"no usable tokenizer in {path}: {exc}. Save one there with tokenizer.save_pretrained") from exc
    model = AutoModelForCausalLM.from_pretrained(str(path), dtype=torch_dtype)
    if tok.pad_token_id is None:
        tok.pad_token = tok.eos_token
    return model, tok, chat_formatter(tok)


def chat_formatter(tokenizer) -> Callable[[Problem], str]:
    """The tokenizer's chat template around a single user turn, or the raw prompt without one."""
    if getattr(tokenizer, "chat_template", None):
        def fmt(problem: Problem) -> str:
            msgs = [{"role": "user", "content": problem.prompt}]
            return tokenizer.apply_chat_template(msgs, tokenize=False, add_generation_prompt=True)

        return fmt
    return lambda problem: problem.prompt
