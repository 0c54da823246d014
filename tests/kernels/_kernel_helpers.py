"""Helpers shared by the kernel tests (imported by basename, like tests/runtime's helpers)."""

from __future__ import annotations

import torch

DTYPES = [torch.float32, torch.bfloat16, torch.float16]
VOCABS = [32000, 32001, 128256, 151669]
NEG_INF = float("-inf")


def random_bitmask(rows: int, vocab: int, seed: int, density: float = 0.5) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    words = (vocab + 31) // 32
    allowed = torch.rand(rows, words * 32, generator=g) < density
    bits = allowed.reshape(rows, words, 32).to(torch.int64) << torch.arange(32)
    packed = bits.sum(-1)  # (rows, W) int64 in [0, 2^32)
    return torch.where(packed >= 2**31, packed - 2**32, packed).to(torch.int32)
