"""Intersection/complement (And/Not nodes) and lookaheads: DFAs checked against Python's ``re``."""

from __future__ import annotations

import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from structgen.automaton.lexer import build_lexer_dfa, compile_regex_dfa, dfa_from_asts
from structgen.automaton.regex_algebra import bool_dfa
from structgen.errors import LimitExceeded, UnsupportedRegex
from structgen.frontends.regex_ast import And, Not
from structgen.frontends.regex_parser import parse_regex
from structgen.ir.grammar import Terminal
from structgen.limits import DEFAULT_LIMITS, Limits

# lookahead patterns: every row is checked against re.fullmatch
TABLE: dict[str, tuple[list[str], list[str]]] = {
    r"(?!foo)[a-z]+": (["fo", "bar", "fooo"[1:]], ["foo", "foobar", ""]),
    r"(?=.{2,4}$)[a-z]*": (["ab", "abcd"], ["a", "abcde", "a1"]),
    r"(?=[a-z]*\d)\w+": (["a1", "ab1c"], ["ab", "1a"[1:] + "x"]),
    r"a(?:b(?!c)|bc)[a-d]*": (["ab", "abd", "abca"], ["abc"[:2] + "x", "a"]),
    r"(?:x(?=y)|z)y?": (["xy", "z", "zy"], ["x", "xyy"]),
    r"@(?:(?!.*--)[a-z-]*)": (["@a-b", "@"], ["@a--b", "@--"]),
    r"(?=a|b$)[ab]+": (["a", "ab", "b"], ["ba", "bb"]),
    r"(?!)a|b": (["b"], ["a", ""]),
    r"(?!(?!a)).": (["a"], ["b", ""]),
    r"(?:(?!ab).)*": (["", "ba", "aa"], ["ab", "xaby"]),
}
ALPHABET = "abcdfoxyz-@1é\n"


@pytest.mark.parametrize("pattern", list(TABLE))
def test_lookahead_table(pattern: str) -> None:
    if "(?:(?!ab)." in pattern:  # a lookahead inside a repeat: refused, with its position
        with pytest.raises(UnsupportedRegex) as e:
            compile_regex_dfa(pattern)
        assert "inside a repeat" in str(e.value) and e.value.position == pattern.index("(?!")
        return
    dfa = compile_regex_dfa(pattern)
    yes, no = TABLE[pattern]
    for s in yes + no:
        expected = re.fullmatch(pattern, s) is not None
        assert dfa.matches(s.encode()) == expected, (pattern, s)
    assert all(re.fullmatch(pattern, s) for s in yes) and not any(re.fullmatch(pattern, s) for s in no)


@settings(max_examples=60, deadline=None)
@given(st.lists(st.text(alphabet=ALPHABET, max_size=8), min_size=1, max_size=40))
def test_lookaheads_agree_with_re(words: list[str]) -> None:
    for pattern in TABLE:
        if "(?:(?!ab)." in pattern:
            continue
        dfa = compile_regex_dfa(pattern)
        for w in words:
            assert dfa.matches(w.encode()) == (re.fullmatch(pattern, w) is not None), (pattern, w)


def _matches(node, text: bytes) -> bool:
    trans, tags, start = dfa_from_asts([node], DEFAULT_LIMITS)
    s = start
    for b in text:
        s = int(trans[s, b])
        if s == 0:
            return False
    return bool(tags[s])


def test_and_not_nodes() -> None:
    word, has_ab = parse_regex("[a-z]+"), parse_regex(".*ab.*")
    cases = {
        And((word, has_ab)): {"xab": True, "ab": True, "x": False, "AB": False},
        And((word, Not(has_ab))): {"x": True, "xab": False, "": False},
        Not(word): {"": True, "A": True, "é": True, "ab": False},
        And(()): {"": True, "anything": True},
    }
    for node, table in cases.items():
        for text, expected in table.items():
            assert _matches(node, text.encode()) == expected, (node, text)


def test_complement_stays_valid_utf8() -> None:
    trans, acc, start = bool_dfa(Not(parse_regex("a")), DEFAULT_LIMITS)
    for bad in (b"\xff", b"\xc3", b"\xed\xa0\x80", b"a\x80"):  # invalid UTF-8 / surrogate
        s = start
        for b in bad:
            s = int(trans[s, b])
            if s == 0:
                break
        assert s == 0 or not acc[s], bad
    assert _matches(Not(parse_regex("a")), "é".encode())


def test_product_limit_names_the_limit() -> None:
    # lengths divisible by 41 and by 53: 41 and 53 states, their product 41 * 53 = 2173
    limits = Limits(max_dfa_states=2000)
    node = And((parse_regex("(?:[ab]{41})*"), parse_regex("(?:[ab]{53})*")))
    with pytest.raises(LimitExceeded) as e:
        bool_dfa(node, limits)
    assert e.value.limit == "max_dfa_states"
    with pytest.raises(LimitExceeded) as e2:
        compile_regex_dfa("(?=(?:[ab]{41})*$)(?:[ab]{53})*", Limits(max_dfa_states=2000))
    assert e2.value.limit == "max_dfa_states"


def test_lookbehind_refused_with_position() -> None:
    with pytest.raises(UnsupportedRegex) as e:
        compile_regex_dfa("ab(?<=b)c")
    assert "lookbehind" in str(e.value) and e.value.position == 2


def test_lexer_terminals_with_lookaheads() -> None:
    terms = [Terminal("KW", "if|else"), Terminal("ID", "(?!(?:if|else)$)[a-z]+")]
    lex = build_lexer_dfa(terms)
    for text, expected in {"if": 0b01, "else": 0b01, "iff": 0b10, "x": 0b10}.items():
        s = lex.dfa.step(lex.dfa.start, text.encode())
        assert lex.accepts[s] == expected, text
