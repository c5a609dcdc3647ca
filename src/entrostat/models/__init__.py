"""Model loading: the tiny lab model, known aliases, local HF directories, GGUF files, hub names, LoRA."""

from entrostat.models.errors import ModelLoadError
from entrostat.models.gguf import convert_gguf
from entrostat.models.lab import (
    LabRecipe,
    build_lab_model,
    build_lab_tokenizer,
    format_prompt,
    load_lab_base_model,
)
from entrostat.models.loading import load_policy

__all__ = [
    "LabRecipe", "ModelLoadError", "build_lab_model", "build_lab_tokenizer", "convert_gguf", "format_prompt",
    "load_lab_base_model", "load_policy",
]
