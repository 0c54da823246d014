"""Regexes over JSON text: integer/decimal ranges (brute force), patterns, excluded names, strings."""

from __future__ import annotations

import json
import random
import re
from decimal import Decimal

import pytest

from structgen.frontends.json_schema import regexes as rx


@pytest.mark.parametrize("seed", range(3))
def test_int_range_matches_brute_force(seed):
    rnd = random.Random(seed)
    for _ in range(150):
        lo = rnd.choice([None, rnd.randint(-400, 400)])
        hi = rnd.choice([None, rnd.randint(-400, 400)])
        r = rx.int_range(lo, hi)
        if r is None:
            assert lo is not None and hi is not None and lo > hi
            continue
        c = re.compile(r)
        for x in range(-1100, 1100, 7):
            assert bool(c.fullmatch(str(x))) == ((lo is None or x >= lo) and (hi is None or x <= hi)), (lo, hi, x)
        assert not c.fullmatch("01") and not c.fullmatch("-0")


def test_decimal_range_matches_brute_force():
    texts = []
    for ip in ["0", "1", "2", "3", "10", "12"]:
        for fp in ["", "0", "00", "5", "25", "50", "05", "123", "999", "1", "01", "3", "30"]:
            t = ip + ("." + fp if fp else "")
            texts += [t, "-" + t]
    bounds = [None] + [Decimal(x) for x in ["0", "1", "0.5", "-0.5", "2.25", "-2.25", "3", "0.001", "10"]]
    for lo in bounds:
        for hi in bounds:
            for ls in (False, True):
                for hs in (False, True):
                    for md in (None, 0, 2):
                        r = rx.decimal_range(lo, ls, hi, hs, md)
                        c = re.compile(r) if r else None
                        for t in texts:
                            v = Decimal(t)
                            ok = (lo is None or (v > lo if ls else v >= lo)) and (
                                hi is None or (v < hi if hs else v <= hi)
                            )
                            if md is not None:
                                ok = ok and (v * 10**md) % 1 == 0
                            assert bool(c and c.fullmatch(t)) == ok, (lo, ls, hi, hs, md, t)


@pytest.mark.parametrize(
    "pattern,texts",
    [
        ("^[a-z]+$", ["abc", "", "aB", 'a"b']),
        ("a", ["xay", "b", '"a']),
        ('^"', ['"x', 'x"']),
        (r"^\d{3}-\d{4}$", ["555-1234", "55-1234", "555-12345"]),
        ("[^a]", ["a", "b", "\n", '"']),
        ("^(foo|bar)$|^x", ["foo", "bar", "xyz", "foobar"]),
        (r"\s", ["a b", "ab", "a\u2028"]),
        ("^é+$", ["é", "éé", "e"]),
    ],
)
def test_pattern_translation_agrees_with_re_search(pattern, texts):
    c = re.compile('"' + rx.pattern_body_regex(pattern) + '"')
    for t in texts:
        assert bool(c.fullmatch(json.dumps(t, ensure_ascii=False))) == (re.search(pattern, t) is not None), (pattern, t)


@pytest.mark.parametrize(
    "pattern,construct",
    [("(?<=a)b", "lookbehind"), (r"(a)\1", "backreference"), (r"\p{L}", "Unicode property"), ("a^b", "anchor")],
)
def test_untranslatable_patterns_are_named(pattern, construct):
    with pytest.raises(rx.PatternError) as e:
        rx.pattern_body_regex(pattern)
    assert construct in e.value.construct


@pytest.mark.parametrize("names", [["a", "ab", "bc", ""], ["name", "age", "x"], ['a"b', "c"], ["é", "ab"]])
def test_exclusion_body_is_the_complement(names):
    c = re.compile('"' + rx.exclusion_body(names) + '"')
    for t in set(names) | {
        "",
        "a",
        "ab",
        "abc",
        "b",
        "bc",
        "x",
        "xy",
        "nam",
        "names",
        "age",
        "a\nb",
        'a"b',
        "c",
        "é",
        "éa",
        "\\",
    }:
        assert bool(c.fullmatch(json.dumps(t, ensure_ascii=False))) == (t not in names), (names, t)


def test_string_char_counts_code_points():
    c = re.compile('"' + rx.repeat(rx.CHAR, 1, 2) + '"')
    for s, ok in [("a", True), ("ab", True), ("abc", False), ("😀", True), ("😀😀", True), ("\n\t", True), ("", False)]:
        assert bool(c.fullmatch(json.dumps(s))) == ok, s  # ASCII-escaped: surrogate pairs count once
        assert bool(c.fullmatch(json.dumps(s, ensure_ascii=False))) == ok, s
