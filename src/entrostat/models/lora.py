"""LoRA adapters through PEFT (optional): applied to the policy, saved and restored alone.

``apply_lora`` calls ``peft.get_peft_model`` and returns the *transformers* model
it wrapped, now holding the adapter layers with every other weight frozen: the
trainer and the sampler call that model directly (``logits_to_keep``,
``position_ids``, an explicit cache), which the ``PeftModel`` wrapper's forward
signature would hide. A LoRA model's checkpoints hold only the adapter tensors
(the base weights come again from ``model.name``); ``checkpoint_weights`` and
``load_checkpoint_weights`` are the one place that decides this. peft is imported
only when LoRA is asked for.
"""

from __future__ import annotations

import warnings
from typing import Any

import torch

from entrostat.models.errors import ModelLoadError

LORA_DEFAULTS: dict[str, Any] = {"r": 16, "alpha": 32, "dropout": 0.0, "target_modules": "all-linear"}
ADAPTER_MARK = "lora_"  # in the state-dict key of every LoRA tensor (lora_A, lora_B, lora_embedding_*, ...)


def lora_settings(lora: dict, where: str = "model.lora") -> dict[str, Any]:
    """``lora`` completed with LORA_DEFAULTS; ValueError naming a wrong key or value."""
    unknown = sorted(set(lora) - set(LORA_DEFAULTS))
    if unknown:
        raise ValueError(f"{where}: unknown key(s) {unknown}; allowed: {', '.join(LORA_DEFAULTS)}")
    s = {**LORA_DEFAULTS, **lora}
    if not isinstance(s["r"], int) or s["r"] < 1:
        raise ValueError(f"{where}.r = {s['r']!r}: the adapter rank must be an integer ≥ 1 (e.g. 8, 16, 64)")
    if not isinstance(s["alpha"], (int, float)) or s["alpha"] <= 0:
        raise ValueError(f"{where}.alpha = {s['alpha']!r} must be > 0 (the update is scaled by alpha / r)")
    if not isinstance(s["dropout"], (int, float)) or not 0 <= s["dropout"] < 1:
        raise ValueError(f"{where}.dropout = {s['dropout']!r} must be in [0, 1)")
    tm = s["target_modules"]
    if not (isinstance(tm, str) or (isinstance(tm, list) and tm and all(isinstance(x, str) for x in tm))):
        raise ValueError(f"{where}.target_modules = {tm!r}: use 'all-linear' or a list of module names, e.g. [q_proj, v_proj]")
    return s


def apply_lora(model: torch.nn.Module, lora: dict) -> torch.nn.Module:
    """``model`` with LoRA adapters (``lora`` over LORA_DEFAULTS); only adapter parameters require grad."""
    try:
        from peft import LoraConfig, get_peft_model
    except ImportError as exc:
        raise ModelLoadError("model.lora needs the peft package: pip install peft (or entrostat[real]); "
                             "or set model.lora={} for full fine-tuning") from exc
    s = lora_settings(lora)
    config = LoraConfig(r=s["r"], lora_alpha=s["alpha"], lora_dropout=s["dropout"],
                        target_modules=s["target_modules"], task_type="CAUSAL_LM")
    try:
        with warnings.catch_warnings():  # peft asks transformers a deprecated question (is_gradient_checkpointing)
            warnings.filterwarnings("ignore", category=FutureWarning, message=".*is_gradient_checkpointing")
            peft_model = get_peft_model(model, config)
    except ValueError as exc:  # e.g. target modules not found
        raise ModelLoadError(f"LoRA could not be applied ({exc}); check model.lora.target_modules") from exc
    return peft_model.get_base_model()


def is_lora(model: torch.nn.Module) -> bool:
    """Whether ``model`` holds LoRA adapter tensors."""
    return any(ADAPTER_MARK in name for name, _ in model.named_parameters())


def trainable_parameters(model: torch.nn.Module) -> list[torch.nn.Parameter]:
    """The parameters the optimizer updates: those requiring grad (the adapters of a LoRA model)."""
    return [p for p in model.parameters() if p.requires_grad]


def checkpoint_weights(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    """What a checkpoint stores: every tensor of a plain model; only the adapter tensors of a LoRA model."""
    state = model.state_dict()
    if is_lora(model):
        state = {k: v for k, v in state.items() if ADAPTER_MARK in k}
    return {k: v.detach().contiguous().clone() for k, v in state.items()}  # safetensors refuses tied storage


def load_checkpoint_weights(model: torch.nn.Module, weights: dict[str, torch.Tensor]) -> None:
    """Load what ``checkpoint_weights`` saved: all tensors exactly, or exactly the adapter tensors."""
    saved_lora = any(ADAPTER_MARK in k for k in weights)
    if saved_lora != is_lora(model):
        raise ModelLoadError(
            "the checkpoint holds " + ("LoRA adapter weights but the model has no adapters; set model.lora as in "
                                       "the run that wrote it" if saved_lora else
                                       "full model weights but the model has LoRA adapters; set model.lora={} as "
                                       "in the run that wrote it")
        )
    if not saved_lora:
        _load(model, weights, strict=True)
        return
    expected = {k for k in model.state_dict() if ADAPTER_MARK in k}
    if set(weights) != expected:
        missing, extra = sorted(expected - set(weights)), sorted(set(weights) - expected)
        raise ModelLoadError(
            f"the checkpoint's LoRA tensors do not match the model's (missing {missing[:3]}, unexpected {extra[:3]}); "
            "use the same model.name and model.lora as the run that wrote it"
        )
    _load(model, weights, strict=False)


def _load(model: torch.nn.Module, weights: dict[str, torch.Tensor], strict: bool) -> None:
    try:
        model.load_state_dict(weights, strict=strict)
    except RuntimeError as exc:  # missing / unexpected keys, shape mismatches
        raise ModelLoadError(f"the checkpoint does not fit the model ({str(exc)[:300]}); use the same model.name, "
                             "model.lab_recipe and model.lora as the run that wrote it") from exc


def merge_lora(model: torch.nn.Module) -> torch.nn.Module:
    """Fold the adapters into the base weights in place (faster sampling; for evaluation, not training)."""
    if not is_lora(model):
        return model
    from peft.tuners.tuners_utils import BaseTunerLayer

    for module in model.modules():
        if isinstance(module, BaseTunerLayer) and not module.merged:
            module.merge()
    return model
