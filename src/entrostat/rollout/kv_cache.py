"""A preallocated KV cache layer for transformers' ``Cache``, for the rollout decoding loops.

transformers' ``DynamicLayer`` grows its keys and values by ``torch.cat`` at every
step: each new token copies the whole cache (measured on SmolLM2-135M, 64 rows,
fp32, CPU: ~70–100 ms of a ~450 ms step at 150–200 cached positions, growing
linearly with the length). ``GrowingLayer`` allocates (B, H, capacity, D) once,
writes each step's keys/values in place and hands attention the filled prefix as
a view; its values are exactly the ``DynamicLayer``'s.

Unlike ``StaticLayer`` (also preallocated) attention sees only the filled prefix,
not ``capacity`` masked positions, and rows can leave the batch: ``batch_select_indices``
moves the kept rows' filled prefix to the front in place (copying the prefix only,
never the empty capacity). ``to_growing`` converts a prefilled ``DynamicCache``
(each prompt's rows repeated G times on the way) and declines caches it does not
understand (sliding-window, quantised or pre-4.56 caches), so callers fall back to
the HF cache.

``cache_kwargs`` and ``returned_cache`` name the cache the way the model's forward
does: transformers 5.24 renamed the forward argument and the output field
``past_key_values`` to ``cache`` (the old name warns, FutureWarning, and goes in
5.40); earlier versions only know ``past_key_values``.
"""

from __future__ import annotations

import inspect

from torch import Tensor

try:  # transformers ≥ 4.56: caches made of layer objects
    from transformers.cache_utils import DynamicLayer
except ImportError:  # pragma: no cover - older transformers: no GrowingLayer, callers use the HF cache
    DynamicLayer = None


if DynamicLayer is not None:

    class GrowingLayer(DynamicLayer):
        """Keys/values in preallocated (B, H, capacity, D) buffers; ``keys``/``values`` are the filled prefix."""

        def __init__(self, keys: Tensor, values: Tensor, capacity: int, repeats: int = 1):
            """Start from prefilled ``keys``/``values`` (P, H, n, D), each row repeated ``repeats`` times in place."""
            super().__init__()
            p, h, n, _ = keys.shape
            if capacity < n:
                raise ValueError(f"capacity {capacity} is below the {n} positions already cached")
            self.dtype, self.device = keys.dtype, keys.device
            self._k = keys.new_empty(p * repeats, h, capacity, keys.shape[-1])  # (B, H, C, D)
            self._v = values.new_empty(p * repeats, h, capacity, values.shape[-1])  # (B, H, C, Dv)
            self._k.view(p, repeats, h, capacity, -1)[:, :, :, :n] = keys[:, None]
            self._v.view(p, repeats, h, capacity, -1)[:, :, :, :n] = values[:, None]
            self.length, self.capacity = n, capacity
            self.is_initialized = True
            self._views()

        def _views(self) -> None:
            self.keys, self.values = self._k[:, :, : self.length], self._v[:, :, : self.length]

        def update(self, key_states: Tensor, value_states: Tensor, *args, **kwargs) -> tuple[Tensor, Tensor]:
            """Write (B, H, m, D) new states after the filled prefix; return the prefix (B, H, n + m, D)."""
            m = key_states.shape[-2]
            if self.length + m > self.capacity:
                raise RuntimeError(f"GrowingLayer is full: {self.length} + {m} positions exceed its capacity "
                                   f"{self.capacity} (allocate prompt length + max_new_tokens)")
            self._k[:, :, self.length : self.length + m] = key_states
            self._v[:, :, self.length : self.length + m] = value_states
            self.length += m
            self._views()
            return self.keys, self.values

        def get_seq_length(self) -> int:
            return self.length

        def batch_select_indices(self, indices: Tensor) -> None:
            """Keep rows ``indices`` (ascending), moved to the front in place; only the filled prefix is copied."""
            k, n = indices.numel(), self.length
            self._k[:k, :, :n] = self._k[indices, :, :n]
            self._v[:k, :, :n] = self._v[indices, :, :n]
            self._k, self._v = self._k[:k], self._v[:k]
            self._views()

        def batch_repeat_interleave(self, repeats: int) -> None:
            layer = GrowingLayer(self.keys, self.values, self.capacity, repeats)
            self._k, self._v = layer._k, layer._v
            self._views()

        def crop(self, tokens_to_remove: int) -> None:
            if tokens_to_remove > 0:
                raise ValueError("crop takes a negative number of tokens to remove")
            self.length = max(self.length + tokens_to_remove, 0)
            self._views()

        def reset(self) -> None:
            self.length = 0
            self._views()

else:  # pragma: no cover
    GrowingLayer = None


def to_growing(cache, capacity: int, repeats: int = 1) -> bool:
    """Replace the layers of a prefilled ``DynamicCache`` by ``GrowingLayer``s of ``capacity`` positions,
    each batch row repeated ``repeats`` times (rows p·G … p·G + G − 1 come from row p).

    Returns False, leaving ``cache`` untouched, when it is not a cache of plain ``DynamicLayer``s
    (then the caller repeats with ``cache.batch_repeat_interleave`` and decodes with the HF cache).
    """
    layers = getattr(cache, "layers", None)
    if GrowingLayer is None or not layers:
        return False
    if any(type(layer) is not DynamicLayer or not layer.is_initialized for layer in layers):
        return False
    cache.layers = [GrowingLayer(layer.keys, layer.values, capacity, repeats) for layer in layers]
    return True


def is_growing(cache) -> bool:
    """True when every layer of ``cache`` is a ``GrowingLayer``."""
    layers = getattr(cache, "layers", None)
    return GrowingLayer is not None and bool(layers) and all(isinstance(layer, GrowingLayer) for layer in layers)


def capacity_for(prompt_len: int, max_new_tokens: int) -> int:
    """Positions a decoding loop needs: the prompt, then one per generated token but the last
    (the last sampled token is never fed back)."""
    return prompt_len + max(max_new_tokens - 1, 0)


def forward_parameters(model) -> frozenset[str]:
    """Parameter names of ``model``'s forward (empty when its signature cannot be read). A PEFT
    wrapper's forward takes **kwargs and passes them on: its base model's signature decides."""
    base = model.get_base_model() if hasattr(model, "get_base_model") else model
    try:
        return frozenset(inspect.signature(base.forward).parameters)
    except (TypeError, ValueError):
        return frozenset()


def cache_kwargs(model, cache) -> dict:
    """The keyword that hands ``cache`` to ``model``'s forward: ``cache`` where the forward takes it
    (transformers >= 5.24), else ``past_key_values``."""
    return {"cache": cache} if "cache" in forward_parameters(model) else {"past_key_values": cache}


def returned_cache(out):
    """The cache a forward returned: ``out.cache`` (transformers >= 5.24), else ``out.past_key_values``."""
    return out.cache if hasattr(out, "cache") else out.past_key_values


__all__ = ["GrowingLayer", "cache_kwargs", "capacity_for", "forward_parameters", "is_growing", "returned_cache",
           "to_growing"]
