"""Pre-built groups: the key-exclusion regex is spliced in as an AST instead of being re-parsed,
and the result has exactly the language (the same minimal DFA) of parsing the text itself."""

from __future__ import annotations

import random
import re

import numpy as np
import pytest

from structgen.automaton.lexer import dfa_from_asts
from structgen.errors import InvalidRegex
from structgen.frontends.json_schema import regexes as rx
from structgen.frontends.regex_parser import _ATOMS, _substitute_groups, parse_regex
from structgen.limits import DEFAULT_LIMITS


def _parsed_both_ways(pattern: str) -> tuple[object, object, bool]:
    """(AST with registered groups spliced, AST parsed from the text alone, whether any was spliced)."""
    spliced = bool(_substitute_groups(pattern, 0)[1])
    with_atoms = parse_regex(pattern)
    saved = dict(_ATOMS)
    _ATOMS.clear()
    try:
        plain = parse_regex(pattern)
    finally:
        _ATOMS.update(saved)
    return with_atoms, plain, spliced


def _same_language(a: object, b: object) -> bool:
    ta, ga, sa = dfa_from_asts([a], DEFAULT_LIMITS)  # type: ignore[list-item]
    tb, gb, sb = dfa_from_asts([b], DEFAULT_LIMITS)  # type: ignore[list-item]
    return bool(np.array_equal(ta, tb)) and ga == gb and sa == sb


def _names(rng: random.Random) -> list[str]:
    alphabet = "ab_c.$é\u4e2d\U0001f600 -"
    return sorted({"".join(rng.choice(alphabet) for _ in range(rng.randint(1, 12))) for _ in range(rng.randint(8, 40))})


@pytest.mark.parametrize("seed", range(6))
def test_exclusion_group_spliced_with_the_same_language(seed: int) -> None:
    names = _names(random.Random(seed))
    if seed % 2:
        names.append("")  # the empty key is declared: the body loses its trailing '?'
    body = rx.exclusion_body(names)
    assert len(body) >= 256
    pattern = '"' + body + '"'
    spliced_ast, plain_ast, spliced = _parsed_both_ways(pattern)
    assert spliced
    assert _same_language(spliced_ast, plain_ast)
    matcher = re.compile(pattern)
    for name in names[:5]:
        assert not matcher.fullmatch('"' + name + '"')
    assert matcher.fullmatch('"zz_not_declared"')


def test_group_in_alternation_and_lookahead_contexts() -> None:
    body = rx.exclusion_body(_names(random.Random(42)))
    group = body.rstrip("?")
    for pattern in (
        "x|" + group + "|y",  # a one-item branch: re would merge a bare character into a class
        "(?!ab)" + body + "c",
        "(?:" + group + "){2}",
        group + "|" + group + "z",
    ):
        spliced_ast, plain_ast, spliced = _parsed_both_ways(pattern)
        assert spliced
        assert _same_language(spliced_ast, plain_ast)


def test_group_not_spliced_inside_a_class_or_after_an_escape_or_under_flags() -> None:
    group = rx.exclusion_body(_names(random.Random(7))).rstrip("?")
    for pattern, flags in (("[" + group + "]", 0), ("\\" + group, 0), ("(?i)" + group, 0), (group, re.IGNORECASE)):
        try:
            re.compile(pattern, flags)
        except re.error:
            continue
        assert not _substitute_groups(pattern, flags)[1]


def test_errors_report_the_original_position() -> None:
    group = rx.exclusion_body(_names(random.Random(3))).rstrip("?")
    pattern = group + "a{2,1}"
    with pytest.raises(InvalidRegex) as e:
        parse_regex(pattern)
    try:
        re.compile(pattern)
    except re.error as err:
        assert e.value.position == err.pos
