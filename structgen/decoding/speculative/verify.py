"""Verifying a draft against the target model and the grammar in one forward pass.

``position_masks`` walks the draft through a *forked* matcher and returns the allowed-token row for
every position (the mask at position ``i`` depends on ``d_1..d_{i-1}``), cutting the draft at the
first token the grammar forbids. ``accept_draft`` then runs the acceptance rule on the masked target
rows (Leviathan et al. 2023):

* greedy: accept while ``argmax p_i == d_i``, then emit ``argmax p_i`` (identical to plain greedy);
* sampled draft with distribution ``q_i``: accept with ``min(1, p_i(d)/q_i(d))``, else sample from
  ``normalize(max(0, p_i - q_i))``;
* deterministic draft (n-gram, forced text, a greedy draft model): ``q_i`` is a point mass, so accept
  with probability ``p_i(d)``, else sample from ``p_i`` with ``d`` removed.

If every draft token is accepted, one bonus token is sampled from ``p_{k+1}``. Either way the
emitted tokens are distributed exactly as token-by-token sampling from the masked target.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch

from structgen.decoding.sampling import SamplingParams, process_logits
from structgen.runtime.bitmask import unpack_bitmask


def position_masks(matcher: Any, draft: Sequence[int]) -> tuple[list[int], list[np.ndarray | None]]:
    """(valid draft prefix, one ``(V,)`` bool row per position ``0..len(prefix)``); None rows = unconstrained."""
    if matcher is None:
        return [int(t) for t in draft], [None] * (len(draft) + 1)
    size = matcher.vocab.size
    fork = matcher.fork()
    kept: list[int] = []
    masks: list[np.ndarray | None] = []
    for t in draft:
        row = unpack_bitmask(fork.mask_words(), size)  # (V,) bool
        masks.append(row)
        if not row[int(t)] or not fork.accept_token(int(t)):
            masks.pop()
            break
        kept.append(int(t))
    masks.append(unpack_bitmask(fork.mask_words(), size))
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


def _sample(probs: torch.Tensor, generator: torch.Generator | None) -> int:
    if float(probs.sum()) <= 0.0:
        return -1
    return int(torch.multinomial(probs, 1, generator=generator)[0])


def _uniform(generator: torch.Generator | None) -> float:
    return float(torch.rand((), generator=generator, dtype=torch.float64))


def accept_draft(
    masked_logits: torch.Tensor,
    draft: Sequence[int],
    params: SamplingParams,
    generator: torch.Generator | None = None,
    draft_probs: Sequence[torch.Tensor | None] | None = None,
) -> tuple[int, int]:
    """(number of draft tokens accepted, the next token after them; -1 when no token is allowed).

    ``masked_logits`` has ``len(draft) + 1`` rows; ``draft_probs[i]`` is the distribution ``d_i`` was
    drawn from (None: deterministic draft).
    """
    k = len(draft)
    if params.greedy:
        for i in range(k + 1):
            row = masked_logits[i]
            best = int(torch.argmax(row))
            if torch.isneginf(row[best]):
                return i, -1
            if i == k or best != int(draft[i]):
                return i, best
        raise AssertionError("unreachable")  # pragma: no cover
    probs = target_probs(masked_logits, params)  # (k+1, V)
    for i, d in enumerate(draft):
        d = int(d)
        p = probs[i]
        q = draft_probs[i] if draft_probs is not None else None
        if q is None:
            if _uniform(generator) < float(p[d]):
                continue
            residual = p.clone()
            residual[d] = 0.0
        else:
            qd = float(q[d])
            if qd > 0.0 and _uniform(generator) < min(1.0, float(p[d]) / qd):
                continue
            residual = torch.clamp(p - q.to(p.dtype), min=0.0)
        if float(residual.sum()) <= 0.0:
            residual = p
        return i, _sample(residual, generator)
    return k, _sample(probs[k], generator)
