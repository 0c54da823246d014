"""Regexes over JSON *text* for JSON Schema string and number constraints.

Every regex here is written in structgen's Python-``re`` subset (literals, classes, ``(?:)``,
``|``, ``* + ? {m,n}``, lookaheads outside repeats; no anchors) and matches serialized JSON, so a
string constraint includes the quotes and the escapes of JSON string syntax.

Intersection and complement are lookaheads over the string text: the closing quote is the only
raw ``"`` in it, so ``(?=A")B`` is exactly A ∩ B and ``(?!A")C*`` exactly the canonical strings
outside A (the automaton layer builds them as DFA products). ECMA-262 lookaheads translate the
same way, and ``$`` anywhere becomes ``(?=")``; inside a repeat, ``X{m,n}`` is rewritten so that
only its last iteration may end the string.

Two alphabets of string characters:

* ``CHAR``: any JSON string character in any spelling (raw, ``\\n``, ``\\u00e9``, surrogate pairs),
  exactly one Unicode code point each, so ``CHAR{m,n}`` enforces ``minLength``/``maxLength``.
* canonical characters (``canonical_char_regex``): the one spelling ``json.dumps(s,
  ensure_ascii=False)`` writes. Patterns, excluded key sets and formats use it, because a pattern
  constrains the decoded characters and rewriting a class for every spelling is not worth it.
"""

from __future__ import annotations

import json
import re
import threading
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal
from functools import lru_cache
from typing import Any

from structgen.automaton.utf8 import complement as ast_complement
from structgen.automaton.utf8 import normalize as ast_normalize
from structgen.frontends.regex_ast import EMPTY, Alt, CharSet, Concat, Node, Repeat
from structgen.frontends.regex_parser import parse_regex, register_group, structural_offsets
from structgen.limits import Limits

MAX_UNICODE = 0x10FFFF
SURROGATES = (0xD800, 0xDFFF)

_HEX = "[0-9a-fA-F]"
# one escaped code point: a non-surrogate \uXXXX or a surrogate pair
_U_ESCAPE = (
    r"\\u(?:[0-9a-cA-Ce-fE-F]"
    + _HEX
    + "{3}|[dD][0-7]"
    + _HEX
    + "{2}|[dD][89abAB]"
    + _HEX
    + r"{2}\\u[dD][c-fC-F]"
    + _HEX
    + "{2})"
)
CHAR = r'(?:[^"\\\x00-\x1f]|\\["\\/bfnrt]|' + _U_ESCAPE + ")"
"""One JSON string character (one code point), any spelling."""

JSON_STRING = '"' + CHAR + '*"'
JSON_NUMBER = r"-?(?:0|[1-9][0-9]*)(?:\.[0-9]+)?(?:[eE][+-]?[0-9]+)?"
JSON_INTEGER = r"-?(?:0|[1-9][0-9]*)"

_SHORT_ESCAPES = {0x22: '\\\\"', 0x5C: r"\\\\", 0x08: r"\\b", 0x0C: r"\\f", 0x0A: r"\\n", 0x0D: r"\\r", 0x09: r"\\t"}


def canonical_escape_regex(cp: int) -> str:
    """Regex for the canonical JSON spelling of a code point that JSON must escape."""
    if cp in _SHORT_ESCAPES:
        return _SHORT_ESCAPES[cp]
    return r"\\u00" + f"{cp:02x}"


def _needs_escape(cp: int) -> bool:
    return cp < 0x20 or cp == 0x22 or cp == 0x5C


# ---- code point sets (sorted disjoint inclusive ranges) -----------------------------------------
Ranges = tuple[tuple[int, int], ...]


def normalize(ranges: list[tuple[int, int]]) -> Ranges:
    out: list[list[int]] = []
    for lo, hi in sorted(ranges):
        if out and lo <= out[-1][1] + 1:
            out[-1][1] = max(out[-1][1], hi)
        else:
            out.append([lo, hi])
    return tuple((a, b) for a, b in out)


def complement(ranges: Ranges) -> Ranges:
    out = []
    prev = 0
    for lo, hi in ranges:
        if lo > prev:
            out.append((prev, lo - 1))
        prev = hi + 1
    if prev <= MAX_UNICODE:
        out.append((prev, MAX_UNICODE))
    return tuple(out)


def subtract(a: Ranges, b: Ranges) -> Ranges:
    return intersect(a, complement(b))


def intersect(a: Ranges, b: Ranges) -> Ranges:
    out = []
    i = j = 0
    while i < len(a) and j < len(b):
        lo = max(a[i][0], b[j][0])
        hi = min(a[i][1], b[j][1])
        if lo <= hi:
            out.append((lo, hi))
        if a[i][1] < b[j][1]:
            i += 1
        else:
            j += 1
    return tuple(out)


def _class_char(cp: int) -> str:
    if cp < 0x20 or cp == 0x7F:
        return f"\\x{cp:02x}"
    c = chr(cp)
    if c in "\\]^-[":
        return "\\" + c
    if cp > 0xFFFF:
        return f"\\U{cp:08x}"
    if cp >= 0x80 and not c.isprintable():
        return f"\\u{cp:04x}"
    return c


def _literal_char(cp: int) -> str:
    c = chr(cp)
    if cp < 0x20 or cp == 0x7F:
        return f"\\x{cp:02x}"
    if c in ".^$*+?{}[]\\|()/":
        return "\\" + c
    if cp >= 0x80 and not c.isprintable():
        return f"\\u{cp:04x}" if cp <= 0xFFFF else f"\\U{cp:08x}"
    return c


def ranges_regex(ranges: Ranges) -> str | None:
    """A regex for one code point in ``ranges`` (surrogates removed); None if empty."""
    ranges = subtract(ranges, (SURROGATES,))
    if not ranges:
        return None
    if len(ranges) == 1 and ranges[0][0] == ranges[0][1]:
        return _literal_char(ranges[0][0])
    parts = []
    for lo, hi in ranges:
        if lo == hi:
            parts.append(_class_char(lo))
        elif hi == lo + 1:
            parts.append(_class_char(lo) + _class_char(hi))
        else:
            parts.append(_class_char(lo) + "-" + _class_char(hi))
    return "[" + "".join(parts) + "]"


_ESCAPED = normalize([(0, 0x1F), (0x22, 0x22), (0x5C, 0x5C)])


def canonical_char_regex(ranges: Ranges) -> str | None:
    """Regex for the canonical JSON spelling of one code point from ``ranges``; None if empty."""
    alts = []
    raw = ranges_regex(subtract(ranges, _ESCAPED))
    if raw is not None:
        alts.append(raw)
    esc = intersect(ranges, _ESCAPED)
    if esc == _ESCAPED:
        alts.append(r'\\(?:["\\bfnrt]|u00(?:0[0-7bef]|1[0-9a-f]))')
    else:
        for lo, hi in esc:
            for cp in range(lo, hi + 1):
                alts.append(canonical_escape_regex(cp))
    if not alts:
        return None
    return alts[0] if len(alts) == 1 else "(?:" + "|".join(alts) + ")"


ANY_RANGES: Ranges = ((0, MAX_UNICODE),)
CANONICAL_CHAR = canonical_char_regex(ANY_RANGES) or ""


def literal_regex(text: str) -> str:
    """A regex matching exactly ``text``."""
    return "".join(_literal_char(ord(c)) for c in text)


def json_string_literal_regex(value: str) -> str:
    """Regex for the canonical JSON serialization of ``value`` (quotes included)."""
    import json

    return literal_regex(json.dumps(value, ensure_ascii=False))


def literal_union_regex(texts: list[str]) -> str:
    """A regex matching exactly the strings ``texts`` (at least one, none empty), factored as a
    trie: shared prefixes are written once, so its NFA grows with the trie, not with the sum of
    the lengths. Built without recursion (texts may be long)."""
    end = ""  # trie node key marking the end of a text (no text is empty, so no real edge is "")
    root: dict[str, dict] = {}
    for t in dict.fromkeys(texts):
        node = root
        for c in t:
            node = node.setdefault(c, {})
        node[end] = {}
    # post-order over the trie: each node's regex from its children's
    out: dict[int, str] = {}
    stack: list[tuple[dict, bool]] = [(root, False)]
    while stack:
        node, done = stack.pop()
        kids = sorted(k for k in node if k != end)
        if not done:
            stack.append((node, True))
            stack.extend((node[k], False) for k in kids)
            continue
        alts = []
        for k in kids:
            child, text = node[k], k
            while len(child) == 1 and end not in child:  # a chain: one literal run, no group
                ((c, child),) = child.items()
                text += c
            alts.append(literal_regex(text) + out[id(child)])
        if not alts:
            out[id(node)] = ""
        elif len(alts) == 1 and end not in node:
            out[id(node)] = alts[0]
        else:
            out[id(node)] = "(?:" + "|".join(alts) + ")" + ("?" if end in node else "")
    return out[id(root)]


def alt(parts: list[str]) -> str:
    parts = [p for p in parts]
    if len(parts) == 1:
        return parts[0]
    return "(?:" + "|".join(parts) + ")"


def repeat(atom: str, lo: int, hi: int | None) -> str:
    """``atom{lo,hi}`` written compactly; ``hi=None`` is unbounded."""
    if hi is None:
        if lo == 0:
            return atom + "*"
        if lo == 1:
            return atom + "+"
        return atom + "{" + str(lo) + ",}"
    if lo == hi:
        if lo == 0:
            return ""
        if lo == 1:
            return atom
        return atom + "{" + str(lo) + "}"
    if lo == 0 and hi == 1:
        return atom + "?"
    return atom + "{" + str(lo) + "," + str(hi) + "}"


# ---- integer and decimal ranges -------------------------------------------------------------
def _dcls(lo: int, hi: int) -> str:
    if lo == hi:
        return str(lo)
    if lo == 0 and hi == 9:
        return "[0-9]"
    return f"[{lo}-{hi}]"


def _fixed_between(lo: str, hi: str) -> str:
    """Same-length digit strings ``lo <= s <= hi`` (lexicographic = numeric)."""
    if not lo:
        return ""
    if lo == hi:
        return lo
    n = len(lo) - 1
    if set(lo) == {"0"} and set(hi) == {"9"}:
        return repeat("[0-9]", n + 1, n + 1)
    if lo[0] == hi[0]:
        return lo[0] + _fixed_between(lo[1:], hi[1:])
    a, b = int(lo[0]), int(hi[0])
    alts = []
    lo_full = set(lo[1:]) <= {"0"}
    hi_full = set(hi[1:]) <= {"9"}
    first = a if lo_full else a + 1
    last = b if hi_full else b - 1
    if not lo_full:
        alts.append(lo[0] + _fixed_between(lo[1:], "9" * n))
    if first <= last:
        alts.append(_dcls(first, last) + repeat("[0-9]", n, n))
    if not hi_full:
        alts.append(hi[0] + _fixed_between("0" * n, hi[1:]))
    return alt(alts)


def nonneg_int_range(lo: int, hi: int | None) -> str | None:
    """Decimal spellings (no leading zeros) of integers in ``[lo, hi]`` (hi None = unbounded)."""
    if lo < 0:
        raise ValueError("lo must be >= 0")
    if hi is not None and hi < lo:
        return None
    slo = str(lo)
    lp = len(slo)
    alts = []
    if hi is None:
        alts.append(_fixed_between(slo, "9" * lp))
        alts.append("[1-9]" + repeat("[0-9]", lp, None))
    else:
        shi = str(hi)
        lq = len(shi)
        if lp == lq:
            alts.append(_fixed_between(slo, shi))
        else:
            alts.append(_fixed_between(slo, "9" * lp))
            if lq - lp >= 2:
                alts.append("[1-9]" + repeat("[0-9]", lp, lq - 2))
            alts.append(_fixed_between("1" + "0" * (lq - 1), shi))
    return alt(alts)


def int_range(lo: int | None, hi: int | None) -> str | None:
    """JSON integer spellings of integers in ``[lo, hi]`` (None = unbounded); None if empty."""
    if lo is not None and hi is not None and lo > hi:
        return None
    alts = []
    # non-negative part
    if hi is None or hi >= 0:
        r = nonneg_int_range(max(lo, 0) if lo is not None else 0, hi)
        if r is not None:
            alts.append(r)
    # negative part: magnitudes in [max(-hi, 1), -lo]
    if lo is None or lo < 0:
        mlo = max(-hi, 1) if hi is not None else 1
        mhi = -lo if lo is not None else None
        r = nonneg_int_range(mlo, mhi)
        if r is not None:
            alts.append("-" + _group(r))
    if not alts:
        return None
    return alt(alts)


def _group(r: str) -> str:
    """Wrap ``r`` so that a prefix binds to all of it."""
    if r.startswith("(?:") and _balanced_group(r):
        return r
    if "|" in r:
        return "(?:" + r + ")"
    return r


def _balanced_group(r: str) -> bool:
    depth = 0
    i = 0
    while i < len(r):
        c = r[i]
        if c == "\\":
            i += 2
            continue
        if c == "[":
            j = i + 1
            while j < len(r) and r[j] != "]":
                j += 2 if r[j] == "\\" else 1
            i = j + 1
            continue
        if c == "(":
            depth += 1
        elif c == ")":
            depth -= 1
            if depth == 0 and i != len(r) - 1:
                return False
        i += 1
    return True


def _split_decimal(d: Decimal) -> tuple[int, str]:
    """``|d|`` as (integer part, fractional digits without trailing zeros)."""
    d = abs(d)
    text = format(d, "f")
    if "." in text:
        ip, fp = text.split(".")
        fp = fp.rstrip("0")
    else:
        ip, fp = text, ""
    return int(ip), fp


def _frac(
    lo: str | None, lo_strict: bool, hi: str | None, hi_strict: bool, pos: int, maxd: int | None
) -> tuple[list[str], bool]:
    """Fraction digit strings f (after the point) with ``0.lo <(=) 0.f <(=) 0.hi``.

    ``lo``/``hi`` are the remaining bound digits while the prefix equals the bound's prefix (None once
    released). Returns (alternatives for non-empty f, whether f may end here).
    """
    return _frac_memo(lo, lo_strict, hi, hi_strict, pos, maxd)


@lru_cache(maxsize=4096)
def _frac_memo(
    lo: str | None, lo_strict: bool, hi: str | None, hi_strict: bool, pos: int, maxd: int | None
) -> tuple[list[str], bool]:
    if lo == "" and not lo_strict:
        lo = None
    eps = True
    if lo is not None:
        eps = False  # remaining value 0 < 0.lo (lo non-zero) or lo == "" strict: 0 > 0 is false
    if hi is not None and hi == "" and hi_strict:
        eps = False
    if maxd is not None and pos >= maxd:
        return (["0+"], True) if eps else ([], False)
    if lo is not None and hi == "":
        return [], False  # remaining must be > 0 and <= 0
    if lo == "" and hi is None and maxd is None:
        return ["0*[1-9][0-9]*"], False
    if lo is None and hi is None:
        tail = "[0-9]+" if maxd is None else repeat("[0-9]", 1, maxd - pos) + "0*"
        return [tail], True
    if lo is None and hi == "" and not hi_strict:
        return ["0+"], True
    groups: dict[tuple, list[int]] = {}
    for d in range(10):
        if lo is not None:
            ld = int(lo[0]) if lo else 0
            if d < ld:
                continue
            nlo: str | None = lo[1:] if d == ld else None
        else:
            nlo = None
        if hi is not None:
            if hi == "":
                if hi_strict or d > 0:
                    continue
                nhi: str | None = ""
            else:
                hd = int(hi[0])
                if d > hd:
                    continue
                nhi = hi[1:] if d == hd else None
        else:
            nhi = None
        groups.setdefault((nlo, nhi), []).append(d)
    alts = []
    for (nlo, nhi), digits in groups.items():
        sub_alts, sub_eps = _frac_memo(nlo, lo_strict, nhi, hi_strict, pos + 1, maxd)
        if not sub_alts and not sub_eps:
            continue
        cls = _digit_set(digits)
        if sub_alts:
            body = alt(sub_alts)
            alts.append(cls + ("(?:" + body + ")?" if sub_eps else _group(body)))
        else:
            alts.append(cls)
    return alts, eps


def _digit_set(digits: list[int]) -> str:
    if len(digits) == 1:
        return str(digits[0])
    if digits == list(range(digits[0], digits[-1] + 1)):
        return _dcls(digits[0], digits[-1])
    return "[" + "".join(str(d) for d in digits) + "]"


def _frac_part(lo: str | None, lo_strict: bool, hi: str | None, hi_strict: bool, maxd: int | None) -> str | None:
    alts, eps = _frac(lo, lo_strict, hi, hi_strict, 0, maxd)
    if not alts:
        return "" if eps else None
    body = r"\." + _group(alt(alts))
    return "(?:" + body + ")?" if eps else body


def _magnitude_range(lo: Decimal, lo_strict: bool, hi: Decimal | None, hi_strict: bool, maxd: int | None) -> list[str]:
    """Positional spellings of magnitudes m with lo <(=) m <(=) hi, lo >= 0."""
    li, lf = _split_decimal(lo)
    alts = []
    if hi is None:
        inner = nonneg_int_range(li + 1, None)
        if inner is not None:
            fp = _frac_part(None, False, None, False, maxd)
            alts.append(_group(inner) + (fp or ""))
        fp = _frac_part(lf, lo_strict, None, False, maxd)
        if fp is not None:
            alts.append(str(li) + fp)
        return alts
    hi_i, hf = _split_decimal(hi)
    if li == hi_i:
        fp = _frac_part(lf, lo_strict, hf, hi_strict, maxd)
        if fp is not None:
            alts.append(str(li) + fp)
        return alts
    fp = _frac_part(lf, lo_strict, None, False, maxd)
    if fp is not None:
        alts.append(str(li) + fp)
    inner = nonneg_int_range(li + 1, hi_i - 1) if hi_i - 1 >= li + 1 else None
    if inner is not None:
        alts.append(_group(inner) + (_frac_part(None, False, None, False, maxd) or ""))
    fp = _frac_part(None, False, hf, hi_strict, maxd)
    if fp is not None:
        alts.append(str(hi_i) + fp)
    return alts


def decimal_range(
    lo: Decimal | None, lo_strict: bool, hi: Decimal | None, hi_strict: bool, max_frac_digits: int | None = None
) -> str | None:
    """Positional (no exponent) JSON numbers x with lo <(=) x <(=) hi; fraction digits beyond
    ``max_frac_digits`` must be zeros. None if empty."""
    if lo is not None and hi is not None and (lo > hi or (lo == hi and (lo_strict or hi_strict))):
        return None
    alts = []
    zero = Decimal(0)
    # x >= 0 side
    if hi is None or hi > zero or (hi == zero and not hi_strict):
        if lo is None or lo < zero:
            plo, pstrict = zero, False
        else:
            plo, pstrict = lo, lo_strict
        alts.extend(_magnitude_range(plo, pstrict, hi, hi_strict, max_frac_digits))
    # x <= 0 side: magnitudes in [max(-hi, 0), -lo]
    if lo is None or lo < zero or (lo == zero and not lo_strict):
        if hi is None or hi > zero:
            mlo, mstrict = zero, False
        else:
            mlo, mstrict = -hi, hi_strict
        mhi = -lo if lo is not None else None
        neg = _magnitude_range(mlo, mstrict, mhi, lo_strict, max_frac_digits)
        if neg:
            alts.append("-" + _group(alt(neg)))
    if not alts:
        return None
    return alt(alts)


def pattern_width_ok(text: str) -> bool:
    try:
        re.compile(text)
        return True
    except re.error:
        return False


# ---- JSON Schema patterns (ECMA-262) -> regexes over canonical JSON string text ------------------
class PatternError(Exception):
    """A pattern that cannot be translated; ``construct`` names what."""

    def __init__(self, construct: str) -> None:
        self.construct = construct
        super().__init__(construct)


_DIGIT = ((0x30, 0x39),)
_WORD = normalize([(0x30, 0x39), (0x41, 0x5A), (0x61, 0x7A), (0x5F, 0x5F)])
# ECMA-262 WhiteSpace + LineTerminator
_SPACE = normalize(
    [
        (0x09, 0x0D),
        (0x20, 0x20),
        (0xA0, 0xA0),
        (0x1680, 0x1680),
        (0x2000, 0x200A),
        (0x2028, 0x2029),
        (0x202F, 0x202F),
        (0x205F, 0x205F),
        (0x3000, 0x3000),
        (0xFEFF, 0xFEFF),
    ]
)
_DOT = complement(normalize([(0x0A, 0x0A), (0x0D, 0x0D), (0x2028, 0x2029)]))


def _category(cat: object) -> Ranges:
    name = str(cat)
    table = {
        "CATEGORY_DIGIT": _DIGIT,
        "CATEGORY_NOT_DIGIT": complement(_DIGIT),
        "CATEGORY_WORD": _WORD,
        "CATEGORY_NOT_WORD": complement(_WORD),
        "CATEGORY_SPACE": _SPACE,
        "CATEGORY_NOT_SPACE": complement(_SPACE),
    }
    if name not in table:
        raise PatternError(f"character category {name}")
    return table[name]


def _class_ranges(items: list) -> Ranges:
    from re import _constants as c  # type: ignore[attr-defined]

    negate = False
    out: list[tuple[int, int]] = []
    for op, av in items:
        if op is c.NEGATE:
            negate = True
        elif op is c.LITERAL:
            out.append((av, av))
        elif op is c.RANGE:
            out.append((av[0], av[1]))
        elif op is c.CATEGORY:
            out.extend(_category(av))
        else:
            raise PatternError(f"class item {op}")
    r = normalize(out)
    return complement(r) if negate else r


_NEVER = "[^\\x00-\\U0010ffff]"  # matches nothing, without a lookahead


def _contains(seq: list, ops: tuple, at_names: tuple[str, ...] = ()) -> bool:
    """Whether ``seq`` has an item with op in ``ops`` (or an anchor named in ``at_names``), at any depth."""
    from re import _constants as c  # type: ignore[attr-defined]

    for op, av in seq:
        if op in ops or (op is c.AT and str(av) in at_names):
            return True
        if op is c.SUBPATTERN and _contains(list(av[-1]), ops, at_names):
            return True
        if op is c.BRANCH and any(_contains(list(b), ops, at_names) for b in av[1]):
            return True
        if op in (c.MAX_REPEAT, c.MIN_REPEAT, c.ASSERT, c.ASSERT_NOT) and _contains(list(av[-1]), ops, at_names):
            return True
    return False


def _translate(seq: list, unanchored_ok: bool, end_ok: bool = True, loose: bool = False) -> str:
    """``seq`` (a parsed pattern) as string-text regex; ``loose``: a superset where it cannot be
    exact (see :func:`pattern_superset_body_regex`), else PatternError."""
    from re import _constants as c  # type: ignore[attr-defined]

    parts = []
    for op, av in seq:
        if loose:
            try:
                parts.append(_translate([(op, av)], unanchored_ok, end_ok))
            except PatternError:
                parts.append(_loose_item(op, av, end_ok))
            continue
        if op is c.LITERAL:
            parts.append(canonical_char_regex(((av, av),)) or "")
        elif op is c.NOT_LITERAL:
            r = canonical_char_regex(complement(((av, av),)))
            parts.append(r or "")
        elif op is c.ANY:
            parts.append(canonical_char_regex(_DOT) or "")
        elif op is c.IN:
            r = canonical_char_regex(_class_ranges(av))
            if r is None:
                return "(?!)"  # empty class: matches nothing
            parts.append(r)
        elif op is c.BRANCH:
            parts.append("(?:" + "|".join(_translate(list(b), False, end_ok) for b in av[1]) + ")")
        elif op is c.SUBPATTERN:
            _group_id, add_flags, del_flags, sub = av
            if add_flags or del_flags:
                raise PatternError("inline flags")
            parts.append("(?:" + _translate(list(sub), False, end_ok) + ")")
        elif op in (c.MAX_REPEAT, c.MIN_REPEAT, getattr(c, "POSSESSIVE_REPEAT", None)):
            lo, hi, sub = av
            hi_v = None if hi == c.MAXREPEAT else hi
            sub = list(sub)
            if (hi_v is None or hi_v > 1) and _contains(sub, (c.ASSERT, c.ASSERT_NOT)):
                raise PatternError("a lookahead inside a repeat")
            if (hi_v is None or hi_v > 1) and end_ok and _contains(sub, (), ("AT_END", "AT_END_STRING")):
                # '$' ends the string: only the last iteration may take it (the ones after it, if
                # any, match empty), so X{m,n} = X'{m,n} | X'{a,n-1} X with X' = X without '$'
                never = _translate(sub, False, False)
                full = _translate(sub, False, True)
                import re._parser as sre  # type: ignore[import-not-found]

                nullable = sre.SubPattern(sre.State(), sub).getwidth()[0] == 0
                a = 0 if nullable else max(lo - 1, 0)
                first = repeat("(?:" + never + ")", lo, hi_v)
                parts.append(
                    "(?:"
                    + first
                    + "|"
                    + repeat("(?:" + never + ")", a, None if hi_v is None else hi_v - 1)
                    + "(?:"
                    + full
                    + "))"
                )
                continue
            inner = _translate(sub, False, end_ok)
            if inner == "":
                continue
            parts.append(repeat("(?:" + inner + ")", lo, hi_v))
        elif op is c.AT:
            name = str(av)
            if name in ("AT_END", "AT_END_STRING"):
                # the closing quote is the only raw '"' in string text
                parts.append('(?=")' if end_ok else _NEVER)
            elif name in ("AT_BEGINNING", "AT_BEGINNING_STRING"):
                raise PatternError("an anchor ^ that is not at the start of the pattern")
            else:
                raise PatternError("a word boundary (\\b, \\B)")
        elif op is c.GROUPREF:
            raise PatternError("a backreference")
        elif op in (c.ASSERT, c.ASSERT_NOT):
            direction, sub = av
            if direction != 1:
                raise PatternError("a lookbehind assertion")
            # a lookahead sees the rest of the string text, closing quote included: exact
            parts.append(("(?=" if op is c.ASSERT else "(?!") + _translate(list(sub), False, end_ok) + ")")
        else:
            raise PatternError(f"regex construct {op}")
    return "".join(parts)


def _loose_item(op: Any, av: Any, end_ok: bool) -> str:
    """A superset regex of one parsed item that has no exact translation."""
    from re import _constants as c  # type: ignore[attr-defined]

    if op is c.AT:  # a word boundary or an inner '^': true is a superset
        return ""
    if op is c.ASSERT:  # a lookbehind (true), or a lookahead with an untranslatable body (its superset)
        direction, sub = av
        return "" if direction != 1 else "(?=" + _translate(list(sub), False, end_ok, loose=True) + ")"
    if op is c.ASSERT_NOT:  # a superset inside a negation would shrink it: drop the assertion
        return ""
    if op is c.BRANCH:
        return "(?:" + "|".join(_translate(list(b), False, end_ok, loose=True) for b in av[1]) + ")"
    if op is c.SUBPATTERN and not (av[1] or av[2]):
        return "(?:" + _translate(list(av[-1]), False, end_ok, loose=True) + ")"
    if op is c.IN:
        return "(?:" + CANONICAL_CHAR + ")"
    return _ANY_TEXT  # backreferences, flagged groups, repeats with lookaheads, anything else


def _parse(pattern: str) -> list:
    import re._parser as sre  # type: ignore[import-not-found]

    if "\\p{" in pattern or "\\P{" in pattern:
        raise PatternError("a Unicode property escape (\\p{...})")
    if "(?<" in pattern and "(?<=" not in pattern and "(?<!" not in pattern:
        pattern = pattern.replace("(?<", "(?P<")  # ECMA named groups
    try:
        return list(sre.parse(pattern))
    except re.error as e:
        raise PatternError(f"a construct Python's re does not read ({e})") from None
    except RecursionError:
        raise PatternError("nesting too deep") from None


def split_top_level(pattern: str) -> list[str]:
    """Split ``pattern`` at its top-level ``|`` (outside groups and classes)."""
    out, depth, start = [], 0, 0
    for i in structural_offsets(pattern):
        ch = pattern[i]
        if ch == "(":
            depth += 1
        elif ch == ")":
            depth -= 1
        elif ch == "|" and depth == 0:
            out.append(pattern[start:i])
            start = i + 1
    out.append(pattern[start:])
    return out


def pattern_body_regex(pattern: str) -> str:
    """Regex for the canonical JSON text *between the quotes* of strings matching ``pattern``
    (ECMA search semantics: unanchored unless ``^``/``$``). Raises PatternError."""
    return _pattern_body(pattern, False)


def pattern_superset_body_regex(pattern: str) -> str:
    """A regex for a *superset* of the string texts matching ``pattern``, for patterns that
    :func:`pattern_body_regex` refuses: lookbehinds, word boundaries and inner anchors read as
    true, backreferences, flagged groups and repeats of lookaheads as any text, negative lookaheads
    that cannot be translated exactly are dropped; any text when even that fails. Exactness is
    left to a check on the completed string; the grammar keeps what it can of the pattern."""
    try:
        return _pattern_body(pattern, True)
    except PatternError:
        return _ANY_TEXT


_ANY_TEXT = "(?:" + CANONICAL_CHAR + ")*"


def _pattern_body(pattern: str, loose: bool) -> str:
    branches = [_parse(b) for b in split_top_level(pattern)]
    out = []
    any_char = _ANY_TEXT
    for br in branches:
        br, start = _strip_edge(br, 0, ("AT_BEGINNING", "AT_BEGINNING_STRING"))
        again = start
        while again:  # '^(?!x)^a': every '^' before the first character is the same position
            br, again = _strip_edge(br, 0, ("AT_BEGINNING", "AT_BEGINNING_STRING"))
        br, end = _strip_edge(br, -1, ("AT_END", "AT_END_STRING"))
        body = _translate(br, True, loose=loose)
        out.append(("" if start else any_char) + body + ("" if end else any_char))
    return out[0] if len(out) == 1 else "(?:" + "|".join(out) + ")"


def _strip_edge(seq: list, at: int, names: tuple[str, ...]) -> tuple[list, bool]:
    """Remove the anchor at the edge of ``seq`` (index 0 or -1), looking into edge groups and into
    every branch of an edge alternation; (new sequence, whether an anchor was removed)."""
    from re import _constants as c  # type: ignore[attr-defined]

    if not seq:
        return seq, False
    op, av = seq[at]
    rest = seq[1:] if at == 0 else seq[:-1]
    if op is c.AT and str(av) in names:
        return rest, True
    if at == 0 and op in (c.ASSERT, c.ASSERT_NOT) and av[0] == 1:  # '(?!x)^a': zero-width before '^'
        inner, ok = _strip_edge(rest, 0, names)
        if ok:
            return [seq[0]] + inner, True
    if op is c.SUBPATTERN and not av[1] and not av[2]:
        inner, ok = _strip_edge(list(av[3]), at, names)
        if ok:
            item = (c.SUBPATTERN, (av[0], 0, 0, inner))
            return ([item] + rest if at == 0 else rest + [item]), True
    if op is c.BRANCH:
        stripped = [_strip_edge(list(b), at, names) for b in av[1]]
        if all(ok for _, ok in stripped):
            branch: tuple = (c.BRANCH, (av[0], [b for b, _ in stripped]))
            return ([branch] + rest if at == 0 else rest + [branch]), True
    return seq, False


@lru_cache(maxsize=1024)
def _pattern_matcher(pattern: str) -> re.Pattern[str] | None:
    try:
        return re.compile('"' + pattern_body_regex(pattern) + '"', re.DOTALL)
    except (PatternError, re.error, RecursionError, OverflowError):
        return None


def pattern_matches(pattern: str, value: str) -> bool:
    """ECMA-262 search of ``pattern`` in ``value`` as the grammar enforces it: Python ``re`` runs the
    translated regex on the canonical JSON text (plain ``re.search`` if it cannot be translated)."""
    m = _pattern_matcher(pattern)
    if m is not None:
        return m.fullmatch(json.dumps(value, ensure_ascii=False)) is not None
    try:
        return re.search(pattern, value) is not None
    except re.error:
        return False


_EMPTINESS_CHECK: list[Callable[[str, Limits], bool]] = []


def register_emptiness_check(check: Callable[[str, Limits], bool]) -> None:
    """Install the decision procedure behind :func:`language_is_empty`. The automaton layer
    registers one when it is imported (front ends may not import it: it sits above them)."""
    _EMPTINESS_CHECK[:] = [check]


_TERMINAL_CHECK: list[Callable[[str, Limits], object]] = []


def register_terminal_check(check: Callable[[str, Limits], object]) -> None:
    """Install the lexer's (cached) per-terminal DFA construction behind :func:`check_terminal_fits`."""
    _TERMINAL_CHECK[:] = [check]


_LEXER_CHECK: list[Callable[[Any, Limits | None], object]] = []


def register_lexer_check(check: Callable[[Any, Limits | None], object]) -> None:
    """Install the construction of a grammar's whole lexer behind :func:`check_lexer_fits`."""
    _LEXER_CHECK[:] = [check]


def check_lexer_fits(grammar: Any, limits: Limits | None) -> None:
    """Build ``grammar``'s lexer as ``compile`` does (``LimitExceeded`` when it is too large), so
    ``explain`` can report the fallback ``compile`` takes; nothing when no compile layer is loaded."""
    if _LEXER_CHECK:
        _LEXER_CHECK[0](grammar, limits)


def check_terminal_fits(regex: str, limits: Limits) -> None:
    """Build the lexer DFA of the terminal ``regex`` now (it is cached, so the lexer reuses it), so
    that a limit it exceeds raises ``LimitExceeded`` during lowering, where the lowering can still
    fall back; nothing when no automaton layer is loaded."""
    if _TERMINAL_CHECK:
        _TERMINAL_CHECK[0](regex, limits)


def language_is_empty(regex: str, limits: Limits) -> bool:
    """Whether ``regex`` (a lookahead-bearing terminal regex) matches no string at all; False
    (assume inhabited) when no automaton layer is loaded, as for ``explain`` alone."""
    return bool(_EMPTINESS_CHECK) and _EMPTINESS_CHECK[0](regex, limits)


def pattern_length_bounds(pattern: str) -> tuple[int, int | None] | None:
    """(min, max) code points of strings fully matched by an anchored ``pattern``; None if unanchored."""
    import re._parser as sre  # type: ignore[import-not-found]
    from re import _constants as c  # type: ignore[attr-defined]

    branches = [_parse(b) for b in split_top_level(pattern)]
    lo_all: int | None = None
    hi_all: int | None = 0
    for br in branches:
        if not (br and br[0][0] is c.AT and br[-1][0] is c.AT and len(br) >= 2):
            return None
        sub = sre.SubPattern(sre.State(), br[1:-1])
        lo, hi = sub.getwidth()
        lo_all = lo if lo_all is None else min(lo_all, lo)
        hi_all = None if hi_all is None or hi >= c.MAXREPEAT else max(hi_all, hi)
    return (lo_all or 0, hi_all)


@dataclass(frozen=True, slots=True)
class ExclusionTerminal:
    """A terminal regex's language, known from its construction: ``"`` + the canonical JSON body
    of any string not in ``excluded`` + ``"`` + the literal ``suffix``. The automaton layer builds
    its DFA straight from the names' trie (:mod:`structgen.automaton.key_dfa`)."""

    excluded: tuple[str, ...]
    suffix: str


# exclusion body text -> its names, and terminal text -> ExclusionTerminal: pure caches keyed by text
# (a text denotes one language), bounded; a terminal not found here is parsed as a regex
_EXCLUSIONS: OrderedDict[str, tuple[str, ...]] = OrderedDict()
_exclusion_bodies: OrderedDict[tuple[str, ...], str] = OrderedDict()  # names -> exclusion_body
_EXCLUSION_TERMINALS: OrderedDict[str, ExclusionTerminal] = OrderedDict()
_REGISTRY_LOCK = threading.Lock()
_MAX_REGISTERED = 1024


def _remember(table: OrderedDict[Any, Any], key: Any, value: Any) -> None:
    with _REGISTRY_LOCK:
        table[key] = value
        table.move_to_end(key)
        while len(table) > _MAX_REGISTERED:
            table.popitem(last=False)


def quoted_terminal_regex(body: str, suffix: str) -> str:
    """``"`` + ``body`` + ``"`` + ``suffix`` (a literal) as a terminal regex; when ``body`` came from
    :func:`exclusion_body`, the text is registered as a :class:`ExclusionTerminal` (see :func:`exclusion_terminal`)."""
    text = '"' + body + '"' + literal_regex(suffix)
    with _REGISTRY_LOCK:
        names = _EXCLUSIONS.get(body)
    if names is not None:
        _remember(_EXCLUSION_TERMINALS, text, ExclusionTerminal(names, suffix))
    return text


def exclusion_terminal(pattern: str) -> ExclusionTerminal | None:
    """The :class:`ExclusionTerminal` a terminal regex was built as by :func:`quoted_terminal_regex`, else None."""
    with _REGISTRY_LOCK:
        return _EXCLUSION_TERMINALS.get(pattern)


def exclusion_body(names: list[str]) -> str:
    """Regex for canonical JSON string bodies (between quotes) of strings *not* in ``names``
    (remembered, so that :func:`quoted_terminal_regex` can name the language it is part of)."""
    key = tuple(names)
    with _REGISTRY_LOCK:
        body = _exclusion_bodies.get(key)
    if body is None:  # one object's declared names recur in every conjunction context of it
        body = _exclusion_body(names)
        _remember(_exclusion_bodies, key, body)
    _remember(_EXCLUSIONS, body, key)
    return body


def _exclusion_body(names: list[str]) -> str:
    """Regex for canonical JSON string bodies (between quotes) of strings *not* in ``names``.

    Shape: ``PREFIX·ESC·ANY* | DIVERGE·ANY* | NONWORD`` over the trie of ``names``: a string leaves
    the set by an escape after a trie prefix, by a raw character no name continues with, or by
    ending at a trie node that is not a name. ``ANY`` is one canonical character, so a declared
    name cannot come back spelled with gratuitous escapes.
    """
    trie: dict = {}
    end_mark = ""
    for name in names:
        node = trie
        for ch in name:
            node = node.setdefault(ch, {})
        node[end_mark] = True
    any_rest = "(?:" + CANONICAL_CHAR + ")*"
    special = any(_needs_escape(ord(c)) for name in names for c in name)
    if special:  # rare: names with quotes, backslashes or control characters
        return _exclusion_body_general(trie, any_rest)
    esc = r'\\(?:["\\bfnrt]|u00(?:0[0-7bef]|1[0-9a-f]))'

    def lit(c: str) -> str:
        return _literal_char(ord(c))

    def prefixes(node: dict) -> str:  # every trie path (words included, empty included)
        kids = [c for c in node if c != end_mark]
        if not kids:
            return ""
        inner = "|".join(lit(c) + prefixes(node[c]) for c in kids)
        return "(?:" + inner + ")?"

    def diverge(node: dict) -> str:  # a trie path, then a raw character no name continues with
        kids = [c for c in node if c != end_mark]
        other = '[^"\\\\\\x00-\\x1f' + "".join(_class_char(ord(c)) for c in kids) + "]"
        alts = [other] + [lit(c) + diverge(node[c]) for c in kids]
        return alts[0] if len(alts) == 1 else "(?:" + "|".join(alts) + ")"

    def nonword(node: dict) -> list[str]:  # trie paths that end at a non-name node
        out = [] if end_mark in node else [""]
        for c in node:
            if c != end_mark:
                out.extend(lit(c) + x for x in nonword(node[c]))
        return out

    nw = [x for x in nonword(trie) if x]
    alts = [prefixes(trie) + esc + any_rest, diverge(trie) + any_rest] + nw
    body = "(?:" + "|".join(alts) + ")"
    if len(body) >= _PREBUILT_MIN_LEN and max(map(len, names)) <= _PREBUILT_MAX_DEPTH:
        register_group(body, lambda: _exclusion_ast(trie, esc, any_rest))
    if end_mark not in trie:
        body += "?"
    return body


_PREBUILT_MIN_LEN = 256  # shorter groups parse quickly
_PREBUILT_MAX_DEPTH = 64  # deeper tries keep ``re``'s parser (and its nesting limits) in charge


@lru_cache(maxsize=8)
def _fixed_ast(regex: str) -> Node:
    return parse_regex(regex)


@lru_cache(maxsize=4096)
def _char_ast(c: str) -> Node:
    return CharSet(ast_normalize(((ord(c), ord(c)),)))


def _exclusion_ast(trie: dict, esc: str, any_rest: str) -> Node:
    """The AST of :func:`exclusion_body`'s group (before its optional ``?``), built from the trie
    node by node as the regex text is, so the key regex need not be parsed again for every schema."""
    forbidden = [(0x00, 0x1F), (0x22, 0x22), (0x5C, 0x5C)]

    lit = _char_ast

    def prefixes(node: dict) -> Node:
        kids = [c for c in node if c != ""]
        if not kids:
            return EMPTY
        return Repeat(Alt(tuple(Concat((lit(c), prefixes(node[c]))) for c in kids)), 0, 1)

    def diverge(node: dict) -> Node:
        kids = [c for c in node if c != ""]
        other = CharSet(ast_complement(ast_normalize(forbidden + [(ord(c), ord(c)) for c in kids])))
        if not kids:
            return other
        return Alt((other, *(Concat((lit(c), diverge(node[c]))) for c in kids)))

    def nonword(node: dict) -> list[tuple[Node, ...]]:
        out: list[tuple[Node, ...]] = [] if "" in node else [()]
        for c in node:
            if c != "":
                out.extend((lit(c), *x) for x in nonword(node[c]))
        return out

    any_node = _fixed_ast(any_rest)
    nw = [Concat(x) for x in nonword(trie) if x]
    return Alt((Concat((prefixes(trie), _fixed_ast(esc), any_node)), Concat((diverge(trie), any_node)), *nw))


def _exclusion_body_general(trie: dict, any_rest: str) -> str:
    end_mark = ""

    def go(node: dict) -> str:
        alts = []
        children = [c for c in node if c != end_mark]
        if end_mark not in node:
            alts.append("")
        other = canonical_char_regex(complement(normalize([(ord(c), ord(c)) for c in children])))
        if other is not None:
            alts.append(other + any_rest)
        for c in children:
            alts.append((canonical_char_regex(((ord(c), ord(c)),)) or "") + go(node[c]))
        nonempty = [a for a in alts if a]
        body = "(?:" + "|".join(nonempty) + ")" if len(nonempty) > 1 else (nonempty[0] if nonempty else "")
        if "" in alts and body:
            return "(?:" + body + ")?"
        return body

    return go(trie)


def simple_class_repeat(pattern: str) -> tuple[Ranges, int, int | None] | None:
    """For ``^C{lo,hi}$`` (C one character class) return (ranges of C, lo, hi); else None."""
    from re import _constants as c  # type: ignore[attr-defined]

    parts = split_top_level(pattern)
    if len(parts) != 1:
        return None
    seq = _parse(parts[0])
    if len(seq) != 3 or seq[0][0] is not c.AT or seq[2][0] is not c.AT:
        return None
    if str(seq[0][1]) not in ("AT_BEGINNING", "AT_BEGINNING_STRING") or str(seq[2][1]) not in (
        "AT_END",
        "AT_END_STRING",
    ):
        return None
    op, av = seq[1]
    if op not in (c.MAX_REPEAT, c.MIN_REPEAT):
        return None
    lo, hi, sub = av
    sub = list(sub)
    if len(sub) != 1:
        return None
    sop, sav = sub[0]
    if sop is c.IN:
        ranges = _class_ranges(sav)
    elif sop is c.LITERAL:
        ranges = ((sav, sav),)
    elif sop is c.ANY:
        ranges = _DOT
    else:
        return None
    return ranges, lo, None if hi == c.MAXREPEAT else hi
