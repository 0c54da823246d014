"""Pure torch references: they *define* the semantics every other path is tested against.

They favour being obviously right over being fast (the fast CPU path is in ``cpu.py``, the GPU
path in ``triton_kernels.py``). Bitmask layout: int32 words, token ``t`` in word ``t // 32`` at
bit ``t % 32`` (least significant first), bit 1 = allowed.
"""

from __future__ import annotations

import torch

from ._checks import IndicesLike, check_apply_args, check_bitmask, check_logits, per_row, resolve_vocab_size

NEG_INF = float("-inf")


def unpack_bitmask(bitmask: torch.Tensor, vocab_size: int) -> torch.Tensor:
    """``(R, W) int32 -> (R, vocab_size) bool`` (True = allowed), by shifting each word 0..31."""
    shifts = torch.arange(32, device=bitmask.device, dtype=torch.int64)  # (32,)
    bits = (bitmask.to(torch.int64).unsqueeze(-1) >> shifts) & 1  # (R, W, 32)
    return bits.reshape(bitmask.shape[0], -1)[:, :vocab_size].bool()  # (R, V) bool


def allowed_mask(bitmask: torch.Tensor, width: int, vocab_size: int, rows: torch.Tensor | None = None) -> torch.Tensor:
    """Boolean (n, width) allowed-token mask: bit set and ``t < vocab_size``; padding columns are False."""
    bm = bitmask if rows is None else bitmask[rows]  # (n, W)
    out = torch.zeros(bm.shape[0], width, dtype=torch.bool, device=bitmask.device)  # (n, L)
    out[:, :vocab_size] = unpack_bitmask(bm, vocab_size)
    return out


def apply_token_bitmask_reference_(
    logits: torch.Tensor,
    bitmask: torch.Tensor,
    indices: IndicesLike = None,
    vocab_size: int | None = None,
) -> torch.Tensor:
    """Set disallowed logits to ``-inf`` in place; returns ``logits``.

    ``logits`` is ``(B, L)`` float32/float16/bfloat16 (any strides); ``bitmask`` is ``(R, W)`` int32
    on the same device; ``V = vocab_size`` defaults to ``min(L, 32 * W)``. The semantics, as a loop::

        rows = range(B) if indices is None else indices   # with indices, R need not equal B
        for r in rows:
            for t in range(L):
                allowed = t < V and (bitmask[r, t // 32] >> (t % 32)) & 1 == 1
                if not allowed:
                    logits[r, t] = -inf

    ``indices[i]`` names a row of *both* tensors: logits row ``r`` is masked with bitmask row ``r``
    (xgrammar's ``apply_token_bitmask_inplace`` does the same). Columns ``t >= V`` are padding (model
    vocabularies are often padded past the tokenizer's) and are always masked; this is where we differ
    from xgrammar, which leaves them untouched: pass the view ``logits[:, :V]`` to get its behaviour.
    """
    lg, bm, args = check_apply_args(logits, bitmask, indices, vocab_size)
    rows = range(lg.shape[0]) if args.indices is None else args.indices.tolist()
    for r in rows:
        allowed = allowed_mask(bm[r : r + 1], lg.shape[1], args.vocab_size)[0]  # (L,) bool
        lg[r].masked_fill_(~allowed, NEG_INF)
    return lg


def _sampling_inputs(
    logits: torch.Tensor,
    bitmask: torch.Tensor | None,
    temperature: float | torch.Tensor,
    top_k: int | torch.Tensor,
    top_p: float | torch.Tensor,
    vocab_size: int | None,
    bitmask_rows: torch.Tensor | None,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    lg = check_logits(logits)
    b, width = lg.shape
    dev = lg.device
    if bitmask is None:
        v = width if vocab_size is None else int(vocab_size)
        if not 0 <= v <= width:
            raise ValueError(f"vocab_size {v} must be in [0, {width}] for logits of shape {tuple(lg.shape)}")
        allowed = torch.zeros(b, width, dtype=torch.bool, device=dev)
        allowed[:, :v] = True
    else:
        bm = check_bitmask(bitmask, lg)
        v = resolve_vocab_size(vocab_size, lg, bm)
        if bitmask_rows is None:
            if bm.shape[0] != b:
                raise ValueError(
                    f"bitmask has {bm.shape[0]} rows (shape {tuple(bm.shape)}) but logits have {b} (shape {tuple(lg.shape)})"
                )
            allowed = allowed_mask(bm, width, v)
        else:
            allowed = allowed_mask(bm, width, v, bitmask_rows.to(device=dev, dtype=torch.int64))
    z = lg.float()
    allowed &= z > NEG_INF  # a -inf (or NaN) logit is never sampled
    t = per_row(temperature, b, dev, torch.float32, "temperature")
    k = per_row(top_k, b, dev, torch.int64, "top_k")
    p = per_row(top_p, b, dev, torch.float32, "top_p")
    return z, allowed, t, k, p


def sampling_distribution(
    logits: torch.Tensor,
    bitmask: torch.Tensor | None = None,
    temperature: float | torch.Tensor = 1.0,
    top_k: int | torch.Tensor = 0,
    top_p: float | torch.Tensor = 1.0,
    *,
    vocab_size: int | None = None,
    bitmask_rows: torch.Tensor | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """The exact distribution :func:`sample_masked_reference` draws from, and the log-probabilities it reports.

    Returns ``(probs, logprobs)``, both ``(B, L)`` float32. For row ``b`` with temperature ``T`` (``T <= 0``
    means greedy and counts as ``T = 1`` for log-probabilities), ``s = logits / T`` over the allowed set
    ``A`` (bit set, ``t < V``, logit not ``-inf``):

    * ``logprobs = log_softmax(s over A)`` (``-inf`` outside ``A``): the masked model distribution at the
      sampling temperature, *before* top-k/top-p truncation;
    * a token ``t`` in ``A`` is *kept* iff ``top_k <= 0 or #{u in A: s_u > s_t} < top_k`` and
      ``top_p >= 1 or sum(exp(logprobs_u) for u in A if s_u > s_t) < top_p`` (both filters on the same
      distribution, "joint" order; ties at the threshold are all kept);
    * ``probs`` is ``exp(logprobs)`` renormalized over the kept set; greedy rows put mass 1 on the
      first (lowest-id) maximum; rows with an empty ``A`` are all zero.
    """
    z, allowed, t, k, p = _sampling_inputs(logits, bitmask, temperature, top_k, top_p, vocab_size, bitmask_rows)
    greedy = t <= 0  # (B,)
    inv_t = torch.where(greedy, torch.ones_like(t), 1.0 / t.clamp_min(1e-30))
    s = torch.where(allowed, z * inv_t[:, None], torch.full_like(z, NEG_INF))  # (B, L)
    logprobs = torch.log_softmax(s, dim=-1)  # (B, L); NaN rows when A is empty
    empty = ~allowed.any(dim=-1)  # (B,)
    logprobs = torch.where(allowed, logprobs, torch.full_like(logprobs, NEG_INF))
    pr = torch.where(allowed, logprobs.exp(), torch.zeros_like(logprobs))
    if not isinstance(top_k, torch.Tensor) and not isinstance(top_p, torch.Tensor) and top_k <= 0 and top_p >= 1:
        keep = allowed  # no truncation: skip the sort
    else:
        keep = _truncation_keep(s, pr, k, p, allowed)
    probs = torch.where(keep, pr, torch.zeros_like(pr))
    probs = probs / probs.sum(dim=-1, keepdim=True).clamp_min(1e-38)
    # greedy rows: point mass on the first maximum of the masked logits
    first_max = torch.where(allowed, z, torch.full_like(z, NEG_INF)).argmax(dim=-1)  # (B,)
    point = torch.zeros_like(probs).scatter_(1, first_max[:, None], 1.0)
    probs = torch.where(greedy[:, None], point, probs)
    probs = torch.where(empty[:, None], torch.zeros_like(probs), probs)
    return probs, logprobs


def _truncation_keep(
    s: torch.Tensor, pr: torch.Tensor, k: torch.Tensor, p: torch.Tensor, allowed: torch.Tensor
) -> torch.Tensor:
    """Joint top-k / top-p keep set (see :func:`sampling_distribution`), by sorting each row once."""
    order = torch.sort(s, dim=-1, descending=True, stable=True)
    ss, sp = order.values, torch.gather(pr, 1, order.indices)  # (B, L) sorted by s, descending
    n = s.shape[1]
    pos = torch.arange(n, device=s.device).expand_as(ss)
    # first position of each value's tie group = #{u: s_u > s_t}
    new_group = torch.ones_like(ss, dtype=torch.bool)
    new_group[:, 1:] = ss[:, 1:] != ss[:, :-1]
    first = torch.cummax(torch.where(new_group, pos, torch.zeros_like(pos)), dim=1).values  # (B, L)
    csum = torch.cumsum(sp.double(), dim=1)  # inclusive prefix mass
    excl = torch.cat([torch.zeros_like(csum[:, :1]), csum[:, :-1]], dim=1)
    mass_above = torch.gather(excl, 1, first)  # mass of strictly greater values
    keep_sorted = torch.ones_like(ss, dtype=torch.bool)
    keep_sorted &= (k[:, None] <= 0) | (first < k[:, None])
    keep_sorted &= (p[:, None] >= 1) | (mass_above < p[:, None].double())
    return torch.zeros_like(keep_sorted).scatter_(1, order.indices, keep_sorted) & allowed


def sample_masked_reference(
    logits: torch.Tensor,
    bitmask: torch.Tensor | None = None,
    temperature: float | torch.Tensor = 1.0,
    top_k: int | torch.Tensor = 0,
    top_p: float | torch.Tensor = 1.0,
    *,
    generator: torch.Generator | None = None,
    vocab_size: int | None = None,
    bitmask_rows: torch.Tensor | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Draw one token per row from :func:`sampling_distribution` with ``torch.multinomial``.

    Returns ``(token_ids (B,) int64, logprobs (B,) float32)``. ``logprobs`` is the log-probability of the
    token under the masked distribution at the sampling temperature before truncation (see
    :func:`sampling_distribution`). A row with no allowed token returns ``-1`` and ``-inf`` instead of
    raising (decode time never throws). ``bitmask_rows[b]`` (optional) picks the bitmask row for logits
    row ``b`` (the DFA stepper passes the states).
    """
    probs, logprobs = sampling_distribution(
        logits, bitmask, temperature, top_k, top_p, vocab_size=vocab_size, bitmask_rows=bitmask_rows
    )
    empty = probs.sum(dim=-1) <= 0  # (B,)
    safe = torch.where(empty[:, None], torch.ones_like(probs), probs)
    tokens = torch.multinomial(safe, 1, generator=generator).squeeze(1)  # (B,) int64
    tokens = torch.where(empty, torch.full_like(tokens, -1), tokens)
    lp = torch.gather(logprobs, 1, tokens.clamp_min(0)[:, None]).squeeze(1)
    lp = torch.where(empty, torch.full_like(lp, NEG_INF), lp)
    return tokens, lp


# ---------------------------------------------------------------------------------------------------
# The Triton sampler's algorithm, mirrored in torch
# ---------------------------------------------------------------------------------------------------
# The kernel draws with a counter-based hash, not torch's generators, so its samples cannot equal
# sample_masked_reference's. These functions reproduce the kernel's random stream and algorithm
# exactly, which splits its test in two: kernel == mirror token for token (few rows, interpreted or
# on the GPU), and mirror ~ sampling_distribution by chi-square (many rows, fast torch).

_M32 = 0xFFFFFFFF


def _fmix32(h: torch.Tensor) -> torch.Tensor:
    # murmur3 finalizer on int64 tensors holding uint32 values (products wrap; the low 32 bits are exact)
    h = h ^ (h >> 16)
    h = (h * 0x85EBCA6B) & _M32
    h = h ^ (h >> 13)
    h = (h * 0xC2B2AE35) & _M32
    return h ^ (h >> 16)


def kernel_row_key(seed: int, rows: torch.Tensor, rnd: int) -> torch.Tensor:
    """The kernel's per-(seed, row, round) stream key, ``(n,) int64`` holding uint32 values."""
    rows = rows.to(torch.int64)
    lo, hi = seed & _M32, (seed >> 32) & _M32
    h = _fmix32(torch.full_like(rows, lo ^ 0x243F6A88))
    h = _fmix32(h ^ hi)
    h = _fmix32(h ^ (rows & _M32))
    return _fmix32(h ^ ((rnd * 0x9E3779B9 + 0x7F4A7C15) & _M32))


def kernel_gumbel_noise(seed: int, rows: torch.Tensor, width: int, rnd: int) -> torch.Tensor:
    """The Gumbel noise the kernel adds in round ``rnd``: ``(n, width)`` float32."""
    key = kernel_row_key(seed, rows, rnd)[:, None]  # (n, 1)
    cols = torch.arange(width, dtype=torch.int64, device=rows.device)[None, :]
    h = _fmix32((key + cols * 0x9E3779B9) & _M32)  # (n, width)
    u = ((h >> 8).to(torch.float32) + 0.5) * (1.0 / 16777216.0)
    return -torch.log(-torch.log(u))


def _first_argmax(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    best = x.max(dim=-1).values
    idx = torch.where(x == best[:, None], torch.arange(x.shape[1], device=x.device), x.shape[1]).min(dim=-1).values
    return best, idx


def sample_masked_mirror(
    logits: torch.Tensor,
    bitmask: torch.Tensor | None = None,
    temperature: float | torch.Tensor = 1.0,
    top_k: int | torch.Tensor = 0,
    top_p: float | torch.Tensor = 1.0,
    *,
    seed: int = 0,
    vocab_size: int | None = None,
    bitmask_rows: torch.Tensor | None = None,
    max_rounds: int = 64,
) -> tuple[torch.Tensor, torch.Tensor]:
    """The Triton sampler's algorithm in torch (same random stream): tests only, CPU speed irrelevant.

    Gumbel-max over ``s = logits / T`` on the allowed set (greedy rows add no noise); rows with top-k or
    top-p then run rejection rounds: a candidate ``t`` is kept iff ``#{s > s_t} < k`` and
    ``mass{s > s_t} < p``; a rejected one rules out every token with ``s <= s_t``, so round ``r`` redraws
    with fresh noise among ``s > s_t``. Exact for the distribution of :func:`sampling_distribution`.
    """
    z, allowed, t, k, p = _sampling_inputs(logits, bitmask, temperature, top_k, top_p, vocab_size, bitmask_rows)
    b, width = z.shape
    rows = torch.arange(b, device=z.device)
    greedy = t <= 0
    inv_t = torch.where(greedy, torch.ones_like(t), 1.0 / torch.where(greedy, torch.ones_like(t), t))
    s = torch.where(allowed, z * inv_t[:, None], torch.full_like(z, NEG_INF))  # (B, L)
    m = s.max(dim=-1).values
    m = torch.where(m == NEG_INF, torch.zeros_like(m), m)
    e = torch.exp(s - m[:, None])  # (B, L), 0 where not allowed
    ssum = e.sum(dim=-1)
    noise = torch.where(greedy, 0.0, 1.0)[:, None]
    keys = torch.where(allowed, s + noise * kernel_gumbel_noise(seed, rows, width, 0), torch.full_like(s, NEG_INF))
    best, tok = _first_argmax(keys)
    tok = torch.where(best == NEG_INF, torch.full_like(tok, -1), tok)
    need = (tok >= 0) & ~greedy & ((k > 0) | (p < 1))

    def accepted_of(tok: torch.Tensor) -> torch.Tensor:
        v = torch.gather(s, 1, tok.clamp_min(0)[:, None])  # (B, 1)
        above = s > v
        cnt = above.sum(dim=-1)
        mass = torch.where(above, e, torch.zeros_like(e)).sum(dim=-1)
        return ((k <= 0) | (cnt < k)) & ((p >= 1) | (mass < p * ssum))

    pending = need & ~accepted_of(tok)
    for rnd in range(1, max_rounds):
        if not bool(pending.any()):
            break
        v = torch.gather(s, 1, tok.clamp_min(0)[:, None])
        kk = torch.where(s > v, s + kernel_gumbel_noise(seed, rows, width, rnd), torch.full_like(s, NEG_INF))
        _, new_tok = _first_argmax(kk)
        tok = torch.where(pending, new_tok, tok)
        pending = pending & ~accepted_of(tok)
    if bool(pending.any()):  # the kernel's fallback: the top token, which is always kept
        _, top = _first_argmax(s)
        tok = torch.where(pending, top, tok)
    zt = torch.gather(s, 1, tok.clamp_min(0)[:, None]).squeeze(1)
    lp = torch.where(
        tok >= 0, zt - m - torch.log(torch.where(ssum > 0, ssum, torch.ones_like(ssum))), torch.full_like(zt, NEG_INF)
    )
    return tok, lp
