"""Shared fixtures of the rollout tests: the lab tokenizer and a tiny random lab model."""

import pytest

from entrostat.models.lab import build_lab_model, build_lab_tokenizer


@pytest.fixture(scope="module")
def tok():
    return build_lab_tokenizer()


@pytest.fixture(scope="module")
def model(tok):
    return build_lab_model(tok, seed=0, hidden_size=32, intermediate_size=64, num_layers=2, num_heads=2).eval()
