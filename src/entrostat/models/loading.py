"""Load the policy: the lab model, a known alias, a local HF directory, a .gguf file or a hub name.

``model.name`` is resolved in this order:

1. ``lab``: the built-in tiny model (pre-trained and cached on first use);
2. a known alias (``models/known.py``, e.g. ``smollm2-135m``): its GGUF converted once
   into the cache, then loaded as a directory;
3. an existing ``.gguf`` file: converted once into the cache (``models/gguf.py``);
4. an existing directory: a Hugging Face causal-LM checkpoint with its tokenizer;
5. anything else is taken for a hub id: loaded from the local hub cache, or downloaded
   when the hub is reachable; otherwise a ModelLoadError at once (``models/hub.py``).

Weights are cast to ``dtype``; with ``lora`` non-empty, LoRA adapters are added
(``models/lora.py``). The prompt format is the lab's for the lab model and the
tokenizer's chat template (when it has one) otherwise.
"""

from __future__ import annotations

from pathlib import Path
from typing import Callable

import torch

from entrostat.models.errors import ModelLoadError
from entrostat.models.hfutil import quiet_transformers
from entrostat.tasks.base import Problem

__all__ = ["ModelLoadError", "chat_formatter", "load_policy", "load_hf_directory"]

DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16}
TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json", "tokenizer.model", "vocab.json", "spiece.model")


def load_policy(
    name: str, *, dtype: str = "float32", seed: int = 0, cache_dir: str | None = None, progress: bool = True,
    lab_recipe: dict | None = None, lora: dict | None = None,
):
    """(model, tokenizer, format_prompt) for ``name`` (see the module docstring for what it may be)."""
    torch_dtype = DTYPES[dtype]
    if name == "lab":
        from entrostat.models.lab import LabRecipe, format_prompt, load_lab_base_model

        recipe = LabRecipe(**(lab_recipe or {}))
        model, tok = load_lab_base_model(cache_dir=cache_dir, seed=seed, progress=progress, recipe=recipe)
        model, fmt = model.to(torch_dtype), format_prompt
    else:
        model, tok = _load_transformers(name, torch_dtype, cache_dir, progress)
        fmt = chat_formatter(tok)
    if lora:
        from entrostat.models.lora import apply_lora

        model = apply_lora(model, lora)
    return model, tok, fmt


def _load_transformers(name: str, torch_dtype: torch.dtype, cache_dir: str | None, progress: bool):
    """(model, tokenizer) of anything but the lab model."""
    from entrostat.models.known import KNOWN_MODELS, prepare

    if name in KNOWN_MODELS:
        return load_hf_directory(prepare(name, progress=progress, cache_dir=cache_dir), torch_dtype, progress=progress)
    path = Path(name).expanduser()
    if path.is_file():
        from entrostat.models.gguf import convert_gguf

        if path.suffix.lower() != ".gguf":
            raise ModelLoadError(f"{path} is a file but not a .gguf; give a Hugging Face model directory or a .gguf file")
        return load_hf_directory(convert_gguf(path, progress=progress, cache_dir=cache_dir), torch_dtype, progress=progress)
    if path.is_dir():
        return load_hf_directory(path, torch_dtype, progress=progress)
    return _load_hub(name, torch_dtype, progress)


def load_hf_directory(path: Path, torch_dtype: torch.dtype = torch.float32, *, progress: bool = True):
    """(model, tokenizer) from a local Hugging Face directory, after checking it holds both.

    ``progress`` False also silences transformers' progress bars and warnings.
    """
    if not (path / "config.json").is_file():
        ggufs = sorted(p.name for p in path.glob("*.gguf"))
        hint = (f"it holds GGUF files; point model.name at one of them, e.g. {path / ggufs[0]}" if ggufs else
                "save a model there with model.save_pretrained, or point model.name at a .gguf file")
        raise ModelLoadError(f"{path} has no config.json, so it is not a Hugging Face model directory; {hint}")
    if not any((path / f).is_file() for f in TOKENIZER_FILES):
        raise ModelLoadError(
            f"{path} holds a model but no tokenizer (none of {', '.join(TOKENIZER_FILES)}); save one there with "
            f"tokenizer.save_pretrained('{path}'), or copy the tokenizer files of the model it was trained from"
        )
    from transformers import AutoModelForCausalLM, AutoTokenizer

    try:
        tok = AutoTokenizer.from_pretrained(str(path), local_files_only=True)
    except Exception as exc:  # noqa: BLE001 - transformers raises many kinds
        raise ModelLoadError(f"the tokenizer files in {path} could not be loaded: {exc}") from exc
    try:
        with quiet_transformers(not progress):
            model = AutoModelForCausalLM.from_pretrained(str(path), dtype=torch_dtype, local_files_only=True)
    except (OSError, ValueError, KeyError) as exc:
        raise ModelLoadError(f"{path} does not load as a causal language model: {exc}") from exc
    return model, _ready_tokenizer(tok)


def _load_hub(name: str, torch_dtype: torch.dtype, progress: bool):
    """(model, tokenizer) of a hub id: from the local hub cache, or downloaded when the hub is reachable."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from entrostat.models.hub import check_hub_name

    local = check_hub_name(name)  # raises at once when the hub cannot be used
    try:
        with quiet_transformers(not progress):
            tok = AutoTokenizer.from_pretrained(name, local_files_only=local)
            model = AutoModelForCausalLM.from_pretrained(name, dtype=torch_dtype, local_files_only=local)
    except (OSError, ValueError) as exc:
        raise ModelLoadError(f"hub model {name!r} could not be loaded: {exc}") from exc
    return model, _ready_tokenizer(tok)


def _ready_tokenizer(tok):
    """Left padding (prompts are batched for generation) and a pad token (EOS when the model has none)."""
    if tok.pad_token_id is None:
        tok.pad_token = tok.eos_token
    tok.padding_side = "left"
    return tok


def chat_formatter(tokenizer) -> Callable[[Problem], str]:
    """The tokenizer's chat template around a single user turn, or the raw prompt without one."""
    if getattr(tokenizer, "chat_template", None):
        def fmt(problem: Problem) -> str:
            msgs = [{"role": "user", "content": problem.prompt}]
            return tokenizer.apply_chat_template(msgs, tokenize=False, add_generation_prompt=True)

        return fmt
    return lambda problem: problem.prompt
