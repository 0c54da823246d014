"""benchmarks/kernels_bench.py runs: its GPU code path is smoke-tested on the CPU (interpreter, tiny sizes)."""

from __future__ import annotations

import argparse
import importlib.util
import sys
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[2] / "benchmarks" / "kernels_bench.py"


def load_bench():
    spec = importlib.util.spec_from_file_location("kernels_bench_under_test", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def test_gpu_code_path_runs_on_tiny_sizes(triton_device: str, monkeypatch: pytest.MonkeyPatch) -> None:
    bench = load_bench()
    monkeypatch.setattr(bench, "DEVICE", triton_device)
    if triton_device == "cpu":  # no CUDA graphs or events here: call each timed function once
        monkeypatch.setattr(bench, "cuda_time_us", lambda fn, **_: (fn(), 1.0)[1])
        monkeypatch.setattr(bench, "eager_time_us", lambda fn, **_: (fn(), 1.0)[1])
    args = argparse.Namespace(dtype="bfloat16", density=0.5, batches=[2], vocabs=[3000])
    rows = bench.bench_apply(args, peak=3350.0, copy_gbs=3000.0)
    assert rows and rows[0]["frac_peak"] is not None
    rows = bench.bench_sample(args)
    assert rows and {"speedup", "speedup_topk_topp", "dfa_step_us"} <= rows[0].keys()
    assert "| batch |" in bench.table(rows)


def test_without_cuda_it_says_so_and_exits_zero(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    import torch

    bench = load_bench()
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert bench.main([]) == 0
    assert "No CUDA device" in capsys.readouterr().out
