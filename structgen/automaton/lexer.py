"""Regexes and grammar terminals -> minimal byte DFAs.

    compile_regex_dfa(pattern, limits, flags="") -> ByteDFA        # one regex, whole-string match
    build_lexer_dfa(terminals, limits) -> LexerDFA                 # several terminals, tagged

Pipeline for one regex: Python-``re`` parse -> AST -> Thompson NFA over code-point ranges -> subset
construction over code-point classes -> prune + Moore minimization -> UTF-8 spelled out once
(:mod:`structgen.automaton.utf8_dfa`) -> ``(S, 256)`` int32 table with state 0 dead and every other
state live (co-reachable to acceptance). ASTs with intersection/complement nodes take the byte-level
route (Thompson NFA over UTF-8 byte ranges, subset construction over byte classes); both give the
same minimal table, numbered breadth-first.

A lexer is the product (:mod:`structgen.automaton.product`) of one trie for the plain literal
terminals and one minimal DFA per distinct regex terminal, cached process-wide (JSON strings,
numbers and formats recur across schemas); the product of minimal parts is already minimal, so it
needs neither a minimization nor a liveness pass. JSON Schema extra-key terminals (any key but the
declared names) skip the regex parser: their DFA is built from the names' trie
(:mod:`structgen.automaton.key_dfa`). The subset construction, Moore refinement and the
product run as numba kernels when numba is installed (``STRUCTGEN_NO_NUMBA=1``: numpy/Python).
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import lru_cache

import numpy as np

from structgen.automaton.determinize import minimize, subset_construction, subset_construction_cp
from structgen.automaton.dfa import ByteDFA, LexerDFA
from structgen.automaton.key_dfa import key_exclusion_dfa
from structgen.automaton.nfa import build_nfa
from structgen.automaton.product import Component, literal_trie, product_dfa
from structgen.automaton.utf8_dfa import expand_utf8
from structgen.frontends.json_schema.regexes import (
    exclusion_terminal,
    register_emptiness_check,
    register_terminal_check,
)
from structgen.frontends.regex_ast import Alt, And, Concat, Node, Not, Repeat
from structgen.frontends.regex_parser import flags_from_string, parse_literal, parse_regex
from structgen.ir.grammar import Terminal
from structgen.limits import DEFAULT_LIMITS, Limits

__all__ = ["compile_regex_dfa", "build_lexer_dfa", "dfa_from_asts", "regex_is_empty"]


def _class_dfa_from_asts(
    nodes: Sequence[Node], limits: Limits, what: str = ""
) -> tuple[np.ndarray, np.ndarray, list[int], int]:
    """Minimal tagged DFA for the union of ``nodes`` over byte classes: (``(S, C)`` int32, ``(256,)``
    byte classes, tag bitsets, start), by the byte-level pipeline."""
    nfa, start, ends = build_nfa(list(nodes), limits.max_nfa_states, what, limits)
    tags: dict[int, int] = {}
    for i, e in enumerate(ends):
        tags[e] = tags.get(e, 0) | (1 << i)
    trans_cls, classes, state_tags = subset_construction(nfa, start, tags, limits, what)
    trans_min, tags_min, start_min = minimize(trans_cls, state_tags, 1, limits, what)
    return trans_min, classes, tags_min, start_min


def _has_boolean(nodes: Sequence[Node]) -> bool:
    """Whether an intersection/complement node occurs (those are built from byte DFAs)."""
    stack = list(nodes)
    while stack:
        node = stack.pop()
        if isinstance(node, And | Not):
            return True
        if isinstance(node, Concat | Alt):
            stack.extend(node.items)
        elif isinstance(node, Repeat):
            stack.append(node.item)
    return False


def dfa_from_asts(
    nodes: Sequence[Node], limits: Limits, what: str = "", renumber: bool = True
) -> tuple[np.ndarray, list[int], int]:
    """Minimal DFA for the union of ``nodes``, tagged: returns (``(S, 256)`` int32, tag bitsets, start).

    Bit ``i`` of a state's tag is set when the input read so far is in the language of ``nodes[i]``.
    Without intersection/complement nodes the automaton is determinized and minimized over code
    points, then spelled out in UTF-8 (:mod:`structgen.automaton.utf8_dfa`); otherwise over bytes.
    Both give the same table (minimal, breadth-first numbering); ``renumber=False`` skips the
    numbering where only the language and the tags matter (state 0 is still dead).
    """
    if _has_boolean(nodes):
        trans_min, classes, tags_min, start_min = _class_dfa_from_asts(nodes, limits, what)
        full = np.ascontiguousarray(trans_min[:, classes], dtype=np.int32)  # (S, 256) int32
        return full, tags_min, start_min
    nfa, start, ends = build_nfa(list(nodes), limits.max_nfa_states, what, limits, codepoints=True)
    tags: dict[int, int] = {}
    for i, e in enumerate(ends):
        tags[e] = tags.get(e, 0) | (1 << i)
    trans_cp, starts, state_tags = subset_construction_cp(nfa, start, tags, limits, what)
    trans_min, tags_min, start_min = minimize(trans_cp, state_tags, 1, limits, what)
    return expand_utf8(trans_min, starts, tags_min, start_min, limits, what, renumber)


def byte_class_form(table: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``(S, 256)`` table -> (``(S, C)`` int32 over byte classes, ``(256,)`` class of each byte).

    Bytes with equal columns share a class (found through a 64-bit hash of the column, then checked
    exactly); classes are numbered by their smallest byte.
    """
    weights = np.random.default_rng(0x5EED).integers(1, 2**63 - 1, size=table.shape[0], dtype=np.uint64)
    with np.errstate(over="ignore"):
        h = (table.T.astype(np.uint64) * weights).sum(axis=1, dtype=np.uint64)  # (256,)
    _, first, inv = np.unique(h, return_index=True, return_inverse=True)
    order = np.argsort(first, kind="stable")
    rank = np.empty_like(order)
    rank[order] = np.arange(len(order))
    classes = rank[inv.reshape(-1)].astype(np.int64)
    trans = np.ascontiguousarray(table[:, first[order]], dtype=np.int32)
    if not np.array_equal(trans[:, classes], table):  # pragma: no cover - a 64-bit hash collision
        _, first, inv = np.unique(table.T, axis=0, return_index=True, return_inverse=True)
        return np.ascontiguousarray(table[:, first], dtype=np.int32), inv.reshape(-1).astype(np.int64)
    return trans, classes


@lru_cache(maxsize=256)
def _compile_regex_dfa_cached(pattern: str, limits: Limits, flags: str) -> ByteDFA:
    what = f"compiling regex {pattern[:80]!r}"
    ast = parse_regex(pattern, flags, limits)
    trans, tags, start = dfa_from_asts([ast], limits, what)
    accepting = np.array([t != 0 for t in tags], dtype=bool)
    trans.setflags(write=False)
    accepting.setflags(write=False)
    return ByteDFA(transitions=trans, accepting=accepting, start=start, pattern=pattern)


def compile_regex_dfa(pattern: str, limits: Limits | None = None, flags: str = "") -> ByteDFA:
    """A minimal byte DFA for ``pattern`` (structgen's Python ``re`` subset, whole-string match).

    State 0 is dead; every other state can reach acceptance; ``start`` is 0 only for an empty
    language. Raises ``InvalidRegex`` / ``UnsupportedRegex`` / ``LimitExceeded``. Cached.
    """
    return _compile_regex_dfa_cached(pattern, limits or DEFAULT_LIMITS, flags)


def regex_is_empty(pattern: str, limits: Limits | None = None) -> bool:
    """Whether ``pattern`` matches no string (its minimal DFA has no live start state)."""
    return compile_regex_dfa(pattern, limits).start == 0


@lru_cache(maxsize=2048)
def _terminal_dfa(
    pattern: str, is_literal: bool, flags: str, limits: Limits
) -> tuple[np.ndarray, np.ndarray, int, np.ndarray]:
    """One terminal's minimal DFA: (``(S, C)`` int32 class transitions, ``(256,)`` classes, start,
    ``(S,)`` accepting).

    Cached process-wide: JSON strings, numbers, whitespace and formats recur across grammars.
    """
    what = f"building the lexer DFA of terminal {pattern[:80]!r}"
    known = None if is_literal or flags else exclusion_terminal(pattern)
    if known is not None:  # an extra-key terminal: its DFA straight from the names' trie
        trans_cp, starts, cp_tags = key_exclusion_dfa(known.excluded, known.suffix, limits, what)
        trans_min, tags_min, start_min = minimize(trans_cp, cp_tags, 1, limits, what)
        full, tags, start = expand_utf8(trans_min, starts, tags_min, start_min, limits, what, False)
    else:
        node = parse_literal(pattern, flags) if is_literal else parse_regex(pattern, flags, limits)
        full, tags, start = dfa_from_asts([node], limits, what, renumber=False)
    trans, classes = byte_class_form(full)
    accepting = np.array([t != 0 for t in tags], dtype=bool)
    for a in (trans, classes, accepting):
        a.setflags(write=False)
    return trans, classes, start, accepting


def _terminal_is_empty(pattern: str, limits: Limits) -> bool:
    """Whether the terminal regex ``pattern`` matches nothing (its minimal DFA starts dead), through
    the terminal cache: a string region checked for emptiness is then built once for the lexer too."""
    return bool(_terminal_dfa(pattern, False, "", limits)[2] == 0)


# the JSON Schema lowering asks whether an intersected key/string region is empty, and builds string
# terminals while it can still fall back to a check (see regexes.py and lower_strings.py)
register_emptiness_check(_terminal_is_empty)
register_terminal_check(lambda pattern, limits: _terminal_dfa(pattern, False, "", limits))


def _trie_text(term: Terminal) -> bytes | None:
    """The UTF-8 bytes of a literal terminal the trie can hold (case-sensitive, encodable), else None."""
    if not term.is_literal:
        return None
    flags_from_string(term.flags)  # unknown flags raise InvalidRegex as parse_literal does
    if "i" in term.flags:
        return None
    try:
        return term.pattern.encode("utf-8")
    except UnicodeEncodeError:  # lone surrogates: parse_literal makes them match nothing
        return None


def build_lexer_dfa(terminals: Sequence[Terminal], limits: Limits | None = None) -> LexerDFA:
    """One DFA recognising every terminal's lexemes, tagged with terminal bitsets (bit i = terminal i).

    ``accepts[s]``: terminals whose language contains the bytes read so far;
    ``alive[s]``: terminals still completable from ``s``. Literal terminals (``is_literal``) match
    their exact text (case-insensitively with flag ``i``); others are regexes with their ``flags``.

    Built as the product (:mod:`structgen.automaton.product`) of one trie for the plain literals and
    one cached minimal DFA per distinct regex terminal; the result is the minimal tagged DFA of the
    union, numbered breadth-first (the tables a joint subset construction + minimization gives).
    """
    limits = limits or DEFAULT_LIMITS
    literals: list[tuple[bytes, int]] = []
    regex_bits: dict[tuple[str, bool, str], int] = {}
    for i, term in enumerate(terminals):
        text = _trie_text(term)
        if text is not None:
            literals.append((text, 1 << i))
        else:
            key = (term.pattern, term.is_literal, term.flags)
            regex_bits[key] = regex_bits.get(key, 0) | (1 << i)
    parts: list[Component] = []
    if literals:
        parts.append(literal_trie(literals))
    for (pattern, is_literal, flags), bits in regex_bits.items():
        trans, classes, start, accepting = _terminal_dfa(pattern, is_literal, flags, limits)
        n = trans.shape[0]
        accepts = tuple(bits if a else 0 for a in accepting.tolist())
        alive = (0,) + (bits,) * (n - 1)
        parts.append(Component(trans=trans, classes=classes, start=start, accepts=accepts, alive=alive))
    what = f"building the lexer for terminals {', '.join(t.name for t in terminals)[:120]}"
    trans_full, accepts_l, alive_l, start = product_dfa(parts, len(terminals), limits, what)
    accepting_arr = np.array([t != 0 for t in accepts_l], dtype=bool)
    trans_full.setflags(write=False)
    accepting_arr.setflags(write=False)
    dfa = ByteDFA(
        transitions=trans_full, accepting=accepting_arr, start=start, pattern="|".join(t.pattern for t in terminals)
    )
    return LexerDFA(dfa=dfa, alive=tuple(alive_l), accepts=tuple(accepts_l), names=tuple(t.name for t in terminals))
