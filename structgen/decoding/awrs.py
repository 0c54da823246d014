"""Adaptive weighted rejection sampling (AWRS): an exact constrained next-token draw plus an unbiased
estimate of the local normalizer, checking only the tokens it draws.

Entry points (see docs/design/awrs.md)::

    awrs_sample_step(logprobs, matcher, rng=None, *, estimator="recursive", proper_weights=True,
                     max_rejects=None) -> AWRSStep(token, log_weight, n_evaluations)
    awrs_sample_batch(logprobs_2d, matchers, rng=None, **same options) -> list[AWRSStep]
    masking_sample_step(logprobs, matcher, rng=None) -> AWRSStep(token, log_weight, n_evaluations)

- ``logprobs``: ``(V,)`` next-token log-probabilities (numpy or torch; normalized or not).
- ``matcher``: anything with ``is_token_allowed(token_id) -> bool`` (a :class:`structgen.Matcher`, a
  :class:`structgen.decoding.potentials.PredicateMatcher`) or a plain callable ``token_id -> bool``.
  The matcher's state is not changed; the caller calls ``accept_token(step.token)``.
- ``rng``: a ``numpy.random.Generator``, an int seed or ``None``.

The returned ``token`` is distributed exactly as ``g(x) ∝ p(x)·allowed(x)`` (the locally constrained
distribution). ``log_weight`` is ``log Ẑ`` with ``E[Ẑ] = Z = Σ_x p(x)·allowed(x)`` where ``p`` is the
*unnormalized* distribution given by ``logprobs``. When no token is allowed (``Z = 0``), or the
``max_rejects`` budget ran out, ``token == -1`` and ``log_weight == -inf``: never append it.
``n_evaluations`` counts the calls to ``is_token_allowed``.

Estimators (``estimator=``):

- ``"recursive"`` (default): one without-replacement order; after the accepted token ``x*`` (rejected
  mass ``R1`` before it) test the next token ``y`` of the same order: ``Ẑ = 1 - R1`` if ``y`` is
  allowed, else ``Ẑ = p(x*)``; ``Ẑ = p(x*)`` when ``x*`` was the last token of positive probability.
  Costs one evaluation beyond the rejection run.
- ``"paper"``: the COLM 2025 paper's two-loop estimator: a second rejection run (fresh order) on the
  pool without the first run's rejections; with ``N`` rejections in total, ``Ẑ = (1 - R1) / (N + 1)``.

Both are exactly unbiased (checked by exhaustive enumeration of orders in
``tests/decoding/test_awrs.py``). ``proper_weights=False`` gives the weightless rejection sampler
(ARS-LCD: ``log_weight`` is 0 for any valid draw). ``mask_after=k`` (recursive estimator) bounds the
worst case: after ``k`` rejections the full mask is computed once and the same walk is finished from
it (same law, same unbiased weight; the mask counts as ``V`` evaluations).

Orders: the without-replacement order is drawn by sorting Gumbel-perturbed keys when the row is
small (``GumbelOrder``) and lazily by sequential sampling otherwise (``SequentialOrder``: one ``O(V)``
cumulative sum, then ``O(#drawn + log V)`` per drawn token); both are exact.

Tokens the constraint can never allow (special ids other than EOS, padding ids past the tokenizer,
empty tokens) are pruned before sampling when the matcher exposes ``.vocab``; the pruned mass is
accounted for in ``log_weight``.
"""

from __future__ import annotations

import bisect
import functools
import math
import weakref
from collections.abc import Callable
from typing import Any, NamedTuple

import numpy as np

NEG_INF = float("-inf")


class AWRSStep(NamedTuple):
    """One constrained draw: ``token`` (-1 when none), ``log_weight`` (log Ẑ), ``n_evaluations``."""

    token: int
    log_weight: float
    n_evaluations: int


def as_rng(rng: Any) -> np.random.Generator:
    """A numpy Generator from a Generator, an int seed or None."""
    if isinstance(rng, np.random.Generator):
        return rng
    return np.random.default_rng(rng)


def accept_fn(matcher: Any) -> Callable[[int], bool]:
    """The token test of a matcher-like object (``is_token_allowed``) or of a plain callable."""
    f = getattr(matcher, "is_token_allowed", None)
    if f is not None:
        return f  # type: ignore[no-any-return]
    if callable(matcher):
        return matcher  # type: ignore[no-any-return]
    raise TypeError(f"expected a matcher with is_token_allowed() or a callable, got {type(matcher).__name__}")


_never_cache: weakref.WeakKeyDictionary[Any, np.ndarray] = weakref.WeakKeyDictionary()


def never_allowed_mask(vocab: Any, width: int) -> np.ndarray:
    """``(width,)`` bool: ids no text constraint can allow (specials except EOS, padding, empty tokens)."""
    key = vocab
    cached = _never_cache.get(key)
    if cached is not None and cached.shape[0] == width:
        return cached
    never = np.ones(width, dtype=bool)
    n = min(width, vocab.num_tokens)
    text_ids = vocab.text_token_ids()
    never[text_ids[text_ids < n]] = False
    for e in vocab.eos_ids:
        if e < width:
            never[e] = False
    try:
        _never_cache[key] = never
    except TypeError:  # not weak-referenceable: skip caching
        pass
    return never


def _to_numpy(logprobs: Any) -> np.ndarray:
    return _to_numpy_2d(logprobs).reshape(-1)


def _prepare(logprobs: Any, matcher: Any) -> tuple[np.ndarray, float]:
    """Normalized probabilities over the kept tokens and ``log`` of the kept unnormalized mass."""
    lp = _to_numpy(logprobs)
    vocab = getattr(matcher, "vocab", None)
    if vocab is not None:
        never = never_allowed_mask(vocab, lp.shape[0])
        lp = np.where(never, NEG_INF, lp)
    m = float(np.max(lp)) if lp.size else NEG_INF
    if not math.isfinite(m):
        return np.zeros_like(lp), NEG_INF
    p = np.exp(lp - m)
    total = float(p.sum())
    return p / total, m + math.log(total)


class SequentialOrder:
    """A lazily drawn without-replacement order from ``p`` (sequential sampling, exact).

    One ``O(V)`` cumulative sum; each drawn token leaves a hole ``[cum[d-1], cum[d])`` in it. A draw
    takes ``u`` uniform on the remaining mass and shifts it past the holes below it (``O(#drawn)``),
    then binary-searches: exactly ``p`` restricted to the tokens not drawn yet, with no redraws and no
    rebuilds. Same law as sorting Gumbel keys ``log p + G``, without touching all ``V`` keys.
    """

    __slots__ = ("p", "rng", "drawn", "_cum", "_holes", "_removed", "_n_pos")

    def __init__(self, p: np.ndarray, rng: np.random.Generator, exclude: Any = ()) -> None:
        self.p = p
        self.rng = rng
        self.drawn: set[int] = set()
        self._cum = np.cumsum(p)  # (V,) float64
        self._holes: list[tuple[float, float]] = []  # (start, width) sorted by start
        self._removed = 0.0
        self._n_pos = int(np.count_nonzero(p > 0))
        for t in exclude:
            self._remove(int(t))

    def _remove(self, i: int) -> None:
        if i in self.drawn:
            return
        self.drawn.add(i)
        lo = float(self._cum[i - 1]) if i > 0 else 0.0
        width = float(self._cum[i]) - lo
        bisect.insort(self._holes, (lo, width))
        self._removed += width
        if self.p[i] > 0:
            self._n_pos -= 1

    def next(self) -> int | None:
        """The next token of the order, or None once every positive-probability token was drawn."""
        cum = self._cum
        v = cum.shape[0]
        for _ in range(64):  # more than one pass only on floating-point edge cases
            if self._n_pos <= 0:
                return None
            remaining = float(cum[-1]) - self._removed
            if remaining <= 0.0:
                return None
            u = self.rng.random() * remaining
            for start, width in self._holes:
                if u >= start:
                    u += width
                else:
                    break
            i = int(np.searchsorted(cum, u, side="right"))
            if i < v and i not in self.drawn and self.p[i] > 0:
                self._remove(i)
                return i
        # pathological rounding: fall back to an explicit draw over the remaining tokens
        q = self.p.copy()
        q[np.fromiter(self.drawn, dtype=np.int64)] = 0.0
        total = float(q.sum())
        if total <= 0.0:
            return None
        i = int(self.rng.choice(v, p=q / total))
        self._remove(i)
        return i


class _ListOrder:
    """An order fixed in advance, handed out one token at a time."""

    __slots__ = ("_order", "_pos")

    def __init__(self, order: list[int]) -> None:
        self._order = order
        self._pos = 0

    def next(self) -> int | None:
        if self._pos >= len(self._order):
            return None
        self._pos += 1
        return self._order[self._pos - 1]


class GumbelOrder(_ListOrder):
    """A without-replacement order from Gumbel-perturbed keys, sorted once (small supports)."""

    __slots__ = ()

    def __init__(self, p: np.ndarray, rng: np.random.Generator, exclude: Any = ()) -> None:
        support = np.flatnonzero(p > 0)
        if len(exclude):
            support = support[~np.isin(support, np.fromiter(exclude, dtype=np.int64))]
        keys = np.log(p[support]) + rng.gumbel(size=support.shape[0])
        super().__init__(support[np.argsort(-keys, kind="stable")].tolist())


_GUMBEL_MAX_SUPPORT = 512


def make_order(p: np.ndarray, rng: np.random.Generator, exclude: Any = ()) -> Any:
    """A without-replacement order: sorted Gumbel keys for small supports, lazy sequential draws otherwise."""
    if p.shape[0] <= _GUMBEL_MAX_SUPPORT:
        return GumbelOrder(p, rng, exclude)
    return SequentialOrder(p, rng, exclude)


def _first_accepted(
    order: Any, accept: Callable[[int], bool], rejected: list[int], limit: int | None
) -> tuple[int | None, int]:
    """Walk ``order`` to its first allowed token: ``(token, n_evaluations)``.

    Rejected tokens are appended to ``rejected``; the token is ``None`` when the order ran out or
    ``limit`` tokens were rejected.
    """
    evals = 0
    while True:
        x = order.next()
        if x is None:
            return None, evals
        evals += 1
        if accept(x):
            return x, evals
        rejected.append(x)
        if limit is not None and len(rejected) >= limit:
            return None, evals


def recursive_estimate(
    order: Any,
    p: np.ndarray,
    accept: Callable[[int], bool],
    max_rejects: int | None = None,
    *,
    mask_after: int | None = None,
    allowed: Callable[[], np.ndarray] | None = None,
    rng: np.random.Generator | None = None,
) -> tuple[int, float, int]:
    """Recursive AWRS on a without-replacement ``order``: ``(token, Ẑ, n_evaluations)`` (Ẑ normalized).

    ``order.next()`` yields the order, ``None`` when exhausted. Exposed for exact-enumeration tests.
    With ``mask_after=k`` and ``allowed()`` (the full ``(V,)`` bool mask), a run that has rejected
    ``k`` tokens computes the mask once and finishes the *same* walk from it (see
    :func:`_finish_with_mask`): same token law and same estimator, bounded cost; the mask counts as
    ``V`` evaluations.
    """
    if allowed is None:
        mask_after = None
    limits = [k for k in (max_rejects, mask_after) if k is not None]
    rejected: list[int] = []
    x, evals = _first_accepted(order, accept, rejected, min(limits) if limits else None)
    rejected_mass = sum(float(p[t]) for t in rejected)
    if x is None:
        n = len(rejected)
        if allowed is None or mask_after is None or n < mask_after or (max_rejects is not None and n >= max_rejects):
            return -1, 0.0, evals
        mask = allowed()
        tok, z = _finish_with_mask(p, rejected, rejected_mass, mask, rng if rng is not None else as_rng(None))
        return tok, z, evals + int(mask.shape[0])
    px = float(p[x])
    remaining = max(1.0 - rejected_mass, px)
    y = order.next()
    if y is None:
        return x, px, evals
    evals += 1
    return x, (remaining if accept(y) else px), evals


def _finish_with_mask(
    p: np.ndarray, rejected: list[int], rejected_mass: float, mask: np.ndarray, rng: np.random.Generator
) -> tuple[int, float]:
    """Continue a recursive-AWRS walk with the validity of every token known.

    Given the rejected prefix ``S`` of the order, the rest of a without-replacement order is a fresh
    one over ``V \\ S`` (sorted Gumbel keys), so ``x*`` = the valid token with the largest key, the
    extra rejected mass = invalid tokens with larger keys, ``y`` = the next key below ``x*``'s.
    """
    rest = p > 0
    rest[np.asarray(rejected, dtype=np.int64)] = False
    idx = np.flatnonzero(rest)
    ok = mask[idx]
    if not ok.any():
        return -1, 0.0
    keys = np.log(p[idx]) + rng.gumbel(size=idx.shape[0])
    j = int(np.argmax(np.where(ok, keys, NEG_INF)))
    x, kx = int(idx[j]), float(keys[j])
    r = rejected_mass + float(p[idx[keys > kx]].sum())
    px = float(p[x])
    below = keys < kx
    if not below.any():
        return x, px
    y = int(idx[below][int(np.argmax(keys[below]))])
    return x, (max(1.0 - r, px) if mask[y] else px)


def paper_estimate(
    order: Any,
    p: np.ndarray,
    accept: Callable[[int], bool],
    new_order: Callable[[set[int]], Any],
    max_rejects: int | None = None,
) -> tuple[int, float, int]:
    """The paper's two-loop estimator ``Ẑ = (1 - R1) / (N + 1)``; ``new_order(excluded)`` starts loop 2."""
    rej1: list[int] = []
    x, evals = _first_accepted(order, accept, rej1, max_rejects)
    if x is None:
        return -1, 0.0, evals
    r1 = float(sum(float(p[t]) for t in rej1))
    known_ok = {x}
    order2 = new_order(set(rej1))
    n2 = 0
    while True:
        t = order2.next()
        if t is None:  # cannot happen in exact arithmetic (x* stays in the pool)
            break
        if t in known_ok:
            break
        evals += 1
        if accept(t):
            break
        n2 += 1
    remaining = max(1.0 - r1, float(p[x]))
    return x, remaining / (len(rej1) + n2 + 1), evals


def awrs_sample_step(
    logprobs: Any,
    matcher: Any,
    rng: Any = None,
    *,
    estimator: str = "recursive",
    proper_weights: bool = True,
    max_rejects: int | None = None,
    mask_after: int | None = None,
) -> AWRSStep:
    """Draw one token from the locally constrained distribution, with an unbiased log-normalizer weight.

    See the module docstring for arguments and guarantees.
    """
    gen = as_rng(rng)
    accept_fn(matcher)  # a non-matcher raises before any work
    p, log_kept = _prepare(logprobs, matcher)
    if not math.isfinite(log_kept):
        return AWRSStep(-1, NEG_INF, 0)
    order = make_order(p, gen)
    return _estimate_step(
        estimator if proper_weights else "ars", order, p, matcher, gen, log_kept, max_rejects, mask_after
    )


def _estimate_step(
    estimator: str,
    order: Any,
    p: np.ndarray,
    matcher: Any,
    gen: np.random.Generator,
    log_kept: float,
    max_rejects: int | None,
    mask_after: int | None,
) -> AWRSStep:
    """Run ``estimator`` on one row's order and turn ``(token, Ẑ)`` into an :class:`AWRSStep`."""
    accept = accept_fn(matcher)
    if estimator == "recursive":
        allowed = functools.partial(allowed_mask, matcher, p.shape[0])
        tok, z, n = recursive_estimate(order, p, accept, max_rejects, mask_after=mask_after, allowed=allowed, rng=gen)
    elif estimator == "paper":
        tok, z, n = paper_estimate(order, p, accept, functools.partial(make_order, p, gen), max_rejects)
    elif estimator == "ars":
        tok, z, n = _ars(order, accept, max_rejects)
    else:
        raise ValueError(f"unknown AWRS estimator {estimator!r}; use 'recursive' or 'paper'")
    if tok < 0 or z <= 0.0:
        return AWRSStep(-1, NEG_INF, n)
    return AWRSStep(tok, 0.0 if estimator == "ars" else log_kept + math.log(z), n)


def awrs_sample_batch(
    logprobs: Any,
    matchers: Any,
    rng: Any = None,
    *,
    estimator: str = "recursive",
    proper_weights: bool = True,
    max_rejects: int | None = None,
    mask_after: int | None = None,
) -> list[AWRSStep]:
    """:func:`awrs_sample_step` for a batch: ``logprobs`` ``(B, V)``, one matcher per row.

    Normalization, pruning and (for small rows) the Gumbel orders are computed for all rows at once;
    only the constraint checks run per row. Same distribution and weights as the per-row function.
    """
    gen = as_rng(rng)
    lp = _to_numpy_2d(logprobs)  # (B, V)
    b, v = lp.shape
    if b == 0:
        return []
    vocab = getattr(matchers[0], "vocab", None)
    if vocab is not None:
        lp = np.where(never_allowed_mask(vocab, v)[None, :], NEG_INF, lp)
    m = np.max(lp, axis=1, keepdims=True)  # (B, 1)
    finite = np.isfinite(m[:, 0])
    m = np.where(np.isfinite(m), m, 0.0)
    p = np.exp(lp - m)  # (B, V)
    total = p.sum(axis=1)  # (B,)
    with np.errstate(divide="ignore", invalid="ignore"):
        p = p / np.where(total > 0, total, 1.0)[:, None]
        log_kept = m[:, 0] + np.log(total)
    small = v <= _GUMBEL_MAX_SUPPORT
    if small:
        with np.errstate(divide="ignore"):
            keys = np.log(p) + gen.gumbel(size=p.shape)  # (B, V)
        orders = np.argsort(-keys, axis=1, kind="stable")  # (B, V)
        npos = np.count_nonzero(p > 0, axis=1)  # (B,)
    if not proper_weights:
        estimator = "ars"
    out: list[AWRSStep] = []
    for i in range(b):
        if not finite[i] or not math.isfinite(float(log_kept[i])):
            out.append(AWRSStep(-1, NEG_INF, 0))
            continue
        order = _ListOrder(orders[i, : npos[i]].tolist()) if small else SequentialOrder(p[i], gen)
        out.append(
            _estimate_step(estimator, order, p[i], matchers[i], gen, float(log_kept[i]), max_rejects, mask_after)
        )
    return out


def _ars(order: Any, accept: Callable[[int], bool], max_rejects: int | None) -> tuple[int, float, int]:
    x, n = _first_accepted(order, accept, [], max_rejects)
    return (-1, 0.0, n) if x is None else (x, 1.0, n)


def _to_numpy_2d(logprobs: Any) -> np.ndarray:
    if hasattr(logprobs, "detach"):
        logprobs = logprobs.detach().float().cpu().numpy()
    arr = np.asarray(logprobs, dtype=np.float64)
    return arr.reshape(1, -1) if arr.ndim == 1 else arr


def allowed_mask(matcher: Any, width: int) -> np.ndarray:
    """``(width,)`` bool mask of allowed tokens, from ``allowed_token_ids()`` or by testing every id."""
    ids_fn = getattr(matcher, "allowed_token_ids", None)
    mask = np.zeros(width, dtype=bool)
    if ids_fn is not None:
        ids = np.asarray(ids_fn(), dtype=np.int64)
        mask[ids[ids < width]] = True
        return mask
    accept = accept_fn(matcher)
    for t in range(width):
        mask[t] = bool(accept(t))
    return mask


def masking_sample_step(logprobs: Any, matcher: Any, rng: Any = None) -> AWRSStep:
    """The token-masking baseline: compute the full mask, sample from the renormalized distribution.

    ``log_weight`` is the exact ``log Z``; ``n_evaluations`` is the mask width ``V`` (masking decides
    every token, however the engine computes it).
    """
    gen = as_rng(rng)
    lp = _to_numpy(logprobs)
    mask = allowed_mask(matcher, lp.shape[0])
    lpm = np.where(mask, lp, NEG_INF)
    m = float(np.max(lpm))
    if not math.isfinite(m):
        return AWRSStep(-1, NEG_INF, lp.shape[0])
    w = np.exp(lpm - m)
    total = float(w.sum())
    tok = int(gen.choice(lp.shape[0], p=w / total))
    return AWRSStep(tok, m + math.log(total), lp.shape[0])


__all__ = [
    "AWRSStep",
    "GumbelOrder",
    "SequentialOrder",
    "allowed_mask",
    "awrs_sample_batch",
    "awrs_sample_step",
    "make_order",
    "masking_sample_step",
    "never_allowed_mask",
    "paper_estimate",
    "recursive_estimate",
]
