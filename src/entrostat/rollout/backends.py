"""Rollout backends by name: each builds a sampler with one interface, for rollouts and evaluation.

A backend is a factory registered in ``BACKENDS`` (``rollout.backend`` in the config
names one). ``build_backend(name, **settings)`` calls it with keyword settings and
returns a ``Sampler``:

- ``sample_groups(model, prompt_ids, prompt_mask, *, group_size, temperature,
  max_new_tokens, eos_token_id, pad_token_id, generator=None, top_p=1.0)`` — G
  completions of each of P left-padded prompts, as ``rollout.hf.sample_groups``
  returns them: completion ids, mask, sampler log-probs (each (P·G, T)) and
  is_truncated (P·G,), rows p·G … p·G + G − 1 from prompt p;
- ``sync_weights(model)`` — load the policy's current weights into a sampler that
  holds its own copy (vLLM); a no-op for one that samples from ``model`` itself (HF).

The settings the trainer passes are ``model``, ``tokenizer``, ``model_name``,
``work_dir``, ``dtype``, ``seed``, ``gpu_memory_utilization`` and ``lora``; a factory
takes the ones it needs and ignores the rest (``**_``). Registered here: ``hf`` (the
built-in transformers sampler, CPU or GPU) and ``vllm`` (``rollout.vllm``, imported
only when that backend is built, so vLLM is never imported otherwise). A plug-in
registers its own factory with ``@BACKENDS.register("name")``.
"""

from __future__ import annotations

from typing import Any, Callable, Protocol

import torch
from torch import Tensor

from entrostat.registry import Registry
from entrostat.rollout import hf


class Sampler(Protocol):
    """What a rollout backend builds (see the module docstring)."""

    def sample_groups(self, model, prompt_ids: Tensor, prompt_mask: Tensor, *, group_size: int,
                      temperature: Tensor | float, max_new_tokens: int, eos_token_id: int, pad_token_id: int,
                      generator: torch.Generator | None = None,
                      top_p: float = 1.0) -> tuple[Tensor, Tensor, Tensor, Tensor]: ...

    def sync_weights(self, model: torch.nn.Module) -> None: ...


BACKENDS: Registry[Callable[..., Sampler]] = Registry("rollout backend")


class HFSampler:
    """The built-in sampler (``rollout.hf.sample_groups``): it samples from the model it is given."""

    sample_groups = staticmethod(hf.sample_groups)

    def sync_weights(self, model: torch.nn.Module) -> None:
        """Nothing to load: every call samples from ``model`` itself."""


HF_SAMPLER = HFSampler()  # stateless: the default sampler of rollouts and evaluation


@BACKENDS.register("hf")
def hf_backend(**_: Any) -> HFSampler:
    """The built-in transformers sampler (CPU or GPU); it needs no settings."""
    return HF_SAMPLER


@BACKENDS.register("vllm")
def vllm_backend(**settings: Any) -> Sampler:
    """A ``rollout.vllm.VLLMSampler`` (CUDA GPU and ``entrostat[vllm]``), see ``build_vllm_sampler``."""
    from entrostat.rollout.vllm import build_vllm_sampler

    return build_vllm_sampler(**settings)


def build_backend(name: str, **settings: Any) -> Sampler:
    """The sampler of the backend registered as ``name``, built from ``settings``.

    An unknown name raises ConfigError listing the registered backends (and the closest one).
    """
    return BACKENDS.get(name)(**settings)


__all__ = ["BACKENDS", "HFSampler", "HF_SAMPLER", "Sampler", "build_backend", "hf_backend", "vllm_backend"]
