"""Samplers that turn prompts into completions (HF transformers; vLLM later, optional)."""

from entrostat.rollout.hf import sample_completions, tokenize_prompts

__all__ = ["sample_completions", "tokenize_prompts"]
