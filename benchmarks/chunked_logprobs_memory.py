"""Peak memory and wall time of naive vs chunked log-probs + token entropy (forward + backward).

    python benchmarks/chunked_logprobs_memory.py                 # B = 64, T = 512, V = 49152, bf16 logits
    python benchmarks/chunked_logprobs_memory.py --B 16 --chunk 256

Each variant runs in a fresh subprocess so their peaks do not mix. Memory is
peak RSS (``resource.getrusage(...).ru_maxrss``) minus the RSS right after the
inputs (bf16 logits, labels) were created: the extra memory of computing
(log π(a), H_t) and their gradient w.r.t. the logits (which includes the
logits' own gradient, the same for both variants).

naive   : lp = log_softmax(logits.float()); logp = lp.gather(labels); H = −Σ exp(lp)·lp  (autograd)
chunked : entrostat.ops.logprobs_and_entropy (custom autograd function, O(chunk·V) fp32 transients)

If the naive variant would not fit comfortably in this machine's memory at the
requested B, both variants are measured at a smaller B (said in the output).
Targets (from the issue): chunked extra memory ≤ 1/8 of naive; chunked time ≤ 1.2× naive.
Timing goes here, never into the test suite.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time

GiB = 1024**3
# Naive keeps ~log_softmax output + exp(output) for backward, plus ~3 fp32 (N, V) gradient
# buffers alive at once during backward, plus a transient copy: budget 6 fp32 copies.
NAIVE_FP32_COPIES = 6


def _rss_bytes() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def _mem_total_bytes() -> int:
    with open("/proc/meminfo") as f:
        for line in f:
            if line.startswith("MemTotal:"):
                return int(line.split()[1]) * 1024
    return 0


def _worker(variant: str, b: int, t: int, v: int, chunk: int, repeats: int) -> None:
    import torch

    from entrostat import ops

    torch.manual_seed(0)
    logits = torch.randn(b, t, v, dtype=torch.bfloat16).requires_grad_(True)
    labels = torch.randint(0, v, (b, t))
    g_logp, g_ent = torch.randn(b, t), torch.randn(b, t)
    base = _rss_bytes()

    def naive():
        lp_all = torch.log_softmax(logits.float(), dim=-1)
        logp = lp_all.gather(-1, labels[..., None]).squeeze(-1)
        ent = -(lp_all.exp() * lp_all).sum(-1)
        return logp, ent

    def chunked():
        return ops.logprobs_and_entropy(logits, labels, chunk=chunk)

    fn = naive if variant == "naive" else chunked
    times = []
    for _ in range(repeats):
        logits.grad = None
        t0 = time.perf_counter()
        logp, ent = fn()
        torch.autograd.backward([logp, ent], [g_logp, g_ent])
        times.append(time.perf_counter() - t0)
        del logp, ent
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # Linux: KiB
    print(json.dumps({"variant": variant, "extra_bytes": peak - base, "seconds": min(times), "all_seconds": times}))


def _run(variant: str, b: int, t: int, v: int, chunk: int, repeats: int) -> dict:
    cmd = [sys.executable, __file__, "--worker", variant, "--B", str(b), "--T", str(t), "--V", str(v),
           "--chunk", str(chunk), "--repeats", str(repeats)]
    out = subprocess.run(cmd, check=True, capture_output=True, text=True, env={**os.environ, "PYTHONUNBUFFERED": "1"})
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--B", type=int, default=64)
    ap.add_argument("--T", type=int, default=512)
    ap.add_argument("--V", type=int, default=49152)
    ap.add_argument("--chunk", type=int, default=0, help="positions per chunk (0: entrostat.ops.DEFAULT_CHUNK)")
    ap.add_argument("--repeats", type=int, default=3, help="forward+backward runs per variant (time: the fastest)")
    ap.add_argument("--fallback-B", type=int, default=16, help="B used for both variants when the naive one would not fit")
    ap.add_argument("--worker", choices=["naive", "chunked"], help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a.chunk == 0:
        from entrostat.ops import DEFAULT_CHUNK

        a.chunk = DEFAULT_CHUNK
    if a.worker:
        _worker(a.worker, a.B, a.T, a.V, a.chunk, a.repeats)
        return

    total = _mem_total_bytes()
    budget = min(20 * GiB, 0.85 * total)

    def naive_estimate(b: int) -> float:
        return NAIVE_FP32_COPIES * b * a.T * a.V * 4 + b * a.T * a.V * 2 * 2  # fp32 copies + bf16 logits and grad

    b = a.B
    print(f"machine memory {total / GiB:.1f} GiB; budget for one run {budget / GiB:.1f} GiB")
    print(f"requested B={a.B}, T={a.T}, V={a.V}: bf16 logits {a.B * a.T * a.V * 2 / GiB:.2f} GiB, "
          f"one fp32 copy {a.B * a.T * a.V * 4 / GiB:.2f} GiB, naive estimate ~{naive_estimate(a.B) / GiB:.1f} GiB")
    if naive_estimate(b) > budget:
        b = a.fallback_B
        print(f"-> naive at B={a.B} would not fit safely: measuring BOTH variants at B={b} instead "
              f"(naive estimate ~{naive_estimate(b) / GiB:.1f} GiB)")
    n_pos = b * a.T
    print(f"measuring B={b}, T={a.T}, V={a.V} (N={n_pos} positions), bf16 logits, chunk={a.chunk}, "
          f"torch threads={os.environ.get('OMP_NUM_THREADS', 'default')}")
    print(f"theoretical logits size: bf16 {n_pos * a.V * 2 / GiB:.3f} GiB, fp32 {n_pos * a.V * 4 / GiB:.3f} GiB; "
          f"one fp32 chunk {min(a.chunk, n_pos) * a.V * 4 / 2**20:.0f} MiB")
    res = {v: _run(v, b, a.T, a.V, a.chunk, a.repeats) for v in ("naive", "chunked")}
    for v, r in res.items():
        print(f"{v:8s} extra peak RSS {r['extra_bytes'] / GiB:7.3f} GiB   time {r['seconds']:7.2f} s   "
              f"(runs: {', '.join(f'{s:.2f}' for s in r['all_seconds'])})")
    grad_bytes = n_pos * a.V * 2  # the bf16 gradient w.r.t. the logits: the same for both variants
    work = {v: r["extra_bytes"] - grad_bytes for v, r in res.items()}
    print(f"of which the logits' own bf16 gradient is {grad_bytes / GiB:.3f} GiB in both; beyond it: "
          f"naive {work['naive'] / GiB:.3f} GiB, chunked {work['chunked'] / GiB:.3f} GiB "
          f"(ratio {work['chunked'] / max(work['naive'], 1):.3f})")
    mem_ratio = res["chunked"]["extra_bytes"] / max(res["naive"]["extra_bytes"], 1)
    time_ratio = res["chunked"]["seconds"] / res["naive"]["seconds"]
    print(f"memory ratio chunked/naive = {mem_ratio:.3f}  (target <= 0.125: {'OK' if mem_ratio <= 0.125 else 'MISSED'})")
    print(f"time   ratio chunked/naive = {time_ratio:.3f}  (target <= 1.2:   {'OK' if time_ratio <= 1.2 else 'MISSED'})")


if __name__ == "__main__":
    main()
