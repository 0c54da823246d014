"""Extra-key terminals built straight from the names' trie against the same regex parsed as a regex.

The direct construction (:mod:`structgen.automaton.key_dfa`) must give the regex pipeline's
minimal DFA: same tables after breadth-first renumbering, for names with quotes, backslashes,
control characters, non-ASCII, common prefixes, the empty name, and any literal suffix.
"""

from __future__ import annotations

import json
import random

import numpy as np
import pytest

from structgen.automaton import lexer
from structgen.automaton.key_dfa import key_exclusion_dfa
from structgen.automaton.lexer import build_lexer_dfa, byte_class_form, dfa_from_asts
from structgen.automaton.utf8_dfa import bfs_renumber
from structgen.errors import LimitExceeded
from structgen.frontends.json_schema import regexes as rx
from structgen.frontends.regex_parser import parse_regex
from structgen.ir.grammar import Terminal
from structgen.limits import DEFAULT_LIMITS, Limits

ALPHABET = [*"abcde_u0/", '"', "\\", "\n", "\x01", "\x1f", "\x7f", "é", "\u2028", "😀"]


def _canonical(trans: np.ndarray, classes: np.ndarray, start: int, accepting: np.ndarray) -> tuple:
    table, tags, s = bfs_renumber(np.ascontiguousarray(trans[:, classes]), [int(a) for a in accepting], start)
    return table, tags, s


def _by_regex(pattern: str) -> tuple:
    full, tags, start = dfa_from_asts([parse_regex(pattern, "", DEFAULT_LIMITS)], DEFAULT_LIMITS, renumber=False)
    trans, classes = byte_class_form(full)
    return trans, classes, start, np.array([t != 0 for t in tags])


def _check(names: list[str], suffix: str) -> None:
    pattern = rx.quoted_terminal_regex(rx.exclusion_body(names), suffix)
    known = rx.exclusion_terminal(pattern)
    assert known is not None and known.excluded == tuple(names) and known.suffix == suffix
    direct = _canonical(*lexer._terminal_dfa.__wrapped__(pattern, False, "", DEFAULT_LIMITS))
    reference = _canonical(*_by_regex(pattern))
    assert direct[2] == reference[2]
    assert direct[1] == reference[1]
    assert np.array_equal(direct[0], reference[0]), (names, suffix)


@pytest.mark.parametrize(
    ("names", "suffix"),
    [
        (["a"], ": "),
        (["start_date", "end_date", "start"], ": "),
        ([""], ""),
        (["", "x"], ":"),
        (['say "hi"', "back\\slash", "tab\there", "\x00\x1f", "é", "😀"], ": "),
        (["u", "\\u", "\\u00"], ""),
        (["a" * 40], '"x'),
    ],
)
def test_direct_key_dfa_equals_regex_route(names: list[str], suffix: str) -> None:
    _check(names, suffix)


def test_random_name_sets_match_regex_route() -> None:
    rng = random.Random(7)
    for i in range(120):
        alpha = ALPHABET[:6] if i % 2 else ALPHABET
        names = ["".join(rng.choice(alpha) for _ in range(rng.randint(0, 6))) for _ in range(rng.randint(1, 6))]
        _check(names, rng.choice(["", ": ", ":", '"x']))


def test_lexer_tables_same_with_and_without_the_direct_route() -> None:
    names = ["id", "name", "nickname", "n"]
    key = Terminal("K", rx.quoted_terminal_regex(rx.exclusion_body(names), ": "))
    terms = [key, Terminal("S", rx.JSON_STRING), Terminal("C", ",", is_literal=True)]
    with_direct = build_lexer_dfa(terms)
    lexer._terminal_dfa.cache_clear()
    saved = dict(rx._EXCLUSION_TERMINALS)
    rx._EXCLUSION_TERMINALS.clear()
    try:
        assert rx.exclusion_terminal(key.pattern) is None
        by_regex = build_lexer_dfa(terms)
    finally:
        rx._EXCLUSION_TERMINALS.update(saved)
        lexer._terminal_dfa.cache_clear()
    assert np.array_equal(with_direct.dfa.transitions, by_regex.dfa.transitions)
    assert with_direct.accepts == by_regex.accepts and with_direct.alive == by_regex.alive


def test_direct_route_language() -> None:
    """Excluded names (canonically spelled) are rejected; other keys, and the names with another
    suffix or spelled with gratuitous escapes, behave as the regex says."""
    names = ["id", 'q"uote']
    dfa = lexer.compile_regex_dfa  # the regex route as an oracle for single strings
    pattern = rx.quoted_terminal_regex(rx.exclusion_body(names), ": ")
    lex = build_lexer_dfa([Terminal("K", pattern)])
    oracle = dfa(pattern)
    for text in ['"id": ', '"q\\"uote": ', '"i": ', '"idx": ', '"\\u0069d": ', '"": ', '"id":', '"ü": ']:
        s = lex.dfa.start
        t = oracle.start
        for b in text.encode():
            s = int(lex.dfa.transitions[s, b])
            t = int(oracle.transitions[t, b])
        assert bool(lex.accepts[s]) == bool(oracle.accepting[t]), text
    assert not lex.accepts[_walk(lex, '"id": ')] and lex.accepts[_walk(lex, '"idx": ')]


def _walk(lex: object, text: str) -> int:
    s = lex.dfa.start  # type: ignore[attr-defined]
    for b in text.encode():
        s = int(lex.dfa.transitions[s, b])  # type: ignore[attr-defined]
    return s


def test_limits_apply_to_the_direct_route() -> None:
    names = [json.dumps(i) for i in range(200)]
    with pytest.raises(LimitExceeded):
        key_exclusion_dfa(names, ": ", Limits(max_dfa_states=50))
