"""Rollout backends by name: the registry, a plug-in backend in rollouts and evaluation, the HF backend's draws,
vLLM imported only when built."""

import subprocess
import sys

import pytest
import torch

from entrostat.config.base import ConfigError
from entrostat.eval.evaluate import evaluate
from entrostat.models.lab import format_prompt
from entrostat.rollout.backends import BACKENDS, HF_SAMPLER, build_backend
from entrostat.rollout.batch import generate_rollout
from entrostat.rollout.hf import sample_groups, tokenize_prompts
from entrostat.tasks.base import Problem

PROBLEMS = [Problem("13:385176", "7", "a"), Problem("7:12", "7", "b"), Problem("5:4", "7", "c")]


class ToySampler:
    """Every row's completion is ``token_ids`` then EOS; records each call's prompt rows and group size."""

    def __init__(self, token_ids: list[int]):
        self.token_ids, self.calls = token_ids, []

    def sample_groups(self, model, prompt_ids, prompt_mask, *, group_size, temperature, max_new_tokens,
                      eos_token_id, pad_token_id, generator=None, top_p=1.0):
        self.calls.append((prompt_ids.shape[0], group_size))
        b = prompt_ids.shape[0] * group_size
        ids = torch.tensor(self.token_ids + [eos_token_id]).expand(b, -1).clone()  # (B, T)
        return ids, torch.ones(ids.shape), torch.zeros(ids.shape), torch.zeros(b, dtype=torch.bool)

    def sync_weights(self, model):
        """Samples without a model: nothing to load."""


@BACKENDS.register("toy")  # as a plug-in outside the package registers its backend
def toy_backend(*, tokenizer, text: str = "7", **_):
    return ToySampler(tokenizer.convert_tokens_to_ids(list(text)))


class SevenTask:
    """Correct when the completion is exactly "7"."""

    name = "seven"

    def score(self, problem, completion):
        return 1.0 if completion == "7" else 0.0


def test_registry_lists_the_built_in_backends_and_suggests_a_close_name():
    assert {"hf", "vllm"} <= set(BACKENDS.names())
    assert build_backend("hf", model=None, tokenizer=None, seed=0) is HF_SAMPLER
    with pytest.raises(ConfigError, match=r"unknown rollout backend 'vlm'; did you mean 'vllm'\? .*hf, .*vllm"):
        build_backend("vlm")


def test_no_vllm_import_unless_the_vllm_backend_is_built():
    code = ("import sys; import entrostat.rollout, entrostat.rollout.batch, entrostat.eval.evaluate; "
            "from entrostat.rollout.backends import build_backend; build_backend('hf'); "
            "print(sorted(m for m in sys.modules if m == 'vllm' or m == 'entrostat.rollout.vllm'))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_a_registered_backend_samples_the_rollout(model, tok):
    sampler = build_backend("toy", tokenizer=tok, text="75")
    batch = generate_rollout(model, tok, PROBLEMS, format_prompt=format_prompt, group_size=4, temperature=0.8,
                             max_new_tokens=3, sampler=sampler)
    assert sampler.calls == [(3, 4)]
    assert batch.meta["texts"] == ["75"] * 12 and batch.completion_ids.shape == (12, 3)
    assert torch.equal(batch.group_ids, torch.arange(3).repeat_interleave(4))


def test_a_registered_backend_samples_the_evaluation(model, tok):
    sampler = build_backend("toy", tokenizer=tok)
    out = evaluate(model, tok, SevenTask(), PROBLEMS, format_prompt=format_prompt, n=10, temperature=1.0,
                   max_new_tokens=3, seed=0, ks=[1, 10], batch_rows=4, sampler=sampler)
    assert out["pass@1"] == out["pass@10"] == out["mean@n"] == 1.0
    assert sampler.calls == [(1, 4), (1, 4), (1, 2)] * 3  # n = 10 > batch_rows = 4: one prompt per call


def test_the_hf_backend_draws_what_rollout_hf_draws(model, tok):
    """Same generator seed: the registry's HF sampler and ``generate_rollout``'s default give
    rollout.hf.sample_groups's tensors exactly."""
    ids, mask = tokenize_prompts(tok, [format_prompt(p) for p in PROBLEMS])
    temps = torch.tensor([0.7, 1.0, 1.3, 0.0] * 3)
    ref = sample_groups(model, ids, mask, group_size=4, temperature=temps, max_new_tokens=6,
                        eos_token_id=tok.eos_token_id, pad_token_id=tok.pad_token_id,
                        generator=torch.Generator().manual_seed(11))
    for chosen in ({"sampler": build_backend("hf")}, {}):
        batch = generate_rollout(model, tok, PROBLEMS, format_prompt=format_prompt, group_size=4, temperature=temps,
                                 max_new_tokens=6, generator=torch.Generator().manual_seed(11), **chosen)
        got = (batch.completion_ids, batch.completion_mask, batch.sampler_logprobs, batch.is_truncated)
        assert all(torch.equal(a, b) for a, b in zip(got, ref))
    assert ref[0].shape[1] > 1 and len(set(ref[0][:, 0].tolist())) > 1  # the comparison has draws to compare
