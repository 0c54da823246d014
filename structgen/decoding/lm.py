"""A minimal language-model protocol for the sampling algorithms (AWRS, SMC, ASAp).

    lm.vocab_size                          # width of the returned rows (the logits width)
    lm.next_logprobs(prefixes) -> ndarray  # (B, V) float64, normalized next-token log-probabilities

``prefixes`` is a sequence of token-id sequences (prompt + generated tokens). Implementations:

- :class:`TabularLM`: an exact table/function ``context -> probabilities`` (tests, enumeration).
- :class:`TransformersLM` (in :mod:`structgen.decoding.lm`, torch imported lazily): wraps a
  ``transformers`` causal LM, batches all prefixes into one forward pass and reuses the KV cache when
  every new prefix extends a prefix of the previous call by exactly one token (the SMC pattern, with
  resampling handled by reordering the cache rows).

Temperature is applied by the adapter (``temperature=``), so the target distribution of every
sampler is the *tempered* model; say so when reporting results.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, Protocol, runtime_checkable

import numpy as np


@runtime_checkable
class LanguageModel(Protocol):
    """Batched next-token log-probabilities for token prefixes."""

    @property
    def vocab_size(self) -> int: ...

    def next_logprobs(self, prefixes: Sequence[Sequence[int]]) -> np.ndarray:
        """``(len(prefixes), vocab_size)`` float64 log-probabilities, each row normalized."""
        ...


def _normalize_rows(logits: np.ndarray) -> np.ndarray:
    m = np.max(logits, axis=-1, keepdims=True)
    m = np.where(np.isfinite(m), m, 0.0)
    z = np.log(np.sum(np.exp(logits - m), axis=-1, keepdims=True)) + m
    return logits - z


class TabularLM:
    """An exact language model given by a function ``context (tuple of ids) -> probability vector``.

    ``table`` may also be a dict ``context -> probabilities`` (missing contexts use ``default``) or a
    ``(V, V)`` bigram matrix (row = previous token, ``start`` row used for the empty context).
    Counts calls and rows in ``calls`` / ``rows`` so tests can check batching.
    """

    def __init__(
        self,
        table: Callable[[tuple[int, ...]], Any] | dict[tuple[int, ...], Any] | np.ndarray,
        vocab_size: int,
        *,
        default: Any = None,
        start: Any = None,
    ) -> None:
        self._vocab_size = int(vocab_size)
        self.calls = 0
        self.rows = 0
        if callable(table):
            self._fn = table
        elif isinstance(table, dict):
            tbl = {tuple(k): np.asarray(v, dtype=np.float64) for k, v in table.items()}
            dflt = None if default is None else np.asarray(default, dtype=np.float64)

            def fn(ctx: tuple[int, ...]) -> np.ndarray:
                row = tbl.get(ctx, dflt)
                if row is None:
                    raise KeyError(f"TabularLM has no row for context {ctx}")
                return row

            self._fn = fn
        else:
            mat = np.asarray(table, dtype=np.float64)
            if mat.shape != (vocab_size, vocab_size):
                raise ValueError(f"bigram table must be ({vocab_size}, {vocab_size}), got {mat.shape}")
            first = mat[0] if start is None else np.asarray(start, dtype=np.float64)

            def fn(ctx: tuple[int, ...]) -> np.ndarray:
                return first if not ctx else mat[ctx[-1]]

            self._fn = fn

    @property
    def vocab_size(self) -> int:
        return self._vocab_size

    def probs(self, context: Sequence[int]) -> np.ndarray:
        """The exact next-token probabilities after ``context`` (normalized)."""
        p = np.asarray(self._fn(tuple(int(t) for t in context)), dtype=np.float64)
        if p.shape != (self._vocab_size,):
            raise ValueError(f"TabularLM row has shape {p.shape}, expected ({self._vocab_size},)")
        return p / p.sum()

    def next_logprobs(self, prefixes: Sequence[Sequence[int]]) -> np.ndarray:
        self.calls += 1
        self.rows += len(prefixes)
        out = np.empty((len(prefixes), self._vocab_size), dtype=np.float64)  # (B, V)
        with np.errstate(divide="ignore"):
            for i, ctx in enumerate(prefixes):
                out[i] = np.log(self.probs(ctx))
        return out


class TransformersLM:
    """Adapter for a ``transformers`` causal LM: one batched forward per call, with KV-cache reuse.

    Cache reuse: when every prefix of a call equals some prefix of the previous call plus exactly one
    token, only the new tokens are fed and the cache rows are gathered (``index_select``) into the new
    order — the shape of an SMC step, resampling included. Otherwise the batch is recomputed from
    scratch (left padding with an attention mask and explicit position ids).

    Args:
        model: a causal LM (``AutoModelForCausalLM``), already on its device.
        vocab_size: width of the returned rows; defaults to the model's logits width. Extra logits
            columns beyond it are dropped; missing ones are padded with ``-inf``.
        temperature: logits are divided by it before normalizing (the target becomes the tempered LM).
        pad_token_id: token id used for left padding (any id works: padded positions are masked).
    """

    def __init__(
        self,
        model: Any,
        *,
        vocab_size: int | None = None,
        temperature: float = 1.0,
        pad_token_id: int = 0,
    ) -> None:
        import torch

        self._torch = torch
        self.model = model
        self.device = next(model.parameters()).device
        out_width = model.get_output_embeddings().weight.shape[0]
        self._vocab_size = int(vocab_size if vocab_size is not None else out_width)
        if temperature <= 0:
            raise ValueError(f"temperature must be > 0, got {temperature}")
        self.temperature = float(temperature)
        self.pad_token_id = int(pad_token_id)
        self._seqs: list[tuple[int, ...]] | None = None  # sequences the cached rows correspond to
        self._index: dict[tuple[int, ...], int] = {}
        self._cache: Any = None
        self._attn: Any = None  # (B, L) long attention mask of the cached rows
        self._next_pos: Any = None  # (B,) next position id per row
        self.forward_calls = 0
        self.incremental_calls = 0

    @property
    def vocab_size(self) -> int:
        return self._vocab_size

    def reset(self) -> None:
        """Drop the KV cache."""
        self._seqs = None
        self._index = {}
        self._cache = None
        self._attn = None
        self._next_pos = None

    def _finish(self, logits: Any) -> np.ndarray:
        torch = self._torch
        logits = logits.float() / self.temperature  # (B, V_model)
        v = self._vocab_size
        if logits.shape[-1] > v:
            logits = logits[:, :v]
        elif logits.shape[-1] < v:
            pad = torch.full((logits.shape[0], v - logits.shape[-1]), float("-inf"), device=logits.device)
            logits = torch.cat([logits, pad], dim=-1)
        return torch.log_softmax(logits.double(), dim=-1).cpu().numpy()  # (B, V) float64

    def next_logprobs(self, prefixes: Sequence[Sequence[int]]) -> np.ndarray:
        torch = self._torch
        seqs = [tuple(int(t) for t in p) for p in prefixes]
        if not seqs:
            return np.empty((0, self._vocab_size), dtype=np.float64)
        if any(len(s) == 0 for s in seqs):
            raise ValueError("TransformersLM needs non-empty prefixes (give a prompt or a BOS token)")
        self.forward_calls += 1
        parents = None
        if self._seqs is not None:
            parents = [self._index.get(s[:-1]) for s in seqs]
            if any(p is None for p in parents):
                parents = None
        with torch.no_grad():
            if parents is not None:
                self.incremental_calls += 1
                idx = torch.tensor(parents, dtype=torch.long, device=self.device)
                cache = self._cache
                cache.reorder_cache(idx)
                attn = torch.cat(
                    [self._attn.index_select(0, idx), torch.ones((len(seqs), 1), dtype=torch.long, device=self.device)],
                    dim=1,
                )
                pos = self._next_pos.index_select(0, idx)
                ids = torch.tensor([[s[-1]] for s in seqs], dtype=torch.long, device=self.device)
                out = self.model(
                    input_ids=ids, attention_mask=attn, position_ids=pos[:, None], past_key_values=cache, use_cache=True
                )
            else:
                width = max(len(s) for s in seqs)
                ids = torch.full((len(seqs), width), self.pad_token_id, dtype=torch.long)
                attn = torch.zeros((len(seqs), width), dtype=torch.long)
                for i, s in enumerate(seqs):
                    ids[i, width - len(s) :] = torch.tensor(s, dtype=torch.long)
                    attn[i, width - len(s) :] = 1
                ids, attn = ids.to(self.device), attn.to(self.device)
                pos_full = (attn.cumsum(dim=1) - 1).clamp(min=0)
                out = self.model(input_ids=ids, attention_mask=attn, position_ids=pos_full, use_cache=True)
                pos = attn.sum(dim=1) - 1
            self._cache = out.past_key_values
            self._attn = attn
            self._next_pos = pos + 1
            self._seqs = seqs
            self._index = {s: i for i, s in enumerate(seqs)}
            return self._finish(out.logits[:, -1, :])


__all__ = ["LanguageModel", "TabularLM", "TransformersLM", "_normalize_rows"]
