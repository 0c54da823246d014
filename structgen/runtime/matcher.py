"""The Matcher: the public per-sequence contract every decoding backend builds on.

    m = compiled.matcher()
    m.accept_token(token_id) -> bool      # False, and no state change, when not allowed
    m.accept_text(text) -> bool           # advance by text, whatever its tokenization (one history step)
    m.fill_bitmask(bitmask, index=0)      # numpy array or torch tensor, (B, ceil(V/32)) int32
    m.rollback(n_tokens); m.fork(); m.reset()
    m.is_accepting() -> bool              # EOS allowed exactly when the text so far is complete
    m.is_finished() -> bool               # EOS accepted, or no token can follow
    m.forced_text() -> str                # text every valid continuation starts with

Decode time never raises on a model's token: a rejected token returns False and records ``.error``
(sticky until rollback/reset). Misuse (bad bitmask shape/dtype, negative rollback) raises.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from structgen.runtime.bitmask import bitmask_width, check_bitmask, set_bits, unpack_bitmask, write_row
from structgen.runtime.engine import State, TokenEngine
from structgen.vocab.vocabulary import Vocabulary

_EOS = object()  # history marker: the EOS token was accepted after this state


class Matcher:
    """Stateful cursor over an immutable engine; cheap to fork."""

    __slots__ = ("engine", "vocab", "_states", "_eos_accepted", "error", "_max_forced", "_eos_words")

    def __init__(self, engine: TokenEngine, vocab: Vocabulary, *, max_forced_bytes: int = 4096) -> None:
        self.engine = engine
        self.vocab = vocab
        self._states: list[State] = [engine.initial_state()]
        self._eos_accepted = False
        self.error: str | None = None
        self._max_forced = max_forced_bytes
        words = np.zeros(bitmask_width(vocab.size), dtype=np.int32)
        set_bits(words, sorted(vocab.eos_ids))
        self._eos_words = words

    # ---- state -------------------------------------------------------------------------------
    @property
    def state(self) -> State:
        """The engine state after the accepted tokens."""
        return self._states[-1]

    @property
    def num_accepted(self) -> int:
        """Number of history steps (tokens or accept_text calls) that ``rollback`` can undo."""
        return len(self._states) - 1 + (1 if self._eos_accepted else 0)

    def is_accepting(self) -> bool:
        """True when the output so far is a complete match, so EOS is allowed."""
        return not self._eos_accepted and self.engine.is_accepting(self.state)

    def is_finished(self) -> bool:
        """True after EOS was accepted, or when no token at all can follow."""
        if self._eos_accepted:
            return True
        return not self.engine.can_continue(self.state) and not self.is_accepting()

    def is_terminated(self) -> bool:
        """True once EOS was accepted."""
        return self._eos_accepted

    # ---- advancing ---------------------------------------------------------------------------
    def accept_token(self, token_id: int) -> bool:
        """Advance by one token; False (no state change) when it is not allowed."""
        try:
            token_id = int(token_id)
        except (TypeError, ValueError):
            self.error = f"token {token_id!r} is not an integer id"
            return False
        if self._eos_accepted:
            self.error = f"token {token_id} after EOS"
            return False
        if token_id in self.vocab.eos_ids:
            if self.engine.is_accepting(self.state):
                self._eos_accepted = True
                self.error = None
                return True
            self.error = f"EOS token {token_id} before the constraint is complete"
            return False
        if not 0 <= token_id < self.vocab.num_tokens or token_id in self.vocab.special_ids:
            self.error = f"token {token_id} is outside the text vocabulary of {self.vocab.num_tokens} tokens"
            return False
        nxt = self.engine.advance_token(self.state, token_id)
        if nxt is None:
            self.error = f"token {token_id} ({self.vocab.token_bytes[token_id]!r}) is not allowed here"
            return False
        self._states.append(nxt)
        self.error = None
        return True

    def accept_tokens(self, token_ids: Any) -> int:
        """Accept tokens in order until one is rejected; returns how many were accepted."""
        n = 0
        for t in token_ids:
            if not self.accept_token(t):
                break
            n += 1
        return n

    def accept_bytes(self, data: bytes) -> bool:
        """Advance by raw bytes (one history step); False and no change when they leave the language."""
        if self._eos_accepted:
            self.error = "bytes after EOS"
            return False
        nxt = self.engine.advance_bytes(self.state, bytes(data))
        if nxt is None:
            self.error = f"bytes {bytes(data)[:60]!r} are not allowed here"
            return False
        self._states.append(nxt)
        self.error = None
        return True

    def accept_text(self, text: str) -> bool:
        """Advance by text, whatever its tokenization (one history step)."""
        return self.accept_bytes(text.encode("utf-8"))

    def rollback(self, n_tokens: int = 1) -> None:
        """Undo the last ``n_tokens`` history steps (EOS counts as one)."""
        if n_tokens < 0:
            raise ValueError(f"rollback count must be >= 0, got {n_tokens}")
        if n_tokens > self.num_accepted:
            raise ValueError(f"cannot roll back {n_tokens} steps: only {self.num_accepted} were accepted")
        if n_tokens and self._eos_accepted:
            self._eos_accepted = False
            n_tokens -= 1
        if n_tokens:
            del self._states[-n_tokens:]
        self.error = None

    def reset(self) -> None:
        """Back to the initial state."""
        del self._states[1:]
        self._eos_accepted = False
        self.error = None

    def fork(self) -> Matcher:
        """An independent copy sharing the compiled engine (O(history) list copy)."""
        other = Matcher.__new__(Matcher)
        other.engine = self.engine
        other.vocab = self.vocab
        other._states = list(self._states)
        other._eos_accepted = self._eos_accepted
        other.error = self.error
        other._max_forced = self._max_forced
        other._eos_words = self._eos_words
        return other

    # ---- masks -------------------------------------------------------------------------------
    def mask_words(self) -> np.ndarray:
        """A fresh ``(ceil(V/32),)`` int32 row of allowed tokens, EOS bits included."""
        if self._eos_accepted:
            return np.zeros_like(self._eos_words)
        words = np.array(self.engine.token_mask(self.state), dtype=np.int32, copy=True)
        if self.engine.is_accepting(self.state):
            words |= self._eos_words
        return words

    def fill_bitmask(self, bitmask: Any, index: int = 0) -> None:
        """Write this matcher's allowed-token row into ``bitmask[index]`` (numpy or torch, int32)."""
        if (
            type(bitmask) is np.ndarray
            and bitmask.dtype == np.int32
            and bitmask.ndim == 2
            and bitmask.shape[1] == self._eos_words.shape[0]
            and 0 <= index < bitmask.shape[0]
        ):  # the hot path: no temporary row
            row = bitmask[index]
            if self._eos_accepted:
                row[...] = 0
                return
            state = self.state
            row[...] = self.engine.token_mask(state)
            if self.engine.is_accepting(state):
                row |= self._eos_words
            return
        check_bitmask(bitmask, index, self._eos_words.shape[0])
        write_row(bitmask, index, self.mask_words())

    def allowed_token_ids(self) -> np.ndarray:
        """Sorted ids of the allowed tokens (EOS included when accepting)."""
        return np.flatnonzero(unpack_bitmask(self.mask_words(), self.vocab.size))

    def is_token_allowed(self, token_id: int) -> bool:
        """Whether ``token_id`` would be accepted now (no state change)."""
        token_id = int(token_id)
        if self._eos_accepted or not 0 <= token_id < self.vocab.num_tokens:
            return False
        if token_id in self.vocab.eos_ids:
            return self.engine.is_accepting(self.state)
        if token_id in self.vocab.special_ids:
            return False
        return self.engine.advance_token(self.state, token_id) is not None

    # ---- forced text -------------------------------------------------------------------------
    def forced_bytes(self) -> bytes:
        """Bytes every valid continuation starts with (b"" when none, or when EOS is allowed)."""
        if self._eos_accepted:
            return b""
        return self.engine.forced_bytes(self.state, self._max_forced)

    def forced_text(self) -> str:
        """The forced continuation cut to whole UTF-8 characters."""
        data = self.forced_bytes()
        for cut in range(len(data), max(len(data) - 4, -1), -1):
            try:
                return data[:cut].decode("utf-8")
            except UnicodeDecodeError:
                continue
        return ""
