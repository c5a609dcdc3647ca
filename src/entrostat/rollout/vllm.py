"""vLLM rollouts on a GPU (optional extra ``entrostat[vllm]``; the ``vllm`` backend of ``rollout.backends``).

``VLLMSampler`` is a ``rollout.backends.Sampler``: its ``sample_groups`` has the
signature and the return tensors of ``rollout.hf.sample_groups``: G
completions of each of P prompts as P·G vLLM requests, each with its own
``SamplingParams`` (its row's temperature, ``top_p``, ``max_tokens``, one seed
drawn from the caller's ``torch.Generator`` so a resumed run asks for the same
draws, ``logprobs=0``: the sampled token's log-prob only). vLLM's prefix cache
shares each prompt's prefill between its G requests.

Sampler log-probs. What vLLM reports as a sampled token's log-prob changed
across versions: V0 (< 0.10) reported the processed distribution (after
penalties, temperature, top-k/top-p); V1 reports ``logprobs_mode`` — default
``raw_logprobs``, log-softmax of the raw logits (temperature NOT applied);
``processed_logprobs`` first (0.10.0–0.10.1) left temperature out too
(PrimeIntellect-ai/prime-rl#697), and from 0.10.2 on is the log-softmax after
temperature and top-k/top-p (huggingface/trl#4163; vLLM engine-args docs:
"Processed means the values after applying all processors, including
temperature and top_k/top_p"). The engine is therefore built with
``logprobs_mode="processed_logprobs"`` and vLLM ≥ 0.10.2 is required: then the
numbers are log softmax(logits / T_row) (renormalised over the nucleus when
top_p < 1), as ``rollout.hf``'s. Greedy rows (T <= 0) get 0, as in ``rollout.hf``.

``sync_weights(model)`` loads the HF model's ``state_dict`` into the engine's
model (``load_weights``, which maps HF names onto vLLM's fused layers) and resets
the prefix cache, whose blocks were computed with the old weights — as TRL's
colocate mode does. The engine runs in this process
(``VLLM_ENABLE_V1_MULTIPROCESSING=0``, set before the engine is built unless the
user set it) so the model is reachable directly; otherwise the weights travel
through ``LLM.collective_rpc``.

Not run here: this module's GPU path was written against the vLLM sources and
docs (0.10.2 – 0.2x) without a GPU to test on; ``tests/rollout/test_vllm.py``
checks the tensor conversion on CPU with fake vLLM outputs and marks the real
engine test ``gpu``.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Sequence

import torch
from torch import Tensor

MIN_VLLM = (0, 10, 2)


class VLLMUnavailableError(RuntimeError):
    """vLLM cannot be used here; the message says why and what to do."""


def _version_tuple(version: str) -> tuple[int, ...]:
    parts = []
    for piece in version.split("+")[0].split(".")[:3]:
        digits = "".join(ch for ch in piece if ch.isdigit())
        parts.append(int(digits) if digits else 0)
    return tuple(parts)


def import_vllm():
    """The ``vllm`` module, or VLLMUnavailableError saying how to get a usable one."""
    if not torch.cuda.is_available():
        raise VLLMUnavailableError(
            "rollout.backend = vllm needs a CUDA GPU and none is visible to torch; use rollout.backend = hf "
            "(the built-in sampler, CPU or GPU)")
    try:
        import vllm
    except ImportError as exc:
        raise VLLMUnavailableError(
            "rollout.backend = vllm but vLLM is not installed: pip install 'entrostat[vllm]' (on a CUDA machine), "
            "or use rollout.backend = hf") from exc
    if _version_tuple(getattr(vllm, "__version__", "0")) < MIN_VLLM:
        raise VLLMUnavailableError(
            f"vLLM {vllm.__version__} is too old: entrostat needs >= {'.'.join(map(str, MIN_VLLM))}, the first "
            "version whose processed_logprobs include the temperature (the sampler log-probs would be wrong)")
    return vllm


def sampling_params_kwargs(temperature: float, top_p: float, max_new_tokens: int, eos_token_id: int,
                           seed: int) -> dict[str, Any]:
    """Keyword arguments of one row's ``vllm.SamplingParams`` (top-k, min-p and penalties left off)."""
    return {"n": 1, "temperature": max(float(temperature), 0.0), "top_p": float(top_p), "max_tokens": int(max_new_tokens),
            "logprobs": 0, "seed": int(seed), "stop_token_ids": [int(eos_token_id)], "detokenize": False}


def _token_logprob(entry: Any, token: int) -> float:
    """Log-prob of ``token`` in one position's logprobs entry ({token_id: Logprob | float})."""
    value = entry[token]
    return float(getattr(value, "logprob", value))


def outputs_to_tensors(outputs: Sequence[Any], temperature: Tensor, *, eos_token_id: int,
                       pad_token_id: int) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """vLLM ``RequestOutput``s (one per row, in row order) → the tensors of ``rollout.hf.sample_groups``.

    Reads ``outputs[i].outputs[0]``: ``token_ids``, ``logprobs`` (per position, a mapping
    token id → Logprob with ``.logprob``) and ``finish_reason``. temperature (B,): rows with
    T <= 0 get log-prob 0. Returns completion ids (B, T) right-padded with ``pad_token_id``,
    mask (B, T) float (1 up to and including EOS), sampler log-probs (B, T) and is_truncated
    (B,) (finish_reason "length"), T the longest completion (at least 1).
    """
    rows = [out.outputs[0] for out in outputs]
    width = max([len(r.token_ids) for r in rows] + [1])
    bsz = len(rows)
    ids = torch.full((bsz, width), pad_token_id, dtype=torch.long)  # (B, T)
    mask = torch.zeros(bsz, width)  # (B, T)
    logps = torch.zeros(bsz, width)  # (B, T)
    truncated = torch.zeros(bsz, dtype=torch.bool)  # (B,)
    for i, row in enumerate(rows):
        tokens = [int(t) for t in row.token_ids]
        if eos_token_id in tokens:  # nothing after EOS counts (vLLM stops there anyway)
            tokens = tokens[: tokens.index(eos_token_id) + 1]
        n = len(tokens)
        ids[i, :n] = torch.tensor(tokens, dtype=torch.long)
        mask[i, :n] = 1.0
        if float(temperature[i]) > 0 and n:
            if row.logprobs is None:
                raise ValueError("a vLLM output has no logprobs: request them with SamplingParams(logprobs=0)")
            logps[i, :n] = torch.tensor([_token_logprob(row.logprobs[j], t) for j, t in enumerate(tokens)])
        truncated[i] = row.finish_reason == "length" and (not tokens or tokens[-1] != eos_token_id)
    return ids, mask, logps, truncated


def prompt_token_lists(prompt_ids: Tensor, prompt_mask: Tensor) -> list[list[int]]:
    """Each left-padded prompt row (P, T_prompt) as its list of real token ids."""
    return [[t for t, m in zip(row, keep) if m] for row, keep in zip(prompt_ids.tolist(), prompt_mask.bool().tolist())]


def _engine_model(llm):
    """The engine's torch model when the engine runs in this process, else None."""
    paths = ("llm_engine.model_executor.driver_worker.worker.model_runner.model",
             "llm_engine.model_executor.driver_worker.model_runner.model")
    for path in paths:
        obj = llm
        try:
            for name in path.split("."):
                obj = getattr(obj, name)
            return obj
        except AttributeError:
            continue
    return None


def _load_weights_on_worker(worker, weights):  # runs inside a vLLM worker (collective_rpc)
    worker.model_runner.model.load_weights(weights)


class VLLMSampler:
    """A vLLM engine holding a copy of the policy; ``sample_groups`` mirrors ``rollout.hf.sample_groups``."""

    def __init__(self, model_dir: str, *, dtype: str = "bfloat16", seed: int = 0, gpu_memory_utilization: float = 0.5,
                 max_model_len: int | None = None, **engine_kwargs: Any):
        """Build the engine from the HF model directory ``model_dir`` (weights are replaced by ``sync_weights``)."""
        vllm = import_vllm()
        os.environ.setdefault("VLLM_ENABLE_V1_MULTIPROCESSING", "0")  # in-process engine: direct weight loads
        self._vllm = vllm
        self.llm = vllm.LLM(model=model_dir, dtype=dtype, seed=seed, gpu_memory_utilization=gpu_memory_utilization,
                            max_model_len=max_model_len, logprobs_mode="processed_logprobs",
                            enable_prefix_caching=True, **engine_kwargs)

    @torch.no_grad()
    def sync_weights(self, model: torch.nn.Module) -> None:
        """Load ``model``'s current weights into the engine and drop its (now stale) prefix cache."""
        weights = [(name, t.detach()) for name, t in model.state_dict().items()]
        target = _engine_model(self.llm)
        if target is not None:
            target.load_weights(weights)
        else:
            self.llm.collective_rpc(_load_weights_on_worker, args=([(n, t.cpu()) for n, t in weights],))
        self.llm.reset_prefix_cache()

    def sample_groups(self, model, prompt_ids: Tensor, prompt_mask: Tensor, *, group_size: int,
                      temperature: Tensor | float, max_new_tokens: int, eos_token_id: int, pad_token_id: int,
                      generator: torch.Generator | None = None, top_p: float = 1.0):
        """``rollout.hf.sample_groups`` on the engine (``model`` is unused: call ``sync_weights`` after updates)."""
        p = prompt_ids.shape[0]
        temp = torch.as_tensor(temperature, dtype=torch.float32).expand(p * group_size).clone()  # (B,)
        seeds = torch.randint(0, 2**31 - 1, (p * group_size,), generator=generator).tolist()
        prompts = [{"prompt_token_ids": ids} for ids in prompt_token_lists(prompt_ids, prompt_mask)
                   for _ in range(group_size)]
        params = [self._vllm.SamplingParams(**sampling_params_kwargs(float(t), top_p, max_new_tokens, eos_token_id, s))
                  for t, s in zip(temp.tolist(), seeds)]
        outputs = self.llm.generate(prompts, params, use_tqdm=False)
        return outputs_to_tensors(outputs, temp, eos_token_id=eos_token_id, pad_token_id=pad_token_id)


def _save_for_engine(model, tokenizer, where: Path) -> str:
    """Write the HF model and tokenizer to ``where`` (for a policy that is not a plain local directory)."""
    where.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(str(where))
    tokenizer.save_pretrained(str(where))
    return str(where)


def build_vllm_sampler(*, model, tokenizer, model_name: str, work_dir: str | Path, dtype: str, seed: int,
                       gpu_memory_utilization: float = 0.5, lora: bool = False, **_: Any) -> VLLMSampler:
    """The ``vllm`` rollout backend (``rollout.backends``): a VLLMSampler for the policy ``model``.

    The engine starts from ``model_name`` when it is a local directory, else from a copy of the loaded
    policy written under ``work_dir/vllm-model``; ``sync_weights`` replaces the weights anyway.
    Settings meant for other backends are ignored.
    """
    import_vllm()  # fail before writing anything
    if lora:
        raise VLLMUnavailableError("rollout.backend = vllm does not support model.lora yet (the engine needs merged "
                                   "weights); use rollout.backend = hf or full fine-tuning")
    path = Path(model_name).expanduser()
    model_dir = str(path) if path.is_dir() else _save_for_engine(model, tokenizer, Path(work_dir) / "vllm-model")
    return VLLMSampler(model_dir, dtype=dtype, seed=seed, gpu_memory_utilization=gpu_memory_utilization)
