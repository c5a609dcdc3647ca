"""sample_groups (shared prefill, finished rows dropped) against sample_completions and naive recomputation;
nucleus (top-p) sampling."""

import math

import pytest
import torch

from entrostat.models.lab import build_lab_model
from entrostat.rollout import sample_completions, sample_groups, tokenize_prompts
from entrostat.rollout.hf import top_p_logprobs

PROMPTS = ["13:385176=", "7:12=", "9:0123456789=", "5:4="]


@pytest.fixture(scope="module")
def sharp_model(tok):
    """Random weights large enough that greedy outputs depend on the prompt and the position."""
    model = build_lab_model(tok, seed=0, hidden_size=32, intermediate_size=64, num_layers=2, num_heads=2).eval()
    gen = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for p in model.parameters():
            if p.dim() > 1:
                p.copy_(0.3 * torch.randn(p.shape, generator=gen))
    return model


@pytest.fixture(scope="module")
def eos(model, tok):
    """A token the random model emits often, used as EOS so that rows finish at different steps."""
    ids, mask = tokenize_prompts(tok, PROMPTS)
    out, *_ = sample_groups(model, ids, mask, group_size=64, temperature=1.0, max_new_tokens=6, eos_token_id=-1,
                            pad_token_id=tok.pad_token_id, generator=torch.Generator().manual_seed(0))
    return int(out.flatten().mode().values)


def _groups(model, tok, prompts, g, temp, eos, seed=0, max_new=8, top_p=1.0):
    ids, mask = tokenize_prompts(tok, prompts)
    return sample_groups(model, ids, mask, group_size=g, temperature=temp, max_new_tokens=max_new, eos_token_id=eos,
                         pad_token_id=tok.pad_token_id, generator=torch.Generator().manual_seed(seed), top_p=top_p)


def test_greedy_equals_sample_completions_on_repeated_prompts(sharp_model, tok):
    model = sharp_model
    ids, mask = tokenize_prompts(tok, PROMPTS)
    rep_ids, rep_mask = ids.repeat_interleave(3, 0), mask.repeat_interleave(3, 0)

    def reference(eos):
        return sample_completions(model, rep_ids, rep_mask, temperature=torch.zeros(12), max_new_tokens=8,
                                  eos_token_id=eos, pad_token_id=tok.pad_token_id)

    # EOS: a token of the greedy outputs that ends some rows early and not others, so rows leave the batch
    candidates = reference(-1)[0].flatten().unique().tolist()
    eos = next(t for t in candidates if len(set(reference(t)[1].sum(-1).tolist())) > 2)
    for a, b in zip(reference(eos), _groups(model, tok, PROMPTS, 3, 0.0, eos)):
        assert torch.equal(a, b)


def test_structure_and_logprobs_match_naive_recomputation(model, tok, eos):
    comp, cmask, logps, truncated = _groups(model, tok, PROMPTS, 8, 0.7, eos, seed=1)
    assert comp.shape == cmask.shape == logps.shape and comp.shape[0] == 32
    for i in range(32):
        n = int(cmask[i].sum())
        assert cmask[i, :n].eq(1).all() and cmask[i, n:].eq(0).all()
        assert comp[i, n:].eq(tok.pad_token_id).all() and logps[i, n:].eq(0).all()
        assert bool(truncated[i]) == (eos not in comp[i, :n].tolist())
        assert truncated[i] or comp[i, n - 1] == eos
        p = tok(PROMPTS[i // 8], return_tensors="pt")["input_ids"]
        full = torch.cat([p, comp[i : i + 1, :n]], dim=1)
        with torch.no_grad():
            logits = model(input_ids=full).logits[0, p.shape[1] - 1 : -1]
        ref = torch.log_softmax(logits / 0.7, -1).gather(-1, comp[i, :n, None]).squeeze(-1)
        torch.testing.assert_close(logps[i, :n], ref, atol=1e-4, rtol=0)


def test_first_token_frequencies_follow_the_model(model, tok):
    g = 4000
    comp, *_ = _groups(model, tok, PROMPTS[:1], g, 1.0, eos=-1, max_new=1, seed=2)
    with torch.no_grad():
        probs = torch.softmax(model(**tok(PROMPTS[:1], return_tensors="pt")).logits[0, -1], -1)
    freq = torch.bincount(comp[:, 0], minlength=probs.numel()).float() / g
    assert (freq - probs).abs().max() < 4 * math.sqrt(0.25 / g)


def test_deterministic_for_a_seed(model, tok, eos):
    a = _groups(model, tok, PROMPTS, 5, 1.0, eos, seed=3)
    b = _groups(model, tok, PROMPTS, 5, 1.0, eos, seed=3)
    c = _groups(model, tok, PROMPTS, 5, 1.0, eos, seed=4)
    assert all(torch.equal(x, y) for x, y in zip(a, b))
    assert not torch.equal(a[0], c[0])


def test_top_p_nucleus_by_hand():
    logp = torch.tensor([[0.5, 0.3, 0.15, 0.05], [0.05, 0.15, 0.3, 0.5]]).log()
    torch.testing.assert_close(top_p_logprobs(logp, 0.7).exp(), torch.tensor([[0.625, 0.375, 0, 0], [0, 0, 0.375, 0.625]]))
    torch.testing.assert_close(top_p_logprobs(logp, 0.45).exp()[0], torch.tensor([1.0, 0, 0, 0]))  # 0.45 reached: stop
    torch.testing.assert_close(top_p_logprobs(logp, 0.51).exp()[0], torch.tensor([0.625, 0.375, 0, 0]))
    torch.testing.assert_close(top_p_logprobs(logp, 1e-6).exp()[1], torch.tensor([0, 0, 0, 1.0]))


def test_top_p_samples_stay_in_the_nucleus(model, tok):
    comp, _, logps, _ = _groups(model, tok, PROMPTS[:1], 500, 1.0, eos=-1, max_new=1, top_p=0.3)
    with torch.no_grad():
        logp = torch.log_softmax(model(**tok(PROMPTS[:1], return_tensors="pt")).logits[0, -1:], -1)
    nucleus = top_p_logprobs(logp, 0.3)[0]
    assert torch.isfinite(nucleus[comp[:, 0]]).all()
    torch.testing.assert_close(logps[:, 0], nucleus[comp[:, 0]])  # log-prob under the distribution sampled


def test_validates(model, tok):
    ids, mask = tokenize_prompts(tok, PROMPTS)
    kw = dict(temperature=1.0, max_new_tokens=2, eos_token_id=2, pad_token_id=0)
    with pytest.raises(ValueError, match="group_size"):
        sample_groups(model, ids, mask, group_size=0, **kw)
    for bad in (0.0, 1.5):
        with pytest.raises(ValueError, match="top_p"):
            sample_groups(model, ids, mask, group_size=2, top_p=bad, **kw)
