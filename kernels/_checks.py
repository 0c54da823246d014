"""Input validation shared by every path (reference, CPU, Triton).

Decode-time code must not throw in the middle of a batch, but these checks run on the *call*
(shapes, dtypes, devices), which are fixed for a whole generation: a mismatch is a programming
error and raises ``ValueError`` naming both values. Nothing here synchronizes with the device:
values that live on the GPU (indices, states) are never read back; the kernels guard them instead.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch

FLOAT_DTYPES = (torch.float32, torch.float16, torch.bfloat16)

IndicesLike = Sequence[int] | torch.Tensor | None


@dataclass(frozen=True, slots=True)
class ApplyArgs:
    """Validated arguments of a bitmask application."""

    vocab_size: int  # V: tokens [0, V) are governed by the bitmask, [V, L) are padding
    indices: torch.Tensor | None  # (n,) int64 on the logits' device, or None for every row


def check_logits(logits: object, name: str = "logits") -> torch.Tensor:
    if not isinstance(logits, torch.Tensor):
        raise ValueError(f"{name} must be a torch.Tensor, got {type(logits).__name__}")
    if logits.dim() != 2:
        raise ValueError(f"{name} must be 2-D (batch, vocab), got shape {tuple(logits.shape)}")
    if logits.dtype not in FLOAT_DTYPES:
        raise ValueError(f"{name} must be float32, float16 or bfloat16, got {logits.dtype}")
    return logits


def check_bitmask(bitmask: object, logits: torch.Tensor, name: str = "bitmask") -> torch.Tensor:
    if not isinstance(bitmask, torch.Tensor):
        raise ValueError(f"{name} must be a torch.Tensor, got {type(bitmask).__name__}")
    if bitmask.dtype != torch.int32:
        raise ValueError(f"{name} must be int32 (the packed layout), got {bitmask.dtype}; logits are {logits.dtype}")
    if bitmask.dim() != 2:
        raise ValueError(f"{name} must be 2-D (rows, ceil(V/32)), got shape {tuple(bitmask.shape)}")
    if bitmask.device != logits.device:
        raise ValueError(f"{name} is on {bitmask.device} but logits are on {logits.device}; move it first")
    return bitmask


def resolve_vocab_size(vocab_size: int | None, logits: torch.Tensor, bitmask: torch.Tensor) -> int:
    width = int(logits.shape[1])
    covered = 32 * int(bitmask.shape[1])
    if vocab_size is None:
        return min(width, covered)
    vocab_size = int(vocab_size)
    if vocab_size < 0:
        raise ValueError(f"vocab_size must be >= 0, got {vocab_size}")
    if vocab_size > covered:
        raise ValueError(
            f"vocab_size {vocab_size} needs {(vocab_size + 31) // 32} bitmask words per row, "
            f"but bitmask has {bitmask.shape[1]} (shape {tuple(bitmask.shape)})"
        )
    if vocab_size > width:
        raise ValueError(
            f"vocab_size {vocab_size} is larger than the logits' width {width} (shape {tuple(logits.shape)})"
        )
    return vocab_size


def check_indices(indices: IndicesLike, logits: torch.Tensor, bitmask: torch.Tensor) -> torch.Tensor | None:
    """Normalize ``indices`` to an int64 tensor on the logits' device.

    Host values (lists, CPU tensors) are range-checked here; device tensors are not (that would
    synchronize); the kernels skip out-of-range rows instead.
    """
    n_logits, n_mask = int(logits.shape[0]), int(bitmask.shape[0])
    if indices is None:
        if n_logits != n_mask:
            raise ValueError(
                f"bitmask has {n_mask} rows (shape {tuple(bitmask.shape)}) but logits have {n_logits} "
                f"(shape {tuple(logits.shape)}); pass indices to mask a subset of rows"
            )
        return None
    if isinstance(indices, torch.Tensor):
        if indices.dim() != 1:
            raise ValueError(f"indices must be 1-D, got shape {tuple(indices.shape)}")
        if indices.dtype not in (torch.int32, torch.int64, torch.int16, torch.uint8, torch.int8):
            raise ValueError(f"indices must be an integer tensor, got {indices.dtype}")
        if indices.device.type != "cpu" and indices.device != logits.device:
            raise ValueError(f"indices are on {indices.device} but logits are on {logits.device}")
        host = indices.device.type == "cpu"
        idx = indices.to(device=logits.device, dtype=torch.int64, non_blocking=True)
        if not host:
            return idx
        values = indices.tolist()
    else:
        values = [int(i) for i in indices]
        idx = torch.tensor(values, dtype=torch.int64).to(logits.device, non_blocking=True)
    limit = min(n_logits, n_mask)
    bad = [i for i in values if not 0 <= i < limit]
    if bad:
        raise ValueError(
            f"indices {bad[:5]} out of range: logits have {n_logits} rows and bitmask has {n_mask}, "
            f"so each index must be in [0, {limit})"
        )
    return idx


def check_apply_args(
    logits: object, bitmask: object, indices: IndicesLike, vocab_size: int | None
) -> tuple[torch.Tensor, torch.Tensor, ApplyArgs]:
    lg = check_logits(logits)
    bm = check_bitmask(bitmask, lg)
    v = resolve_vocab_size(vocab_size, lg, bm)
    idx = check_indices(indices, lg, bm)
    return lg, bm, ApplyArgs(vocab_size=v, indices=idx)


def per_row(
    value: float | int | torch.Tensor, batch: int, device: torch.device, dtype: torch.dtype, name: str
) -> torch.Tensor:
    """Broadcast a scalar or a (B,) tensor parameter to a (B,) tensor on ``device`` (no host sync)."""
    if isinstance(value, torch.Tensor):
        if value.dim() == 0:
            return value.to(device=device, dtype=dtype).expand(batch).contiguous()
        if value.dim() != 1 or value.shape[0] != batch:
            raise ValueError(f"{name} must be a scalar or shape ({batch},), got shape {tuple(value.shape)}")
        if value.device.type != "cpu" and value.device != device:
            raise ValueError(f"{name} is on {value.device} but logits are on {device}")
        return value.to(device=device, dtype=dtype).contiguous()
    return torch.full((batch,), value, dtype=dtype, device=device)
