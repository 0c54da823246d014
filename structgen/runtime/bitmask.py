"""The one packed token-bitmask layout, defined once.

int32 words, shape ``(batch, ceil(V / 32))``; token ``t`` lives in word ``t // 32`` at bit ``t % 32``
(least significant first); bit 1 = allowed. It is the layout of xgrammar, llguidance and outlines-core,
so masks can be compared with theirs directly. Works on numpy arrays and on torch tensors (CPU);
torch is imported only when a tensor is passed.
"""

from __future__ import annotations

from typing import Any

import numpy as np

_BIT_WEIGHTS = (np.uint64(1) << np.arange(32, dtype=np.uint64)).astype(np.uint64)


def bitmask_width(vocab_size: int) -> int:
    """Number of int32 words needed for ``vocab_size`` tokens."""
    return (vocab_size + 31) // 32


def allocate_bitmask(batch_size: int, vocab_size: int) -> np.ndarray:
    """A ``(batch_size, ceil(vocab_size/32))`` int32 bitmask with every token allowed (all bits 1)."""
    if batch_size < 1 or vocab_size < 1:
        raise ValueError(f"batch_size and vocab_size must be positive, got {batch_size} and {vocab_size}")
    return np.full((batch_size, bitmask_width(vocab_size)), -1, dtype=np.int32)  # (B, W) int32


def pack_bool_mask(allowed: np.ndarray) -> np.ndarray:
    """Pack a boolean array ``(..., V)`` into int32 words ``(..., ceil(V/32))``."""
    allowed = np.asarray(allowed, dtype=bool)
    v = allowed.shape[-1]
    w = bitmask_width(v)
    padded = np.zeros(allowed.shape[:-1] + (w * 32,), dtype=np.uint8)
    padded[..., :v] = allowed
    packed = np.packbits(padded.reshape(allowed.shape[:-1] + (w, 32)), axis=-1, bitorder="little")
    return packed.view(np.int32).reshape(allowed.shape[:-1] + (w,))  # (..., W) int32


def unpack_bitmask(words: np.ndarray, vocab_size: int) -> np.ndarray:
    """Unpack int32 words ``(..., W)`` into a boolean array ``(..., vocab_size)``."""
    words = np.ascontiguousarray(words, dtype=np.int32)
    bits = np.unpackbits(words.view(np.uint8), axis=-1, bitorder="little").astype(bool)
    return bits[..., :vocab_size]


def words_from_ids(token_ids: np.ndarray, vocab_size: int) -> np.ndarray:
    """A single bitmask row ``(W,)`` with exactly ``token_ids`` set."""
    allowed = np.zeros(vocab_size, dtype=bool)
    allowed[np.asarray(token_ids, dtype=np.int64)] = True
    return pack_bool_mask(allowed)


def set_bits(words: np.ndarray, token_ids: Any) -> None:
    """Set bits of ``token_ids`` in a row ``(W,)`` int32 in place."""
    ids = np.asarray(token_ids, dtype=np.int64)
    if ids.size == 0:
        return
    u = words.view(np.uint32)
    np.bitwise_or.at(u, ids >> 5, (np.uint32(1) << (ids & 31).astype(np.uint32)))


def check_bitmask(bitmask: Any, index: int, width: int) -> None:
    """Raise a clear error when ``bitmask`` is not a writable int32 (B, W) array/tensor with row ``index``."""
    shape = tuple(bitmask.shape)
    dtype = str(bitmask.dtype)
    if dtype not in ("int32", "torch.int32"):
        raise TypeError(f"bitmask must have dtype int32, got {dtype}")
    if len(shape) != 2:
        raise ValueError(f"bitmask must be 2-D (batch, {width}), got shape {shape}")
    if shape[1] != width:
        raise ValueError(f"bitmask has {shape[1]} words per row but this vocabulary needs {width}")
    if not 0 <= index < shape[0]:
        raise ValueError(f"bitmask row index {index} out of range for batch size {shape[0]}")


def write_row(bitmask: Any, index: int, words: np.ndarray) -> None:
    """Copy ``words`` (W,) int32 into ``bitmask[index]`` for numpy arrays and torch tensors."""
    if isinstance(bitmask, np.ndarray):
        bitmask[index, :] = words
        return
    import torch  # local: structgen must not import torch at import time

    if bitmask.device.type == "cpu":
        bitmask[index].copy_(torch.from_numpy(words))
    else:
        bitmask[index].copy_(torch.from_numpy(words), non_blocking=False)
