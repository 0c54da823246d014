"""The regex token engine: a minimal byte DFA × a vocabulary, states are DFA state ids (ints).

Hot path: ``token_mask`` is an LRU-cached read-only row of packed words (first visit of a state
walks the vocabulary's class trie once, ~0.3–1 ms on 128k vocabularies); ``advance_token`` walks
the token's bytes through the transition table (a few hundred ns), rejecting early from the cached
mask when there is one.
"""

from __future__ import annotations

import numpy as np

from structgen.automaton.dfa import DEAD, ByteDFA
from structgen.automaton.token_index import TokenIndex
from structgen.limits import DEFAULT_LIMITS, Limits
from structgen.vocab.vocabulary import Vocabulary

__all__ = ["RegexEngine"]

_LIST_TABLE_MAX = 1 << 21  # transition tables up to this many cells are mirrored as Python lists


class RegexEngine:
    """Implements :class:`structgen.runtime.engine.TokenEngine` for a ByteDFA (states are ints)."""

    def __init__(self, dfa: ByteDFA, vocab: Vocabulary, limits: Limits | None = None) -> None:
        self.dfa = dfa
        self.vocab = vocab
        self.limits = limits or DEFAULT_LIMITS
        self.index = TokenIndex(dfa, vocab, self.limits)
        trans = dfa.transitions
        self._rows: list[list[int]] | None = trans.tolist() if trans.size <= _LIST_TABLE_MAX else None
        self._accepting: list[bool] = dfa.accepting.tolist()
        live_out = (trans != DEAD).sum(axis=1)  # (S,) number of bytes leading to a live state
        self._can_continue: list[bool] = (live_out > 0).tolist()
        # single[s] = the only byte leaving s alive when s is not accepting, else -1 (forced bytes)
        only = np.argmax(trans != DEAD, axis=1)
        single = np.where((live_out == 1) & ~dfa.accepting, only, -1)
        self._single: list[int] = single.tolist()
        n = vocab.num_tokens
        text = np.zeros(n, dtype=bool)
        text[vocab.text_token_ids()] = True
        self._is_text: list[bool] = text.tolist()
        self._token_bytes = vocab.token_bytes

    # ---- TokenEngine -------------------------------------------------------------------------
    def initial_state(self) -> int:
        return self.dfa.start

    def _walk(self, state: int, data: bytes) -> int:
        rows = self._rows
        if rows is not None:
            for b in data:
                state = rows[state][b]
                if state == DEAD:
                    return DEAD
            return state
        t = self.dfa.transitions
        for b in data:
            state = int(t[state, b])
            if state == DEAD:
                return DEAD
        return state

    def advance_token(self, state: int, token_id: int) -> int | None:
        """State after text token ``token_id``; None if not allowed or not a text token (never raises)."""
        try:
            tid = int(token_id)
            st = int(state)
        except (TypeError, ValueError):
            return None
        if not 0 <= tid < len(self._is_text) or not self._is_text[tid] or not 0 < st < len(self._accepting):
            return None
        words = self.index.cached_mask(st)
        if words is not None and not (int(words[tid >> 5]) >> (tid & 31)) & 1:
            return None
        nxt = self._walk(st, self._token_bytes[tid])
        return None if nxt == DEAD else nxt

    def advance_bytes(self, state: int, data: bytes) -> int | None:
        st = int(state)
        if not 0 < st < len(self._accepting):
            return None
        nxt = self._walk(st, data)
        return None if nxt == DEAD else nxt

    def token_mask(self, state: int) -> np.ndarray:
        """Read-only ``(ceil(V/32),)`` int32 words of allowed text tokens (no EOS bits)."""
        return self.index.mask(int(state))

    def next_states(self, state: int) -> np.ndarray:
        """Read-only ``(V,)`` int32: state after each token (0 = not allowed)."""
        return self.index.next_states(int(state))

    def is_accepting(self, state: int) -> bool:
        return bool(self._accepting[int(state)])

    def can_continue(self, state: int) -> bool:
        return bool(self._can_continue[int(state)])

    def forced_bytes(self, state: int, limit: int) -> bytes:
        """Bytes every continuation starts with: follow non-accepting states with one live byte."""
        out = bytearray()
        st = int(state)
        single = self._single
        rows = self._rows
        while len(out) < limit and st != DEAD:
            b = single[st]
            if b < 0:
                break
            out.append(b)
            st = rows[st][b] if rows is not None else int(self.dfa.transitions[st, b])
        return bytes(out)

    # ---- extras for decoding algorithms ------------------------------------------------------
    def reachable_states(self) -> tuple[int, ...]:
        """Token-level reachable DFA states from the start (BFS order)."""
        return self.index.reachable_states()

    def token_table(self, states: list[int] | tuple[int, ...] | np.ndarray) -> np.ndarray:
        """``(len(states), V)`` int32 next-state table (0 = not allowed)."""
        return self.index.token_table(states)
