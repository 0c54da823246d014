"""An independent, slow reference for grammar masks, built only on Lark and the ``regex`` module.

Semantics checked (the documented semantics of structgen's grammar engine):

* The parser side is Lark's Earley parser run on a *stream of terminal names* (a custom Lark lexer
  yields the names we feed it). ``expected(seq)`` asks it which terminals may follow ``seq``: a
  probe token after ``seq`` fails with ``UnexpectedToken`` whose ``expected`` lists them. Lark's
  Earley accepts any CFG (ambiguous, left-recursive), so one oracle serves every grammar. Grammars
  that Lark can build as LALR(1) use ``parse_interactive().accepts()`` instead, incrementally (the
  same answers, much faster).
* The lexer side is contextual maximal munch over Lark's own terminal regexes (``to_regexp()``,
  flags included), matched with ``regex`` full and *partial* matching on the decoded text: a lexeme
  ``p`` is *alive* when some terminal allowed by the parser partially matches it. Reading bytes,
  the open lexeme must continue while it stays alive; when the next byte kills it, the lexeme ends
  and must fully match an allowed terminal (only the highest-priority ones among those that match;
  ``%ignore`` terminals leave the parser as it is) and the byte starts a new lexeme.
* Bytes are decoded as UTF-8; an incomplete last character is judged by completing it with the
  smallest and the largest valid continuation bytes (exact for every terminal class used in the
  shipped grammars, which treat all non-ASCII characters alike); for case-insensitive terminals the
  four non-ASCII characters Python ``re`` folds onto ASCII letters (U+0130, U+0131, U+017F, U+212A)
  are tried as well, and translated before matching.

``viable(data)``: some reading of ``data`` keeps a lexeme open or ends cleanly;
``accepts(data)``: some reading ends with a complete parse. A mask is
``{t : viable(prefix + bytes(t))}``, computed with pruning on the first one to three bytes (viability is
prefix-closed).
"""

from __future__ import annotations

from functools import cache
from typing import Any

import lark
import numpy as np
import regex
from lark.exceptions import UnexpectedEOF, UnexpectedInput, UnexpectedToken
from lark.lexer import Lexer, Token

_PROBE = "__PROBE_TERMINAL__"

# Python ``re`` (which Lark and structgen follow) matches these with ASCII letters under IGNORECASE;
# the ``regex`` module does not, so case-insensitive terminals see them translated first.
_RE_FOLD = {0x130: "i", 0x131: "i", 0x17F: "s", 0x212A: "k"}
_RE_FOLD_CHARS = [(chr(c).encode(), a) for c, a in _RE_FOLD.items()]


class _NameLexer(Lexer):
    def __init__(self, conf: Any) -> None:
        pass

    def lex(self, data: Any) -> Any:  # type: ignore[override]
        for i, name in enumerate(data):
            yield Token(name, str(i), start_pos=i, line=1, column=i + 1)


def _utf8_completions(data: bytes) -> list[str] | None:
    """Decoded ``data`` (a list of candidate texts when it ends inside a character); None if invalid."""
    try:
        return [data.decode("utf-8")]
    except UnicodeDecodeError:
        pass
    for cut in range(1, 4):
        if len(data) < cut:
            break
        head, tail = data[:-cut], data[-cut:]
        lead = tail[0]
        need = 2 if 0xC2 <= lead <= 0xDF else 3 if 0xE0 <= lead <= 0xEF else 4 if 0xF0 <= lead <= 0xF4 else 0
        if need <= cut or any(not 0x80 <= c <= 0xBF for c in tail[1:]):
            continue
        lo2, hi2 = {0xE0: (0xA0, 0xBF), 0xED: (0x80, 0x9F), 0xF0: (0x90, 0xBF), 0xF4: (0x80, 0x8F)}.get(
            lead, (0x80, 0xBF)
        )
        if len(tail) >= 2 and not lo2 <= tail[1] <= hi2:
            return None
        outs = []
        for lo, hi in ((lo2, 0x80), (hi2, 0xBF)):
            fill = bytearray(tail)
            if len(fill) == 1:
                fill.append(lo)
            while len(fill) < need:
                fill.append(hi)
            try:
                outs.append(head.decode("utf-8") + bytes(fill).decode("utf-8"))
            except UnicodeDecodeError:
                return None
        return outs
    return None


class _LazyComplete:
    """``bool()`` parses ``seq`` with Lark's Earley parser on first use (only EOS checks need it)."""

    def __init__(self, parser: Any, seq: tuple[str, ...]) -> None:
        self.parser, self.seq, self.value = parser, seq, None

    def __bool__(self) -> bool:
        if self.value is None:
            try:
                self.parser.parse(list(self.seq))
                self.value = True
            except UnexpectedInput:
                self.value = False
        return bool(self.value)


class GrammarReference:
    """Reference masks for one Lark grammar (see the module docstring)."""

    def __init__(self, text: str, start: str = "start") -> None:
        self.parser = lark.Lark(text, start=start, parser="earley", lexer=_NameLexer)
        try:  # LALR(1) grammars get an incremental oracle (much faster); the answers are the same
            self.lalr: Any = lark.Lark(text, start=start, parser="lalr", lexer=_NameLexer, strict=True)
        except lark.exceptions.GrammarError:
            self.lalr = None
        self._interactive: dict[tuple[str, ...], Any] = {}
        loaded = lark.Lark(text, start=start, parser="earley", lexer="dynamic", keep_all_tokens=True)
        self.patterns: dict[str, Any] = {}
        self.priority: dict[str, int] = {}
        self.folded: set[str] = set()
        for t in loaded.terminals:
            self.patterns[t.name] = regex.compile(t.pattern.to_regexp())
            self.priority[t.name] = t.priority
            if "i" in t.pattern.flags or "(?i" in t.pattern.to_regexp():
                self.folded.add(t.name)
        self.ignore = frozenset(loaded.ignore_tokens)
        self._expected: dict[tuple[str, ...], tuple[frozenset[str], bool] | None] = {}
        self._unions: dict[frozenset[str], tuple[Any, Any]] = {}

    # ---- parser oracle ---------------------------------------------------------------------
    def expected(self, seq: tuple[str, ...]) -> tuple[frozenset[str], bool] | None:
        """(terminals that may follow ``seq``, ``seq`` is a complete sentence); None if not a prefix."""
        if seq in self._expected:
            return self._expected[seq]
        if self.lalr is not None:
            res = self._expected_lalr(seq)
            self._expected[seq] = res
            return res
        res: tuple[frozenset[str], bool] | None
        try:
            self.parser.parse(list(seq) + [_PROBE])
            raise AssertionError("probe token accepted")
        except UnexpectedToken as e:
            if e.token.type != _PROBE:
                res = None
            else:
                res = (frozenset(e.expected) - {"$END"}, _LazyComplete(self.parser, seq))  # type: ignore[assignment]
        except UnexpectedEOF:
            raise AssertionError("probe token not reached") from None
        self._expected[seq] = res
        return res

    def _expected_lalr(self, seq: tuple[str, ...]) -> tuple[frozenset[str], bool] | None:
        ip = self._interactive.get(seq)
        if ip is None:
            if not seq:
                ip = self.lalr.parse_interactive([])
            else:
                if self.expected(seq[:-1]) is None:
                    return None
                parent = self._interactive.get(seq[:-1])
                if parent is None:
                    return None
                ip = parent.copy()
                try:
                    ip.feed_token(Token(seq[-1], "x"))
                except UnexpectedInput:
                    return None
            self._interactive[seq] = ip
        acc = ip.accepts()
        return frozenset(acc) - {"$END"}, "$END" in acc

    # ---- lexer -----------------------------------------------------------------------------
    def _partial(self, name: str, data: bytes) -> bool:
        pat = self.patterns[name]
        if data.isascii():
            return pat.fullmatch(data.decode("ascii"), partial=True) is not None
        texts = _utf8_completions(data)
        if texts is None:
            return False
        if name in self.folded:
            texts = [t.translate(_RE_FOLD) for t in texts]
            try:
                data.decode("utf-8")
            except UnicodeDecodeError:  # an incomplete last character: try the folded specials too
                for k in (1, 2, 3):
                    head, tail = data[:-k], data[-k:]
                    for c, a in _RE_FOLD_CHARS:
                        if len(c) > k and c.startswith(tail):
                            try:
                                texts.append(head.decode("utf-8").translate(_RE_FOLD) + a)
                            except UnicodeDecodeError:
                                pass
        for t in texts:
            if pat.fullmatch(t, partial=True) is not None:
                return True
        return False

    def _full(self, name: str, data: bytes) -> bool:
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError:
            return False
        if name in self.folded:
            text = text.translate(_RE_FOLD)
        return self.patterns[name].fullmatch(text) is not None

    def _union(self, allowed: frozenset[str]) -> tuple[Any, Any]:
        """One alternation per set of terminals (plain, case-folded): a partial match of the union is
        a partial match of some member, so one ``regex`` call replaces one per terminal."""
        u = self._unions.get(allowed)
        if u is None:
            plain = [self.patterns[n].pattern for n in sorted(allowed) if n not in self.folded]
            folded = [self.patterns[n].pattern for n in sorted(allowed) if n in self.folded]
            u = tuple(regex.compile("|".join(f"(?:{p})" for p in ps)) if ps else None for ps in (plain, folded))
            self._unions[allowed] = u
        return u

    def _alive(self, allowed: frozenset[str], data: bytes) -> bool:
        plain, folded = self._union(allowed)
        if data.isascii():
            text = data.decode("ascii")
            return any(p is not None and p.fullmatch(text, partial=True) is not None for p in (plain, folded))
        texts = _utf8_completions(data)
        if texts is None:
            return False
        if plain is not None and any(plain.fullmatch(t, partial=True) is not None for t in texts):
            return True
        return folded is not None and any(self._partial(n, data) for n in allowed if n in self.folded)

    def _runs(self, seq: tuple[str, ...], data: bytes, i: int) -> list[tuple[tuple[str, ...], int]]:
        """Readings of ``data[i:]`` from parser prefix ``seq``: (terminal sequence, start of the open lexeme)."""
        exp = self.expected(seq)
        if exp is None:
            return []
        allowed = exp[0] | self.ignore
        if i == len(data):
            return [(seq, i)]
        rest = data[i:]
        if self._alive(allowed, rest):
            return [(seq, i)]
        lo, hi = 0, len(rest)  # longest alive prefix length, by bisection (alive is prefix-closed)
        while lo < hi:
            mid = (lo + hi + 1) // 2
            if self._alive(allowed, rest[:mid]):
                lo = mid
            else:
                hi = mid - 1
        if lo == 0:
            return []
        lexeme = rest[:lo]
        full = [n for n in allowed if self._full(n, lexeme)]
        if not full:
            return []
        best = max(self.priority[n] for n in full)
        out = []
        for n in full:
            if self.priority[n] != best:
                continue
            nxt = []
            if n in exp[0]:
                nxt.append(seq + (n,))
            if n in self.ignore:
                nxt.append(seq)
            for s2 in nxt:
                out.extend(self._runs(s2, data, i + lo))
        return out

    def configs(self, data: bytes) -> list[tuple[tuple[str, ...], bytes]]:
        """Open configurations after ``data``: (terminal sequence, open lexeme bytes)."""
        return sorted({(seq, data[i:]) for seq, i in self._runs((), data, 0)})

    def viable_from(self, configs: list[tuple[tuple[str, ...], bytes]], more: bytes) -> bool:
        return any(self._runs(seq, lex + more, 0) for seq, lex in configs)

    def viable(self, data: bytes) -> bool:
        return bool(self._runs((), data, 0))

    def accepts(self, data: bytes) -> bool:
        """Some reading of ``data`` is a complete sentence (EOS allowed)."""
        for seq, i in self._runs((), data, 0):
            exp = self.expected(seq)
            assert exp is not None
            if i == len(data):
                if exp[1]:
                    return True
                continue
            lexeme = data[i:]
            allowed = exp[0] | self.ignore
            full = [n for n in allowed if self._full(n, lexeme)]
            if not full:
                continue
            best = max(self.priority[n] for n in full)
            for n in full:
                if self.priority[n] != best:
                    continue
                if n in exp[0]:
                    e2 = self.expected(seq + (n,))
                    if e2 is not None and e2[1]:
                        return True
                if n in self.ignore and exp[1]:
                    return True
        return False

    def mask(self, prefix: bytes, token_bytes: list[bytes], candidates: np.ndarray) -> np.ndarray:
        """Bool array over ``candidates`` (token ids): ``viable(prefix + bytes(t))``."""
        configs = self.configs(prefix)
        out = np.zeros(len(candidates), dtype=bool)
        if not configs:
            return out

        @cache
        def ok(head: bytes) -> bool:
            return self.viable_from(configs, head)

        for j, t in enumerate(candidates.tolist()):
            b = token_bytes[t]
            if not ok(b[:1]) or (len(b) > 1 and not ok(b[:2])) or (len(b) > 2 and not ok(b[:3])):
                continue
            out[j] = ok(b) if len(b) <= 3 else self.viable_from(configs, b)
        return out
