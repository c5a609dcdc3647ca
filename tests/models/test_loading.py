"""Where model.name can point, and the errors when it points nowhere usable (no network is used)."""

from __future__ import annotations

import time

import pytest
import torch

from entrostat.models import hub
from entrostat.models.errors import ModelLoadError
from entrostat.models.loading import load_policy


def _tiny_llama_dir(path, with_tokenizer: bool):
    from transformers import LlamaConfig, LlamaForCausalLM

    from entrostat.models.lab import build_lab_tokenizer

    tok = build_lab_tokenizer()
    cfg = LlamaConfig(vocab_size=len(tok), hidden_size=16, intermediate_size=32, num_hidden_layers=1,
                      num_attention_heads=2, num_key_value_heads=2, max_position_embeddings=32)
    LlamaForCausalLM(cfg).save_pretrained(path)
    if with_tokenizer:
        tok.save_pretrained(path)
    return path


def test_local_directory_loads(tmp_path):
    model, tok, _ = load_policy(str(_tiny_llama_dir(tmp_path / "m", True)), dtype="bfloat16")
    assert model.dtype == torch.bfloat16 and tok.padding_side == "left"


def test_directory_without_tokenizer_is_a_clear_error(tmp_path):
    path = _tiny_llama_dir(tmp_path / "m", with_tokenizer=False)
    with pytest.raises(ModelLoadError, match="holds a model but no tokenizer") as err:
        load_policy(str(path))
    assert "tokenizer.save_pretrained" in str(err.value)


def test_directory_without_config_points_at_its_gguf(tmp_path):
    (tmp_path / "m").mkdir()
    (tmp_path / "m" / "x.Q4_0.gguf").write_bytes(b"")
    with pytest.raises(ModelLoadError, match=r"no config.json.*x\.Q4_0\.gguf"):
        load_policy(str(tmp_path / "m"))


@pytest.fixture
def no_hub_cache(monkeypatch):
    monkeypatch.setattr(hub, "in_local_cache", lambda name: False)


def test_hub_name_offline_fails_fast_with_what_to_do(monkeypatch, no_hub_cache):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setattr(hub, "hub_reachable", lambda *a, **k: pytest.fail("probed the network while offline"))
    t0 = time.perf_counter()
    with pytest.raises(ModelLoadError) as err:
        load_policy("HuggingFaceTB/SmolLM2-135M-Instruct")
    assert time.perf_counter() - t0 < 5
    msg = str(err.value)
    assert "no hub is reachable" in msg and "HF_HUB_OFFLINE=1" in msg
    assert "local Hugging Face model directory" in msg and ".gguf" in msg and "entrostat models prepare" in msg


def test_unreachable_hub_is_probed_once_and_fails_fast(monkeypatch, no_hub_cache):
    for var in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setattr(hub, "hub_endpoint", lambda: "http://127.0.0.1:9")  # closed local port: refused at once
    t0 = time.perf_counter()
    with pytest.raises(ModelLoadError, match=r"no hub is reachable \(http://127.0.0.1:9 did not answer"):
        load_policy("some-org/some-model")
    assert time.perf_counter() - t0 < 10


def test_nonexistent_path_that_is_no_hub_id(tmp_path):
    with pytest.raises(ModelLoadError, match="no such local directory or file, and not a hub id"):
        load_policy(str(tmp_path / "no such dir" / "model"))
