"""GGUF → plain Hugging Face directory: dense, equal logits, trainable, cached; load_policy on a .gguf path."""

from __future__ import annotations

import json

import pytest
import torch

from entrostat.models import gguf as gguf_mod
from entrostat.models.errors import ModelLoadError
from entrostat.models.gguf import MARKER, convert_gguf
from entrostat.models.loading import load_policy
from entrostat.tasks.base import Problem

transformers = pytest.importorskip("transformers")
IDS = torch.tensor([[5, 6, 7, 261, 262, 100]])


def _gguf_loaded(path):
    """The model as transformers itself loads the GGUF (marked quantized)."""
    return transformers.AutoModelForCausalLM.from_pretrained(str(path.parent), gguf_file=path.name).eval()


@pytest.fixture(scope="module")
def converted(tiny_gguf, tmp_path_factory):
    return convert_gguf(tiny_gguf, cache_dir=tmp_path_factory.mktemp("cache"), progress=False)


def test_converted_dir_is_a_plain_model_with_equal_logits(tiny_gguf, converted):
    assert converted.parent.name == "gguf" and converted.name.startswith("tiny-")
    config = json.loads((converted / "config.json").read_text())
    assert "quantization_config" not in config
    assert json.loads((converted / MARKER).read_text())["name"] == "tiny.gguf"
    model = transformers.AutoModelForCausalLM.from_pretrained(str(converted)).eval()
    assert not getattr(model, "is_quantized", False) and getattr(model, "hf_quantizer", None) is None
    reference = _gguf_loaded(tiny_gguf)
    with torch.no_grad():
        assert torch.equal(model(IDS).logits, reference(IDS).logits)
    model(IDS, labels=IDS).loss.backward()
    grads = [p.grad for p in model.parameters()]
    assert all(g is not None and torch.isfinite(g).all() for g in grads)


def test_tokenizer_and_chat_template_kept(tiny_gguf, converted):
    tok = transformers.AutoTokenizer.from_pretrained(str(converted))
    ref = transformers.AutoTokenizer.from_pretrained(str(tiny_gguf.parent), gguf_file=tiny_gguf.name)
    text = "hello world"
    assert tok(text)["input_ids"] == ref(text)["input_ids"] and tok.decode(tok(text)["input_ids"]) == text
    assert tok.convert_tokens_to_ids("hell") == 261  # the merges were kept
    msgs = [{"role": "user", "content": "hi"}]
    assert tok.apply_chat_template(msgs, tokenize=False, add_generation_prompt=True) == \
        "<|im_start|>user\nhi<|im_end|>\n<|im_start|>assistant\n"
    assert tok.eos_token == "<|im_end|>"


def test_second_conversion_hits_the_cache(tiny_gguf, converted, monkeypatch):
    def boom(*a, **k):
        raise AssertionError("converted again")

    monkeypatch.setattr(gguf_mod, "load_gguf", boom)
    assert convert_gguf(tiny_gguf, cache_dir=converted.parent.parent, progress=False) == converted


def test_changed_file_gets_its_own_directory(tmp_path, gguf_writer):
    a = convert_gguf(gguf_writer(tmp_path / "a" / "m.gguf", seed=0), cache_dir=tmp_path / "c", progress=False)
    b = convert_gguf(gguf_writer(tmp_path / "b" / "m.gguf", seed=1), cache_dir=tmp_path / "c", progress=False)
    assert a != b and a.parent == b.parent
    assert not list(a.parent.glob(".*-*"))  # no temporary directory left behind


def test_out_dir_refuses_foreign_content_unless_forced(tiny_gguf, tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    (out / "notes.txt").write_text("mine")
    with pytest.raises(ModelLoadError, match="--force"):
        convert_gguf(tiny_gguf, out, cache_dir=tmp_path / "c", progress=False)
    assert convert_gguf(tiny_gguf, out, force=True, cache_dir=tmp_path / "c", progress=False) == out.resolve()
    assert (out / "config.json").is_file() and not (out / "notes.txt").exists()


def test_load_policy_on_a_gguf_path(tiny_gguf, converted):
    model, tok, fmt = load_policy(str(tiny_gguf), cache_dir=str(converted.parent.parent), progress=False)
    assert tok.padding_side == "left" and tok.pad_token == "<|im_end|>"
    assert fmt(Problem(prompt="2+2?", answer="4", id="p0")).endswith("<|im_start|>assistant\n")
    with torch.no_grad():
        assert torch.equal(model(IDS).logits, _gguf_loaded(tiny_gguf)(IDS).logits)
    bf16, _, _ = load_policy(str(tiny_gguf), dtype="bfloat16", cache_dir=str(converted.parent.parent), progress=False)
    assert bf16.dtype == torch.bfloat16


def test_missing_or_wrong_files_are_clear_errors(tmp_path):
    with pytest.raises(ModelLoadError, match="does not exist"):
        convert_gguf(tmp_path / "nope.gguf", progress=False)
    (tmp_path / "weights.bin").write_bytes(b"x")
    with pytest.raises(ModelLoadError, match="not a .gguf"):
        load_policy(str(tmp_path / "weights.bin"), progress=False)
