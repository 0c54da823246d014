"""Constraints beyond automata: a Python predicate on the text so far, composed with a compiled constraint.

    constraint = PredicateConstraint(structgen.compile(vocab, json_schema=...),
                                     prefix=lambda text: ...,      # "can still be completed" (optional)
                                     complete=lambda text: ...)    # checked when EOS is drawn (optional)
    m = constraint.matcher()          # a matcher: accept_token, is_token_allowed, fork, rollback, ...

The composed matcher allows a token exactly when the compiled constraint allows it **and** the
predicate holds on the text after it (EOS: ``complete(text)``). AWRS and SMC only call
``is_token_allowed`` on the tokens they draw, so an expensive predicate costs a handful of calls per
token, and rejection enforces semantic rules no automaton expresses (``uniqueItems``, cross-field
rules). ``prefix`` must be *prefix-sound*: return False only when no completion of the text can
satisfy the rule (returning True is always safe; the rule is then enforced at EOS). A ``complete``
predicate alone can create dead ends (a complete, unextendable text that fails it); SMC gives such
particles weight zero.

Masking through this matcher (``allowed_token_ids`` / ``fill_bitmask``) calls the predicate on every
token the compiled constraint allows: correct, but it is exactly the cost AWRS avoids.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import numpy as np

TextPredicate = Callable[[str], bool]


def _decode(data: bytes) -> str:
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        # a token may end inside a multi-byte character: drop the incomplete tail only
        for cut in range(1, 4):
            try:
                return data[:-cut].decode("utf-8")
            except UnicodeDecodeError:
                continue
        return data.decode("utf-8", errors="replace")


class PredicateConstraint:
    """A compiled constraint (anything with ``.matcher()`` and ``.vocab``) plus text predicates."""

    def __init__(
        self, constraint: Any, *, prefix: TextPredicate | None = None, complete: TextPredicate | None = None
    ) -> None:
        if prefix is None and complete is None:
            raise TypeError("give a prefix= and/or a complete= predicate")
        for name, f in (("prefix", prefix), ("complete", complete)):
            if f is not None and not callable(f):
                raise TypeError(f"{name} must be callable (text -> bool), got {type(f).__name__}")
        self.constraint = constraint
        self.vocab = constraint.vocab
        self.prefix = prefix
        self.complete = complete

    def matcher(self) -> PredicateMatcher:
        return PredicateMatcher(self.constraint.matcher(), prefix=self.prefix, complete=self.complete)


class PredicateMatcher:
    """Matcher protocol over an inner matcher, with predicates on the decoded text.

    ``predicate_calls`` counts predicate evaluations (shared by forks of one matcher).
    """

    __slots__ = ("inner", "vocab", "prefix", "complete", "_chunks", "_text", "error", "_calls")

    def __init__(self, inner: Any, *, prefix: TextPredicate | None, complete: TextPredicate | None) -> None:
        self.inner = inner
        self.vocab = inner.vocab
        self.prefix = prefix
        self.complete = complete
        self._chunks: list[bytes] = []  # bytes of each history step (b"" for EOS)
        self._text = b""
        self.error: str | None = None
        self._calls = [0]

    @property
    def predicate_calls(self) -> int:
        return self._calls[0]

    @property
    def text_bytes(self) -> bytes:
        return self._text

    @property
    def text(self) -> str:
        return _decode(self._text)

    def _ok_prefix(self, data: bytes) -> bool:
        if self.prefix is None:
            return True
        self._calls[0] += 1
        return bool(self.prefix(_decode(data)))

    def _ok_complete(self) -> bool:
        if self.complete is None:
            return True
        self._calls[0] += 1
        return bool(self.complete(_decode(self._text)))

    # ---- queries -----------------------------------------------------------------------------
    def is_token_allowed(self, token_id: int) -> bool:
        token_id = int(token_id)
        if not self.inner.is_token_allowed(token_id):
            return False
        return self._check_allowed_by_inner(token_id)

    def is_accepting(self) -> bool:
        return bool(self.inner.is_accepting()) and self._ok_complete()

    def is_finished(self) -> bool:
        return bool(self.inner.is_finished())

    def is_terminated(self) -> bool:
        return bool(self.inner.is_terminated())

    def allowed_token_ids(self) -> np.ndarray:
        ids = self.inner.allowed_token_ids()
        keep = [int(t) for t in ids if self._check_allowed_by_inner(int(t))]
        return np.asarray(keep, dtype=np.int64)

    def _check_allowed_by_inner(self, t: int) -> bool:
        """The predicates' verdict on token ``t``, which the inner matcher allows."""
        if t in self.vocab.eos_ids:
            return self._ok_complete()
        return self._ok_prefix(self._text + self.vocab.token_bytes[t])

    def fill_bitmask(self, bitmask: Any, index: int = 0) -> None:
        from structgen.runtime.bitmask import check_bitmask, words_from_ids, write_row

        check_bitmask(bitmask, index, (self.vocab.size + 31) // 32)
        write_row(bitmask, index, words_from_ids(self.allowed_token_ids(), self.vocab.size))

    # ---- advancing ---------------------------------------------------------------------------
    def accept_token(self, token_id: int) -> bool:
        token_id = int(token_id)
        if not self.is_token_allowed(token_id):
            self.error = f"token {token_id} is not allowed here (constraint or predicate)"
            return False
        if not self.inner.accept_token(token_id):
            self.error = self.inner.error
            return False
        self._advance(b"" if token_id in self.vocab.eos_ids else self.vocab.token_bytes[token_id])
        return True

    def accept_bytes(self, data: bytes) -> bool:
        data = bytes(data)
        if not self._ok_prefix(self._text + data) or not self.inner.accept_bytes(data):
            self.error = f"bytes {data[:60]!r} are not allowed here (constraint or predicate)"
            return False
        self._advance(data)
        return True

    def _advance(self, chunk: bytes) -> None:
        self._chunks.append(chunk)
        self._text += chunk
        self.error = None

    def accept_text(self, text: str) -> bool:
        return self.accept_bytes(text.encode("utf-8"))

    def rollback(self, n_tokens: int = 1) -> None:
        self.inner.rollback(n_tokens)
        if n_tokens:
            del self._chunks[-n_tokens:]
            self._text = b"".join(self._chunks)
        self.error = None

    def reset(self) -> None:
        self.inner.reset()
        self._chunks = []
        self._text = b""
        self.error = None

    def fork(self) -> PredicateMatcher:
        other = PredicateMatcher.__new__(PredicateMatcher)
        other.inner = self.inner.fork()
        other.vocab = self.vocab
        other.prefix = self.prefix
        other.complete = self.complete
        other._chunks = list(self._chunks)
        other._text = self._text
        other.error = self.error
        other._calls = self._calls
        return other


def json_predicate(rule: Callable[[Any], bool]) -> TextPredicate:
    """A ``complete=`` predicate: parse the text as JSON and apply ``rule`` (parse errors -> False)."""

    def check(text: str) -> bool:
        try:
            value = json.loads(text)
        except ValueError:
            return False
        return bool(rule(value))

    return check


def unique_items(value: Any) -> bool:
    """JSON Schema ``uniqueItems`` on one array (equality as JSON values: 1 == 1.0, False != 0)."""

    def canon(v: Any) -> str:
        if isinstance(v, bool) or v is None or isinstance(v, str):
            return json.dumps(v)
        if isinstance(v, (int, float)):
            return repr(float(v))
        return json.dumps(v, sort_keys=True)

    seen = [canon(v) for v in value]
    return len(seen) == len(set(seen))


class FiniteLanguageEngine:
    """A :class:`structgen.runtime.engine.TokenEngine` for an explicit finite set of byte strings.

    States are the bytes read so far. Meant for exact-enumeration tests and tiny toy constraints;
    masks are computed by testing every text token, so keep vocabularies small.
    """

    def __init__(self, strings: Any, vocab: Any) -> None:
        self.language = frozenset(s.encode("utf-8") if isinstance(s, str) else bytes(s) for s in strings)
        self.prefixes = frozenset(w[:i] for w in self.language for i in range(len(w) + 1))
        self.vocab = vocab
        self._masks: dict[bytes, np.ndarray] = {}

    def initial_state(self) -> bytes:
        return b""

    def advance_bytes(self, state: bytes, data: bytes) -> bytes | None:
        nxt = state + bytes(data)
        return nxt if nxt in self.prefixes else None

    def advance_token(self, state: bytes, token_id: int) -> bytes | None:
        if not 0 <= token_id < self.vocab.num_tokens or token_id in self.vocab.special_ids:
            return None
        data = self.vocab.token_bytes[token_id]
        return self.advance_bytes(state, data) if data else None

    def token_mask(self, state: bytes) -> np.ndarray:
        words = self._masks.get(state)
        if words is None:
            from structgen.runtime.bitmask import words_from_ids

            ids = [int(t) for t in self.vocab.text_token_ids() if self.advance_token(state, int(t)) is not None]
            words = words_from_ids(np.asarray(ids, dtype=np.int64), self.vocab.size)
            self._masks[state] = words
        return words

    def is_accepting(self, state: bytes) -> bool:
        return state in self.language

    def can_continue(self, state: bytes) -> bool:
        return any(len(w) > len(state) and w.startswith(state) for w in self.language)

    def forced_bytes(self, state: bytes, limit: int) -> bytes:
        if state in self.language:
            return b""
        rest = [w[len(state) :] for w in self.language if w.startswith(state)]
        if not rest:
            return b""
        out = bytearray()
        for chars in zip(*rest):
            if len(set(chars)) != 1 or len(out) >= limit:
                break
            out.append(chars[0])
        return bytes(out)


class FiniteLanguageConstraint:
    """A constraint "the output is one of these strings", with ``.matcher()`` and ``.vocab``."""

    def __init__(self, strings: Any, vocab: Any) -> None:
        self.vocab = vocab
        self.engine = FiniteLanguageEngine(strings, vocab)

    def matcher(self) -> Any:
        from structgen.runtime.matcher import Matcher

        return Matcher(self.engine, self.vocab)  # type: ignore[arg-type]


__all__ = [
    "FiniteLanguageConstraint",
    "FiniteLanguageEngine",
    "PredicateConstraint",
    "PredicateMatcher",
    "TextPredicate",
    "json_predicate",
    "unique_items",
]
