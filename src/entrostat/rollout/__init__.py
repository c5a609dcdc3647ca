"""Samplers that turn prompts into completions: HF transformers (CPU/GPU); vLLM (optional, GPU) in ``rollout.vllm``."""

from entrostat.rollout.hf import sample_completions, sample_groups, tokenize_prompts

__all__ = ["sample_completions", "sample_groups", "tokenize_prompts"]
