"""Lowering of string keywords: pattern, format, minLength/maxLength, excluded values."""

from __future__ import annotations

from typing import Any

from structgen.errors import LimitExceeded
from structgen.frontends.json_schema import regexes as rx
from structgen.frontends.json_schema.formats import CHECKED_FORMATS, FORMAT_LENGTHS, FORMATS
from structgen.frontends.json_schema.lower_core import (
    Frag,
    LowererCore,
)
from structgen.ir.grammar import Sym

# the largest length bound intersected with a pattern/format regex in the grammar (above: checked)
LENGTH_BESIDE_PATTERN = 256
LEXER_TOO_LARGE = "the lexer of all string regexes together would exceed Limits.max_dfa_states"


class StringLowering(LowererCore):
    """Lowering of string keywords: pattern, format, minLength/maxLength, excluded values."""

    def _string(self, flat: list[Frag], excluded: list[str]) -> list[tuple[Sym, ...]]:
        if self.checked_strings and any(self._regex_keyword(f) for f in flat):
            any_string = self._checked_string(flat, LEXER_TOO_LARGE)
            return [(self.term(rx.quoted_terminal_regex(any_string, ""), False),)]
        try:
            body = self.string_body(flat, excluded)
            if body is not None:
                rx.check_terminal_fits(rx.quoted_terminal_regex(body, ""), self.limits)
        except LimitExceeded as e:
            if e.limit not in ("max_dfa_states", "max_nfa_states"):
                raise
            body = self._checked_string(flat, f"the exact string regex exceeds Limits.{e.limit}")
        if body is None:
            return []
        return [(self.term(rx.quoted_terminal_regex(body, ""), False),)]

    def _regex_keyword(self, f: Frag) -> bool:
        """Whether ``f`` constrains strings by a pattern, an enforced format or a length (a regex
        terminal of its own, which the lexer runs alongside every other one)."""
        if f.has("format") and self.enforce_formats and f.schema["format"] in FORMATS:
            return True
        return f.has("pattern") or f.has("minLength") or f.has("maxLength")

    def _checked_string(self, flat: list[Frag], why: str) -> str:
        """The body of any JSON string, every string keyword of ``flat`` relaxed (checked on the
        completed string, ``why`` says why): the fallback when the exact regex is too large."""
        for f in flat:
            for kw in ("pattern", "minLength", "maxLength") + (("format",) if self.enforce_formats else ()):
                if f.has(kw):
                    self.relax(f, kw, why)
            if f.has("$$not_string") or f.has("$$exclude"):
                self.relax(f, "not", why)
        return rx.repeat(rx.CHAR, 0, None)

    def string_body(self, flat: list[Frag], excluded: list[str], ptr_hint: str = "") -> str | None:
        """Regex for the text between the quotes, or None when no string qualifies."""
        min_len, max_len = 0, None
        min_ptr = max_ptr = flat[0].pointer if flat else "#"
        cons: list[tuple[str, str, Frag]] = []
        for f in flat:
            if f.has("minLength"):
                if f.schema["minLength"] > min_len:
                    min_len, min_ptr = int(f.schema["minLength"]), f.pointer
            if f.has("maxLength"):
                if max_len is None or f.schema["maxLength"] < max_len:
                    max_len, max_ptr = int(f.schema["maxLength"]), f.pointer
            if f.has("pattern"):
                cons.append(("pattern", f.schema["pattern"], f))
            if f.has("format"):
                fmt = f.schema["format"]
                if self.enforce_formats and fmt in FORMATS:
                    cons.append(("format", fmt, f))
                elif self.enforce_formats and fmt in CHECKED_FORMATS:
                    self.relax(f, "format", f"format {fmt!r} is not a regular language")
                else:
                    self.note(f.pointer, "format", f"annotation (format {fmt!r} is not enforced)")
        if max_len is not None and min_len > max_len:
            self.unsat(max_ptr, f"minLength {min_len} > maxLength {max_len}")
            return None
        min_len, max_len = self._length_bounds_in_grammar(flat)
        for kw, ptr in (("minLength", min_ptr), ("maxLength", max_ptr)):
            if any(f.has(kw) and int(f.schema[kw]) <= self.limits.max_repeat for f in flat):
                self.note(ptr, kw, "regex (bounded repeat of one JSON string character)")
        uniq: list[tuple[str, str, Frag]] = []
        for c in cons:
            if not any(c[0] == u[0] and c[1] == u[1] for u in uniq):
                uniq.append(c)
        negs = [(kind, val, f) for f in flat if f.has("$$not_string") for kind, val in f.schema["$$not_string"]]
        if excluded and not (uniq or negs or min_len or max_len is not None):
            return rx.exclusion_body(excluded)
        if not uniq and not negs and not excluded:
            return rx.repeat(rx.CHAR, min_len, max_len)
        # pattern/format languages are intersected (and complemented) through lookaheads over the
        # string text: each lookahead body ends at the closing quote, the only raw '"' there
        bodies: list[tuple[str, tuple[int, int | None] | None, Any]] = []  # (body, width, simple)
        for kw, val, f in uniq:
            got = self._constraint_body(kw, val, f)
            if got is None:
                continue
            bodies.append(got)
        looks: list[str] = []
        for kind, val, f in negs:
            got = self._constraint_body(kind, val, f, negated=True)
            if got is not None:
                looks.append("(?!(?:" + got[0] + ')")')
        if excluded:
            names = "|".join(rx.json_string_literal_regex(v)[1:-1] for v in dict.fromkeys(excluded))
            looks.append("(?!(?:" + names + ')")')
        if not bodies:
            return "".join(looks) + rx.repeat("(?:" + rx.CANONICAL_CHAR + ")", min_len, max_len)
        main, width, simple = bodies[0]
        looks.extend("(?=(?:" + b + ')")' for b, _, _ in bodies[1:])
        if min_len or max_len is not None:
            fits = (
                width is not None
                and width[0] >= min_len
                and (max_len is None or (width[1] is not None and width[1] <= max_len))
            )
            if simple is not None and len(bodies) == 1:
                ranges, lo, hi = simple
                lo2 = max(lo, min_len)
                hi2 = max_len if hi is None else (hi if max_len is None else min(hi, max_len))
                if hi2 is not None and lo2 > hi2:
                    self.unsat(flat[0].pointer, f"pattern admits no string with length in [{min_len}, {max_len}]")
                    return None
                char = rx.canonical_char_regex(ranges)
                if char is None:
                    return None
                main = rx.repeat("(?:" + char + ")", lo2, hi2)
            elif not fits:
                if width is not None and (
                    (max_len is not None and width[0] > max_len) or (width[1] is not None and width[1] < min_len)
                ):  # found here even when a large bound is then checked instead of intersected
                    self.unsat(flat[0].pointer, f"pattern admits no string with length in [{min_len}, {max_len}]")
                    return None
                lo, hi = self._length_bounds_beside_pattern(flat, min_len, max_len)
                if lo or hi is not None:
                    looks.append("(?=" + rx.repeat("(?:" + rx.CANONICAL_CHAR + ")", lo, hi) + '")')
                for kw, bound in (("minLength", lo), ("maxLength", hi)):
                    if bound and any(f.has(kw) for f in flat):
                        self.note(min_ptr if kw == "minLength" else max_ptr, kw, "regex (intersected with the pattern)")
        body = "".join(looks) + ("(?:" + main + ")" if looks else main)
        if looks and rx.language_is_empty('"' + body + '"', self.limits):
            self.unsat(flat[0].pointer, "no string satisfies the pattern/format/length constraints together")
            return None
        return body

    def _length_bounds_beside_pattern(self, flat: list[Frag], lo: int, hi: int | None) -> tuple[int, int | None]:
        """The length bounds to intersect with a pattern/format regex. The intersection is a DFA of
        (pattern states x length) states, built at byte level: a bound above ``LENGTH_BESIDE_PATTERN``
        (``maxLength: 2000`` on a URL pattern: 32k states and seconds to build) is relaxed instead,
        checked on the completed string, and the regex keeps the pattern and the other bound."""
        cap = LENGTH_BESIDE_PATTERN
        for kw, n in (("minLength", lo), ("maxLength", hi)):
            if n is not None and n > cap:
                for f in flat:
                    if f.has(kw):
                        self.relax(f, kw, f"{kw} {n} next to a pattern/format is above {cap} characters")
        return (0 if lo > cap else lo), (None if hi is not None and hi > cap else hi)

    def _length_bounds_in_grammar(self, flat: list[Frag]) -> tuple[int, int | None]:
        """The (minLength, maxLength) the string regex enforces. A bound above ``Limits.max_repeat``
        (``maxLength: 65535`` is common) would need that many DFA states: its keyword is relaxed
        instead (checked on the completed string, see check_plan; exact, but a string that
        outgrows it is rejected only at its closing quote), and the regex keeps the other bounds."""
        cap = self.limits.max_repeat
        lo, hi = 0, None
        for f in flat:
            for kw in ("minLength", "maxLength"):
                if not f.has(kw):
                    continue
                n = int(f.schema[kw])
                if n > cap:
                    self.relax(f, kw, f"{kw} {n} is above max_repeat {cap}")
                elif kw == "minLength":
                    lo = max(lo, n)
                else:
                    hi = n if hi is None else min(hi, n)
        return lo, hi

    def _constraint_body(
        self, kw: str, val: str, f: Frag, negated: bool = False
    ) -> tuple[str, tuple[int, int | None] | None, Any] | None:
        """(body regex, (min, max) length or None, simple class repeat or None) of one pattern or
        format; None when the pattern is refused (lenient)."""
        how = "regex (complement, by lookahead)" if negated else "regex (translated to JSON string text)"
        if kw == "pattern":
            try:
                body = rx.pattern_body_regex(val)
                width = rx.pattern_length_bounds(val)
                simple = rx.simple_class_repeat(val)
            except rx.PatternError as e:
                why = f"pattern {val!r} uses {e.construct}"
                if negated:  # dropping the negation leaves a superset
                    self.refuse("not", f.pointer, why, f)
                    return None
                # the grammar keeps a superset of the pattern (guidance for the model); the check is exact
                self.refuse("pattern", f.pointer, why + "; the grammar holds a superset of it", f)
                return rx.pattern_superset_body_regex(val), None, None
            self.note(f.pointer, "pattern" if not negated else "not", how)
            return body, width, simple
        self.note(f.pointer, "format" if not negated else "not", f"{how} (format {val!r})")
        return FORMATS[val], FORMAT_LENGTHS[val], None
