"""Python-re syntax -> regex AST: errors with positions, refused constructs named, flags, classes."""

from __future__ import annotations

import re

import pytest

from structgen.automaton.utf8 import contains
from structgen.errors import InvalidRegex, LimitExceeded, UnsupportedRegex
from structgen.frontends.regex_ast import CharSet, Concat, Repeat
from structgen.frontends.regex_parser import parse_literal, parse_regex
from structgen.limits import Limits


@pytest.mark.parametrize(
    ("pattern", "position"),
    [("a(b", 1), ("a[b", 1), ("a)", 1), ("x{2,1}", 2), ("*a", 0), ("a**", 2), ("(?P<1>a)", 4), ("\\", 0)],
)
def test_invalid_syntax_has_python_position(pattern: str, position: int) -> None:
    with pytest.raises(InvalidRegex) as e:
        parse_regex(pattern)
    try:
        re.compile(pattern)
    except re.error as err:
        assert e.value.position == err.pos == position
    assert f"position {position}" in str(e.value)
    assert "^" in str(e.value)  # caret line


@pytest.mark.parametrize(
    ("pattern", "construct", "position"),
    [
        (r"(a)\1", "backreference", 3),
        (r"(?P<x>a)(?P=x)", "backreference", 8),
        (r"(?:a(?=b))*", "lookahead inside a repeat", 4),
        (r"a(?<=a)b", "lookbehind", 1),
        (r"(?<=a)b", "lookbehind", 0),
        (r"(?<!a)b", "negative lookbehind", 0),
        (r"(a)?(?(1)b|c)", "conditional", 4),
        (r"x(?>ab)", "atomic group", 1),
        (r"xa*+", "possessive", 2),
        (r"a\bc", "word boundary", 1),
        (r"a^b", "anchor ^", 1),
        (r"a$b", "anchor $", 1),
        (r"[a^]\Ab", "anchor \\A", 4),
        (r"(^a)+", "anchor ^", 1),
    ],
)
def test_unsupported_constructs_are_named_with_position(pattern: str, construct: str, position: int) -> None:
    with pytest.raises(UnsupportedRegex) as e:
        parse_regex(pattern)
    assert construct in str(e.value)
    assert e.value.position == position, str(e.value)
    assert isinstance(e.value, InvalidRegex)


def test_edge_anchors_are_noops() -> None:
    assert parse_regex("^ab$") == parse_regex("ab")
    assert parse_regex(r"\Aab\Z") == parse_regex("ab")
    assert parse_regex("(^a|^b)c$") == parse_regex("(a|b)c")


def test_lazy_equals_greedy() -> None:
    assert parse_regex("a*?b+?c??d{2,3}?") == parse_regex("a*b+c?d{2,3}")


def test_repeat_bounds_and_limit() -> None:
    node = parse_regex("a{2,5}")
    assert isinstance(node, Repeat) and (node.min, node.max) == (2, 5)
    assert parse_regex("a{3,}").max is None  # type: ignore[union-attr]
    with pytest.raises(LimitExceeded) as e:
        parse_regex("a{5000}", limits=Limits(max_repeat=1000))
    assert e.value.limit == "max_repeat" and "5000" in str(e.value)


def test_unicode_categories_follow_python_re() -> None:
    node = parse_regex(r"\d")
    assert isinstance(node, CharSet)
    for ch in "0٣߀":
        assert contains(node.ranges, ord(ch))
    assert not contains(node.ranges, ord("²"))  # isdigit but not isdecimal: re's \d excludes it
    w = parse_regex(r"\w")
    assert isinstance(w, CharSet)
    for cp in range(0, 0x3000):
        assert contains(w.ranges, cp) == bool(re.match(r"\w", chr(cp))), hex(cp)


def test_ignorecase_literals_and_classes() -> None:
    k = parse_regex("(?i)k")
    assert isinstance(k, CharSet) and {cp for lo, hi in k.ranges for cp in range(lo, hi + 1)} == {0x4B, 0x6B, 0x212A}
    assert parse_literal("ab", "i") == Concat(
        (CharSet(((0x41, 0x41), (0x61, 0x61))), CharSet(((0x42, 0x42), (0x62, 0x62))))
    )
    assert parse_regex("(?i:a)b") == Concat((CharSet(((0x41, 0x41), (0x61, 0x61))), CharSet(((0x62, 0x62),))))


def test_flags_argument() -> None:
    assert parse_regex("a.b", flags="s") == parse_regex("(?s)a.b")
    with pytest.raises(InvalidRegex):
        parse_regex("a", flags="q")


def test_non_str_pattern_is_a_type_error() -> None:
    with pytest.raises(TypeError):
        parse_regex(b"abc")  # type: ignore[arg-type]
