"""build_lexer_dfa: one DFA for several terminals, tagged with accepts/alive bitsets."""

from __future__ import annotations

import re

import pytest

from structgen.automaton.dfa import DEAD
from structgen.automaton.lexer import build_lexer_dfa
from structgen.errors import InvalidRegex, UnsupportedRegex
from structgen.ir.grammar import Terminal

TERMS = [
    Terminal("NUMBER", r"-?\d+(\.\d+)?"),
    Terminal("IF", "if", is_literal=True),
    Terminal("NAME", r"[a-z_][a-z_0-9]*"),
    Terminal("STRING", r'"([^"\\]|\\.)*"'),
    Terminal("WS", r"[ \t\n]+"),
    Terminal("SELECT", "select", is_literal=True, flags="i"),
    Terminal("DOTS", "a.b", is_literal=True),
]


def _bits(x: int) -> set[str]:
    return {TERMS[i].name for i in range(len(TERMS)) if x >> i & 1}


@pytest.mark.parametrize(
    ("text", "accepts", "alive"),
    [
        ("", set(), {t.name for t in TERMS}),
        ("if", {"IF", "NAME"}, {"IF", "NAME"}),
        ("i", {"NAME"}, {"IF", "NAME"}),
        ("iff", {"NAME"}, {"NAME"}),
        ("-12", {"NUMBER"}, {"NUMBER"}),
        ("-12.", set(), {"NUMBER"}),
        ('"ab', set(), {"STRING"}),
        ('"a\\"', set(), {"STRING"}),
        ("SeLeCt", {"SELECT"}, {"SELECT"}),
        ("select", {"SELECT", "NAME"}, {"SELECT", "NAME"}),
        ("a.b", {"DOTS"}, {"DOTS"}),
        ("axb", {"NAME"}, {"NAME"}),
    ],
)
def test_tags(text: str, accepts: set[str], alive: set[str]) -> None:
    lex = build_lexer_dfa(TERMS)
    s = lex.dfa.step(lex.dfa.start, text.encode())
    assert s != DEAD
    assert _bits(lex.accepts[s]) == accepts
    assert _bits(lex.alive[s]) == alive
    assert lex.names == tuple(t.name for t in TERMS)


def test_tags_agree_with_re_on_samples() -> None:
    lex = build_lexer_dfa(TERMS)
    samples = ["0", "12.5", "if", "ifx", "x_1", '"q"', " \n", "SELECT", "a.b", "a.c", "-", "é"]
    for text in samples:
        s = lex.dfa.step(lex.dfa.start, text.encode())
        want = set()
        for t in TERMS:
            pat = re.escape(t.pattern) if t.is_literal else t.pattern
            if re.fullmatch(pat, text, re.IGNORECASE if "i" in t.flags else 0):
                want.add(t.name)
        assert (_bits(lex.accepts[s]) if s else set()) == want, text


def test_dead_state_and_alive_invariants() -> None:
    lex = build_lexer_dfa(TERMS)
    assert lex.alive[DEAD] == 0 and lex.accepts[DEAD] == 0
    for s in range(1, lex.dfa.num_states):
        assert lex.alive[s] != 0
        assert lex.accepts[s] & ~lex.alive[s] == 0


def test_many_terminals_bitsets_beyond_64() -> None:
    terms = [Terminal(f"K{i}", f"kw{i}", is_literal=True) for i in range(100)]
    lex = build_lexer_dfa(terms)
    s = lex.dfa.step(lex.dfa.start, b"kw99")
    assert lex.accepts[s] == 1 << 99
    s = lex.dfa.step(lex.dfa.start, b"kw1")
    assert lex.accepts[s] == 1 << 1 and lex.alive[s] == sum(1 << i for i in [1] + list(range(10, 20)))


def test_bad_terminals_raise() -> None:
    with pytest.raises(UnsupportedRegex):
        build_lexer_dfa([Terminal("A", r"(a)\1")])
    with pytest.raises(InvalidRegex):
        build_lexer_dfa([Terminal("A", r"(a")])
