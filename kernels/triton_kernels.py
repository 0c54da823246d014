"""Triton kernels: in-place bitmask application and fused mask + sample.

Imported only when a Triton path runs (``structgen.kernels`` itself never imports triton). On CPU
tensors these kernels run only under the Triton interpreter (``TRITON_INTERPRET=1`` set before triton
is imported); tests/kernels checks them that way against the torch references.
"""

from __future__ import annotations

import os

import torch
import triton
import triton.language as tl

from ._checks import ApplyArgs, check_bitmask, check_logits, per_row, resolve_vocab_size

# ---------------------------------------------------------------------------------------------------
# apply_token_bitmask_
# ---------------------------------------------------------------------------------------------------

_MAX_GRID_Y = 65535


@triton.jit
def _apply_bitmask_kernel(
    logits_ptr,
    bitmask_ptr,
    indices_ptr,
    n_logit_rows,
    n_mask_rows,
    width,  # L: logits columns
    vocab_size,  # V: columns governed by the bitmask; [V, L) is padding
    stride_lr,
    stride_lc,
    stride_mr,
    stride_mc,
    row_offset,
    HAS_INDICES: tl.constexpr,
    BLOCK: tl.constexpr,  # tokens per program, a multiple of 32
):
    # One program = one row x BLOCK columns. Logits are never read: only the masked entries are
    # stored (as xgrammar's kernel does), so an all-allowed block costs one bitmask load.
    pid_col = tl.program_id(0)
    pid_row = tl.program_id(1) + row_offset
    if HAS_INDICES:
        row = tl.load(indices_ptr + pid_row).to(tl.int64)
        valid = (
            (row >= 0) & (row < n_logit_rows) & (row < n_mask_rows)
        )  # device indices are not range-checked on the host
        row = tl.where(valid, row, 0)
    else:
        row = pid_row.to(tl.int64)
        valid = row < n_logit_rows
    start = pid_col * BLOCK
    words = start // 32 + tl.arange(0, BLOCK // 32)  # (BLOCK/32,)
    packed = tl.load(bitmask_ptr + row * stride_mr + words * stride_mc, mask=words * 32 < vocab_size, other=0)
    bits = (packed[:, None] >> tl.arange(0, 32)[None, :]) & 1  # (BLOCK/32, 32), LSB first = token order
    masked = tl.reshape(bits == 0, (BLOCK,))
    offs = start + tl.arange(0, BLOCK)
    masked = masked | (offs >= vocab_size)  # padding columns are always masked
    neg_inf = tl.full((BLOCK,), float("-inf"), tl.float32).to(logits_ptr.dtype.element_ty)
    tl.store(
        logits_ptr + row * stride_lr + offs.to(tl.int64) * stride_lc, neg_inf, mask=masked & (offs < width) & valid
    )


def _apply_config(dtype: torch.dtype) -> tuple[int, int]:
    """(BLOCK, num_warps); overridable with STRUCTGEN_APPLY_BLOCK / STRUCTGEN_APPLY_WARPS for tuning sweeps."""
    block = int(os.environ.get("STRUCTGEN_APPLY_BLOCK", "4096"))
    warps = int(os.environ.get("STRUCTGEN_APPLY_WARPS", "8"))
    return block, warps


def apply_token_bitmask_triton_(
    logits: torch.Tensor,
    bitmask: torch.Tensor,
    args: ApplyArgs,
    *,
    block: int | None = None,
    num_warps: int | None = None,
) -> None:
    """Launch the apply kernel on validated arguments (see ``structgen.kernels.apply_token_bitmask_``)."""
    b, width = logits.shape
    default_block, default_warps = _apply_config(logits.dtype)
    block = block or default_block
    num_warps = num_warps or default_warps
    if block % 32 or block & (block - 1):
        raise ValueError(f"block must be a power of two and a multiple of 32, got {block}")
    idx = args.indices
    n_rows = b if idx is None else int(idx.shape[0])
    if n_rows == 0 or width == 0:
        return
    n_cols = triton.cdiv(width, block)
    for row_offset in range(0, n_rows, _MAX_GRID_Y):
        rows = min(_MAX_GRID_Y, n_rows - row_offset)
        _apply_bitmask_kernel[(n_cols, rows)](
            logits,
            bitmask,
            idx if idx is not None else bitmask,  # unused when HAS_INDICES is False
            b,
            bitmask.shape[0],
            width,
            args.vocab_size,
            logits.stride(0),
            logits.stride(1),
            bitmask.stride(0),
            bitmask.stride(1),
            row_offset,
            HAS_INDICES=idx is not None,
            BLOCK=block,
            num_warps=num_warps,
        )


# ---------------------------------------------------------------------------------------------------
# sample_masked: counter-based randomness
# ---------------------------------------------------------------------------------------------------


# murmur3's 32-bit finalizer (a bijection with full avalanche) is written out inline below rather
# than called, because every nested @jit call costs milliseconds under the Triton interpreter:
#     h ^= h >> 16; h *= 0x85EBCA6B; h ^= h >> 13; h *= 0xC2B2AE35; h ^= h >> 16
# structgen.kernels.reference.kernel_gumbel_noise mirrors this generator bit for bit in torch.


@triton.jit
def _row_key(seed, row, rnd):
    # stream key of (seed, row, round): seed int64, row and rnd int32 scalars -> uint32
    h = (seed & 0xFFFFFFFF).to(tl.uint32) ^ 0x243F6A88
    h ^= h >> 16
    h *= 0x85EBCA6B
    h ^= h >> 13
    h *= 0xC2B2AE35
    h ^= h >> 16
    h ^= ((seed >> 32) & 0xFFFFFFFF).to(tl.uint32)
    h ^= h >> 16
    h *= 0x85EBCA6B
    h ^= h >> 13
    h *= 0xC2B2AE35
    h ^= h >> 16
    h ^= row.to(tl.uint32)
    h ^= h >> 16
    h *= 0x85EBCA6B
    h ^= h >> 13
    h *= 0xC2B2AE35
    h ^= h >> 16
    h ^= rnd.to(tl.uint32) * 0x9E3779B9 + 0x7F4A7C15
    h ^= h >> 16
    h *= 0x85EBCA6B
    h ^= h >> 13
    h *= 0xC2B2AE35
    h ^= h >> 16
    return h


@triton.jit
def _gumbel(key, cols):
    # Gumbel(0, 1) noise for columns ``cols`` of one stream; u in (0, 1) exactly, never 0 or 1
    h = key + cols.to(tl.uint32) * 0x9E3779B9
    h ^= h >> 16
    h *= 0x85EBCA6B
    h ^= h >> 13
    h *= 0xC2B2AE35
    h ^= h >> 16
    u = ((h >> 8).to(tl.float32) + 0.5) * (1.0 / 16777216.0)
    return -tl.log(-tl.log(u))


@triton.jit
def _scaled_block(
    logits_ptr, stride_lr, stride_lc, bitmask_ptr, stride_mr, b, mrow, offs, vocab_size, inv_t, HAS_MASK: tl.constexpr
):
    # s = logits / T over allowed tokens, -inf elsewhere (masked, padding, -inf or NaN logits)
    ok = offs < vocab_size
    if HAS_MASK:
        w = tl.load(bitmask_ptr + mrow * stride_mr + (offs // 32), mask=ok, other=0)
        ok = ok & (((w >> (offs % 32)) & 1) != 0)
    z = tl.load(logits_ptr + b * stride_lr + offs.to(tl.int64) * stride_lc, mask=ok, other=float("-inf")).to(tl.float32)
    ok = ok & (z > float("-inf"))
    return tl.where(ok, z * inv_t, float("-inf"))


@triton.jit
def _sample_partial_kernel(
    logits_ptr,
    stride_lr,
    stride_lc,
    bitmask_ptr,
    stride_mr,
    rows_ptr,
    temp_ptr,
    seed_ptr,
    part_m_ptr,  # (B, NSPLIT) f32: max of s in the split
    part_s_ptr,  # (B, NSPLIT) f32: sum exp(s - m)
    part_key_ptr,  # (B, NSPLIT) f32: max of s + gumbel
    part_idx_ptr,  # (B, NSPLIT) i32: its column
    vocab_size,
    chunk,
    nsplit,
    HAS_MASK: tl.constexpr,
    HAS_ROWS: tl.constexpr,
    BLOCK: tl.constexpr,
):
    # One pass over a (row, column-chunk): online softmax statistics and the Gumbel-max candidate.
    b = tl.program_id(0).to(tl.int64)
    sp = tl.program_id(1)
    if HAS_ROWS:
        mrow = tl.load(rows_ptr + b).to(tl.int64)
    else:
        mrow = b
    t = tl.load(temp_ptr + b)
    greedy = t <= 0.0
    inv_t = tl.where(greedy, 1.0, 1.0 / tl.where(greedy, 1.0, t))
    noise = tl.where(greedy, 0.0, 1.0)
    key = _row_key(tl.load(seed_ptr), b.to(tl.int32), tl.full((), 0, tl.int32))
    m = tl.full((), float("-inf"), tl.float32)
    ssum = tl.full((), 0.0, tl.float32)
    best = tl.full((), float("-inf"), tl.float32)
    best_idx = tl.full((), -1, tl.int32)
    lo = sp * chunk
    hi = tl.minimum(lo + chunk, vocab_size)
    for start in range(lo, hi, BLOCK):
        offs = start + tl.arange(0, BLOCK)
        s = _scaled_block(logits_ptr, stride_lr, stride_lc, bitmask_ptr, stride_mr, b, mrow, offs, hi, inv_t, HAS_MASK)
        new_m = tl.maximum(m, tl.max(s, axis=0))
        ref = tl.where(new_m == float("-inf"), 0.0, new_m)  # never subtract -inf from -inf (NaN)
        alpha = tl.exp(m - ref)
        e = tl.exp(s - ref)
        ssum = ssum * alpha + tl.sum(e, axis=0)
        m = new_m
        k = tl.where(s == float("-inf"), float("-inf"), s + noise * _gumbel(key, offs))
        kb, ki = tl.max(k, axis=0, return_indices=True)  # first index on ties
        ki = ki.to(tl.int32) + start
        take = kb > best  # strict: ties keep the earlier (lower) column
        best_idx = tl.where(take, ki, best_idx)
        best = tl.where(take, kb, best)
    o = b * nsplit + sp
    tl.store(part_m_ptr + o, m)
    tl.store(part_s_ptr + o, ssum)
    tl.store(part_key_ptr + o, best)
    tl.store(part_idx_ptr + o, best_idx)


@triton.jit
def _mass_above(
    logits_ptr,
    stride_lr,
    stride_lc,
    bitmask_ptr,
    stride_mr,
    b,
    mrow,
    vocab_size,
    inv_t,
    v,
    m,
    HAS_MASK: tl.constexpr,
    BLOCK: tl.constexpr,
):
    # (#{u: s_u > v}, sum exp(s_u - m) over s_u > v)
    cnt = tl.full((), 0, tl.int32)
    mass = tl.full((), 0.0, tl.float32)
    for start in range(0, vocab_size, BLOCK):
        offs = start + tl.arange(0, BLOCK)
        s = _scaled_block(
            logits_ptr, stride_lr, stride_lc, bitmask_ptr, stride_mr, b, mrow, offs, vocab_size, inv_t, HAS_MASK
        )
        above = s > v
        cnt += tl.sum(above.to(tl.int32), axis=0)
        mass += tl.sum(tl.where(above, tl.exp(s - m), 0.0), axis=0)
    return cnt, mass


@triton.jit
def _argmax_above(
    logits_ptr,
    stride_lr,
    stride_lc,
    bitmask_ptr,
    stride_mr,
    b,
    mrow,
    vocab_size,
    inv_t,
    v,
    key,
    tok,
    noise,
    HAS_MASK: tl.constexpr,
    BLOCK: tl.constexpr,
):
    # argmax over allowed u with s_u > v of s_u + noise * gumbel(u); ``tok`` if there is none
    best = tl.full((), float("-inf"), tl.float32)
    for start in range(0, vocab_size, BLOCK):
        offs = start + tl.arange(0, BLOCK)
        s = _scaled_block(
            logits_ptr, stride_lr, stride_lc, bitmask_ptr, stride_mr, b, mrow, offs, vocab_size, inv_t, HAS_MASK
        )
        kk = tl.where(s > v, s + noise * _gumbel(key, offs), float("-inf"))
        kb, ki = tl.max(kk, axis=0, return_indices=True)
        ki = ki.to(tl.int32) + start
        take = kb > best
        tok = tl.where(take, ki, tok)
        best = tl.where(take, kb, best)
    return tok


@triton.jit
def _sample_finish_kernel(
    logits_ptr,
    stride_lr,
    stride_lc,
    bitmask_ptr,
    stride_mr,
    rows_ptr,
    temp_ptr,
    topk_ptr,
    topp_ptr,
    seed_ptr,
    part_m_ptr,
    part_s_ptr,
    part_key_ptr,
    part_idx_ptr,
    out_tok_ptr,
    out_lp_ptr,
    vocab_size,
    nsplit,
    HAS_MASK: tl.constexpr,
    HAS_ROWS: tl.constexpr,
    HAS_TRUNC: tl.constexpr,
    NSPLIT_P2: tl.constexpr,
    MAX_ROUNDS: tl.constexpr,
    BLOCK: tl.constexpr,
):
    b = tl.program_id(0).to(tl.int64)
    if HAS_ROWS:
        mrow = tl.load(rows_ptr + b).to(tl.int64)
    else:
        mrow = b
    t = tl.load(temp_ptr + b)
    greedy = t <= 0.0
    inv_t = tl.where(greedy, 1.0, 1.0 / tl.where(greedy, 1.0, t))
    j = tl.arange(0, NSPLIT_P2)
    jm = j < nsplit
    pm = tl.load(part_m_ptr + b * nsplit + j, mask=jm, other=float("-inf"))
    ps = tl.load(part_s_ptr + b * nsplit + j, mask=jm, other=0.0)
    pk = tl.load(part_key_ptr + b * nsplit + j, mask=jm, other=float("-inf"))
    pi = tl.load(part_idx_ptr + b * nsplit + j, mask=jm, other=-1)
    m = tl.max(pm, axis=0)
    m = tl.where(m == float("-inf"), 0.0, m)  # empty row: keep arithmetic finite, tok = -1 below
    ssum = tl.sum(ps * tl.exp(pm - m), axis=0)
    best, jbest = tl.max(pk, axis=0, return_indices=True)  # first split holding the maximum
    tok = tl.sum(tl.where(j == jbest, pi, 0), axis=0)
    tok = tl.where(best == float("-inf"), -1, tok)
    if HAS_TRUNC:
        k = tl.load(topk_ptr + b)
        p = tl.load(topp_ptr + b)
        need = (tok >= 0) & (~greedy) & ((k > 0) | (p < 1.0))
        if need:
            # Rejection against nested supports {s > pivot} (exact): a token that fails top-k/top-p
            # rules out every token whose value is <= its own, so resample above it. Round 0 checks
            # the token drawn by the first pass.
            accepted = tok < 0
            key = _row_key(tl.load(seed_ptr), b.to(tl.int32), tl.full((), 0, tl.int32))
            v = tl.full((), float("-inf"), tl.float32)
            rnd = tl.full((), 0, tl.int32)
            while (accepted == 0) & (rnd < MAX_ROUNDS):
                if rnd > 0:
                    key = _row_key(tl.load(seed_ptr), b.to(tl.int32), rnd)
                    tok = _argmax_above(
                        logits_ptr, stride_lr, stride_lc, bitmask_ptr, stride_mr, b, mrow, vocab_size, inv_t,
                        v, key, tok, 1.0, HAS_MASK, BLOCK,
                    )  # fmt: skip
                v = tl.load(logits_ptr + b * stride_lr + tok.to(tl.int64) * stride_lc).to(tl.float32) * inv_t
                cnt, mass = _mass_above(
                    logits_ptr, stride_lr, stride_lc, bitmask_ptr, stride_mr, b, mrow, vocab_size, inv_t,
                    v, m, HAS_MASK, BLOCK,
                )  # fmt: skip
                accepted = ((k <= 0) | (cnt < k)) & ((p >= 1.0) | (mass < p * ssum))
                rnd += 1
            if accepted == 0:
                # not reached in practice (each round removes about half the remaining mass); the
                # top token is always kept, so fall back to it rather than return a rejected one
                tok = _argmax_above(
                    logits_ptr, stride_lr, stride_lc, bitmask_ptr, stride_mr, b, mrow, vocab_size, inv_t,
                    float("-inf"), key, tok, 0.0, HAS_MASK, BLOCK,
                )  # fmt: skip
    safe = tl.maximum(tok, 0).to(tl.int64)
    z = tl.load(logits_ptr + b * stride_lr + safe * stride_lc).to(tl.float32)
    z = tl.where(tok >= 0, z, 0.0)
    lp = tl.where(tok >= 0, z * inv_t - m - tl.log(tl.where(ssum > 0.0, ssum, 1.0)), float("-inf"))
    tl.store(out_tok_ptr + b, tok.to(tl.int64))
    tl.store(out_lp_ptr + b, lp)


_SAMPLE_BLOCK = int(os.environ.get("STRUCTGEN_SAMPLE_BLOCK", "1024"))
_MAX_ROUNDS = 64


def _num_programs_target(device: torch.device) -> int:
    if device.type == "cuda":
        return 4 * torch.cuda.get_device_properties(device).multi_processor_count
    return 4  # interpreter: a few splits so the combine step is exercised


def _seed_tensor(
    seed: int | torch.Tensor | None, generator: torch.Generator | None, device: torch.device
) -> torch.Tensor:
    if isinstance(seed, torch.Tensor):
        if seed.numel() != 1 or seed.dtype != torch.int64:
            raise ValueError(f"seed tensor must hold one int64, got shape {tuple(seed.shape)} {seed.dtype}")
        if seed.device != device:
            raise ValueError(f"seed is on {seed.device} but logits are on {device}")
        return seed.reshape(1)
    if seed is None:
        gen_device = generator.device if generator is not None else torch.device("cpu")
        draw = torch.randint(0, 2**62, (1,), generator=generator, device=gen_device, dtype=torch.int64)
        return draw.to(device, non_blocking=True)
    return torch.tensor([int(seed)], dtype=torch.int64).to(device, non_blocking=True)


def sample_masked_triton(
    logits: torch.Tensor,
    bitmask: torch.Tensor | None,
    temperature: float | torch.Tensor = 1.0,
    top_k: int | torch.Tensor = 0,
    top_p: float | torch.Tensor = 1.0,
    *,
    generator: torch.Generator | None = None,
    seed: int | torch.Tensor | None = None,
    vocab_size: int | None = None,
    bitmask_rows: torch.Tensor | None = None,
    block: int | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Fused mask + temperature + top-k/top-p + Gumbel-max sampling (see ``structgen.kernels.sample_masked``).

    Pass 1 (grid ``(B, splits)``) reads each logit once: allowed test from the bitmask, scaling, online
    log-sum-exp and the Gumbel-max candidate. Pass 2 (grid ``(B,)``) combines the splits; rows with
    top-k/top-p re-read their row (read-only) in rejection rounds over nested supports. Nothing is
    written but the outputs.
    """
    lg = check_logits(logits)
    batch, width = lg.shape
    dev = lg.device
    if bitmask is not None:
        bm = check_bitmask(bitmask, lg)
        v = resolve_vocab_size(vocab_size, lg, bm)
        if bitmask_rows is None and bm.shape[0] != batch:
            raise ValueError(
                f"bitmask has {bm.shape[0]} rows (shape {tuple(bm.shape)}) but logits have {batch} (shape {tuple(lg.shape)})"
            )
        if bm.stride(1) != 1:
            bm = bm.contiguous()
    else:
        bm = None
        v = width if vocab_size is None else int(vocab_size)
        if not 0 <= v <= width:
            raise ValueError(f"vocab_size {v} must be in [0, {width}] for logits of shape {tuple(lg.shape)}")
    if bitmask_rows is not None:
        if bitmask_rows.dim() != 1 or bitmask_rows.shape[0] != batch:
            raise ValueError(f"bitmask_rows must have shape ({batch},), got {tuple(bitmask_rows.shape)}")
        if bitmask_rows.device != dev:
            raise ValueError(f"bitmask_rows are on {bitmask_rows.device} but logits are on {dev}")
    temps = per_row(temperature, batch, dev, torch.float32, "temperature")
    ks = per_row(top_k, batch, dev, torch.int32, "top_k")
    ps = per_row(top_p, batch, dev, torch.float32, "top_p")
    has_trunc = isinstance(top_k, torch.Tensor) or isinstance(top_p, torch.Tensor) or top_k > 0 or top_p < 1.0
    seed_t = _seed_tensor(seed, generator, dev)
    tokens = torch.empty(batch, dtype=torch.int64, device=dev)
    logprobs = torch.empty(batch, dtype=torch.float32, device=dev)
    if batch == 0:
        return tokens, logprobs
    # the interpreter pays per block iteration, not per element: use wide blocks there
    block = block or (_SAMPLE_BLOCK if dev.type == "cuda" else 8192)
    n_blocks = max(1, triton.cdiv(v, block))
    nsplit = max(1, min(n_blocks, triton.cdiv(_num_programs_target(dev), batch)))
    chunk = triton.cdiv(n_blocks, nsplit) * block
    nsplit = max(1, triton.cdiv(v, chunk))
    part_m = torch.empty(batch, nsplit, dtype=torch.float32, device=dev)
    part_s = torch.empty_like(part_m)
    part_k = torch.empty_like(part_m)
    part_i = torch.empty(batch, nsplit, dtype=torch.int32, device=dev)
    mask_arg = bm if bm is not None else lg
    stride_mr = bm.stride(0) if bm is not None else 0
    rows_arg = bitmask_rows if bitmask_rows is not None else temps
    common = dict(HAS_MASK=bm is not None, HAS_ROWS=bitmask_rows is not None, BLOCK=block)
    _sample_partial_kernel[(batch, nsplit)](
        lg,
        lg.stride(0),
        lg.stride(1),
        mask_arg,
        stride_mr,
        rows_arg,
        temps,
        seed_t,
        part_m,
        part_s,
        part_k,
        part_i,
        v,
        chunk,
        nsplit,
        **common,
    )
    _sample_finish_kernel[(batch,)](
        lg,
        lg.stride(0),
        lg.stride(1),
        mask_arg,
        stride_mr,
        rows_arg,
        temps,
        ks,
        ps,
        seed_t,
        part_m,
        part_s,
        part_k,
        part_i,
        tokens,
        logprobs,
        v,
        nsplit,
        HAS_TRUNC=has_trunc,
        NSPLIT_P2=triton.next_power_of_2(nsplit),
        MAX_ROUNDS=_MAX_ROUNDS,
        **common,
    )
    return tokens, logprobs
