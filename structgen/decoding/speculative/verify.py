"""Verifying a draft against the target model and the grammar in one forward pass.

``position_masks`` walks the draft through a *forked* matcher and returns the allowed-token row for
every position (the mask at position ``i`` depends on ``d_1..d_{i-1}``), cutting the draft at the
first token the grammar forbids. ``accept_draft`` then runs the acceptance rule on the masked target
rows (Leviathan et al. 2023):

* greedy: accept while ``argmax p_i == d_i``, then emit ``argmax p_i`` (identical to plain greedy);
* sampled draft with distribution ``q_i``: accept with ``min(1, p_i(d)/q_i(d))``, else sample from
  ``normalize(max(0, p_i - q_i))``;
* deterministic draft (n-gram, forced text, a greedy draft model): ``q_i`` is a point mass, so accept
  with probability ``p_i(d)``, else sample from ``p_i`` with ``d`` removed. Implemented as "sample
  ``x ~ p_i`` with Gumbel keys, accept iff ``x == d``" (the same law), which draws the keys exactly as
  the batched loop does: with the same generator, speculation emits the same tokens as plain decoding.

The target's choice goes through a ``pick`` callback, so the decode loop can steer the token budget
(:func:`structgen.decoding.budget.pick_within_budget`) at every verified position.

If every draft token is accepted, one bonus token is sampled from ``p_{k+1}``. Either way the
emitted tokens are distributed exactly as token-by-token sampling from the masked target.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import torch

from structgen.decoding.sampling import SamplingParams, process_logits
from structgen.runtime.bitmask import unpack_bitmask


def walk_draft(matcher: Any, draft: Sequence[int]) -> tuple[list[int], list[np.ndarray | None], list[Any]]:
    """(valid draft prefix, one ``(V,)`` bool mask row per position ``0..len(prefix)``, the engine state
    at each of those positions); None rows / states = unconstrained."""
    if matcher is None:
        return [int(t) for t in draft], [None] * (len(draft) + 1), [None] * (len(draft) + 1)
    size = matcher.vocab.size
    fork = matcher.fork()
    kept: list[int] = []
    masks: list[np.ndarray | None] = []
    states: list[Any] = []
    for t in draft:
        row = unpack_bitmask(fork.mask_words(), size)  # (V,) bool
        if not row[int(t)]:
            break
        state = fork.state
        if not fork.accept_token(int(t)):
            break
        masks.append(row)
        states.append(state)
        kept.append(int(t))
    masks.append(unpack_bitmask(fork.mask_words(), size))
    states.append(fork.state)
    return kept, masks, states


def position_masks(matcher: Any, draft: Sequence[int]) -> tuple[list[int], list[np.ndarray | None]]:
    """(valid draft prefix, one ``(V,)`` bool row per position ``0..len(prefix)``); None rows = unconstrained."""
    kept, masks, _ = walk_draft(matcher, draft)
    return kept, masks


def apply_masks(logits: torch.Tensor, masks: Sequence[np.ndarray | None]) -> torch.Tensor:
    """``logits`` (k+1, V) with forbidden tokens set to -inf (in place; returns it)."""
    rows = [i for i, row in enumerate(masks) if row is not None]
    present = [row for row in masks if row is not None]
    if not present:
        return logits
    forbidden = ~torch.from_numpy(np.stack(present)).to(logits.device)  # (r, V) bool
    if len(rows) == logits.shape[0]:
        logits.masked_fill_(forbidden, float("-inf"))
    else:
        idx = torch.tensor(rows, dtype=torch.long, device=logits.device)
        logits[idx] = logits[idx].masked_fill(forbidden, float("-inf"))
    return logits


def target_probs(masked_logits: torch.Tensor, params: SamplingParams) -> torch.Tensor:
    """``(k+1, V)`` sampling distributions (temperature, top-k, top-p) of masked logits; dead rows are 0."""
    x = process_logits(masked_logits, params)
    if masked_logits.dtype == torch.float64:
        x = x.double()
    return torch.nan_to_num(torch.softmax(x, dim=-1), nan=0.0)


def _uniform(generator: torch.Generator | None) -> float:
    return float(torch.rand((), generator=generator, dtype=torch.float64))


def gumbel_keys(logp: torch.Tensor, generator: torch.Generator | None) -> torch.Tensor:
    """``(V,)`` sampling keys: argmax is a sample from ``softmax(logp)``, the descending order a sample
    without replacement. One ``torch.rand(V)`` draw, exactly as the batched loop draws it, so both
    loops turn the same generator stream into the same tokens."""
    u = torch.rand(logp.shape[-1], generator=generator, device=logp.device).clamp_(min=1e-20)
    return logp - torch.log(-torch.log(u))


def _argmax_pick(_i: int, keys: torch.Tensor) -> int:
    t = int(torch.argmax(keys))
    return -1 if torch.isneginf(keys[t]) else t


Pick = Callable[[int, torch.Tensor], int]


def accept_draft(
    masked_logits: torch.Tensor,
    draft: Sequence[int],
    params: SamplingParams,
    generator: torch.Generator | None = None,
    draft_probs: Sequence[torch.Tensor | None] | None = None,
    pick: Pick | None = None,
) -> tuple[int, int]:
    """(number of draft tokens accepted, the next token after them; -1 when no token is allowed).

    ``masked_logits`` has ``len(draft) + 1`` rows; ``draft_probs[i]`` is the distribution ``d_i`` was
    drawn from (None: deterministic draft). ``pick(i, keys)`` chooses the target's token at position
    ``i`` from a ``(V,)`` key vector (default: argmax; the decode loop passes the budget-steered
    choice). For greedy and deterministic drafts the target's own choice is made at every position
    (greedy: the masked argmax; sampling: Gumbel keys, i.e. a sample from ``p_i``) and the draft token
    is accepted iff it equals that choice, which is the lossless rule for a point-mass draft
    (acceptance probability ``p_i(d)``, the rejection sample ``p_i`` without ``d``) and consumes one
    key draw per emitted token, like plain decoding.
    """
    choose = pick or _argmax_pick
    k = len(draft)
    dead = torch.isneginf(masked_logits).all(dim=-1)  # (k+1,)
    if params.greedy:
        for i in range(k + 1):
            if bool(dead[i]):
                return i, -1
            c = choose(i, masked_logits[i])
            if i == k or c != int(draft[i]):
                return i, c
        raise AssertionError("unreachable")  # pragma: no cover
    x = process_logits(masked_logits, params)
    if masked_logits.dtype == torch.float64:
        x = x.double()
    logp = torch.log_softmax(x, dim=-1)  # (k+1, V)
    for i in range(k + 1):
        if bool(dead[i]):
            return i, -1
        q = draft_probs[i] if (draft_probs is not None and i < k) else None
        if q is None:
            c = choose(i, gumbel_keys(logp[i], generator))
            if i == k or c != int(draft[i]):
                return i, c
            continue
        d = int(draft[i])
        p = torch.nan_to_num(logp[i].exp(), nan=0.0)
        qd = float(q[d])
        if qd > 0.0 and _uniform(generator) < min(1.0, float(p[d]) / qd):
            continue
        residual = torch.clamp(p - q.to(p.dtype), min=0.0)
        if float(residual.sum()) <= 0.0:
            residual = p
        return i, choose(i, gumbel_keys(torch.log(residual / residual.sum()), generator))
    raise AssertionError("unreachable")  # pragma: no cover
