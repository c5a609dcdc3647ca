"""The vLLM backend: its pure parts on CPU with fake vLLM outputs; the real engine only on a CUDA machine with vLLM."""

import importlib.util
from types import SimpleNamespace

import pytest
import torch

from entrostat.config.base import ConfigError
from entrostat.rollout.backends import HF_SAMPLER, build_backend
from entrostat.rollout.batch import generate_rollout
from entrostat.rollout.vllm import (
    VLLMUnavailableError,
    import_vllm,
    outputs_to_tensors,
    prompt_token_lists,
    sampling_params_kwargs,
)
from entrostat.tasks.base import Problem
from entrostat.config.run import RolloutConfig

EOS, PAD = 2, 0
HAS_VLLM_GPU = torch.cuda.is_available() and importlib.util.find_spec("vllm") is not None


def _output(tokens, logprobs, finish_reason, as_objects=True):
    """A stand-in for vllm.RequestOutput: .outputs[0] with token_ids, logprobs (per position) and finish_reason."""
    wrap = (lambda x: SimpleNamespace(logprob=x, rank=1)) if as_objects else (lambda x: x)
    entries = None if logprobs is None else [{t: wrap(lp)} for t, lp in zip(tokens, logprobs)]
    return SimpleNamespace(outputs=[SimpleNamespace(token_ids=tokens, logprobs=entries, finish_reason=finish_reason)])


def test_outputs_to_tensors():
    outputs = [
        _output([5, 6, EOS], [-0.1, -0.2, -0.3], "stop"),
        _output([7, 8, 9, 10], [-1.0, -1.5, -2.0, -2.5], "length", as_objects=False),
        _output([EOS], [-0.7], "stop"),
        _output([4, 4], None, "length"),  # a greedy row: no log-probs needed
    ]
    ids, mask, logps, trunc = outputs_to_tensors(outputs, torch.tensor([1.0, 0.7, 1.3, 0.0]), eos_token_id=EOS,
                                                 pad_token_id=PAD)
    assert ids.tolist() == [[5, 6, EOS, PAD], [7, 8, 9, 10], [EOS, PAD, PAD, PAD], [4, 4, PAD, PAD]]
    assert mask.tolist() == [[1, 1, 1, 0], [1, 1, 1, 1], [1, 0, 0, 0], [1, 1, 0, 0]]
    torch.testing.assert_close(logps, torch.tensor([[-0.1, -0.2, -0.3, 0], [-1.0, -1.5, -2.0, -2.5],
                                                    [-0.7, 0, 0, 0], [0, 0, 0, 0]]))
    assert trunc.tolist() == [False, True, False, True]
    assert ids.dtype == torch.long and mask.dtype == logps.dtype == torch.float32 and trunc.dtype == torch.bool


def test_outputs_to_tensors_needs_logprobs_for_sampled_rows():
    with pytest.raises(ValueError, match="logprobs=0"):
        outputs_to_tensors([_output([5], None, "length")], torch.ones(1), eos_token_id=EOS, pad_token_id=PAD)


def test_prompt_rows_and_sampling_params():
    ids = torch.tensor([[0, 0, 11, 12], [13, 14, 15, 16]])
    assert prompt_token_lists(ids, (ids != 0).long()) == [[11, 12], [13, 14, 15, 16]]
    kw = sampling_params_kwargs(0.7, 0.95, 64, EOS, seed=3)
    assert kw == {"n": 1, "temperature": 0.7, "top_p": 0.95, "max_tokens": 64, "logprobs": 0, "seed": 3,
                  "stop_token_ids": [EOS], "detokenize": False}
    assert sampling_params_kwargs(-1.0, 1.0, 8, EOS, 0)["temperature"] == 0.0  # greedy


def test_backend_selection_and_validation():
    settings = dict(model=None, tokenizer=None, model_name="lab", work_dir=".", dtype="float32", seed=0)
    assert build_backend("hf", **settings) is HF_SAMPLER
    with pytest.raises(ConfigError, match=r"unknown rollout backend .sglang.*names: hf, .*vllm"):
        build_backend("sglang", **settings)
    with pytest.raises(ConfigError, match="hf"):
        RolloutConfig(backend="sglang").validate("rollout")
    RolloutConfig(backend="hf").validate("rollout")
    if not torch.cuda.is_available():
        with pytest.raises(ConfigError, match="CUDA"):
            RolloutConfig(backend="vllm").validate("rollout")
        with pytest.raises(VLLMUnavailableError, match="CUDA"):
            import_vllm()
        with pytest.raises(VLLMUnavailableError, match="CUDA"):
            build_backend("vllm", **settings)


def test_generate_rollout_uses_a_given_sampler():
    class FakeSampler:
        def sample_groups(self, model, prompt_ids, prompt_mask, *, group_size, temperature, **kw):
            b = prompt_ids.shape[0] * group_size
            self.seen = (prompt_ids.shape[0], group_size, temperature.tolist())
            return torch.full((b, 2), 7), torch.ones(b, 2), torch.full((b, 2), -0.5), torch.zeros(b, dtype=torch.bool)

    class Tok:
        eos_token_id, pad_token_id = EOS, PAD

        def __call__(self, texts, **kw):
            return {"input_ids": torch.tensor([[1, len(t)] for t in texts]), "attention_mask": torch.ones(len(texts), 2)}

        def decode(self, ids, skip_special_tokens=True):
            return "x" * len(ids)

    sampler = FakeSampler()
    problems = [Problem(prompt="ab", answer="", id="0"), Problem(prompt="abc", answer="", id="1")]
    batch = generate_rollout(None, Tok(), problems, format_prompt=lambda p: p.prompt, group_size=3, temperature=0.9,
                             max_new_tokens=2, sampler=sampler)
    assert sampler.seen[:2] == (2, 3) and torch.allclose(torch.tensor(sampler.seen[2]), torch.full((6,), 0.9))
    assert batch.completion_ids.shape == (6, 2) and batch.meta["texts"] == ["xx"] * 6
    assert batch.prompt_ids[:, 1].tolist() == [2, 2, 2, 3, 3, 3]


@pytest.mark.gpu
@pytest.mark.skipif(not HAS_VLLM_GPU, reason="needs a CUDA GPU and vLLM (pip install 'entrostat[vllm]')")
def test_vllm_sampler_matches_the_hf_forward(tmp_path):
    """The real engine on a tiny Llama: shapes, EOS handling, weight sync and sampler log-probs."""
    from entrostat.models.lab import build_lab_model, build_lab_tokenizer
    from entrostat.rollout.hf import tokenize_prompts
    from entrostat.rollout.vllm import VLLMSampler

    tok = build_lab_tokenizer()
    model = build_lab_model(tok, seed=0, hidden_size=64, intermediate_size=128, num_layers=2, num_heads=2).eval()
    model.save_pretrained(tmp_path)
    tok.save_pretrained(tmp_path)
    sampler = VLLMSampler(str(tmp_path), dtype="float32", seed=0, gpu_memory_utilization=0.2)
    with torch.no_grad():
        for p in model.parameters():  # new weights: the engine must see them after sync_weights
            p.mul_(1.5)
    sampler.sync_weights(model)
    ids, mask = tokenize_prompts(tok, ["13:385176=", "7:12="])
    temps = torch.tensor([0.7, 1.0, 1.3, 0.7, 1.0, 1.3])
    out_ids, out_mask, logps, trunc = sampler.sample_groups(
        None, ids, mask, group_size=3, temperature=temps, max_new_tokens=8, eos_token_id=tok.eos_token_id,
        pad_token_id=tok.pad_token_id, generator=torch.Generator().manual_seed(0))
    assert out_ids.shape == out_mask.shape == logps.shape and out_ids.shape[0] == 6
    for i in range(6):
        n = int(out_mask[i].sum())
        full = torch.cat([ids[i // 3][mask[i // 3].bool()], out_ids[i, :n]])[None]
        with torch.no_grad():
            logits = model(input_ids=full).logits[0, -n - 1 : -1].float()
        ref = torch.log_softmax(logits / temps[i], -1).gather(-1, out_ids[i, :n, None]).squeeze(-1)
        torch.testing.assert_close(logps[i, :n], ref, atol=2e-3, rtol=0)
        assert bool(trunc[i]) == (tok.eos_token_id not in out_ids[i, :n].tolist())
