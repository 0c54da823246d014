"""Column-major token byte arrays for vectorized walks of every token through a byte automaton."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from structgen.vocab.vocabulary import Vocabulary


@dataclass(frozen=True, eq=False)
class TokenArrays:
    """Text tokens sorted by decreasing byte length, stored column by column.

    ``ids[k]`` is the token id at sorted position ``k``; ``lengths[k]`` its byte length.
    ``columns[j]`` holds byte ``j`` of every token longer than ``j``: since tokens are sorted by
    decreasing length, those are exactly the first ``len(columns[j])`` sorted positions. A walk of
    all tokens from state(s) ``s`` is then ``cur[:n_j] = delta[cur[:n_j], columns[j]]`` for each j.
    """

    ids: np.ndarray  # (N,) int64, token ids of text tokens
    lengths: np.ndarray  # (N,) int32
    columns: tuple[np.ndarray, ...]  # columns[j]: (n_j,) uint8, n_j non-increasing
    first_bytes: np.ndarray  # (N,) uint8

    @staticmethod
    def build(vocab: Vocabulary) -> TokenArrays:
        ids = vocab.text_token_ids()
        toks = [vocab.token_bytes[i] for i in ids]
        lengths = np.array([len(t) for t in toks], dtype=np.int32)
        order = np.argsort(-lengths, kind="stable")
        ids = ids[order]
        lengths = lengths[order]
        toks = [toks[i] for i in order]
        max_len = int(lengths[0]) if len(lengths) else 0
        buf = np.zeros((len(toks), max_len), dtype=np.uint8)
        for k, t in enumerate(toks):
            buf[k, : len(t)] = np.frombuffer(t, dtype=np.uint8)
        columns = tuple(np.ascontiguousarray(buf[: int(np.sum(lengths > j)), j]) for j in range(max_len))
        return TokenArrays(
            ids=ids,
            lengths=lengths,
            columns=columns,
            first_bytes=buf[:, 0].copy() if max_len else np.zeros(0, np.uint8),
        )
