"""Concatenating rollout rows of different padded lengths (auxiliary samples into a batch)."""

from __future__ import annotations

import dataclasses

import torch
import torch.nn.functional as F

from entrostat.types import RolloutBatch

_PROMPT_FIELDS = ("prompt_ids", "prompt_mask")  # left-padded
_COMPLETION_FIELDS = ("completion_ids", "completion_mask", "sampler_logprobs", "old_logprobs", "ref_logprobs")


def _pad(t: torch.Tensor, width: int, left: bool, value: float) -> torch.Tensor:
    extra = width - t.shape[1]
    return F.pad(t, (extra, 0) if left else (0, extra), value=value) if extra else t


def cat_rows(batches: list[RolloutBatch], pad_token_id: int) -> RolloutBatch:
    """Rows of ``batches`` in order; prompts re-left-padded and completions re-right-padded to a
    common width. A field missing (None) in any batch is None in the result; ``meta`` lists are joined."""
    out = {}
    for f in dataclasses.fields(RolloutBatch):
        values = [getattr(b, f.name) for b in batches]
        if f.name == "meta":
            keys = set.intersection(*(set(v) for v in values))
            out["meta"] = {k: sum((list(v[k]) for v in values), []) for k in keys if all(isinstance(v[k], list) for v in values)}
        elif any(v is None for v in values):
            out[f.name] = None
        elif f.name in _PROMPT_FIELDS or f.name in _COMPLETION_FIELDS or (f.name == "advantages" and values[0].dim() == 2):
            width = max(v.shape[1] for v in values)
            fill = pad_token_id if f.name.endswith("_ids") else 0
            out[f.name] = torch.cat([_pad(v, width, f.name in _PROMPT_FIELDS, fill) for v in values])
        else:
            out[f.name] = torch.cat(values)
    return RolloutBatch(**out)
