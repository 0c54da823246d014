"""The fast CPU path for the bitmask application (vectorized torch, no Python loop over tokens).

Unpacking is a table lookup: on a little-endian machine the bytes of the int32 words, in memory
order, are the tokens in order (byte ``k`` of word ``w`` holds tokens ``32w + 8k .. 32w + 8k + 7``).
A 256-entry int64 table maps a byte to eight 0/1 bytes, so ``take(LUT, bytes).view(bool)`` is the
"masked" mask in token order with one gather per 8 tokens and no shifts. Measured against the
shift-based reference and a (256, 8) bool table; see docs/benchmarks.md ("Kernels").
"""

from __future__ import annotations

import sys

import torch

from ._checks import ApplyArgs
from .reference import NEG_INF, unpack_bitmask

_LUT: dict[torch.device, torch.Tensor] = {}


def _lut(device: torch.device) -> torch.Tensor:
    table = _LUT.get(device)
    if table is None:
        byte = torch.arange(256, dtype=torch.int64)[:, None]
        # byte k of entry b is 1 iff bit k of b is 0 (masked), so the result feeds masked_fill_ directly
        masked = (((byte >> torch.arange(8)) & 1) == 0).to(torch.int64)  # (256, 8)
        table = (masked << (8 * torch.arange(8))).sum(dim=1).to(device)  # (256,) int64
        _LUT[device] = table
    return table


def masked_columns(bitmask: torch.Tensor, width: int, vocab_size: int) -> torch.Tensor:
    """``(R, W) int32 -> (R, width) bool``, True where the token must be set to ``-inf``."""
    rows = bitmask.shape[0]
    out = torch.ones(rows, width, dtype=torch.bool, device=bitmask.device)  # padding stays True
    if vocab_size == 0:
        return out
    if sys.byteorder == "little":
        raw = bitmask.contiguous().view(torch.uint8)  # (R, 4W) uint8, token order
        packed = torch.take(_lut(bitmask.device), raw.to(torch.int64))  # (R, 4W) int64 = 8 bools each
        bits = packed.view(torch.bool).reshape(rows, -1)  # (R, 32W) bool
        out[:, :vocab_size] = bits[:, :vocab_size]
    else:  # pragma: no cover - no big-endian CI machine
        out[:, :vocab_size] = ~unpack_bitmask(bitmask, vocab_size)
    return out


def apply_token_bitmask_cpu_(logits: torch.Tensor, bitmask: torch.Tensor, args: ApplyArgs) -> None:
    """In-place application on validated arguments (any device torch supports; used for CPU)."""
    width = logits.shape[1]
    if args.indices is None:
        logits.masked_fill_(masked_columns(bitmask, width, args.vocab_size), NEG_INF)
        return
    idx = args.indices
    if idx.numel() == 0:
        return
    rows = torch.unique(idx)  # duplicates are idempotent; unique keeps index_put well-defined
    dis = masked_columns(bitmask[rows], width, args.vocab_size)  # (n, L) bool
    sub = logits[rows]  # (n, L) copy
    sub.masked_fill_(dis, NEG_INF)
    logits[rows] = sub
