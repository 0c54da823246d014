"""A brute-force token mask for a regex, from the ``regex`` module's partial matching (test helper).

What the reference does, for a prefix ``p`` (bytes of valid text) and every text token ``t``:

1. ``B = p + bytes(t)`` is split into its longest valid UTF-8 prefix ``text`` and a tail.
2. An empty tail: allowed iff ``regex.fullmatch(pattern, text, partial=True)`` matches (a full
   match or a partial one: ``text`` can still be extended to a match).
3. A tail that is not a proper prefix of some UTF-8 encoding (an invalid byte anywhere): rejected.
4. An incomplete character: the characters whose encoding starts with the tail form one interval
   of code points (UTF-8 preserves order). Allowed iff ``text + c`` partially matches for some
   ``c`` in it. Membership of ``c`` is piecewise constant between the boundaries of the pattern's
   character classes, which we read with Python's own parser (``re._parser``), so checking the
   interval ends plus every boundary inside it (and its neighbours) is exact.

Python ``re`` and the ``regex`` module use different Unicode tables for ``\\w \\d \\s`` (``regex``
follows TR#18 and a newer Unicode). structgen implements ``re``'s semantics, so the reference
substitutes explicit classes computed by ``re`` itself over all code points for these escapes.
Special, empty and padding ids are never allowed. Tokens are walked in sorted order sharing
prefix checks (a dead prefix kills all its extensions), which keeps a 128k vocabulary fast.
"""

from __future__ import annotations

import bisect
import re
from functools import cache, lru_cache

import numpy as np
import regex

try:
    from re import _constants as C
    from re import _parser as sre_parse
except ImportError:  # pragma: no cover
    import sre_constants as C  # type: ignore[no-redef]
    import sre_parse  # type: ignore[no-redef]

_ESCAPES = {"w": r"\w", "d": r"\d", "s": r"\s"}


@cache
def _re_class(esc: str) -> str:
    """A ``regex`` class body listing exactly what Python ``re`` matches for ``esc``."""
    text = "".join(map(chr, range(0x110000)))
    parts = []
    for m in re.finditer(esc + "+", text):
        lo, hi = m.start(), m.end() - 1
        parts.append(f"\\U{lo:08x}" if lo == hi else f"\\U{lo:08x}-\\U{hi:08x}")
    return "".join(parts)


def translate(pattern: str) -> str:
    """Rewrite ``\\w \\d \\s \\W \\D \\S`` (in and out of classes) into ``re``'s exact code points."""
    out = []
    i = 0
    in_class = False
    while i < len(pattern):
        c = pattern[i]
        if c == "\\" and i + 1 < len(pattern):
            d = pattern[i + 1]
            if d.lower() in _ESCAPES:
                body = _re_class(_ESCAPES[d.lower()])
                if in_class:
                    if d.isupper():
                        raise ValueError("negated escapes inside classes are not translated")
                    out.append(body)
                else:
                    out.append(("[^" if d.isupper() else "[") + body + "]")
            else:
                out.append(pattern[i : i + 2])
            i += 2
            continue
        if c == "[" and not in_class:
            in_class = True
            out.append(c)
            # a leading ] or ^] is literal
            j = i + 1
            if j < len(pattern) and pattern[j] == "^":
                out.append("^")
                j += 1
            if j < len(pattern) and pattern[j] == "]":
                out.append("\\]")
                j += 1
            i = j
            continue
        if c == "]" and in_class:
            in_class = False
        out.append(c)
        i += 1
    return "".join(out)


def class_boundaries(pattern: str) -> list[int]:
    """Code points where membership in some class of ``pattern`` may change (from Python's parser)."""
    points = {0, 9, 10, 11, 0x10FFFF}
    for esc in _ESCAPES.values():
        for m in re.finditer(r"\\U([0-9a-f]{8})", _re_class(esc)):
            points.add(int(m.group(1), 16))

    def walk(items):
        for op, av in items:
            if op is C.LITERAL or op is C.NOT_LITERAL:
                points.add(av)
            elif op is C.RANGE:
                points.update(av)
            elif op is C.IN:
                walk(av)
            elif op is C.BRANCH:
                for b in av[1]:
                    walk(b)
            elif op is C.SUBPATTERN:
                walk(av[-1])
            elif op in (C.MAX_REPEAT, C.MIN_REPEAT):
                walk(av[2])

    walk(sre_parse.parse(pattern))
    out = set()
    for p in points:
        out.update((p - 1, p, p + 1))
    return sorted(p for p in out if 0 <= p <= 0x10FFFF)


def _enc(cp: int) -> bytes:
    return chr(cp).encode("utf-8", "surrogatepass")


class _Keys:
    """Sequence view: key(cp) = UTF-8 encoding, monotonic in cp (for bisect)."""

    def __len__(self) -> int:
        return 0x110000

    def __getitem__(self, cp: int) -> bytes:
        return _enc(cp)


_KEYS = _Keys()


@lru_cache(maxsize=100_000)
def completion_interval(tail: bytes) -> tuple[int, int] | None:
    """Code points whose UTF-8 encoding starts with ``tail`` (surrogates included), or None."""
    lo = bisect.bisect_left(_KEYS, tail)
    hi = bisect.bisect_left(_KEYS, tail + b"\xff") - 1
    if lo > hi or not _enc(lo).startswith(tail):
        return None
    return lo, hi


class RegexReference:
    """Brute-force masks for one pattern."""

    def __init__(self, pattern: str, flags: int = 0) -> None:
        self.pattern = pattern
        self.rx = regex.compile(translate(pattern), flags)
        self.bounds = class_boundaries(translate(pattern))
        self._cache: dict[str, bool] = {}

    def text_ok(self, text: str) -> bool:
        got = self._cache.get(text)
        if got is None:
            got = self.rx.fullmatch(text, partial=True) is not None
            if len(self._cache) < 200_000:
                self._cache[text] = got
        return got

    def bytes_ok(self, data: bytes, exact_tail: bool = True) -> bool:
        try:
            return self.text_ok(data.decode("utf-8"))
        except UnicodeDecodeError as e:
            if e.end != len(data) or "unexpected end" not in e.reason:
                return False  # an invalid byte, not just an unfinished character
            head, tail = data[: e.start].decode("utf-8"), data[e.start :]
        if not exact_tail:
            return self.text_ok(head)
        iv = completion_interval(tail)
        if iv is None:
            return False
        lo, hi = iv
        reps = {lo, hi}
        i = bisect.bisect_left(self.bounds, lo)
        while i < len(self.bounds) and self.bounds[i] <= hi:
            reps.add(self.bounds[i])
            i += 1
        return any(self.text_ok(head + chr(c)) for c in sorted(reps) if not 0xD800 <= c <= 0xDFFF)

    def mask(self, prefix: bytes, vocab, token_ids=None) -> np.ndarray:
        """``(vocab.size,)`` bool: tokens allowed after ``prefix`` (EOS and specials excluded).

        ``token_ids`` restricts the check to those ids (others stay False).
        """
        allowed = np.zeros(vocab.size, dtype=bool)
        toks, ids_of, lcps = _sorted_vocab(vocab, None if token_ids is None else tuple(sorted(set(token_ids))))
        stack: list[bool] = []  # stack[k]: prefix + tok[:k+1] can still match (checked at char ends)
        text_ok = self.text_ok
        for tok, lcp in zip(toks, lcps):
            del stack[lcp:]
            ok = not stack or stack[-1]
            n = len(tok) - 1
            while ok and len(stack) < n:
                k = len(stack) + 1
                if tok[k] & 0xC0 == 0x80:
                    stack.append(True)  # mid-character: decided at the character's end
                    continue
                try:
                    ok = text_ok((prefix + tok[:k]).decode("utf-8"))
                except UnicodeDecodeError:
                    ok = False
                stack.append(ok)
            if ok and self.bytes_ok(prefix + tok):
                allowed[ids_of[tok]] = True
        return allowed


_VOCAB_CACHE: dict = {}


def _full_sorted(vocab):
    got = _VOCAB_CACHE.get(id(vocab))
    if got is None or got[1] is not vocab:
        by_bytes: dict[bytes, list[int]] = {}
        for tid in vocab.text_token_ids().tolist():
            by_bytes.setdefault(vocab.token_bytes[tid], []).append(tid)
        toks = sorted(by_bytes)
        rank = np.full(vocab.size, -1, dtype=np.int64)
        for r, tok in enumerate(toks):
            rank[by_bytes[tok]] = r
        got = ((toks, by_bytes, rank), vocab)
        _VOCAB_CACHE[id(vocab)] = got
    return got[0]


def _sorted_vocab(vocab, subset):
    """(sorted distinct token bytes, bytes -> ids, lcp with the previous entry) for all or ``subset`` ids."""
    toks_all, by_bytes, rank = _full_sorted(vocab)
    if subset is None:
        toks = toks_all
        ids_of = by_bytes
    else:
        r = rank[np.asarray(subset, dtype=np.int64)]
        r = np.unique(r[r >= 0])
        toks = [toks_all[i] for i in r.tolist()]
        sub = set(subset)
        ids_of = {t: [i for i in by_bytes[t] if i in sub] for t in toks}
    lcps = []
    prev = b""
    for tok in toks:
        m = min(len(prev), len(tok))
        lcp = 0
        while lcp < m and prev[lcp] == tok[lcp]:
            lcp += 1
        lcps.append(lcp)
        prev = tok
    return toks, ids_of, lcps
