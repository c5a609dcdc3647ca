"""A tiny GGUF file written with the gguf package: a 2-layer Llama, byte-level BPE tokenizer, chat template."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

CHAT_TEMPLATE = (
    "{% for m in messages %}<|im_start|>{{ m['role'] }}\n{{ m['content'] }}<|im_end|>\n{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)


def write_tiny_gguf(path: Path, *, seed: int = 0, hidden: int = 32, layers: int = 2, heads: int = 4,
                    kv_heads: int = 2, ff: int = 64) -> Path:
    """A loadable llama GGUF (Q8_0 matrices, F32 norms) with the metadata transformers' converters read:
    tokenizer.ggml.model 'gpt2' with tokens (3 control + 256 bytes + 4 merged), token types and merges."""
    import gguf
    from transformers.convert_slow_tokenizer import bytes_to_unicode

    Path(path).parent.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    byte_chars = [bytes_to_unicode()[b] for b in range(256)]
    merges = ["h e", "l l", "he ll", "Ġ w"]
    tokens = ["<|endoftext|>", "<|im_start|>", "<|im_end|>", *byte_chars, "he", "ll", "hell", "Ġw"]
    w = gguf.GGUFWriter(str(path), "llama")
    w.add_name("tiny")
    w.add_block_count(layers)
    w.add_context_length(64)
    w.add_embedding_length(hidden)
    w.add_feed_forward_length(ff)
    w.add_head_count(heads)
    w.add_head_count_kv(kv_heads)
    w.add_rope_freq_base(10000.0)
    w.add_layer_norm_rms_eps(1e-5)
    w.add_rope_dimension_count(hidden // heads)
    w.add_vocab_size(len(tokens))
    w.add_tokenizer_model("gpt2")
    w.add_tokenizer_pre("default")
    w.add_token_list(tokens)
    w.add_token_types([3, 3, 3] + [1] * (len(tokens) - 3))  # 3: control, 1: normal
    w.add_token_merges(merges)
    w.add_bos_token_id(1)
    w.add_eos_token_id(2)
    w.add_unk_token_id(0)
    w.add_pad_token_id(2)
    w.add_add_bos_token(False)
    w.add_chat_template(CHAT_TEMPLATE)

    def tensor(name: str, shape: tuple[int, ...]) -> None:
        a = (rng.standard_normal(shape) * 0.1).astype(np.float32)
        if len(shape) == 2:  # matrices quantized (Q8_0 blocks of 32), as in a real file
            q = gguf.quants.quantize(a, gguf.GGMLQuantizationType.Q8_0)
            w.add_tensor(name, q, raw_shape=q.shape, raw_dtype=gguf.GGMLQuantizationType.Q8_0)
        else:
            w.add_tensor(name, a)

    head_dim = hidden // heads
    tensor("token_embd.weight", (len(tokens), hidden))
    tensor("output_norm.weight", (hidden,))
    for i in range(layers):
        for n in ("attn_norm", "ffn_norm"):
            tensor(f"blk.{i}.{n}.weight", (hidden,))
        tensor(f"blk.{i}.attn_q.weight", (hidden, hidden))
        tensor(f"blk.{i}.attn_k.weight", (kv_heads * head_dim, hidden))
        tensor(f"blk.{i}.attn_v.weight", (kv_heads * head_dim, hidden))
        tensor(f"blk.{i}.attn_output.weight", (hidden, hidden))
        tensor(f"blk.{i}.ffn_gate.weight", (ff, hidden))
        tensor(f"blk.{i}.ffn_up.weight", (ff, hidden))
        tensor(f"blk.{i}.ffn_down.weight", (hidden, ff))
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    return path


@pytest.fixture(scope="session")
def tiny_gguf(tmp_path_factory) -> Path:
    pytest.importorskip("gguf")
    return write_tiny_gguf(tmp_path_factory.mktemp("gguf") / "tiny.gguf")


@pytest.fixture
def gguf_writer():
    """``write_tiny_gguf`` itself, for tests that need several files."""
    pytest.importorskip("gguf")
    return write_tiny_gguf
