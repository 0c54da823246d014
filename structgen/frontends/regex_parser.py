"""Python ``re`` syntax -> structgen's regex AST.

The pattern is parsed by Python's own parser (``re._parser``, formerly ``sre_parse``), so the syntax,
escapes, verbose mode and error positions are exactly Python's. The parse tree is then lowered:

* literals, ``.`` (no newline unless DOTALL), classes (negated, ranges), ``\\d \\w \\s \\D \\W \\S``
  with Python's Unicode semantics for ``str`` patterns (``\\d`` = ``str.isdecimal``, ``\\w`` =
  ``str.isalnum`` or ``_``, ``\\s`` = ``str.isspace``; ASCII versions under ``(?a)``);
* all quantifiers (greedy and lazy describe the same language), alternation, groups of every kind,
  inline flags (global and scoped) ``i m s x a``;
* IGNORECASE follows ``re`` exactly for ``str`` patterns: a character ``ch`` matches literal ``c``
  iff ``lower(ch) == lower(c)`` (simple case mapping, plus ``re``'s extra equivalences such as
  ``s``/``ſ``); a class matches ``ch`` iff ``lower(ch)`` is in the lowered class;
* anchors ``^ $ \\A \\Z`` are accepted where nothing can precede (resp. follow) them: whole-output
  matching makes them no-ops there. Elsewhere they are refused.

* lookaheads ``(?=X)`` / ``(?!X)`` are exact: under whole-string matching a lookahead constrains
  the rest of the string, so it lowers to ``And(rest, X·Σ*)`` / ``And(rest, Not(X·Σ*))`` where
  ``rest`` is everything after it to the end of the pattern (a branch of ``X`` ending in ``$``
  drops the ``Σ*``). The rest is threaded through enclosing groups and alternations (an
  alternation distributes it over its branches), so lookaheads anywhere outside a repeat work.

Refused with :class:`~structgen.errors.UnsupportedRegex` (construct and position named):
backreferences, lookbehind, lookaheads inside a repeat, conditionals, atomic groups, possessive
quantifiers, word boundaries and inner anchors. Malformed patterns raise :class:`~structgen.errors.InvalidRegex` with
Python's error position. Surrogate code points are never matched (they have no UTF-8 encoding).
"""

from __future__ import annotations

import re
import threading
from collections import OrderedDict
from collections.abc import Callable, Iterator
from functools import cache, lru_cache
from typing import Any

from structgen.automaton.utf8 import UNIVERSE, Ranges, complement, intersect, normalize, subtract, union
from structgen.errors import InvalidRegex, LimitExceeded, UnsupportedRegex
from structgen.frontends.regex_ast import EMPTY, Alt, And, CharSet, Concat, Node, Not, Repeat
from structgen.limits import DEFAULT_LIMITS, Limits

try:  # Python >= 3.11
    from re import _constants as C  # type: ignore[attr-defined]
    from re import _parser as sre_parse  # type: ignore[attr-defined]
except ImportError:  # pragma: no cover - Python 3.10
    import sre_constants as C  # type: ignore[no-redef]
    import sre_parse  # type: ignore[no-redef]

__all__ = ["parse_regex", "parse_literal", "flags_from_string", "register_group"]

_FLAG_LETTERS = {"i": re.IGNORECASE, "m": re.MULTILINE, "s": re.DOTALL, "x": re.VERBOSE, "a": re.ASCII, "u": re.UNICODE}
# plain ints: ``int & RegexFlag`` goes through the (slow) enum operators on every regex item
_IGNORECASE = int(re.IGNORECASE)
_ASCII = int(re.ASCII)
_DOTALL = int(re.DOTALL)
_VERBOSE = int(re.VERBOSE)


def flags_from_string(flags: str) -> int:
    """``"imsx"`` letters -> ``re`` flag bits (Lark-style flag strings)."""
    out = 0
    for ch in flags:
        if ch not in _FLAG_LETTERS:
            raise InvalidRegex(f"unknown regex flag {ch!r} in {flags!r} (known: imsxau)", flags, flags.index(ch))
        out |= _FLAG_LETTERS[ch]
    return out


# ---- Unicode tables (built once per process) ------------------------------------------------


@lru_cache(maxsize=1)
def _all_chars() -> str:
    return "".join(map(chr, range(0x110000)))


@cache
def _category_ranges(pattern: str) -> Ranges:
    """Code points matched by a one-character ``re`` pattern, found by letting ``re`` scan them all."""
    text = _all_chars()
    return normalize((m.start(), m.end() - 1) for m in re.finditer(pattern + "+", text))


_ASCII_CATS = {
    "digit": ((0x30, 0x39),),
    "word": ((0x30, 0x39), (0x41, 0x5A), (0x5F, 0x5F), (0x61, 0x7A)),
    "space": ((0x09, 0x0D), (0x20, 0x20)),
}


def _category(cat: Any, ascii_only: bool) -> Ranges:
    name = str(cat).lower()
    negate = "not_" in name
    for kind in ("digit", "word", "space"):
        if kind in name:
            break
    else:  # LINEBREAK categories are not produced by the str parser
        raise UnsupportedRegex(f"category {cat}", "", None)
    if ascii_only:
        base: Ranges = _ASCII_CATS[kind]
    else:
        base = _category_ranges({"digit": r"\d", "word": r"\w", "space": r"\s"}[kind])
    return complement(base) if negate else base


@lru_cache(maxsize=1)
def _case_tables() -> tuple[dict[int, int], dict[int, tuple[int, ...]], Ranges, dict[int, tuple[int, ...]]]:
    """(lower map of chars whose lower differs, inverse of it, those chars as ranges, re's extra cases)."""
    import _sre

    lower: dict[int, int] = {}
    tolower = _sre.unicode_tolower
    for cp in range(0x110000):
        lo = tolower(cp)
        if lo != cp:
            lower[cp] = lo
    inverse: dict[int, list[int]] = {}
    for cp, lo in lower.items():
        inverse.setdefault(lo, []).append(cp)
    try:
        from re._casefix import _EXTRA_CASES as extra  # type: ignore[import-not-found]
    except ImportError:  # pragma: no cover - Python 3.10
        import sre_compile

        extra = sre_compile._ignorecase_fixes  # type: ignore[attr-defined]
    changed = normalize((cp, cp) for cp in lower)
    return lower, {k: tuple(v) for k, v in inverse.items()}, changed, dict(extra)


def _lowered(s: Ranges, ascii_only: bool) -> Ranges:
    """``{lower(c) : c in s}`` plus ``re``'s extra equivalences (``sre_compile``'s charset fixup)."""
    if ascii_only:
        up = intersect(s, ((0x41, 0x5A),))
        return union(s if not up else subtract(s, up), tuple((lo + 32, hi + 32) for lo, hi in up))
    lower, _, changed, extra = _case_tables()
    moved = intersect(s, changed)
    out = [r for r in subtract(s, changed)] if moved else list(s)
    for lo, hi in moved:
        for cp in range(lo, hi + 1):
            if cp in lower:
                out.append((lower[cp], lower[cp]))
    res = normalize(out)
    add = [(e, e) for k, es in extra.items() if _contains(res, k) for e in es]
    return normalize(list(res) + add) if add else res


def _preimage(s: Ranges, ascii_only: bool) -> Ranges:
    """``{ch : lower(ch) in s}``: the characters an IGNORECASE matcher accepts for the set ``s``."""
    if ascii_only:
        low = intersect(s, ((0x61, 0x7A),))
        keep = subtract(s, ((0x41, 0x5A),))
        return union(keep, tuple((lo - 32, hi - 32) for lo, hi in low))
    lower, inverse, changed, _ = _case_tables()
    out = list(subtract(s, changed))
    size = sum(hi - lo + 1 for lo, hi in s)
    if size <= 64:
        for lo, hi in s:
            for cp in range(lo, hi + 1):
                out.extend((c, c) for c in inverse.get(cp, ()))
    else:
        out.extend((cp, cp) for cp, lo in lower.items() if _contains(s, lo))
    return normalize(out)


def _contains(s: Ranges, cp: int) -> bool:
    from structgen.automaton.utf8 import contains

    return contains(s, cp)


def _iscased(cp: int, ascii_only: bool) -> bool:
    if ascii_only:
        return 0x41 <= cp <= 0x5A or 0x61 <= cp <= 0x7A
    import _sre

    return bool(_sre.unicode_iscased(cp))


@lru_cache(maxsize=65536)
def _literal_set(cp: int, flags: int) -> Ranges:
    if not flags & _IGNORECASE:
        return normalize(((cp, cp),))
    ascii_only = bool(flags & _ASCII)
    if not _iscased(cp, ascii_only):
        return normalize(((cp, cp),))
    return _preimage(_lowered(((cp, cp),), ascii_only), ascii_only)


# ---- source positions of constructs the tree does not locate ---------------------------------


def _construct_positions(pattern: str, verbose: bool) -> dict[str, list[int]]:
    """Offsets of anchors, lookarounds, backreferences... in source order (the tree has none)."""
    pos: dict[str, list[int]] = {k: [] for k in ("anchor", "assert", "groupref", "conditional", "atomic", "possessive")}
    i, n = 0, len(pattern)
    quant_end = False  # the previous token was a quantifier
    while i < n:
        c = pattern[i]
        was_quant = quant_end
        quant_end = False
        if c == "\\":
            d = pattern[i + 1] if i + 1 < n else ""
            if d in "AZbB":
                pos["anchor"].append(i)
            elif d in "123456789":
                pos["groupref"].append(i)
            i += 2
            continue
        if c == "[":
            j = i + 1
            if j < n and pattern[j] == "^":
                j += 1
            if j < n and pattern[j] == "]":
                j += 1
            while j < n and pattern[j] != "]":
                j += 2 if pattern[j] == "\\" else 1
            i = j + 1
            continue
        if verbose and c == "#":
            j = pattern.find("\n", i)
            i = n if j < 0 else j + 1
            continue
        if c == "(" and pattern.startswith("?", i + 1):
            rest = pattern[i + 2 : i + 5]
            if rest.startswith(("=", "!", "<=", "<!")):
                pos["assert"].append(i)
            elif rest.startswith("P="):
                pos["groupref"].append(i)
            elif rest.startswith("("):
                pos["conditional"].append(i)
            elif rest.startswith(">"):
                pos["atomic"].append(i)
            elif rest.startswith("#"):
                j = pattern.find(")", i)
                i = n if j < 0 else j + 1
                continue
            i += 2
            continue
        if c in "^$":
            pos["anchor"].append(i)
        elif c in "*+?}":
            if c == "+" and was_quant:
                pos["possessive"].append(i - 1)
            else:
                quant_end = True
        i += 1
    return pos


# ---- lowering ---------------------------------------------------------------------------------
_ANY_TEXT: Node = Repeat(CharSet(UNIVERSE), 0, None)
_NODE_TYPES = (CharSet, Concat, Alt, Repeat, And, Not)

_ANCHOR_NAMES = {
    C.AT_BEGINNING: "^",
    C.AT_BEGINNING_STRING: "\\A",
    C.AT_END: "$",
    C.AT_END_STRING: "\\Z",
    C.AT_BOUNDARY: "\\b",
    C.AT_NON_BOUNDARY: "\\B",
}


class _Lowerer:
    def __init__(self, pattern: str, flags: int, limits: Limits) -> None:
        self.pattern = pattern
        self.limits = limits
        self.positions = _construct_positions(pattern, bool(flags & _VERBOSE))
        self.seen = {k: 0 for k in self.positions}
        self.item_pos: dict[int, int] = {}  # id(anchor or lookaround item) -> source offset
        self.spliced: dict[int, Node] = {}  # placeholder code point -> registered group's AST

    def locate(self, tree: Any) -> None:
        """Map anchor and lookaround items to their offsets (tree order is source order)."""
        counts = {"anchor": 0, "assert": 0}

        def walk(items: Any) -> None:
            for item in items:
                op, av = item
                kind = "anchor" if op is C.AT else "assert" if op in (C.ASSERT, C.ASSERT_NOT) else None
                if kind is not None:
                    lst = self.positions[kind]
                    if counts[kind] < len(lst):
                        self.item_pos[id(item)] = lst[counts[kind]]
                    counts[kind] += 1
                if op is C.SUBPATTERN:
                    walk(av[-1])
                elif op is C.BRANCH:
                    for b in av[1]:
                        walk(b)
                elif op in (C.MAX_REPEAT, C.MIN_REPEAT, C.ASSERT, C.ASSERT_NOT):
                    walk(av[-1])
                elif op is C.GROUPREF_EXISTS:
                    walk(av[1])
                    if av[2] is not None:
                        walk(av[2])
                elif getattr(C, "POSSESSIVE_REPEAT", None) is not None and op is C.POSSESSIVE_REPEAT:
                    walk(av[-1])
                elif getattr(C, "ATOMIC_GROUP", None) is not None and op is C.ATOMIC_GROUP:
                    walk(av)

        walk(tree)

    def _pos(self, kind: str) -> int | None:
        k = self.seen[kind]
        self.seen[kind] = k + 1
        lst = self.positions[kind]
        return lst[k] if k < len(lst) else None

    def _refuse(self, construct: str, kind: str) -> UnsupportedRegex:
        return UnsupportedRegex(construct, self.pattern, self._pos(kind))

    @staticmethod
    def _zero_width(item: tuple[Any, Any]) -> bool:
        op, av = item
        if op is C.AT:
            return True
        if op is C.SUBPATTERN:
            return all(_Lowerer._zero_width(x) for x in av[-1])
        return False

    def seq(self, items: Any, flags: int, at_start: bool, at_end: bool) -> Node:
        items = list(items)
        out: list[Node] = []
        n = len(items)
        # prefix_ok[j]: items[:j] are all zero-width; suffix_ok[j]: items[j:] are all zero-width
        # (only consulted under at_start / at_end, so only computed then)
        prefix_ok = [False] * (n + 1)
        suffix_ok = [False] * (n + 1)
        if at_start:
            prefix_ok[0] = True
            for j in range(n):
                if not self._zero_width(items[j]):
                    break
                prefix_ok[j + 1] = True
        if at_end:
            suffix_ok[n] = True
            for j in range(n - 1, -1, -1):
                if not self._zero_width(items[j]):
                    break
                suffix_ok[j] = True
        item_fn = self.item
        for j, item in enumerate(items):
            node = item_fn(item, flags, prefix_ok[j], suffix_ok[j + 1])
            if node is not EMPTY:
                out.append(node)
        if len(out) == 1:
            return out[0]
        return Concat(tuple(out))

    def charset(self, s: Ranges) -> Node:
        return CharSet(s)

    def item(self, item: tuple[Any, Any], flags: int, at_start: bool, at_end: bool) -> Node:
        op, av = item
        if op is C.LITERAL:
            if self.spliced and av in self.spliced:
                return self.spliced[av]
            return CharSet(_literal_set(av, flags))
        if op is C.NOT_LITERAL:
            return CharSet(complement(_literal_set(av, flags)))
        if op is C.ANY:
            return CharSet(UNIVERSE if flags & _DOTALL else subtract(UNIVERSE, ((10, 10),)))
        if op is C.IN:
            return CharSet(self.char_class(av, flags))
        if op is C.CATEGORY:
            ascii_only = bool(flags & _ASCII)
            s = _category(av, ascii_only)
            return CharSet(_preimage(s, ascii_only) if flags & _IGNORECASE else s)
        if op is C.BRANCH:
            return Alt(tuple(self.seq(b, flags, at_start, at_end) for b in av[1]))
        if op is C.SUBPATTERN:
            _group, add_flags, del_flags, sub = av
            return self.seq(sub, (flags | add_flags) & ~del_flags, at_start, at_end)
        if op in (C.MAX_REPEAT, C.MIN_REPEAT):
            lo, hi, sub = av
            unbounded = hi == C.MAXREPEAT
            for count in (lo,) if unbounded else (lo, hi):
                if count > self.limits.max_repeat:
                    raise LimitExceeded(
                        "max_repeat", count, self.limits.max_repeat, f"parsing regex {self.pattern[:80]!r}"
                    )
            once = hi <= 1 and not unbounded
            body = self.seq(sub, flags, at_start and once, at_end and once)
            if lo == 1 and hi == 1:
                return body
            return Repeat(body, lo, None if unbounded else hi)
        if op is C.AT:
            name = _ANCHOR_NAMES.get(av, str(av))
            pos = self.item_pos.get(id(item))
            if av in (C.AT_BEGINNING, C.AT_BEGINNING_STRING) and at_start:
                return EMPTY
            if av in (C.AT_END, C.AT_END_STRING) and at_end:
                return EMPTY
            if av in (C.AT_BOUNDARY, C.AT_NON_BOUNDARY):
                raise UnsupportedRegex(f"word boundary {name}", self.pattern, pos)
            where = "start" if av in (C.AT_BEGINNING, C.AT_BEGINNING_STRING) else "end"
            raise UnsupportedRegex(f"anchor {name} not at the {where} of the pattern", self.pattern, pos)
        if op in (C.ASSERT, C.ASSERT_NOT):
            direction, _sub = av
            kind = (
                ("lookahead" if direction == 1 else "lookbehind")
                if op is C.ASSERT
                else ("negative lookahead" if direction == 1 else "negative lookbehind")
            )
            raise UnsupportedRegex(kind, self.pattern, self.item_pos.get(id(item)))
        if op is C.GROUPREF:
            raise self._refuse("backreference", "groupref")
        if op is C.GROUPREF_EXISTS:
            raise self._refuse("conditional group (?(...)...)", "conditional")
        if getattr(C, "ATOMIC_GROUP", None) is not None and op is C.ATOMIC_GROUP:
            raise self._refuse("atomic group (?>...)", "atomic")
        if getattr(C, "POSSESSIVE_REPEAT", None) is not None and op is C.POSSESSIVE_REPEAT:
            raise self._refuse("possessive quantifier", "possessive")
        raise UnsupportedRegex(f"regex construct {op}", self.pattern, None)

    # ---- lookaheads: lowered together with the rest of the pattern ------------------------------
    @staticmethod
    def has_assert(items: Any) -> bool:
        for op, av in items:
            if op in (C.ASSERT, C.ASSERT_NOT):
                return True
            if op is C.SUBPATTERN or op in (C.MAX_REPEAT, C.MIN_REPEAT):
                if _Lowerer.has_assert(av[-1]):
                    return True
            elif op is C.BRANCH and any(_Lowerer.has_assert(b) for b in av[1]):
                return True
        return False

    def seq_rest(self, entries: list[tuple[Any, int] | Node], at_start: bool) -> Node:
        """The pattern from ``entries`` to its very end. An entry is an ``re`` item with its flags,
        or an already lowered node (the ``Σ*`` tail of a lookahead body)."""
        zw = [not isinstance(e, _NODE_TYPES) and self._zero_width(e[0]) for e in entries]
        out: list[Node] = []
        for j, e in enumerate(entries):
            if isinstance(e, _NODE_TYPES):
                out.append(e)
                continue
            item, flags = e
            first = at_start and all(zw[:j])
            rest = entries[j + 1 :]
            if not self.has_assert([item]):
                node = self.item(item, flags, first, all(zw[j + 1 :]))
                if node is not EMPTY:
                    out.append(node)
                continue
            op, av = item
            if op is C.SUBPATTERN:
                _group, add_flags, del_flags, sub = av
                inner = (flags | add_flags) & ~del_flags
                out.append(self.seq_rest([(x, inner) for x in sub] + rest, first))
            elif op is C.BRANCH:
                out.append(Alt(tuple(self.seq_rest([(x, flags) for x in b] + rest, first) for b in av[1])))
            elif op in (C.MAX_REPEAT, C.MIN_REPEAT) and av[1] == 1:
                body = self.seq_rest([(x, flags) for x in av[2]] + rest, first)
                out.append(body if av[0] == 1 else Alt((body, self.seq_rest(rest, first))))
            elif op in (C.ASSERT, C.ASSERT_NOT):
                direction, sub = av
                negative = op is C.ASSERT_NOT
                if direction != 1:
                    kind = "negative lookbehind" if negative else "lookbehind"
                    raise UnsupportedRegex(kind, self.pattern, self.item_pos.get(id(item)))
                look = self.lookahead_language(sub, flags, first)
                after = self.seq_rest(rest, first)
                out.append(And((after, Not(look) if negative else look)))
            else:  # a repeat that may run more than once
                raise UnsupportedRegex("lookahead inside a repeat", self.pattern, self._first_assert_pos([item]))
            break  # the recursive call lowered everything after this entry
        if len(out) == 1:
            return out[0]
        return Concat(tuple(out))

    def _first_assert_pos(self, items: Any) -> int | None:
        for item in items:
            op, av = item
            if op in (C.ASSERT, C.ASSERT_NOT):
                return self.item_pos.get(id(item))
            subs = [av[-1]] if op is C.SUBPATTERN or op in (C.MAX_REPEAT, C.MIN_REPEAT) else []
            subs += list(av[1]) if op is C.BRANCH else []
            for sub in subs:
                if self.has_assert(sub):
                    return self._first_assert_pos(sub)
        return None

    @staticmethod
    def _ends_anchored(items: Any) -> bool:
        if not items:
            return False
        op, av = items[-1]
        if op is C.AT:
            return av in (C.AT_END, C.AT_END_STRING)
        if op is C.SUBPATTERN:
            return _Lowerer._ends_anchored(list(av[-1]))
        return False

    def lookahead_language(self, sub: Any, flags: int, at_start: bool) -> Node:
        """What the rest of the string must look like for ``(?=sub)``: ``sub·Σ*``, per top-level
        branch, or ``sub`` alone for a branch that ends with ``$``."""
        sub = list(sub)
        branches = [list(b) for b in sub[0][1][1]] if len(sub) == 1 and sub[0][0] is C.BRANCH else [sub]
        alts: list[Node] = []
        for b in branches:
            entries: list[tuple[Any, int] | Node] = [(x, flags) for x in b]
            if not self._ends_anchored(b):
                entries.append(_ANY_TEXT)
            alts.append(self.seq_rest(entries, at_start))
        return alts[0] if len(alts) == 1 else Alt(tuple(alts))

    def char_class(self, items: Any, flags: int) -> Ranges:
        ascii_only = bool(flags & _ASCII)
        icase = bool(flags & _IGNORECASE)
        negate = False
        plain: list[tuple[int, int]] = []
        cats: list[Ranges] = []
        for op, av in items:
            if op is C.NEGATE:
                negate = True
            elif op is C.LITERAL:
                plain.append((av, av))
            elif op is C.RANGE:
                plain.append((av[0], av[1]))
            elif op is C.CATEGORY:
                cats.append(_category(av, ascii_only))
            else:  # pragma: no cover - the str parser produces nothing else inside []
                raise UnsupportedRegex(f"class item {op}", self.pattern, None)
        base = normalize(plain)
        if icase:
            # re lowers the class members, then tests lower(ch) against them and the categories
            s = _preimage(union(_lowered(base, ascii_only), *cats), ascii_only)
        else:
            s = union(base, *cats)
        return complement(s) if negate else s


# ---- pre-built groups ------------------------------------------------------------------------
# Long generated groups (the JSON Schema key-exclusion regex: ~2k characters of nested ``(?:..)?``)
# cost milliseconds in ``re``'s parser. Their generator registers the group text with an AST of the
# same language; ``parse_regex`` then parses a placeholder character in its place and splices the
# AST in. A pure cache keyed by text: a group not registered (or evicted) is parsed as usual.
_ATOMS: OrderedDict[str, Node | Callable[[], Node]] = OrderedDict()  # built on first use
_ATOMS_LOCK = threading.Lock()
_MAX_ATOMS = 256
_MIN_ATOM_LEN = 256
_INLINE_FLAGS = re.compile(r"\(\?[aiLmsux-]")


def register_group(text: str, build: Callable[[], Node]) -> None:
    """Register ``text`` (a balanced non-capturing group ``(?:...)`` without flags, anchors,
    lookarounds or backreferences) as denoting exactly the language of the AST ``build()`` returns
    (called at most once, when a pattern holding ``text`` is first parsed)."""
    if len(text) < _MIN_ATOM_LEN or not text.startswith("(?:") or not text.endswith(")"):
        return
    with _ATOMS_LOCK:
        if text in _ATOMS:
            _ATOMS.move_to_end(text)
            return
        _ATOMS[text] = build
        while len(_ATOMS) > _MAX_ATOMS:
            _ATOMS.popitem(last=False)


def structural_offsets(pattern: str) -> Iterator[int]:
    """Offsets of ``pattern``'s characters outside character classes and not escaped, in order
    (Python ``re`` rules: an escape's backslash is structural, the escaped character is not; a
    class's ``[`` is, its contents and closing ``]`` are not, and a ``]`` right after ``[`` or
    ``[^`` is a member)."""
    i, n = 0, len(pattern)
    while i < n:
        yield i
        ch = pattern[i]
        if ch == "\\":
            i += 2
        elif ch == "[":
            i += 1
            if pattern[i : i + 1] == "^":
                i += 1
            if pattern[i : i + 1] == "]":
                i += 1
            while i < n and pattern[i] != "]":
                i += 2 if pattern[i] == "\\" else 1
            i += 1
        else:
            i += 1


def _structural(pattern: str, at: int) -> bool:
    """Whether offset ``at`` of ``pattern`` is outside any class and not escaped."""
    for i in structural_offsets(pattern):
        if i >= at:
            return i == at
    return False


def _substitute_groups(pattern: str, fl: int) -> tuple[str, dict[int, Node]]:
    """``pattern`` with registered groups replaced by ``(?:P{1})`` (P an unused private-use character)."""
    if (
        not _ATOMS
        or len(pattern) < _MIN_ATOM_LEN
        or fl & ~int(re.UNICODE)
        or "(?#" in pattern
        or _INLINE_FLAGS.search(pattern)
    ):
        return pattern, {}
    with _ATOMS_LOCK:
        found = [(t, b) for t, b in _ATOMS.items() if t in pattern]
    if not found:
        return pattern, {}
    used = set(pattern)
    spliced: dict[int, Node] = {}
    cp = 0xF0000
    for text, node in sorted(found, key=lambda tb: len(tb[0]), reverse=True):
        at = pattern.find(text)
        while at >= 0:
            if not _structural(pattern, at):
                at = pattern.find(text, at + 1)
                continue
            while chr(cp) in used:
                cp += 1
            used.add(chr(cp))
            if not isinstance(node, _NODE_TYPES):
                node = node()
                with _ATOMS_LOCK:
                    if text in _ATOMS:
                        _ATOMS[text] = node
            spliced[cp] = node
            # ``{1}``: ``re`` would merge a bare one-character branch into a class with its siblings
            pattern = pattern[:at] + "(?:" + chr(cp) + "{1})" + pattern[at + len(text) :]
            at = pattern.find(text, at + 1)
    return pattern, spliced


def _sre_parse(pattern: str, fl: int) -> Any:
    try:
        return sre_parse.parse(pattern, fl)
    except re.error as e:
        raise InvalidRegex(e.msg, pattern, e.pos) from None
    except (OverflowError, RecursionError) as e:
        raise InvalidRegex(str(e) or type(e).__name__, pattern, None) from None


def parse_regex(pattern: str, flags: str | int = "", limits: Limits | None = None) -> Node:
    """Parse a Python regex (``str``) into structgen's regex AST; see the module doc for the subset."""
    limits = limits or DEFAULT_LIMITS
    if not isinstance(pattern, str):
        raise TypeError(f"regex pattern must be a str, got {type(pattern).__name__}")
    fl = flags_from_string(flags) if isinstance(flags, str) else int(flags)
    source, spliced = _substitute_groups(pattern, fl)
    if spliced:
        try:
            tree = sre_parse.parse(source, fl)
        except (re.error, OverflowError, RecursionError):
            source, spliced = pattern, {}  # report the error exactly as for the pattern itself
    if not spliced:
        tree = _sre_parse(pattern, fl)
    all_flags = int(tree.state.flags | fl)
    lowerer = _Lowerer(pattern, all_flags, limits)
    lowerer.spliced = spliced
    lowerer.locate(tree)
    try:
        if lowerer.positions["assert"]:
            return lowerer.seq_rest([(x, all_flags) for x in tree], True)
        return lowerer.seq(tree, all_flags, True, True)
    except RecursionError:
        raise LimitExceeded("max_nfa_states", -1, limits.max_nfa_states, "nesting too deep") from None


def parse_literal(text: str, flags: str | int = "") -> Node:
    """An exact string (a literal terminal), with IGNORECASE applied when ``i`` is in ``flags``."""
    fl = flags_from_string(flags) if isinstance(flags, str) else int(flags)
    items = tuple(CharSet(_literal_set(ord(c), fl)) for c in text)
    return items[0] if len(items) == 1 else Concat(items)
