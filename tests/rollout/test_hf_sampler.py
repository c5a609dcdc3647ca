"""The KV-cache sampler against a naive full-forward reference on a tiny random Llama."""

import pytest
import torch

from entrostat.rollout import sample_completions, tokenize_prompts

PROMPTS = ["13:385176=", "7:12=", "9:0123456789=", "5:4="]


@pytest.fixture(scope="module")
def frequent_token(model, tok):
    """A token the random model emits often: used as EOS so that many rows finish early."""
    ids, mask = tokenize_prompts(tok, PROMPTS * 16)
    out, *_ = sample_completions(model, ids, mask, temperature=torch.ones(ids.shape[0]), max_new_tokens=6,
                                 eos_token_id=-1, pad_token_id=tok.pad_token_id,
                                 generator=torch.Generator().manual_seed(0))
    return int(out.flatten().mode().values)


def _sample(model, tok, prompts, temps, eos, seed=0, max_new=8):
    ids, mask = tokenize_prompts(tok, prompts)
    gen = torch.Generator().manual_seed(seed)
    return ids, mask, sample_completions(model, ids, mask, temperature=torch.as_tensor(temps, dtype=torch.float32),
                                         max_new_tokens=max_new, eos_token_id=eos, pad_token_id=tok.pad_token_id,
                                         generator=gen)


def _naive_logprobs(model, tok, prompt, completion, temp):
    """Log-probs of ``completion`` after ``prompt`` (unpadded), by full forwards without a cache."""
    p = tok(prompt, return_tensors="pt")["input_ids"]  # (1, Tp)
    full = torch.cat([p, torch.tensor([completion])], dim=1)
    with torch.no_grad():
        logits = model(input_ids=full).logits[0, p.shape[1] - 1 : -1].float()  # (L, V)
    return torch.log_softmax(logits / temp, -1).gather(-1, torch.tensor(completion)[:, None]).squeeze(-1)


def _greedy_naive(model, tok, prompt, n):
    ids = tok(prompt, return_tensors="pt")["input_ids"]
    out = []
    with torch.no_grad():
        for _ in range(n):
            nxt = int(model(input_ids=ids).logits[0, -1].argmax())
            out.append(nxt)
            ids = torch.cat([ids, torch.tensor([[nxt]])], dim=1)
    return out


def test_tokenize_prompts_left_pads(tok):
    ids, mask = tokenize_prompts(tok, ["7:1=", "13:385176="])
    assert ids.shape == mask.shape == (2, 11) and ids.dtype == mask.dtype == torch.long
    assert mask[0].tolist() == [0] * 6 + [1] * 5 and ids[0, :6].eq(tok.pad_token_id).all()
    assert ids[0, 6] == tok.bos_token_id


def test_shapes_and_mask_structure(model, tok, frequent_token):
    prompts = PROMPTS * 16
    _, _, (comp, cmask, logps, trunc) = _sample(model, tok, prompts, [1.0] * len(prompts), frequent_token)
    b, t = comp.shape
    assert b == len(prompts) and t <= 8 and cmask.shape == logps.shape == (b, t) and trunc.shape == (b,)
    assert comp.dtype == torch.long and cmask.dtype == torch.float32 and trunc.dtype == torch.bool
    assert int(cmask.sum(1).max()) == t  # T is the longest completion actually generated
    assert 0 < int(trunc.sum()) < b  # the fixture's EOS ends some rows, not all
    for row, m, lp, tr in zip(comp.tolist(), cmask.tolist(), logps, trunc.tolist()):
        n = int(sum(m))
        assert m == [1.0] * n + [0.0] * (t - n)  # a prefix
        assert row[n:] == [tok.pad_token_id] * (t - n) and bool((lp[n:] == 0).all())
        assert bool((lp[:n] <= 0).all())
        if tr:
            assert n == 8 and frequent_token not in row
        else:
            assert row[n - 1] == frequent_token and frequent_token not in row[: n - 1]  # mask includes EOS, stops there


def test_stops_early_when_all_rows_finish(model, tok):
    _, _, (free, *_) = _sample(model, tok, [PROMPTS[0]], [1.0], eos=-1, seed=11, max_new=8)
    row = free[0].tolist()
    stop = min(j for j in range(1, 8) if row[j] not in row[:j])  # first later step with a new token
    assert stop < 7, "pick another seed: no early stop possible"
    _, _, (comp, cmask, _, trunc) = _sample(model, tok, [PROMPTS[0]], [1.0], eos=row[stop], seed=11, max_new=8)
    assert comp[0].tolist() == row[: stop + 1]  # same random stream, stopped at the EOS
    assert comp.shape[1] == stop + 1 and cmask.all() and not trunc.any()


def test_deterministic_for_a_fixed_generator(model, tok):
    prompts, temps = PROMPTS * 8, [1.0] * 32
    a = _sample(model, tok, prompts, temps, eos=-1, seed=5)[2]
    b = _sample(model, tok, prompts, temps, eos=-1, seed=5)[2]
    c = _sample(model, tok, prompts, temps, eos=-1, seed=6)[2]
    for x, y in zip(a, b):
        assert torch.equal(x, y)
    assert not torch.equal(a[0], c[0])


def test_low_temperature_picks_argmax(model, tok):
    for temp in (0.01, 0.0):
        _, _, (comp, _, logps, _) = _sample(model, tok, PROMPTS, [temp] * len(PROMPTS), eos=-1, max_new=6)
        for prompt, row in zip(PROMPTS, comp.tolist()):
            assert row == _greedy_naive(model, tok, prompt, 6)
        assert logps.abs().max() < 1e-3


def test_per_row_temperature_and_logprobs_match_naive_recomputation(model, tok, frequent_token):
    prompts = PROMPTS * 4
    temps = [0.5, 1.0, 2.0, 0.01] * 4
    _, _, (comp, cmask, logps, _) = _sample(model, tok, prompts, temps, frequent_token, seed=3)
    for i, (prompt, temp) in enumerate(zip(prompts, temps)):
        n = int(cmask[i].sum())
        ref = _naive_logprobs(model, tok, prompt, comp[i, :n].tolist(), temp)
        torch.testing.assert_close(logps[i, :n], ref, atol=1e-4, rtol=0)
        if temp == 0.01:
            assert comp[i, :n].tolist() == _greedy_naive(model, tok, prompt, 8)[:n]
    hot = [i for i, t in enumerate(temps) if t == 2.0]
    n = int(cmask[hot[0]].sum())
    at_one = _naive_logprobs(model, tok, prompts[hot[0]], comp[hot[0], :n].tolist(), 1.0)
    assert not torch.allclose(logps[hot[0], :n], at_one, atol=1e-3)  # the row's own temperature was used


def test_left_padding_matches_single_unpadded_prompt(model, tok):
    _, mask, (comp, cmask, _, _) = _sample(model, tok, PROMPTS, [0.0] * len(PROMPTS), eos=-1, max_new=6)
    assert (mask == 0).any()  # the batch really is padded
    for i, prompt in enumerate(PROMPTS):
        _, _, (one, one_mask, _, _) = _sample(model, tok, [prompt], [0.0], eos=-1, max_new=6)
        assert comp[i].tolist() == one[0].tolist() and torch.equal(cmask[i], one_mask[0])


def test_restores_training_mode_and_validates(model, tok):
    ids, mask = tokenize_prompts(tok, PROMPTS)
    model.train()
    try:
        sample_completions(model, ids, mask, temperature=torch.ones(4), max_new_tokens=2, eos_token_id=2,
                           pad_token_id=0)
        assert model.training
    finally:
        model.eval()
    with pytest.raises(ValueError, match="max_new_tokens"):
        sample_completions(model, ids, mask, temperature=torch.ones(4), max_new_tokens=0, eos_token_id=2,
                           pad_token_id=0)
