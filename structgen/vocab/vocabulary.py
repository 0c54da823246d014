"""Tokenizer-agnostic vocabulary: token id -> exact bytes, specials, EOS set, logits width, fingerprint."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from structgen.vocab.token_arrays import TokenArrays


@dataclass(frozen=True, eq=False)
class Vocabulary:
    """The byte-level view of a tokenizer that every automaton is matched against.

    Attributes:
        token_bytes: exact bytes of every token id below ``len(token_bytes)`` (the tokenizer's size).
            Special tokens keep their visible text here but are never matched as text.
        special_ids: ids never allowed by text constraints (control tokens, BOS, padding, EOS...).
        eos_ids: ids allowed exactly when the constraint is complete (a subset of ``special_ids`` or not).
        size: width of the model's logits (``>= len(token_bytes)``); ids at or beyond
            ``len(token_bytes)`` are padding and never allowed.
        kind: ``"byte_level"``, ``"sentencepiece"`` or ``"other"``.
        name: a human label (tokenizer name or path).
    """

    token_bytes: tuple[bytes, ...]
    special_ids: frozenset[int]
    eos_ids: frozenset[int]
    size: int
    kind: str = "other"
    name: str = ""
    _cache: dict[str, Any] = field(default_factory=dict, repr=False, compare=False)

    def __post_init__(self) -> None:
        if self.size < len(self.token_bytes):
            raise ValueError(f"size {self.size} is smaller than the tokenizer's {len(self.token_bytes)} tokens")
        bad = [i for i in self.eos_ids if not 0 <= i < len(self.token_bytes)]
        if bad:
            raise ValueError(f"EOS ids {sorted(bad)} are outside the vocabulary of {len(self.token_bytes)} tokens")

    @property
    def num_tokens(self) -> int:
        """Number of real tokenizer entries (``len(token_bytes)``)."""
        return len(self.token_bytes)

    @property
    def fingerprint(self) -> str:
        """A stable hash of bytes, specials, EOS set and width: the vocabulary part of cache keys."""
        fp = self._cache.get("fingerprint")
        if fp is None:
            h = hashlib.sha256()
            h.update(f"{self.size}|{sorted(self.special_ids)}|{sorted(self.eos_ids)}|".encode())
            for b in self.token_bytes:
                h.update(len(b).to_bytes(4, "little"))
                h.update(b)
            fp = h.hexdigest()[:32]
            self._cache["fingerprint"] = fp
        return fp

    def text_token_ids(self) -> np.ndarray:
        """Ids that constraints may allow as text: non-special and non-empty."""
        ids = self._cache.get("text_ids")
        if ids is None:
            ids = np.array(
                [i for i, b in enumerate(self.token_bytes) if b and i not in self.special_ids], dtype=np.int64
            )
            self._cache["text_ids"] = ids
        return ids

    def arrays(self) -> TokenArrays:
        """Precomputed numpy arrays for vectorized token walks (built once, then cached)."""
        arr = self._cache.get("arrays")
        if arr is None:
            from structgen.vocab.token_arrays import TokenArrays

            arr = TokenArrays.build(self)
            self._cache["arrays"] = arr
        return arr

    @classmethod
    def from_tokenizer(cls, tokenizer: Any, *, size: int | None = None, eos_ids: Any = None) -> Vocabulary:
        """Build from a transformers tokenizer (fast or slow); ``size`` is the logits width."""
        from structgen.vocab.loaders import vocabulary_from_tokenizer

        return vocabulary_from_tokenizer(tokenizer, size=size, eos_ids=eos_ids)

    @classmethod
    def from_file(cls, path: str, *, size: int | None = None, eos_ids: Any = None) -> Vocabulary:
        """Build from a ``tokenizer.json`` path (or a directory holding one)."""
        from structgen.vocab.loaders import vocabulary_from_file

        return vocabulary_from_file(path, size=size, eos_ids=eos_ids)

    @classmethod
    def from_bytes(
        cls, tokens: list[bytes], *, eos_ids: Any = (), special_ids: Any = (), size: int | None = None, name: str = ""
    ) -> Vocabulary:
        """A vocabulary from raw token byte strings (tests and custom tokenizers)."""
        eos = frozenset(int(i) for i in eos_ids)
        return cls(
            token_bytes=tuple(tokens),
            special_ids=frozenset(int(i) for i in special_ids) | eos,
            eos_ids=eos,
            size=size if size is not None else len(tokens),
            kind="other",
            name=name,
        )
