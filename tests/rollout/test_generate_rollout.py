"""The training path: generate_rollout (shared prefill, per-row temperatures, finished rows dropped) against a fresh
forward pass, and the preallocated cache against transformers' DynamicCache."""

import pytest
import torch

import entrostat.rollout.hf as hf
from entrostat.models.lab import build_lab_model, format_prompt
from entrostat.rollout.batch import generate_rollout
from entrostat.rollout.hf import sample_completions, sample_groups, tokenize_prompts
from entrostat.tasks.base import Problem
from entrostat.models.forward import completion_logprobs

PROMPTS = ["13:385176=", "7:12=", "9:0123456789=", "5:4="]


@pytest.fixture(scope="module")
def frequent_token(model, tok):
    """A token the random model emits often: as EOS, rows finish at many different steps."""
    ids, mask = tokenize_prompts(tok, PROMPTS)
    out, *_ = sample_groups(model, ids, mask, group_size=32, temperature=1.0, max_new_tokens=12, eos_token_id=-1,
                            pad_token_id=tok.pad_token_id, generator=torch.Generator().manual_seed(0))
    return int(out.flatten().mode().values)


class _Tok:
    """The lab tokenizer with a chosen EOS id (generate_rollout reads eos/pad from the tokenizer)."""

    def __init__(self, tok, eos):
        self._tok, self.eos_token_id, self.pad_token_id = tok, eos, tok.pad_token_id

    def __getattr__(self, name):
        return getattr(self._tok, name)

    def __call__(self, *args, **kwargs):
        return self._tok(*args, **kwargs)


def _rollout(model, tok, eos, temps, g=8, max_new=12, seed=1):
    problems = [Problem(prompt=p, answer="", id=str(i)) for i, p in enumerate(PROMPTS)]
    return generate_rollout(model, _Tok(tok, eos), problems, format_prompt=format_prompt, group_size=g,
                            temperature=torch.tensor(temps, dtype=torch.float32), max_new_tokens=max_new,
                            generator=torch.Generator().manual_seed(seed))


def test_sampler_logprobs_equal_a_fresh_forward_at_each_rows_temperature(model, tok, frequent_token):
    temps = [0.5, 1.0, 1.5, 2.0] * 8  # 4 prompts × 8 rows, mixed inside each group
    batch = _rollout(model, tok, frequent_token, temps)
    b, t = batch.completion_ids.shape
    assert b == 32 and batch.sampler_logprobs.shape == (b, t) and torch.equal(batch.temperature, torch.tensor(temps))
    for temp in set(temps):
        rows = torch.tensor([i for i, x in enumerate(temps) if x == temp])
        sub = batch.select(rows)
        with torch.no_grad():
            ref, _ = completion_logprobs(model, sub, temperature=temp)
        m = sub.completion_mask.bool()
        torch.testing.assert_close(sub.sampler_logprobs[m], ref[m], atol=1e-4, rtol=0)
        assert (sub.sampler_logprobs[~m] == 0).all()


def test_rollout_structure_eos_and_truncation(model, tok, frequent_token):
    batch = _rollout(model, tok, frequent_token, [1.0] * 32)
    ids, mask, trunc = batch.completion_ids, batch.completion_mask, batch.is_truncated
    assert torch.equal(batch.group_ids, torch.arange(4).repeat_interleave(8))
    single, _ = tokenize_prompts(tok, [format_prompt(Problem(prompt=p, answer="", id="x")) for p in PROMPTS])
    assert torch.equal(batch.prompt_ids, single.repeat_interleave(8, 0))  # each prompt G times, left-padded
    lengths = mask.sum(1).long()
    assert 0 < int(trunc.sum()) < 32 and len(set(lengths.tolist())) > 3  # rows finish at many different steps
    for i in range(32):
        n = int(lengths[i])
        assert mask[i, :n].eq(1).all() and mask[i, n:].eq(0).all() and ids[i, n:].eq(tok.pad_token_id).all()
        row = ids[i, :n].tolist()
        if trunc[i]:
            assert n == 12 and frequent_token not in row
        else:
            assert row[-1] == frequent_token and frequent_token not in row[:-1]
    assert batch.meta["texts"][0] == tok.decode(ids[0, : int(lengths[0])].tolist(), skip_special_tokens=True)


def test_deterministic_for_a_seed(model, tok, frequent_token):
    a = _rollout(model, tok, frequent_token, [1.0] * 32, seed=3)
    b = _rollout(model, tok, frequent_token, [1.0] * 32, seed=3)
    c = _rollout(model, tok, frequent_token, [1.0] * 32, seed=4)
    for f in ("completion_ids", "completion_mask", "sampler_logprobs", "is_truncated"):
        assert torch.equal(getattr(a, f), getattr(b, f))
    assert not torch.equal(a.completion_ids, c.completion_ids)


def test_preallocated_cache_equals_the_dynamic_cache_path(tok, monkeypatch):
    """Greedy decoding (no randomness) through both cache paths, with rows leaving at different steps."""
    model = build_lab_model(tok, seed=0, hidden_size=32, intermediate_size=64, num_layers=2, num_heads=2).eval()
    gen = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for p in model.parameters():
            if p.dim() > 1:
                p.copy_(0.3 * torch.randn(p.shape, generator=gen))
    ids, mask = tokenize_prompts(tok, PROMPTS)
    temp = torch.zeros(12)

    def run(eos):
        return sample_groups(model, ids, mask, group_size=3, temperature=temp, max_new_tokens=10, eos_token_id=eos,
                             pad_token_id=tok.pad_token_id)

    candidates = run(-1)[0].flatten().unique().tolist()
    eos = next(t for t in candidates if len(set(run(t)[1].sum(-1).tolist())) > 2)
    fast = run(eos)
    monkeypatch.setattr(hf, "to_growing", lambda *a, **k: False)  # HF DynamicCache, rows dropped at once
    slow = run(eos)
    for a, b in zip(fast, slow):
        assert torch.equal(a, b)


def test_sample_completions_accepts_a_number_and_rejects_bad_temperature_shapes(model, tok):
    ids, mask = tokenize_prompts(tok, PROMPTS)
    kw = dict(max_new_tokens=3, eos_token_id=-1, pad_token_id=tok.pad_token_id)
    out = sample_completions(model, ids, mask, temperature=0.0, **kw)
    assert out[0].shape == (4, 3)
    with pytest.raises(ValueError, match="temperature"):
        sample_completions(model, ids, mask, temperature=torch.ones(3), **kw)
