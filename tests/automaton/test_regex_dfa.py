"""Regex -> minimal byte DFA: accept/reject tables against Python's ``re`` and structural invariants."""

from __future__ import annotations

import re

import numpy as np
import pytest

from structgen.automaton.dfa import DEAD
from structgen.automaton.lexer import compile_regex_dfa
from structgen.errors import LimitExceeded
from structgen.limits import Limits

# pattern -> (strings that must match, strings that must not); every row is also checked against re.fullmatch
TABLE: dict[str, tuple[list[str], list[str]]] = {
    r"abc": (["abc"], ["", "ab", "abcd", "ABC"]),
    r"a(ba)*": (["a", "aba", "ababa"], ["", "ab", "abab", "b"]),
    r"(ab)+": (["ab", "abab"], ["", "a", "aba"]),
    r"(ac|[^a])+": (["acac", "b", "acb", "xyz"], ["", "a", "aca"]),
    r"\d{3}-\d{2}-\d{4}": (["123-45-6789"], ["123-456-789", "12-345-6789", ""]),
    r"\d+": (["0", "123", "١٢٣", "߀"], ["", "a", "1a", "²"]),
    r"\D": (["a", "²", "é"], ["1", "١"]),
    r"\w+": (["hello_world", "héllo", "世界", "abc123"], ["", "a b", "-", "😀"]),
    r"\W": ([" ", "-", "😀"], ["a", "_", "é"]),
    r"\s": ([" ", "\t", "\n", "\u3000", "\x1c"], ["a", ""]),
    r"\S+": (["abc", "é😀"], ["a b", ""]),
    r".": (["a", "é", "😀", "\r"], ["\n", "", "ab"]),
    r"(?s).": (["\n", "a"], ["", "ab"]),
    r"[^a-z]": (["A", "0", "é", "\n"], ["a", "z"]),
    r"[a-cx-z]+": (["abc", "xyz", "azb"], ["d", "w", ""]),
    r"[\d_]+": (["1_2", "١"], ["a"]),
    r"[\w.+-]+@[\w-]+\.[\w.]+": (["john.doe@example.com", "a+b@c-d.io"], ["john@", "@x.com", "a@b"]),
    r"a{2,4}": (["aa", "aaa", "aaaa"], ["a", "aaaaa", ""]),
    r"a{2,}": (["aa", "aaaaaa"], ["a", ""]),
    r"a{3}": (["aaa"], ["aa", "aaaa"]),
    r"a{,2}": (["", "a", "aa"], ["aaa"]),
    r"(?:ab|cd){2}": (["abcd", "cdab", "abab"], ["ab", "abcdab"]),
    r"a+?b*?c??": (["a", "aab", "abbc", "ac"], ["", "b", "acc"]),
    r"(?P<year>\d{4})-(?P<month>0[1-9]|1[0-2])-(?P<day>0[1-9]|[12]\d|3[01])": (
        ["2024-01-31", "1999-12-01"],
        ["2024-13-01", "2024-00-10", "2024-01-32", "24-01-01"],
    ),
    r"-?(0|[1-9]\d*)(\.\d+)?([eE][+-]?\d+)?": (["0", "-1.5", "12e10", "3.14E-2"], ["01", "1.", "-", "+1", ".5"]),
    r'"([^"\\]|\\["\\/bfnrt]|\\u[0-9a-fA-F]{4})*"': (
        ['""', '"abc"', '"a\\"b"', '"\\u00e9"', '"é😀"'],
        ['"', '"\\x"', '"a"b"'],
    ),
    r"(?i)hello": (["hello", "HELLO", "hElLo"], ["helo", "hello!"]),
    r"(?i)k": (["k", "K", "\u212a"], ["x"]),
    r"(?i)s": (["s", "S", "ſ"], ["x"]),
    r"(?i)[a-c]+": (["aBc", "CCC"], ["d"]),
    r"(?i)[^a]": (["b", "B"], ["a", "A"]),
    r"(?i:ab)c": (["ABc", "abc"], ["abC"]),
    r"(?x) a  b  # comment": (["ab"], ["a b"]),
    r"(?a)\w+": (["abc_1"], ["é"]),
    r"(?a)\d": (["1"], ["١"]),
    r"^abc$": (["abc"], ["abc\n"]),
    r"\Aabc\Z": (["abc"], ["ab"]),
    r"(?m)^a|b$": (["a", "b"], ["ab"]),
    r"(^a|^b)c": (["ac", "bc"], ["c"]),
    r"[😀-😂]+": (["😀😁😂"], ["😃", ""]),
    r"日本語?": (["日本", "日本語"], ["日", "日本語語"]),
    r"[\u0100-\u07ff\u0800-\uffff]": (["Ā", "߿", "ࠀ", "\uffff", "\ue000"], ["a", "😀"]),
    r"[^\x00-\x7f]": (["é", "😀", "\U0010ffff"], ["a", "\x7f"]),
    r"": ([""], ["a"]),
    r"a|": (["", "a"], ["b"]),
    r"(a|b)*a(a|b){3}": (["aaaa", "babab", "abbb"], ["abb", "bbbb"]),
    r"\\\.\[\]\(\)\{\}\*\+\?\|\^\$": (["\\.[](){}*+?|^$"], [""]),
    r"[]a]+": (["]", "a]"], ["b"]),
    r"[^]a]": (["b"], ["]", "a"]),
    r"\x41\u00e9\U0001F600\n\t": (["Aé😀\n\t"], ["Aé😀"]),
    r"(?:)+": ([""], ["a"]),
    r"a{0}b": (["b"], ["ab"]),
}


def check_table(pattern: str, good: list[str], bad: list[str]) -> None:
    """The one accept/reject helper: the DFA, re.fullmatch and the table must all agree."""
    dfa = compile_regex_dfa(pattern)
    for s in good:
        assert re.fullmatch(pattern, s), f"table error: re rejects {s!r} for {pattern!r}"
        assert dfa.matches(s.encode()), f"{pattern!r} should match {s!r}"
    for s in bad:
        assert not re.fullmatch(pattern, s), f"table error: re accepts {s!r} for {pattern!r}"
        assert not dfa.matches(s.encode()), f"{pattern!r} should not match {s!r}"


@pytest.mark.parametrize("pattern", list(TABLE))
def test_accept_reject_table(pattern: str) -> None:
    check_table(pattern, *TABLE[pattern])


@pytest.mark.parametrize("pattern", list(TABLE))
def test_dfa_invariants(pattern: str) -> None:
    """State 0 is dead (a sink), every other state is live, and the start is live unless empty."""
    dfa = compile_regex_dfa(pattern)
    t = dfa.transitions
    assert t.shape == (dfa.num_states, 256) and t.dtype == np.int32
    assert (t[DEAD] == DEAD).all() and not dfa.accepting[DEAD]
    # co-reachability: iterate "can reach accepting" to a fixpoint
    live = dfa.accepting.copy()
    for _ in range(dfa.num_states):
        nxt = live | live[t].any(axis=1)
        if (nxt == live).all():
            break
        live = nxt
    assert live[1:].all(), "every non-dead state must reach acceptance"
    assert dfa.start != DEAD


def test_minimal_sizes() -> None:
    # a minimal DFA has exactly these many live states (+1 dead)
    assert compile_regex_dfa(r"(a|b)*abb").num_states == 5
    assert compile_regex_dfa(r"a+|a*").num_states == 2  # == a*: one accepting state + dead
    assert compile_regex_dfa(r"[ab]{3}").num_states == 5


def test_utf8_partial_characters_are_states() -> None:
    dfa = compile_regex_dfa(r"é+")
    enc = "é".encode()
    mid = dfa.step(dfa.start, enc[:1])
    assert mid != DEAD and not dfa.accepting[mid]
    assert dfa.accepting[dfa.step(mid, enc[1:])]
    assert dfa.step(dfa.start, b"\xc3\x28") == DEAD  # invalid continuation


def test_surrogates_and_invalid_bytes_never_match() -> None:
    dfa = compile_regex_dfa(r"(?s).*")
    assert dfa.matches("a😀é".encode())
    assert not dfa.matches(b"\xed\xa0\x80")  # an encoded surrogate
    assert not dfa.matches(b"\xc0\x80")  # overlong
    assert not dfa.matches(b"\xff")
    assert not dfa.matches(b"\xf4\x90\x80\x80")  # beyond U+10FFFF


def test_empty_language() -> None:
    dfa = compile_regex_dfa(r"[^\s\S]")
    assert dfa.start == DEAD and dfa.num_states == 1


@pytest.mark.parametrize(
    ("pattern", "limits", "limit_name"),
    [
        (r"(?:a{1000}){1000}", Limits(), "max_nfa_states"),
        (r"(a|b)*a(a|b){20}", Limits(max_dfa_states=2000), "max_dfa_states"),
        (r"a{20000}", Limits(), "max_repeat"),
        (r"\w{1000}", Limits(max_nfa_states=50_000), "max_nfa_states"),
    ],
)
def test_limits_fail_fast(pattern: str, limits: Limits, limit_name: str) -> None:
    import time

    t0 = time.perf_counter()
    with pytest.raises(LimitExceeded) as e:
        compile_regex_dfa(pattern, limits)
    assert e.value.limit == limit_name
    assert limit_name in str(e.value)
    assert time.perf_counter() - t0 < 5.0


def test_default_dfa_limit_blowup_is_reported() -> None:
    """The exponential blow-up with default limits stops at max_dfa_states (no hang, no OOM)."""
    with pytest.raises(LimitExceeded) as e:
        compile_regex_dfa(r"(a|b)*a(a|b){16}", Limits(max_dfa_states=20_000))
    assert e.value.limit == "max_dfa_states"


def test_long_bounded_repeats_minimize_fast() -> None:
    """Acyclic DFAs are minimized in one bottom-up pass (Moore would need one round per length)."""
    import time

    t0 = time.perf_counter()
    dfa = compile_regex_dfa(r"a{4000}")
    assert dfa.num_states == 4002 and dfa.matches(b"a" * 4000) and not dfa.matches(b"a" * 3999)
    assert time.perf_counter() - t0 < 10.0


@pytest.mark.parametrize("pattern", [r"[ab]{1,6}c?", r"(ab|a)(bc|c){0,3}", r"x{2,5}y{0,3}z{3}", r"(\d{2}|\d{4})-\w"])
def test_acyclic_and_moore_minimization_agree(pattern: str, monkeypatch: pytest.MonkeyPatch) -> None:
    from structgen.automaton import determinize

    fast = compile_regex_dfa(pattern, Limits(max_repeat=9_999))
    monkeypatch.setattr(determinize, "_partition_acyclic", lambda *a: None)
    slow = compile_regex_dfa(pattern, Limits(max_repeat=9_998))  # another cache key
    assert fast.num_states == slow.num_states
    assert (fast.accepting == slow.accepting).all() and (fast.transitions == slow.transitions).all()
