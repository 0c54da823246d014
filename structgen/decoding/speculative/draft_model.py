"""Draft-model speculation: a smaller causal LM sharing the tokenizer proposes ``k`` tokens.

The draft runs under the *same* constraint (its own forked matcher), so every proposal is grammatical
and ``q_i(d_i) > 0`` is the probability the token was really drawn with. It keeps its own KV cache
(cropped to the common prefix after each verification). The draft length adapts: +2 after a fully
accepted draft, -1 after a rejection (the transformers assisted-generation heuristic), within
``[min_k, max_k]``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch

from structgen.decoding.sampling import SamplingParams, process_logits
from structgen.decoding.speculative.lm_cache import CachedLM
from structgen.runtime.bitmask import unpack_bitmask


class AdaptiveLength:
    """Draft length controller: grow on full acceptance, shrink on rejection."""

    def __init__(self, k: int = 4, min_k: int = 1, max_k: int = 12) -> None:
        if not 1 <= min_k <= k <= max_k:
            raise ValueError(f"need 1 <= min_k <= k <= max_k, got {min_k}, {k}, {max_k}")
        self.k, self.min_k, self.max_k = k, min_k, max_k

    def update(self, drafted: int, accepted: int) -> None:
        if drafted == 0:
            return
        if accepted >= drafted:
            self.k = min(self.max_k, self.k + 2)
        else:
            self.k = max(self.min_k, self.k - 1)


class DraftModel:
    """A draft LM with its own cache; ``propose`` returns tokens and the distributions they came from."""

    def __init__(self, model: Any, *, k: int = 4, min_k: int = 1, max_k: int = 12) -> None:
        if hasattr(model, "vocab") and hasattr(model, "tokenizer"):  # a LoadedModel
            model = model.model
        self.lm = CachedLM(model)
        self.length = AdaptiveLength(k, min_k, max_k)

    @property
    def forward_passes(self) -> int:
        return self.lm.forward_passes

    def propose(
        self,
        matcher: Any,
        ids: Sequence[int],
        k: int,
        params: SamplingParams,
        generator: torch.Generator | None,
        vocab_size: int,
    ) -> tuple[list[int], list[torch.Tensor | None]]:
        """Up to ``k`` grammar-valid tokens after ``ids``, and per token its draft distribution (None if greedy)."""
        fork = matcher.fork() if matcher is not None else None
        seq = [int(t) for t in ids]
        tokens: list[int] = []
        dists: list[torch.Tensor | None] = []
        eos = matcher.vocab.eos_ids if matcher is not None else frozenset()
        for _ in range(k):
            if fork is not None and fork.is_finished():
                break
            row = self.lm.logits(seq + tokens, keep=1)[0]  # (V_draft,)
            x = _fit(row, vocab_size)
            if fork is not None:
                allowed = torch.from_numpy(unpack_bitmask(fork.mask_words(), vocab_size)).to(x.device)
                x = x.masked_fill(~allowed, float("-inf"))
            if params.greedy:
                t = int(torch.argmax(x))
                if torch.isneginf(x[t]):
                    break
                q = None
            else:
                q = torch.nan_to_num(torch.softmax(process_logits(x[None], params)[0].to(x.dtype), dim=-1), nan=0.0)
                if float(q.sum()) <= 0.0:
                    break
                t = int(torch.multinomial(q, 1, generator=generator)[0])
            if fork is not None and not fork.accept_token(t):
                break
            tokens.append(t)
            dists.append(q)
            if t in eos:
                # kept in the draft: dropping a sampled EOS would skew which tokens reach verification
                break
        return tokens, dists


def _fit(row: torch.Tensor, size: int) -> torch.Tensor:
    """The draft's logits resized to the target's width (padding ids at -inf)."""
    n = row.shape[-1]
    if n == size:
        return row
    if n > size:
        return row[:size]
    pad = torch.full((size - n,), float("-inf"), dtype=row.dtype, device=row.device)
    return torch.cat([row, pad])
