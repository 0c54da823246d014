"""Regexes and grammar terminals -> minimal byte DFAs.

    compile_regex_dfa(pattern, limits, flags="") -> ByteDFA        # one regex, whole-string match
    build_lexer_dfa(terminals, limits) -> LexerDFA                 # several terminals, tagged

Pipeline: Python-``re`` parse -> AST -> Thompson NFA (byte ranges, UTF-8 sequences) -> subset
construction over byte classes -> prune + Moore minimization -> ``(S, 256)`` int32 table with
state 0 dead and every other state live (co-reachable to acceptance).
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import lru_cache

import numpy as np

from structgen.automaton.determinize import minimize, subset_construction
from structgen.automaton.dfa import ByteDFA, LexerDFA
from structgen.automaton.nfa import build_nfa
from structgen.frontends.json_schema.regexes import register_emptiness_check
from structgen.frontends.regex_ast import Node
from structgen.frontends.regex_parser import parse_literal, parse_regex
from structgen.ir.grammar import Terminal
from structgen.limits import DEFAULT_LIMITS, Limits

__all__ = ["compile_regex_dfa", "build_lexer_dfa", "dfa_from_asts", "regex_is_empty"]


def dfa_from_asts(nodes: Sequence[Node], limits: Limits, what: str = "") -> tuple[np.ndarray, list[int], int]:
    """Minimal DFA for the union of ``nodes``, tagged: returns (``(S, 256)`` int32, tag bitsets, start).

    Bit ``i`` of a state's tag is set when the input read so far is in the language of ``nodes[i]``.
    """
    nfa, start, ends = build_nfa(list(nodes), limits.max_nfa_states, what, limits)
    tags: dict[int, int] = {}
    for i, e in enumerate(ends):
        tags[e] = tags.get(e, 0) | (1 << i)
    trans_cls, classes, state_tags = subset_construction(nfa, start, tags, limits, what)
    trans_min, tags_min, start_min = minimize(trans_cls, state_tags, 1, limits, what)
    full = np.ascontiguousarray(trans_min[:, classes], dtype=np.int32)  # (S, 256) int32
    return full, tags_min, start_min


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


# the JSON Schema lowering asks whether an intersected key/string region is empty (see regexes.py)
register_emptiness_check(regex_is_empty)


def _alive_sets(trans: np.ndarray, accepts: list[int]) -> list[int]:
    """``alive[s]`` = OR of ``accepts`` over every state reachable from ``s`` (itself included)."""
    n = trans.shape[0]
    succ = [sorted(set(row)) for row in trans.tolist()]
    preds: list[list[int]] = [[] for _ in range(n)]
    for s, targets in enumerate(succ):
        for t in targets:
            if t != 0:
                preds[t].append(s)
    alive = list(accepts)
    alive[0] = 0
    work = [s for s in range(1, n) if alive[s]]
    while work:
        t = work.pop()
        bits = alive[t]
        for p in preds[t]:
            merged = alive[p] | bits
            if merged != alive[p]:
                alive[p] = merged
                work.append(p)
    return alive


def build_lexer_dfa(terminals: Sequence[Terminal], limits: Limits | None = None) -> LexerDFA:
    """One DFA recognising every terminal's lexemes, tagged with terminal bitsets (bit i = terminal i).

    ``accepts[s]``: terminals whose language contains the bytes read so far;
    ``alive[s]``: terminals still completable from ``s``. Literal terminals (``is_literal``) match
    their exact text (case-insensitively with flag ``i``); others are regexes with their ``flags``.
    """
    limits = limits or DEFAULT_LIMITS
    nodes: list[Node] = []
    for term in terminals:
        if term.is_literal:
            nodes.append(parse_literal(term.pattern, term.flags))
        else:
            nodes.append(parse_regex(term.pattern, term.flags, limits))
    what = f"building the lexer for terminals {', '.join(t.name for t in terminals)[:120]}"
    trans, tags, start = dfa_from_asts(nodes, limits, what)
    accepting = np.array([t != 0 for t in tags], dtype=bool)
    trans.setflags(write=False)
    accepting.setflags(write=False)
    dfa = ByteDFA(transitions=trans, accepting=accepting, start=start, pattern="|".join(t.pattern for t in terminals))
    alive = _alive_sets(trans, tags)
    return LexerDFA(dfa=dfa, alive=tuple(alive), accepts=tuple(tags), names=tuple(t.name for t in terminals))
