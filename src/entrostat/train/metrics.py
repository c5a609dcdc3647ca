"""The one writer of metrics: one JSON object per step appended to ``metrics.jsonl``."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

TIMING_PREFIXES = ("time/", "throughput/")  # wall-clock figures: the only keys that differ between identical runs


def _clean(v: Any) -> Any:
    if isinstance(v, float) and not math.isfinite(v):
        return None if math.isnan(v) else (1e308 if v > 0 else -1e308)
    return v


class MetricsLogger:
    """Appends records; on resume, drops records past the checkpoint's step first."""

    def __init__(self, path: Path):
        self.path = path

    def truncate_after(self, step: int) -> None:
        if not self.path.exists():
            return
        keep = [r for r in read_metrics(self.path) if r.get("step", -1) <= step]
        tmp = self.path.with_suffix(".tmp")
        with open(tmp, "w") as f:
            for r in keep:
                f.write(json.dumps(r) + "\n")
        tmp.replace(self.path)

    def log(self, record: dict[str, Any]) -> None:
        with open(self.path, "a") as f:
            f.write(json.dumps({k: _clean(v) for k, v in record.items()}) + "\n")
            f.flush()


def read_metrics(path: Path) -> list[dict[str, Any]]:
    """Records of a metrics.jsonl; a truncated or corrupt line is skipped (with a warning)."""
    import warnings

    out = []
    with open(path) as f:
        for i, line in enumerate(f, 1):
            line = line.strip()
            if not line:
                continue
            try:
                out.append(json.loads(line))
            except json.JSONDecodeError:
                warnings.warn(f"{path}:{i}: skipping a truncated or corrupt metrics line", stacklevel=2)
    return out
