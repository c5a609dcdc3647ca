"""Model loading; the tiny lab model and its cached base model."""

from entrostat.models.lab import (
    LabRecipe,
    build_lab_model,
    build_lab_tokenizer,
    format_prompt,
    load_lab_base_model,
)

__all__ = ["LabRecipe", "build_lab_model", "build_lab_tokenizer", "format_prompt", "load_lab_base_model"]
