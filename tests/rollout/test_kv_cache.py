"""GrowingLayer against transformers' DynamicLayer; to_growing on real and unsupported caches; the compaction rule;
the cache keyword of each transformers version."""

import warnings
from types import SimpleNamespace

import pytest
import torch
import transformers
from transformers import DynamicCache
from transformers.cache_utils import DynamicLayer, DynamicSlidingWindowLayer

import entrostat.rollout.hf as hf
from entrostat.models.lab import build_lab_model, build_lab_tokenizer
from entrostat.rollout.decode import _should_compact
from entrostat.rollout.hf import _prefill, sample_groups, tokenize_prompts
from entrostat.rollout.kv_cache import (
    GrowingLayer,
    cache_kwargs,
    capacity_for,
    forward_parameters,
    is_growing,
    returned_cache,
    to_growing,
)


def _states(b, n, seed):
    gen = torch.Generator().manual_seed(seed)
    return torch.randn(b, 2, n, 4, generator=gen), torch.randn(b, 2, n, 4, generator=gen)  # (B, H, n, D)


def test_growing_layer_matches_dynamic_layer_through_updates_and_row_drops():
    k0, v0 = _states(3, 5, 0)
    ref = DynamicLayer()
    ref.update(k0.repeat_interleave(2, 0), v0.repeat_interleave(2, 0))
    layer = GrowingLayer(k0, v0, capacity=9, repeats=2)  # rows 0,0,1,1,2,2
    for step in range(4):
        k, v = _states(ref.keys.shape[0], 1, step + 1)
        kr, vr = ref.update(k, v)
        kg, vg = layer.update(k, v)
        assert torch.equal(kr, kg) and torch.equal(vr, vg) and layer.get_seq_length() == ref.get_seq_length()
        if step == 1:
            keep = torch.tensor([0, 3, 4])
            ref.batch_select_indices(keep)
            layer.batch_select_indices(keep)
            assert torch.equal(ref.keys, layer.keys) and torch.equal(ref.values, layer.values)
    with pytest.raises(RuntimeError, match="capacity"):
        layer.update(*_states(3, 1, 9))


def test_to_growing_gives_the_same_logits_as_the_dynamic_cache():
    tok = build_lab_tokenizer()
    model = build_lab_model(tok, seed=0, hidden_size=32, intermediate_size=64, num_layers=2, num_heads=2).eval()
    ids, mask = tokenize_prompts(tok, ["13:385176=", "7:12="])
    with torch.no_grad():
        _, ref_cache, attn, pos = _prefill(model, ids, mask)
        _, cache, _, _ = _prefill(model, ids, mask)
        ref_cache.batch_repeat_interleave(3)
        assert to_growing(cache, capacity_for(attn.shape[1], 4), repeats=3) and is_growing(cache)
        attn, pos = attn.repeat_interleave(3, 0), pos.repeat_interleave(3, 0)
        nxt = torch.arange(6)[:, None] + 5
        for step in range(3):
            attn = torch.cat([attn, attn.new_ones(6, 1)], 1)
            kw = dict(input_ids=nxt, attention_mask=attn, position_ids=pos + step, use_cache=True)
            a = model(**cache_kwargs(model, ref_cache), **kw).logits
            b = model(**cache_kwargs(model, cache), **kw).logits
            torch.testing.assert_close(a, b, atol=1e-6, rtol=0)


def test_to_growing_declines_other_caches():
    cache = DynamicCache()
    cache.layers = [DynamicSlidingWindowLayer(sliding_window=4)]
    cache.layers[0].update(*_states(1, 2, 0))
    assert not to_growing(cache, 8) and not is_growing(cache)
    assert not to_growing(object(), 8)


def test_compaction_rule():
    assert not _should_compact(0, 64, 100, lazy=True)
    assert _should_compact(1, 64, 100, lazy=True)  # 100 wasted row-steps > one 64-row step
    assert not _should_compact(1, 64, 10, lazy=True)  # near the end: decode on
    assert _should_compact(7, 64, 10, lazy=True)
    assert _should_compact(1, 64, 1, lazy=False)  # HF cache: drop at once
    assert not _should_compact(5, 64, 0, lazy=False)  # no step left


def test_the_cache_is_named_as_the_models_forward_names_it():
    class Old:  # transformers < 5.24
        def forward(self, input_ids, past_key_values=None, use_cache=None): ...

    class New:  # transformers >= 5.24
        def forward(self, input_ids, cache=None, use_cache=None, **kwargs): ...

    class Peft:  # a wrapper passing **kwargs on: its base model decides
        def get_base_model(self):
            return New()

        def forward(self, *args, **kwargs): ...

    c = object()
    assert cache_kwargs(Old(), c) == {"past_key_values": c}
    assert cache_kwargs(New(), c) == cache_kwargs(Peft(), c) == {"cache": c}
    assert returned_cache(SimpleNamespace(cache=c)) is c and returned_cache(SimpleNamespace(past_key_values=c)) is c
    model = build_lab_model(build_lab_tokenizer(), seed=0, hidden_size=32, intermediate_size=64, num_layers=2,
                            num_heads=2)
    new_api = tuple(int(x) for x in transformers.__version__.split(".")[:2]) >= (5, 24)
    assert ("cache" in forward_parameters(model)) == new_api


@pytest.mark.parametrize("growing", [True, False])
def test_sampling_passes_no_deprecated_cache_argument(growing, monkeypatch):
    """Prefill and decoding, with the preallocated cache and with transformers' own (FutureWarning as an error)."""
    tok = build_lab_tokenizer()
    model = build_lab_model(tok, seed=0, hidden_size=32, intermediate_size=64, num_layers=2, num_heads=2).eval()
    ids, mask = tokenize_prompts(tok, ["13:385176=", "7:12="])
    if not growing:
        monkeypatch.setattr(hf, "to_growing", lambda *a, **k: False)
    with warnings.catch_warnings():
        warnings.simplefilter("error", FutureWarning)
        out, *_ = sample_groups(model, ids, mask, group_size=3, temperature=1.0, max_new_tokens=4, eos_token_id=-1,
                                pad_token_id=tok.pad_token_id, generator=torch.Generator().manual_seed(0))
    assert out.shape == (6, 4)
