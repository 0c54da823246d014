"""Patterns intersected and complemented exactly: pattern with lengths/formats/other patterns,
``not`` of a pattern, lookaheads and inner anchors, patternProperties key regions, propertyNames.

Every instance is judged by ``jsonschema`` (with format checking) and the compiled grammar must agree
(instances avoid non-ASCII ``\\w``/``\\d`` matches, where ``jsonschema``'s Python ``re`` differs from ECMA-262).
"""

from __future__ import annotations

import json

import jsonschema
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import structgen
from structgen.errors import UnsupportedSchema
from structgen.frontends.json_schema import regexes as rx
from structgen.frontends.json_schema.formatting import dumps


def _accepts(compiled, value) -> bool:
    m = compiled.matcher()
    return m.accept_text(dumps(value)) and m.is_accepting()


def _valid(schema, value) -> bool:
    cls = jsonschema.validators.validator_for(schema, default=jsonschema.Draft202012Validator)
    return cls(schema, format_checker=cls.FORMAT_CHECKER).is_valid(value)


CASES: list[tuple[dict, list]] = [
    ({"type": "string", "pattern": "^[a-z]+$", "maxLength": 3}, ["ab", "abc", "abcd", "", "A"]),
    ({"type": "string", "pattern": "x", "minLength": 3, "maxLength": 4}, ["x", "axb", "abcx", "abcdx", "abc"]),
    ({"type": "string", "pattern": "^$|^[a-z][a-zA-Z]*$", "minLength": 1}, ["", "a", "aB", "B"]),
    ({"type": "string", "pattern": "^a", "format": "email"}, ["a@b.co", "b@c.co", "a"]),
    ({"type": "string", "format": "email", "maxLength": 8}, ["a@b.co", "abcd@b.co"]),
    ({"type": "string", "allOf": [{"pattern": "a"}, {"pattern": "b"}]}, ["ab", "ba", "a", "xbxa", ""]),
    ({"type": "string", "not": {"pattern": "^x"}}, ["x", "xy", "ax", "", "é"]),
    ({"not": {"pattern": "^x"}}, ["x", "y", 1, None, [1]]),
    ({"type": "string", "minLength": 2, "not": {"enum": ["ab"]}, "pattern": "b"}, ["ab", "bb", "b", "xab"]),
    ({"type": "string", "pattern": "^(?!@@)[\\w@]+$"}, ["@@a", "@a", "a", ""]),
    ({"type": "string", "pattern": "^(?!org\\.bukkit\\.)([a-z]+\\.)*[a-z]+$"}, ["org.bukkit.x", "org.x", "a"]),
    ({"type": "string", "pattern": "^(?=.{1,5}$)[a-z.]*$"}, ["", "a.b", "abcdef", "ab.cd"]),
    ({"type": "string", "pattern": "((?:[^/]*/)*)(?=\\.(yaml|yml|json))"}, ["a/b.yaml", "a.json", "a/b.txt", ".yml"]),
    ({"type": "string", "pattern": "(^a$)|(^b)"}, ["a", "ab", "b", "bc", "cb", ""]),
    ({"type": "string", "pattern": "^([^,]|$)"}, ["", "a", "ab", ",", ",a"]),
    ({"type": "string", "pattern": "^\\d+$"}, ["12", "a1"]),
    ({"type": "string", "pattern": '^[^"\\\\]*$'}, ["plain", 'q"uote', "back\\slash", "new\nline"]),
]


@pytest.mark.parametrize("schema, values", CASES, ids=[str(i) for i in range(len(CASES))])
def test_strings_agree_with_jsonschema(byte_vocab, schema, values) -> None:
    c = structgen.compile(byte_vocab, json_schema=schema, cache=False)
    for v in values:
        assert _accepts(c, v) == _valid(schema, v), (schema, v)


OBJECTS: list[tuple[dict, list]] = [
    (
        {"type": "object", "patternProperties": {"^a": {"type": "integer"}, "b$": {"minimum": 5}}},
        [{"ab": 5}, {"ab": 4}, {"a": "x"}, {"c": "x"}, {"b": 1}, {"cb": 6}, {"ab": 5.5}],
    ),
    (
        {
            "type": "object",
            "properties": {"ax": {"type": "string"}},
            "patternProperties": {"^a": {"minLength": 2}},
            "additionalProperties": {"type": "boolean"},
        },
        [{"ax": "xy"}, {"ax": "x"}, {"ay": "xy"}, {"ay": 1}, {"z": True}, {"z": 1}, {"ax": "xy", "z": False}],
    ),
    (
        {
            "type": "object",
            "patternProperties": {"^x-": {"type": "string"}, "^x-id$": {"pattern": "^[0-9]+$"}},
            "additionalProperties": False,
        },
        [{"x-a": "s"}, {"x-id": "12"}, {"x-id": "1a"}, {"y": "s"}, {"x-a": 1}],
    ),
    (
        {"type": "object", "properties": {"name": {}}, "patternProperties": {"^n": {"type": "string"}}},
        [{"name": "a"}, {"name": 1}, {"nick": 2}, {"other": 2}],
    ),
    (
        {
            "allOf": [
                {"patternProperties": {"^a": {"type": "integer"}}},
                {"patternProperties": {"^ab": {"maximum": 3}}, "additionalProperties": {"type": "null"}},
            ]
        },
        [{"abc": 3}, {"abc": 4}, {"ac": None}, {"ac": 1}, {"b": None}, {"b": 1}],
    ),
    (
        {"type": "object", "propertyNames": {"pattern": "^[a-z]+$", "maxLength": 3}, "additionalProperties": {}},
        [{"ab": 1}, {"abcd": 1}, {"A": 1}, {}],
    ),
    (
        {
            "type": "object",
            "properties": {"id": {"type": "integer"}},
            "propertyNames": {"pattern": "^[a-z]+$"},
            "patternProperties": {"^x": {"type": "string"}},
        },
        [{"id": 1}, {"id": 1, "xa": "s"}, {"id": 1, "xa": 2}, {"id": 1, "X": 2}, {"id": 1, "yy": 2}],
    ),
    (
        {
            "type": "object",
            "patternProperties": {"^(?!@@)[\\w@]+$": {"type": "integer"}},
            "additionalProperties": False,
        },
        [{"@a": 1}, {"@@a": 1}, {"a": "x"}],
    ),
]


@pytest.mark.parametrize("schema, values", OBJECTS, ids=[str(i) for i in range(len(OBJECTS))])
def test_keys_agree_with_jsonschema(byte_vocab, schema, values) -> None:
    c = structgen.compile(byte_vocab, json_schema=schema, cache=False)
    for v in values:
        assert _accepts(c, v) == _valid(schema, v), (schema, v)


KEY_SCHEMA = {
    "type": "object",
    "properties": {"ab": {"type": "boolean"}},
    "patternProperties": {"^a": {"type": "integer"}, "b": {"minimum": 2}, "^(?!c)..$": {"maximum": 7}},
    "additionalProperties": {"type": "null"},
}


@settings(max_examples=40, deadline=None)
@given(st.dictionaries(st.text(alphabet="abc", max_size=3), st.sampled_from([None, True, 1, 3, 9, 2.5]), max_size=3))
def test_key_regions_property(byte_vocab, obj) -> None:
    c = _key_schema_compiled(byte_vocab)
    if "ab" in obj:  # declared keys come first in schema order
        obj = {"ab": obj["ab"], **{k: v for k, v in obj.items() if k != "ab"}}
    assert _accepts(c, obj) == _valid(KEY_SCHEMA, obj), obj


_COMPILED: dict[int, object] = {}


def _key_schema_compiled(vocab):
    if id(vocab) not in _COMPILED:
        _COMPILED[id(vocab)] = structgen.compile(vocab, json_schema=KEY_SCHEMA, cache=False)
    return _COMPILED[id(vocab)]


@settings(max_examples=60, deadline=None)
@given(st.text(alphabet='ab,/."\\ é', max_size=6))
def test_translated_patterns_match_ecma_search(value) -> None:
    # patterns whose ECMA and Python semantics agree on this alphabet (no newline: Python's '$'
    # also matches before a final newline, ECMA's does not)
    for p in ("(^a$)|(^b)", "^([^,]|$)", "^(?!.*//)[a-z/.]*$", "a(?=b)", "(?!a)b$"):
        assert rx.pattern_matches(p, value) == _valid({"pattern": p}, value), (p, value)


def test_explain_reports_grammar_enforcement() -> None:
    schema = {
        "type": "object",
        "properties": {"s": {"type": "string", "pattern": "^(?!x)[a-z]+$", "maxLength": 4, "not": {"pattern": "q"}}},
        "patternProperties": {"^a": {"type": "integer"}, "b": {"type": "number"}},
        "propertyNames": {"maxLength": 5},
    }
    rep = structgen.explain(schema)
    assert rep.compiles, rep.refused
    hows = {(e["pointer"], e["keyword"]): e["how"] for e in rep.entries}
    assert hows[("#/properties/s", "pattern")].startswith("regex")
    assert hows[("#/properties/s", "maxLength")].startswith("regex")
    assert hows[("#/properties/s/not", "not")].startswith("regex")
    assert hows[("#", "patternProperties")].startswith("grammar")
    assert hows[("#/propertyNames", "propertyNames")].startswith("regex")


def test_untranslatable_pattern_is_checked_on_the_completed_string(byte_vocab) -> None:
    """A pattern the regex translator cannot express (lookbehind, backreference) is relaxed: the
    grammar takes any string there and the completed string is checked, exactly."""
    schema = {
        "type": "object",
        "properties": {"s": {"type": "string", "pattern": "(?<=a)b"}, "t": {"pattern": "^(a+)-\\1$"}},
    }
    c = structgen.compile(byte_vocab, json_schema=schema, cache=False)
    v = jsonschema.Draft202012Validator(schema)
    for text, want in [
        ('{"s": "xab", "t": "aa-aa"}', True),
        ('{"s": "xb", "t": "aa-aa"}', False),
        ('{"s": "ab", "t": "aa-a"}', False),
        ('{"t": "a-a"}', True),
    ]:
        m = c.matcher()
        assert (m.accept_text(text) and m.is_accepting()) is want is v.is_valid(json.loads(text)), text
    hows = {(e["pointer"], e["keyword"]): e["how"] for e in structgen.explain(schema).entries}
    assert (
        "lookbehind" in hows[("#/properties/s", "pattern")]
        and "check on completed values" in hows[("#/properties/s", "pattern")]
    )
    with pytest.raises(UnsupportedSchema) as e:  # in a key pattern there is no completed value to check
        structgen.compile(byte_vocab, json_schema={"patternProperties": {"(?<=a)b": {}}}, cache=False)
    assert "lookbehind" in str(e.value) and e.value.keyword == "patternProperties"


@pytest.mark.parametrize(
    "pattern",
    ["^[a-z]+(?<!admin)$", "^(a+)-\\1$", "(?<=a)b", "\\bfoo\\b", "^(?i:abc)$", "^[a-z]{2}(?!x(?<=y))q$"],
)
def test_untranslatable_patterns_keep_a_superset_in_the_grammar(pattern) -> None:
    """The grammar's approximation of a pattern it cannot translate contains every matching string
    (the check on the completed string then makes it exact), and still constrains where it can."""
    import re

    body = re.compile(rx.pattern_superset_body_regex(pattern))
    samples = [
        "bob",
        "admin",
        "xadmin",
        "aa-aa",
        "a-a",
        "ab",
        "b",
        "Éva",
        "foo bar",
        "a foo",
        "ABC",
        "abc",
        "zzq",
        "xq",
        "",
    ]
    for s in samples:
        if re.search(pattern, s):
            assert body.fullmatch(json.dumps(s, ensure_ascii=False)[1:-1]), (pattern, s)
    if pattern.startswith("^[a-z]"):
        assert not body.fullmatch("BOB") and not body.fullmatch("")
