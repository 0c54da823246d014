"""The token-engine protocol: what every compiled automaton (regex DFA, grammar, JSON Schema) provides.

An engine is compiled once per (constraint, vocabulary) and shared by all matchers. Its states are
immutable and hashable, so a matcher's history, ``fork`` and ``rollback`` are plain list operations.
Engines know nothing about EOS: the Matcher adds EOS bits exactly when ``is_accepting(state)``.
"""

from __future__ import annotations

from typing import Any, Protocol, runtime_checkable

import numpy as np

State = Any  # immutable and hashable; each engine picks its own type


@runtime_checkable
class TokenEngine(Protocol):
    """Compiled constraint × vocabulary. Decode-time methods never raise on a model's token."""

    def initial_state(self) -> State:
        """The state before any output."""
        ...

    def advance_token(self, state: State, token_id: int) -> State | None:
        """State after the text token ``token_id``; ``None`` when it is not allowed (never raises)."""
        ...

    def advance_bytes(self, state: State, data: bytes) -> State | None:
        """State after raw bytes, whatever their tokenization; ``None`` when they leave the language."""
        ...

    def token_mask(self, state: State) -> np.ndarray:
        """Read-only ``(ceil(V/32),)`` int32 words of the text tokens allowed in ``state`` (no EOS bits).

        V is the vocabulary's logits width; padding and special ids are always 0.
        """
        ...

    def is_accepting(self, state: State) -> bool:
        """The text so far is a complete match (EOS may follow)."""
        ...

    def can_continue(self, state: State) -> bool:
        """Some non-empty byte continuation stays in the language."""
        ...

    def forced_bytes(self, state: State, limit: int) -> bytes:
        """Bytes every valid continuation starts with (b"" if none or if ``state`` is accepting)."""
        ...
