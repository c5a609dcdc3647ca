"""The lab tokenizer, model builder and the cached base model (tiny pre-training budget)."""

import os
import random

import pytest
import torch

from entrostat.models import lab as lab_mod
from entrostat.models.lab import (
    LabRecipe,
    build_lab_model,
    build_lab_tokenizer,
    format_prompt,
    load_lab_base_model,
)
from entrostat.tasks import get_task
from entrostat.tasks.lab import sample_demonstration

TINY = LabRecipe(model={"hidden_size": 32, "intermediate_size": 64, "num_layers": 1, "num_heads": 2},
                 n_problems=64, steps=6, batch_size=16, warmup_steps=2)


def test_tokenizer_round_trip_and_specials():
    tok = build_lab_tokenizer()
    assert (tok.pad_token_id, tok.bos_token_id, tok.eos_token_id, tok.unk_token_id) == (0, 1, 2, 3)
    assert tok.padding_side == "left"
    task = get_task("lab")
    rng = random.Random(0)
    for p in task.problems("train", 20, seed=0):
        text = format_prompt(p) + sample_demonstration(p, rng, 0.5)
        ids = tok(text)["input_ids"]
        assert ids[0] == tok.bos_token_id and len(ids) == len(text) + 1  # one token per character
        assert tok.unk_token_id not in ids
        assert tok.decode(ids, skip_special_tokens=True) == text
    assert tok.decode([tok.convert_tokens_to_ids("7"), tok.eos_token_id, 0], skip_special_tokens=True) == "7"


def test_format_prompt():
    p = get_task("lab").problems("heldout", 1, seed=0)[0]
    assert format_prompt(p) == p.prompt + "="


def test_build_model_is_seeded_and_leaves_global_rng_alone():
    tok = build_lab_tokenizer()
    state = torch.random.get_rng_state()
    a, b, c = build_lab_model(tok, 0), build_lab_model(tok, 0), build_lab_model(tok, 1)
    assert torch.equal(torch.random.get_rng_state(), state)
    n = sum(p.numel() for p in a.parameters())
    assert 2e5 < n < 5e6
    wa, wb, wc = (m.model.layers[0].mlp.up_proj.weight for m in (a, b, c))
    assert torch.equal(wa, wb) and not torch.equal(wa, wc)
    assert a.config.vocab_size == len(tok) and a.config.eos_token_id == tok.eos_token_id


def test_base_model_is_cached_atomically(tmp_path):
    model, tok = load_lab_base_model(str(tmp_path), seed=0, progress=False, recipe=TINY)
    dirs = os.listdir(tmp_path / "lab")
    assert dirs == [f"base-{TINY.key(0)}"]  # no temporary directory left behind
    assert not model.training
    again, _ = load_lab_base_model(str(tmp_path), seed=0, progress=False, recipe=TINY)
    for (name, p), q in zip(model.state_dict().items(), again.state_dict().values()):
        assert torch.equal(p, q), name
    assert tok("7:12=")["input_ids"][0] == tok.bos_token_id and tok.padding_side == "left"
    load_lab_base_model(str(tmp_path), seed=1, progress=False, recipe=TINY)
    assert len(os.listdir(tmp_path / "lab")) == 2  # the seed is part of the cache key


def test_pretraining_is_reproducible(tmp_path):
    a, _ = load_lab_base_model(str(tmp_path / "a"), seed=0, progress=False, recipe=TINY)
    b, _ = load_lab_base_model(str(tmp_path / "b"), seed=0, progress=False, recipe=TINY)
    fresh = build_lab_model(build_lab_tokenizer(), 0, **TINY.model)
    for (name, p), q, r in zip(a.state_dict().items(), b.state_dict().values(), fresh.state_dict().values()):
        assert torch.equal(p, q), name
    assert not torch.equal(a.model.layers[0].mlp.up_proj.weight, fresh.model.layers[0].mlp.up_proj.weight)


def test_cache_dir_from_environment(tmp_path, monkeypatch):
    monkeypatch.setenv("ENTROSTAT_CACHE", str(tmp_path / "env"))
    load_lab_base_model(seed=0, progress=False, recipe=TINY)
    assert (tmp_path / "env" / "lab" / f"base-{TINY.key(0)}" / "config.json").exists()


def test_interrupted_write_leaves_no_cache(tmp_path, monkeypatch):
    def boom(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(lab_mod, "pretrain_lab_model", lambda model, *a, **k: model)
    monkeypatch.setattr(type(build_lab_model(build_lab_tokenizer(), 0)), "save_pretrained", boom)
    with pytest.raises(KeyboardInterrupt):
        load_lab_base_model(str(tmp_path), seed=0, progress=False, recipe=TINY)
    assert os.listdir(tmp_path / "lab") == []


def test_recipe_key_depends_on_every_field():
    assert TINY.key(0) != TINY.key(1)
    assert LabRecipe().key(0) != LabRecipe(correct_prob=0.5).key(0)
    assert LabRecipe().key(0) == LabRecipe().key(0)


def test_recipe_pre_trains_a_thought_lab_twice_as_long_and_keys_the_steps_taken():
    from entrostat.models.lab import LabRecipe

    assert LabRecipe().steps == 320 and LabRecipe(task={"thought_len": 0}).steps == 320
    assert LabRecipe(task={"thought_len": 3}).steps == 640 and LabRecipe(task={"thought_len": 3}, steps=8).steps == 8
    assert LabRecipe(steps=320).key(0) == LabRecipe().key(0)  # the default is keyed as the number it resolves to
    assert LabRecipe(task={"thought_len": 3}, steps=640).key(0) == LabRecipe(task={"thought_len": 3}).key(0)
