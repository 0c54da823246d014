"""Benchmark the masking kernels: one command, on a GPU or (``--cpu``) on the CPU paths.

GPU (default; needs CUDA, triton, and xgrammar for the comparison)::

    python benchmarks/kernels_bench.py                  # full grid, markdown to stdout
    python benchmarks/kernels_bench.py --quick          # a few sizes
    python benchmarks/kernels_bench.py --sweep          # apply kernel BLOCK x num_warps sweep (tuning)
    python benchmarks/kernels_bench.py --out results.md # also write the tables to a file

It reports, for batch 1..512 x vocab 32k..256k:

* apply_token_bitmask_ (ours, Triton) vs xgrammar's ``apply_token_bitmask_inplace`` (its Triton
  backend) in the same run: GPU time per call measured by replaying a CUDA graph of 20 calls (no
  Python overhead) and, separately, wall time per eager call (Python + launch); achieved bandwidth
  = (B * L * itemsize + bitmask bytes) / GPU time, as a fraction of the device's spec peak HBM
  bandwidth (table below, ``--peak-gbs`` overrides) and of a measured device-to-device copy;
* sample_masked (fused mask + temperature + sampling) vs the unfused torch path (mask in place,
  softmax, multinomial), and with top-k/top-p vs torch's sort-based filtering;
* DfaStepper.step (the whole DFA step) per call.

Without CUDA it prints a message and exits 0. ``--cpu`` compares the CPU paths instead (reference,
vectorized torch, xgrammar's C++ CPU kernel) and prints machine info.
"""

# ruff: noqa: B023  (the timed lambdas close over loop variables and run before the loop moves on)
from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout without installing

# spec peak HBM bandwidth, GB/s (vendor datasheets)
PEAK_GBS = {
    "H100 80GB HBM3": 3350.0,  # SXM5
    "H100 PCIe": 2000.0,
    "H100 NVL": 3900.0,
    "H200": 4800.0,
    "A100-SXM4-80GB": 2039.0,
    "A100-SXM4-40GB": 1555.0,
    "A100 80GB PCIe": 1935.0,
    "A100-PCIE-40GB": 1555.0,
    "L40S": 864.0,
    "L4": 300.0,
    "A10G": 600.0,
    "RTX 4090": 1008.0,
    "RTX 3090": 936.0,
}

DEVICE = "cuda"  # tests set "cpu" (with the Triton interpreter) to smoke-test this script without a GPU
BATCHES = [1, 8, 64, 128, 512]
VOCABS = [32000, 128256, 151936, 262144]


def random_bitmask(rows: int, vocab: int, density: float, device: str) -> torch.Tensor:
    words = (vocab + 31) // 32
    allowed = torch.rand(rows, words * 32, device=device) < density
    allowed[:, vocab:] = False
    bits = allowed.reshape(rows, words, 32).to(torch.int64) << torch.arange(32, device=device)
    packed = bits.sum(-1)
    return torch.where(packed >= 2**31, packed - 2**32, packed).to(torch.int32)


def random_inputs(
    vocabs: Iterable[int],
    batches: Iterable[int],
    density: float,
    dtype: torch.dtype | None = None,
    device: str | None = None,
) -> Iterator[tuple[int, int, torch.Tensor, torch.Tensor]]:
    """``(batch, vocab, logits (B, V), bitmask (B, ceil(V/32)) int32)`` over the grid, vocabulary-major;
    ``device`` defaults to ``DEVICE`` (read at call time: tests switch it to the CPU)."""
    device = DEVICE if device is None else device
    for vocab in vocabs:
        for batch in batches:
            logits = torch.randn(batch, vocab, device=device, dtype=dtype)
            yield batch, vocab, logits, random_bitmask(batch, vocab, density, device)


def peak_gbs(name: str, override: float | None) -> float | None:
    if override:
        return override
    for key, value in PEAK_GBS.items():
        if key in name:
            return value
    return None


def cuda_time_us(fn: Callable[[], object], reps: int = 20, iters: int = 10) -> float:
    """GPU time per call: a CUDA graph of ``reps`` calls, replayed ``iters`` times (median)."""
    s = torch.cuda.Stream()
    s.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(s):
        for _ in range(3):
            fn()
    torch.cuda.current_stream().wait_stream(s)
    torch.cuda.synchronize()
    graph = torch.cuda.CUDAGraph()
    with torch.cuda.graph(graph):
        for _ in range(reps):
            fn()
    graph.replay()
    torch.cuda.synchronize()
    times = []
    for _ in range(iters):
        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        start.record()
        graph.replay()
        end.record()
        end.synchronize()
        times.append(start.elapsed_time(end) * 1000 / reps)
    return statistics.median(times)


def eager_time_us(fn: Callable[[], object], iters: int = 50) -> float:
    for _ in range(5):
        fn()
    torch.cuda.synchronize()
    start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
    start.record()
    for _ in range(iters):
        fn()
    end.record()
    end.synchronize()
    return start.elapsed_time(end) * 1000 / iters


def measured_copy_gbs() -> float:
    n = 1 << 28  # 1 GiB of fp32
    a = torch.empty(n, dtype=torch.float32, device=DEVICE)
    b = torch.empty_like(a)
    us = cuda_time_us(lambda: b.copy_(a), reps=5, iters=5)
    return 2 * a.numel() * 4 / (us * 1e-6) / 1e9


def bench_apply(args: argparse.Namespace, peak: float | None, copy_gbs: float) -> list[dict]:
    from structgen.kernels import apply_token_bitmask_

    try:
        import xgrammar as xgr
    except ImportError:
        xgr = None
        print("xgrammar is not installed: its column stays empty", file=sys.stderr)
    dtype = getattr(torch, args.dtype)
    rows = []
    for batch, vocab, logits, bm in random_inputs(args.vocabs, args.batches, args.density, dtype):
        nbytes = batch * vocab * logits.element_size() + bm.numel() * 4
        ours = cuda_time_us(lambda: apply_token_bitmask_(logits, bm))
        ours_eager = eager_time_us(lambda: apply_token_bitmask_(logits, bm))
        row = {
            "batch": batch,
            "vocab": vocab,
            "ours_us": ours,
            "ours_eager_us": ours_eager,
            "ours_gbs": nbytes / (ours * 1e-6) / 1e9,
        }
        if xgr is not None:
            row["xgr_us"] = cuda_time_us(lambda: xgr.apply_token_bitmask_inplace(logits, bm))
            row["xgr_eager_us"] = eager_time_us(lambda: xgr.apply_token_bitmask_inplace(logits, bm))
        row["frac_peak"] = row["ours_gbs"] / peak if peak else None
        row["frac_copy"] = row["ours_gbs"] / copy_gbs
        rows.append(row)
        print(json.dumps(row), file=sys.stderr)
    return rows


def bench_sweep(args: argparse.Namespace) -> list[dict]:
    from structgen.kernels._checks import check_apply_args
    from structgen.kernels.triton_kernels import apply_token_bitmask_triton_

    dtype = getattr(torch, args.dtype)
    out = []
    for batch, vocab, logits, bm in random_inputs((128256,), (1, 64, 512), args.density, dtype):
        lg, b, a = check_apply_args(logits, bm, None, None)
        for block in (1024, 2048, 4096, 8192):
            for warps in (4, 8, 16, 32):
                us = cuda_time_us(lambda: apply_token_bitmask_triton_(lg, b, a, block=block, num_warps=warps))
                out.append({"batch": batch, "vocab": vocab, "block": block, "warps": warps, "us": us})
                print(json.dumps(out[-1]), file=sys.stderr)
    return out


def torch_topk_topp(logits: torch.Tensor, k: int, p: float) -> torch.Tensor:
    vals, idx = torch.sort(logits, dim=-1, descending=True)
    vals[:, k:] = float("-inf")
    probs = torch.softmax(vals, dim=-1)
    cum = torch.cumsum(probs, dim=-1)
    vals = vals.masked_fill((cum - probs) >= p, float("-inf"))
    choice = torch.multinomial(torch.softmax(vals, dim=-1), 1)
    return idx.gather(1, choice)


def bench_sample(args: argparse.Namespace) -> list[dict]:
    from structgen.kernels import DfaStepper, apply_token_bitmask_, sample_masked

    dtype = getattr(torch, args.dtype)
    rows = []
    for batch, vocab, logits, bm in random_inputs(args.vocabs, args.batches, args.density, dtype):
        seed = torch.tensor([1], dtype=torch.int64, device=DEVICE)
        work = logits.clone()

        def unfused() -> torch.Tensor:
            work.copy_(logits)  # the unfused path destroys its input; the copy is timed separately
            apply_token_bitmask_(work, bm)
            return torch.multinomial(torch.softmax(work.float(), dim=-1), 1)

        def unfused_trunc() -> torch.Tensor:
            work.copy_(logits)
            apply_token_bitmask_(work, bm)
            return torch_topk_topp(work.float(), 50, 0.9)

        copy_us = cuda_time_us(lambda: work.copy_(logits))
        row = {
            "batch": batch,
            "vocab": vocab,
            "fused_us": cuda_time_us(lambda: sample_masked(logits, bm, 1.0, seed=seed)),
            "fused_greedy_us": cuda_time_us(lambda: sample_masked(logits, bm, 0.0, seed=seed)),
            "unfused_us": cuda_time_us(unfused) - copy_us,
            "fused_topk_topp_us": cuda_time_us(lambda: sample_masked(logits, bm, 1.0, 50, 0.9, seed=seed)),
            "unfused_topk_topp_us": cuda_time_us(unfused_trunc) - copy_us,
        }
        row["speedup"] = row["unfused_us"] / row["fused_us"]
        row["speedup_topk_topp"] = row["unfused_topk_topp_us"] / row["fused_topk_topp_us"]
        states_n = 64
        table = random_bitmask(states_n, vocab, args.density, DEVICE)
        nxt = torch.randint(1, states_n, (states_n, vocab), device=DEVICE, dtype=torch.int32)
        stepper = DfaStepper(table, nxt)
        states = torch.randint(1, states_n, (batch,), device=DEVICE)
        row["dfa_step_us"] = cuda_time_us(lambda: stepper.step(logits, states))
        rows.append(row)
        print(json.dumps(row), file=sys.stderr)
    return rows


def bench_cpu(args: argparse.Namespace) -> list[dict]:
    from structgen.kernels import apply_token_bitmask_

    try:
        import xgrammar as xgr
    except ImportError:
        xgr = None

    def wall_ms(fn: Callable[[], object], iters: int = 15) -> float:
        fn()
        times = []
        for _ in range(iters):
            t0 = time.perf_counter()
            fn()
            times.append(time.perf_counter() - t0)
        return min(times) * 1000

    rows = []
    for batch, vocab, logits, bm in random_inputs((32000, 128256, 151936), (1, 8, 64), args.density, device="cpu"):
        row = {
            "batch": batch,
            "vocab": vocab,
            "reference_ms": wall_ms(lambda: apply_token_bitmask_(logits, bm, backend="reference")),
            "torch_ms": wall_ms(lambda: apply_token_bitmask_(logits, bm, backend="torch")),
        }
        if xgr is not None:
            row["xgrammar_cpu_ms"] = wall_ms(lambda: xgr.apply_token_bitmask_inplace(logits, bm))
        rows.append(row)
        print(json.dumps(row), file=sys.stderr)
    return rows


def fmt(value: object) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.3f}" if value < 10 else f"{value:.1f}"
    return str(value)


def table(rows: list[dict]) -> str:
    if not rows:
        return ""
    cols = list(dict.fromkeys(k for r in rows for k in r))
    lines = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    lines += ["| " + " | ".join(fmt(r.get(c)) for c in cols) + " |" for r in rows]
    return "\n".join(lines)


def machine_info() -> str:
    try:
        from run import cpu_name  # benchmarks/run.py
    except ImportError:
        from benchmarks.run import cpu_name
    info = f"{cpu_name()}, {os.cpu_count()} logical CPUs, torch {torch.__version__} ({torch.get_num_threads()} threads), Python {platform.python_version()}"
    if torch.cuda.is_available():
        info += f", GPU {torch.cuda.get_device_name()}"
    try:
        import triton

        info += f", triton {triton.__version__}"
    except ImportError:
        pass
    try:
        from importlib.metadata import version

        info += f", xgrammar {version('xgrammar')}"
    except Exception:  # noqa: BLE001 - optional
        pass
    return info


def add_arguments(ap: argparse.ArgumentParser) -> None:
    """The options (also the hook for ``benchmarks/run.py``'s registry)."""
    ap.add_argument("--cpu", action="store_true", help="compare the CPU paths instead of the GPU kernels")
    ap.add_argument("--quick", action="store_true", help="a few sizes only")
    ap.add_argument("--sweep", action="store_true", help="tune the apply kernel's BLOCK and num_warps")
    ap.add_argument("--dtype", default="bfloat16", choices=["float32", "bfloat16", "float16"])
    ap.add_argument("--density", type=float, default=0.5, help="fraction of allowed tokens in the random masks")
    ap.add_argument("--peak-gbs", type=float, default=None, help="the GPU's peak memory bandwidth, GB/s")
    ap.add_argument("--threads", type=int, default=None, help="torch intra-op threads (CPU mode)")


NO_CUDA = (
    "No CUDA device: the GPU kernel benchmark needs one. Nothing was measured.\n"
    "Run `python benchmarks/kernels_bench.py --cpu` to compare the CPU paths."
)


def report(args: argparse.Namespace) -> str | None:
    """The markdown tables, or None when the GPU benchmark was asked for and there is no CUDA device."""
    if args.threads:
        torch.set_num_threads(args.threads)
    args.batches = [1, 64] if args.quick else BATCHES
    args.vocabs = [32000, 128256] if args.quick else VOCABS
    sections = [f"Machine: {machine_info()}\n"]
    if args.cpu:
        sections.append("### CPU paths: apply_token_bitmask_ (float32, best of 15, ms)\n\n" + table(bench_cpu(args)))
    elif not torch.cuda.is_available():
        return None
    elif args.sweep:
        sections.append("### apply kernel sweep (GPU time per call, us)\n\n" + table(bench_sweep(args)))
    else:
        name = torch.cuda.get_device_name()
        peak = peak_gbs(name, args.peak_gbs)
        copy_gbs = measured_copy_gbs()
        sections.append(
            f"GPU: {name}; spec peak {fmt(peak)} GB/s; measured copy {copy_gbs:.0f} GB/s; logits {args.dtype}; "
            f"mask density {args.density}\n"
        )
        sections.append(
            "### apply_token_bitmask_ vs xgrammar (us per call; GPU time from CUDA-graph replay, eager = Python + launch)\n\n"
            + table(bench_apply(args, peak, copy_gbs))
        )
        sections.append(
            "### fused sample_masked vs torch mask + softmax + multinomial (GPU time, us)\n\n"
            + table(bench_sample(args))
        )
    return "\n\n".join(sections) + "\n"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_arguments(ap)
    ap.add_argument("--out", type=Path, default=None, help="also write the markdown tables here")
    args = ap.parse_args(argv)
    text = report(args)
    if text is None:
        print(NO_CUDA)
        return 0
    cmd = "python benchmarks/kernels_bench.py " + " ".join(sys.argv[1:] if argv is None else argv)
    text = f"Command: `{cmd}`\n\n{text}"
    print(text)
    if args.out:
        args.out.write_text(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
