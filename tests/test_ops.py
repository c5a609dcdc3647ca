"""entrostat.ops: masked reductions, chunked log-probs / exact token entropy (ALGORITHMS.md glossary)."""

from __future__ import annotations

import math

import pytest
import torch

from entrostat import ops

NEG_INF = float("-inf")


# ---------------------------------------------------------------- naive references
def naive_logprobs_entropy(logits: torch.Tensor, labels: torch.Tensor, temperature: float = 1.0):
    """The obvious computation: fp32 (or fp64) upcast, log_softmax, gather, −Σ p·log p (autograd)."""
    z = logits.to(torch.promote_types(logits.dtype, torch.float32)) / temperature
    lp = torch.log_softmax(z, dim=-1)
    logp = lp.gather(-1, labels[..., None]).squeeze(-1)
    ent = -(lp.exp() * lp).sum(-1)
    return logp, ent


def _inputs(shape=(3, 7), v=13, seed=0, scale=3.0, dtype=torch.float32):
    g = torch.Generator().manual_seed(seed)
    logits = (torch.randn(*shape, v, generator=g) * scale).to(dtype)
    labels = torch.randint(0, v, shape, generator=g)
    return logits, labels


# ---------------------------------------------------------------- masked reductions
VALUES = torch.tensor([[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]])
MASK = torch.tensor([[1, 1, 0], [1, 0, 0]])


def test_masked_sum_and_mean_by_hand():
    # valid entries 1, 2, 4 → sum 7, mean 7/3; per row: sums (3, 4), means (1.5, 4)
    assert ops.masked_sum(VALUES, MASK).item() == 7.0
    assert ops.masked_mean(VALUES, MASK).item() == pytest.approx(7 / 3)
    assert ops.masked_sum(VALUES, MASK, dim=-1).tolist() == [3.0, 4.0]
    assert ops.masked_mean(VALUES, MASK, dim=-1).tolist() == [1.5, 4.0]
    # dim=0: column sums (1+4, 2, 0), counts (2, 1, 0 → clamped to 1)
    assert ops.masked_mean(VALUES, MASK, dim=0).tolist() == [2.5, 2.0, 0.0]


def test_masked_var_by_hand():
    # entries 1, 2, 4: mean 7/3, squared deviations 16/9 + 1/9 + 25/9 = 14/3
    assert ops.masked_var(VALUES, MASK).item() == pytest.approx(14 / 3 / 2)  # unbiased: / (n − 1)
    assert ops.masked_var(VALUES, MASK, unbiased=False).item() == pytest.approx(14 / 9)
    one = torch.tensor([[1, 0, 0], [0, 0, 0]])
    assert ops.masked_var(VALUES, one).item() == 0.0  # fewer than 2 entries: 0, not NaN


def test_masked_whiten():
    g = torch.Generator().manual_seed(1)
    v = torch.randn(4, 6, generator=g) * 3 + 5
    m = (torch.rand(4, 6, generator=g) > 0.3).int()
    w = ops.masked_whiten(v, m, eps=0.0)
    assert torch.all(w[m == 0] == 0)
    assert ops.masked_mean(w, m).item() == pytest.approx(0.0, abs=1e-6)
    assert ops.masked_var(w, m).item() == pytest.approx(1.0, rel=1e-5)
    # shift_mean=False keeps the mean: (v − μ)/σ + μ
    mu = ops.masked_mean(v, m)
    w2 = ops.masked_whiten(v, m, shift_mean=False, eps=0.0)
    torch.testing.assert_close(w2[m.bool()], (w + mu)[m.bool()])


def test_masked_reductions_ignore_masked_nan():
    v = VALUES.clone()
    v[0, 2] = float("nan")
    v[1, 1] = float("inf")
    assert ops.masked_sum(v, MASK).item() == 7.0
    assert ops.masked_mean(v, MASK).item() == pytest.approx(7 / 3)
    assert math.isfinite(ops.masked_var(v, MASK).item())


def test_masked_reductions_empty_mask_is_zero_not_nan():
    z = torch.zeros_like(MASK)
    assert ops.masked_sum(VALUES, z).item() == 0.0
    assert ops.masked_mean(VALUES, z).item() == 0.0
    assert ops.masked_var(VALUES, z).item() == 0.0


@pytest.mark.parametrize("fn", [ops.masked_sum, ops.masked_mean, ops.masked_var, ops.masked_whiten])
def test_masked_reductions_reject_mismatched_mask(fn):
    with pytest.raises(ValueError, match="mask"):
        fn(VALUES, MASK[:, :2])


def test_masked_mean_gradient_only_reaches_valid_entries():
    v = VALUES.clone().requires_grad_(True)
    ops.masked_mean(v, MASK).backward()
    torch.testing.assert_close(v.grad, torch.tensor([[1 / 3, 1 / 3, 0.0], [1 / 3, 0.0, 0.0]]))


# ---------------------------------------------------------------- chunked log-probs / entropy: values
def test_logprob_and_entropy_by_hand():
    # logits (0, ln 3) → p = (1/4, 3/4); log p(label 1) = ln 3/4; H = −(¼ ln ¼ + ¾ ln ¾) = 0.562335
    logits = torch.tensor([[0.0, math.log(3.0)]])
    logp, ent = ops.logprobs_and_entropy(logits, torch.tensor([1]))
    assert logp.item() == pytest.approx(math.log(0.75), abs=1e-6)
    assert ent.item() == pytest.approx(-(0.25 * math.log(0.25) + 0.75 * math.log(0.75)), abs=1e-6)
    # temperature 2: z = (0, ln 3 / 2) → p = (1, √3)/(1 + √3)
    p1 = math.sqrt(3) / (1 + math.sqrt(3))
    logp_t, ent_t = ops.logprobs_and_entropy(logits, torch.tensor([1]), temperature=2.0)
    assert logp_t.item() == pytest.approx(math.log(p1), abs=1e-6)
    assert ent_t.item() == pytest.approx(-(p1 * math.log(p1) + (1 - p1) * math.log(1 - p1)), abs=1e-6)


@pytest.mark.parametrize("chunk", [1, 3, 7, 16, 21, 1024])  # N = 21: 3 and 7 divide it, 16 does not
@pytest.mark.parametrize("temperature", [1.0, 0.7, 1.6])
def test_chunked_equals_naive_fp32(chunk, temperature):
    logits, labels = _inputs()
    logp, ent = ops.logprobs_and_entropy(logits, labels, temperature=temperature, chunk=chunk)
    ref_logp, ref_ent = naive_logprobs_entropy(logits, labels, temperature)
    assert logp.dtype == ent.dtype == torch.float32
    assert logp.shape == ent.shape == labels.shape
    torch.testing.assert_close(logp, ref_logp, rtol=0, atol=1e-5)
    torch.testing.assert_close(ent, ref_ent, rtol=0, atol=1e-5)


@pytest.mark.parametrize("chunk", [1, 5, 16, 1024])
@pytest.mark.parametrize("temperature", [1.0, 0.6])
def test_chunked_equals_naive_bf16(chunk, temperature):
    """bf16 logits are accumulated in fp32: equal to the naive computation on the fp32 upcast."""
    logits, labels = _inputs(shape=(2, 9), v=37, dtype=torch.bfloat16)
    logp, ent = ops.logprobs_and_entropy(logits, labels, temperature=temperature, chunk=chunk)
    ref_logp, ref_ent = naive_logprobs_entropy(logits.float(), labels, temperature)
    assert logp.dtype == ent.dtype == torch.float32
    torch.testing.assert_close(logp, ref_logp, rtol=0, atol=1e-5)
    torch.testing.assert_close(ent, ref_ent, rtol=0, atol=1e-5)


def test_single_purpose_helpers_match_the_pair():
    logits, labels = _inputs()
    logp, ent = ops.logprobs_and_entropy(logits, labels, temperature=0.9, chunk=4)
    torch.testing.assert_close(ops.logprobs_from_logits(logits, labels, temperature=0.9, chunk=5), logp)
    torch.testing.assert_close(ops.token_entropy_from_logits(logits, temperature=0.9, chunk=6), ent)


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
@pytest.mark.parametrize("temperature", [1.0, 0.8])
def test_banned_tokens_minus_inf_give_finite_entropy(dtype, temperature):
    """−inf logits (banned tokens) have p = 0: entropy and gradients stay finite and equal the
    computation over the allowed tokens only (the same distribution)."""
    logits, labels = _inputs(shape=(2, 5), v=11, dtype=dtype)
    banned = torch.zeros(11, dtype=torch.bool)
    banned[[0, 4, 10]] = True
    labels = labels.clamp(1, 3)  # labels among the allowed tokens 1..3, 5..9
    logits = logits.masked_fill(banned, NEG_INF).requires_grad_(True)
    logp, ent = ops.logprobs_and_entropy(logits, labels, temperature=temperature, chunk=3)
    assert torch.isfinite(logp).all() and torch.isfinite(ent).all()

    allowed = logits.detach()[..., ~banned].float().requires_grad_(True)
    remap = torch.cumsum(~banned, 0) - 1  # old index → index among allowed tokens
    ref_logp, ref_ent = naive_logprobs_entropy(allowed, remap[labels], temperature)
    torch.testing.assert_close(logp, ref_logp, rtol=0, atol=1e-5)
    torch.testing.assert_close(ent, ref_ent, rtol=0, atol=1e-5)

    g = torch.Generator().manual_seed(3)
    g_logp, g_ent = torch.randn(2, 5, generator=g), torch.randn(2, 5, generator=g)
    torch.autograd.backward([logp, ent], [g_logp, g_ent])
    torch.autograd.backward([ref_logp, ref_ent], [g_logp, g_ent])
    assert torch.isfinite(logits.grad).all()
    assert torch.all(logits.grad[..., banned] == 0)
    tol = 1e-5 if dtype == torch.float32 else 2e-2
    torch.testing.assert_close(logits.grad[..., ~banned].float(), allowed.grad, rtol=tol, atol=tol)


def test_nan_logits_propagate_to_nan_logprob():
    """Pinned: NaN in the model's logits is not hidden; the losses turn it into a NaN loss and the
    trainer skips non-finite updates."""
    logits, labels = _inputs(shape=(1, 3), v=5)
    logits[0, 1, 2] = float("nan")
    logp, ent = ops.logprobs_and_entropy(logits, labels)
    assert torch.isnan(logp[0, 1]) and torch.isnan(ent[0, 1])
    assert torch.isfinite(logp[0, [0, 2]]).all()  # other positions unaffected


# ---------------------------------------------------------------- chunked: gradients
@pytest.mark.parametrize("chunk", [1, 4, 1024])
@pytest.mark.parametrize("temperature", [1.0, 1.4])
def test_chunked_gradient_equals_autograd_of_naive(chunk, temperature):
    logits, labels = _inputs(shape=(2, 7), v=19, seed=5)
    a = logits.clone().requires_grad_(True)
    b = logits.clone().requires_grad_(True)
    g = torch.Generator().manual_seed(9)
    g_logp, g_ent = torch.randn(2, 7, generator=g), torch.randn(2, 7, generator=g)
    torch.autograd.backward(list(ops.logprobs_and_entropy(a, labels, temperature, chunk)), [g_logp, g_ent])
    torch.autograd.backward(list(naive_logprobs_entropy(b, labels, temperature)), [g_logp, g_ent])
    torch.testing.assert_close(a.grad, b.grad, rtol=1e-5, atol=1e-6)


def test_chunked_gradient_of_each_output_alone():
    """Only log-probs (logprobs_from_logits) or only entropy (token_entropy_from_logits) used."""
    logits, labels = _inputs(shape=(3, 4), v=9, seed=2)
    for f_ours, f_ref in (
        (lambda x: ops.logprobs_from_logits(x, labels, chunk=5), lambda x: naive_logprobs_entropy(x, labels)[0]),
        (lambda x: ops.token_entropy_from_logits(x, chunk=5), lambda x: naive_logprobs_entropy(x, labels)[1]),
        (lambda x: ops.logprobs_and_entropy(x, labels, chunk=5)[1], lambda x: naive_logprobs_entropy(x, labels)[1]),
    ):
        a = logits.clone().requires_grad_(True)
        b = logits.clone().requires_grad_(True)
        (f_ours(a) * torch.arange(12.0).view(3, 4)).sum().backward()
        (f_ref(b) * torch.arange(12.0).view(3, 4)).sum().backward()
        torch.testing.assert_close(a.grad, b.grad, rtol=1e-5, atol=1e-5)


def test_bf16_gradient_close_to_fp32_naive_and_stays_bf16():
    logits, labels = _inputs(shape=(2, 6), v=23, dtype=torch.bfloat16, seed=4)
    a = logits.clone().requires_grad_(True)
    b = logits.float().requires_grad_(True)
    g_logp, g_ent = torch.ones(2, 6), torch.full((2, 6), 0.5)
    torch.autograd.backward(list(ops.logprobs_and_entropy(a, labels, chunk=5)), [g_logp, g_ent])
    torch.autograd.backward(list(naive_logprobs_entropy(b, labels)), [g_logp, g_ent])
    assert a.grad.dtype == torch.bfloat16
    torch.testing.assert_close(a.grad.float(), b.grad, rtol=1e-2, atol=1e-2)


def test_gradcheck_float64():
    """Finite differences in float64 (the op must keep float64 inputs in float64)."""
    logits, labels = _inputs(shape=(2, 3), v=5, seed=7, scale=1.5, dtype=torch.float64)
    logits.requires_grad_(True)
    logp, ent = ops.logprobs_and_entropy(logits, labels)
    assert logp.dtype == ent.dtype == torch.float64
    for temperature, chunk in ((1.0, 1024), (0.7, 4), (1.3, 1)):
        assert torch.autograd.gradcheck(
            lambda x: ops.logprobs_and_entropy(x, labels, temperature=temperature, chunk=chunk), (logits,),
            eps=1e-6, atol=1e-7, rtol=1e-5,
        )


def test_backward_keeps_no_fp32_copy_of_the_logits():
    """The memory contract: the graph saves only the caller's logits (bf16 here) and O(N) vectors,
    never an fp32 (N, V) tensor (a naive log_softmax would keep two)."""
    logits, labels = _inputs(shape=(4, 8), v=64, dtype=torch.bfloat16)
    logits.requires_grad_(True)
    logp, _ = ops.logprobs_and_entropy(logits, labels, chunk=8)
    node = logp.grad_fn
    while not hasattr(node, "saved_tensors"):  # ViewBackward → the custom Function's node
        node = node.next_functions[0][0]
    big = [t for t in node.saved_tensors if t.numel() >= logits.numel()]
    assert len(big) == 1 and big[0].dtype == torch.bfloat16 and big[0].data_ptr() == logits.data_ptr()
    # the naive computation does keep fp32 (N, V) tensors: the check above is able to fail
    naive_node = naive_logprobs_entropy(logits, labels)[1].grad_fn
    saved = []
    stack = [naive_node]
    while stack:
        n = stack.pop()
        for name in dir(n):
            if name.startswith("_saved_"):
                v = getattr(n, name)
                if isinstance(v, torch.Tensor):
                    saved.append(v)
        stack.extend(f for f, _ in n.next_functions if f is not None)
    assert any(t.dtype == torch.float32 and t.numel() == logits.numel() for t in saved)


# ---------------------------------------------------------------- bad input
def test_labels_shape_mismatch_names_both():
    logits, labels = _inputs()
    for fn in (ops.logprobs_from_logits, ops.logprobs_and_entropy):
        with pytest.raises(ValueError, match="labels"):
            fn(logits, labels[:, :-1])
    with pytest.raises(ValueError, match="logits"):
        ops.logprobs_from_logits(logits[0], labels)


@pytest.mark.parametrize("bad", [0.0, -1.0, float("nan")])
def test_temperature_must_be_positive(bad):
    logits, labels = _inputs()
    with pytest.raises(ValueError, match="temperature"):
        ops.logprobs_and_entropy(logits, labels, temperature=bad)
    with pytest.raises(ValueError, match="temperature"):
        ops.token_entropy_from_logits(logits, temperature=bad)


@pytest.mark.parametrize("bad", [0, -4])
def test_chunk_must_be_positive(bad):
    logits, labels = _inputs()
    with pytest.raises(ValueError, match="chunk"):
        ops.logprobs_and_entropy(logits, labels, chunk=bad)


def test_check_finite_names_the_tensor_and_respects_mask():
    t = torch.tensor([[0.0, float("nan")], [float("inf"), 1.0]])
    with pytest.raises(ValueError, match=r"old_logprobs contains 2 non-finite"):
        ops.check_finite("old_logprobs", t)
    ops.check_finite("old_logprobs", t, mask=torch.tensor([[1, 0], [0, 1]]))  # bad values masked out: fine
    with pytest.raises(ValueError, match=r"contains 1 non-finite"):
        ops.check_finite("x", t, mask=torch.tensor([[1, 1], [0, 1]]))
