"""LoRA through PEFT: only adapters train, checkpoints hold only them, resume and `eval` load them back."""

from __future__ import annotations

import json

import pytest
import torch
from safetensors.torch import load_file

from entrostat.config.base import ConfigError
from entrostat.models.errors import ModelLoadError
from entrostat.models.lab import build_lab_model, build_lab_tokenizer
from entrostat.models.lora import apply_lora, checkpoint_weights, is_lora, load_checkpoint_weights, merge_lora
from entrostat.train import checkpoint as ckpt

pytest.importorskip("peft")
SMALL = {"hidden_size": 32, "num_layers": 1, "num_heads": 2, "intermediate_size": 64}


def _lora_lab_model(seed: int = 0, **lora):
    tok = build_lab_tokenizer()
    return apply_lora(build_lab_model(tok, seed, **SMALL), {"r": 4, **lora}), tok


def _one_step(model, tok) -> None:
    ids = tok(["12:345=7+5", "9:18=9"], padding=True, return_tensors="pt")
    opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-2)
    model(**ids, labels=ids["input_ids"]).loss.backward()
    opt.step()


def test_only_adapters_are_trainable_and_change():
    model, tok = _lora_lab_model()
    assert is_lora(model) and type(model).__name__ == "LlamaForCausalLM"  # the transformers model, adapters inside
    trainable = {n for n, p in model.named_parameters() if p.requires_grad}
    assert trainable and all("lora_" in n for n in trainable)
    assert any("q_proj.lora_A" in n for n in trainable) and any("down_proj.lora_B" in n for n in trainable)
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    _one_step(model, tok)
    changed = {n for n, p in model.named_parameters() if not torch.equal(p, before[n])}
    assert changed and changed <= trainable


def test_checkpoint_holds_only_adapters_and_round_trips(tmp_path):
    model, tok = _lora_lab_model()
    _one_step(model, tok)
    path = ckpt.save_checkpoint(tmp_path / "checkpoints", 1, model, {"step": 1})
    saved = load_file(str(path / "model.safetensors"))
    assert saved and all("lora_" in k for k in saved)
    fresh, _ = _lora_lab_model()  # same base (seed), fresh random lora_A
    assert not torch.equal(fresh.state_dict()[next(iter(saved))], saved[next(iter(saved))])
    assert ckpt.load_checkpoint(path, fresh) == {"step": 1}
    ids = tok(["12:345="], return_tensors="pt")["input_ids"]
    with torch.no_grad():
        assert torch.equal(fresh(ids).logits, model(ids).logits)
        merged = merge_lora(fresh)(ids).logits
    assert torch.allclose(merged, model(ids).logits, atol=1e-5)


def test_mismatched_checkpoints_are_clear_errors():
    model, _ = _lora_lab_model()
    plain = build_lab_model(build_lab_tokenizer(), 0, **SMALL)
    with pytest.raises(ModelLoadError, match="LoRA adapter weights but the model has no adapters"):
        load_checkpoint_weights(plain, checkpoint_weights(model))
    with pytest.raises(ModelLoadError, match="full model weights but the model has LoRA adapters"):
        load_checkpoint_weights(model, checkpoint_weights(plain))
    other, _ = _lora_lab_model(r=8)
    with pytest.raises(ModelLoadError, match="does not fit the model"):
        load_checkpoint_weights(other, checkpoint_weights(model))


def test_lora_config_is_validated():
    from entrostat.config.recipes import build_config

    assert build_config(None, ["model.lora={r: 4}"]).model.lora == {"r": 4}
    with pytest.raises(ConfigError, match="unknown key.*rank.*allowed: r, alpha, dropout, target_modules"):
        build_config(None, ["model.lora={rank: 4}"])
    with pytest.raises(ConfigError, match="model.lora.dropout"):
        build_config(None, ["model.lora={dropout: 1.5}"])


def _records(run_dir):
    rows = [json.loads(x) for x in (run_dir / "metrics.jsonl").read_text().splitlines()]
    return [{k: v for k, v in r.items() if not k.startswith(("time/", "throughput/"))} for r in rows]


def test_lora_training_resume_and_eval(tmp_path, tiny_lab_overrides):
    from entrostat.eval.target import load_target_policy, resolve_target
    from entrostat.config.recipes import build_config
    from entrostat.train import resume, train

    overrides = [*tiny_lab_overrides, "model.lora={r: 4, alpha: 8}", "log.checkpoint_every=1", "eval.every=0",
                 "optim.lr=0.01", "loss.entropy_coef=0.1", "loss.kl_coef=0.1"]  # the entropy bonus moves the adapters
    # even when every reward is 0; the KL term makes a reference copy of the LoRA model
    full = train(build_config(None, [*overrides, "trainer.steps=3"]), tmp_path / "full")
    cut = train(build_config(None, [*overrides, "trainer.steps=2"]), tmp_path / "cut")
    resume(cut, steps=3)
    assert _records(cut) == _records(full)
    last = full / "checkpoints" / "step-00000003" / "model.safetensors"
    a, b = load_file(str(last)), load_file(str(cut / "checkpoints" / "step-00000003" / "model.safetensors"))
    assert a.keys() == b.keys() and all("lora_" in k for k in a) and all(torch.equal(a[k], b[k]) for k in a)
    assert any(k.endswith("lora_B.default.weight") and a[k].abs().sum() > 0 for k in a)  # the adapters moved

    model, tok, _ = load_target_policy(resolve_target(str(full)), progress=False)
    cfg = resolve_target(str(full)).cfg
    from entrostat.models.loading import load_policy

    ref, _, _ = load_policy("lab", lab_recipe=cfg.model.lab_recipe, lora=cfg.model.lora, progress=False)
    load_checkpoint_weights(ref, a)
    ids = tok(["13:385176="], return_tensors="pt")["input_ids"]
    with torch.no_grad():
        assert torch.allclose(model(ids).logits, ref(ids).logits, atol=1e-5)
