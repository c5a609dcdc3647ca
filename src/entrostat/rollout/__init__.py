"""Samplers that turn prompts into completions, as rollout backends by name (``rollout.backends``):
HF transformers (CPU/GPU, ``rollout.hf``) and vLLM (optional, GPU, ``rollout.vllm``)."""

from entrostat.rollout.backends import BACKENDS, Sampler, build_backend
from entrostat.rollout.hf import sample_completions, sample_groups, tokenize_prompts

__all__ = ["BACKENDS", "Sampler", "build_backend", "sample_completions", "sample_groups", "tokenize_prompts"]
