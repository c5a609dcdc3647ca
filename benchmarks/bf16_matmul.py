"""bf16 against fp32 matrix multiply on this CPU: GFLOP/s of ``torch.matmul`` and ``F.linear`` and their ratio.

Whether bf16 helps on a CPU depends on its instructions, not on torch: with AVX512-BF16 / AMX
(``lscpu | grep -o 'avx512_bf16\\|amx_bf16'``) a bf16 matmul runs on the bf16 units and is faster
than fp32; without them (AVX2 only) it is emulated and can be 100× slower. Run this before choosing
``model.dtype=bfloat16`` or ``model.bf16_autocast=true`` for a CPU run.

    python benchmarks/bf16_matmul.py [--size 1024] [--threads 2] [--seconds 1.0]

Prints the CPU model and its bf16 flags, then one line per (op, dtype) and the bf16 / fp32 ratios.
"""

from __future__ import annotations

import argparse
import platform
import re
import time
from pathlib import Path

import torch
import torch.nn.functional as F


def cpu_description() -> str:
    """Model name and bf16-related flags from /proc/cpuinfo (Linux); the platform string elsewhere."""
    try:
        info = Path("/proc/cpuinfo").read_text()
    except OSError:
        return platform.processor() or platform.machine()
    name = re.search(r"^model name\s*:\s*(.*)$", info, re.M)
    family = re.search(r"^cpu family\s*:\s*(\d+)$", info, re.M)
    model = re.search(r"^model\s*:\s*(\d+)$", info, re.M)
    found = re.search(r"^flags\s*:\s*(.*)$", info, re.M)
    flags = set(found.group(1).split()) if found else set()
    bf16 = sorted(f for f in flags if f in ("avx512_bf16", "amx_bf16", "amx_tile", "avx2", "avx512f"))
    ident = f" (family {family.group(1)}, model {model.group(1)})" if family and model else ""
    return f"{name.group(1) if name else platform.machine()}{ident}; flags: {' '.join(bf16) or 'none of avx2/avx512/amx'}"


def gflops(op, a: torch.Tensor, b: torch.Tensor, seconds: float) -> float:
    """Best GFLOP/s of ``op(a, b)`` over repeats filling about ``seconds`` (after one warm-up call)."""
    n, k = a.shape
    m = b.shape[1] if op is torch.matmul else b.shape[0]
    op(a, b)
    best, spent = 0.0, 0.0
    while spent < seconds:
        t = time.perf_counter()
        op(a, b)
        dt = time.perf_counter() - t
        spent += dt
        best = max(best, 2 * n * k * m / dt / 1e9)
    return best


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--size", type=int, default=1024, help="square matrices of this size")
    ap.add_argument("--threads", type=int, default=2, help="torch CPU threads")
    ap.add_argument("--seconds", type=float, default=1.0, help="time spent on each (op, dtype)")
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(a.size, a.size, generator=gen)
    w = torch.randn(a.size, a.size, generator=gen)
    print(f"CPU: {cpu_description()}")
    print(f"torch {torch.__version__}, {a.threads} threads, {a.size}×{a.size}")
    result = {}
    for name, op in (("torch.matmul", torch.matmul), ("F.linear", F.linear)):
        for dtype in (torch.float32, torch.bfloat16):
            result[name, dtype] = gflops(op, x.to(dtype), w.to(dtype), a.seconds)
            print(f"{name:<13} {str(dtype).removeprefix('torch.'):<9} {result[name, dtype]:8.1f} GFLOP/s")
    for name in ("torch.matmul", "F.linear"):
        ratio = result[name, torch.bfloat16] / result[name, torch.float32]
        print(f"{name}: bf16 / fp32 = {ratio:.2f}× ({'bf16 faster' if ratio > 1 else 'bf16 slower'})")


if __name__ == "__main__":
    main()
