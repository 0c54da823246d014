"""Schema -> grammar IR, checked with Lark's Earley parser on the printed grammar (a reference
independent of structgen's engine), plus refusals, limits and pointers."""

from __future__ import annotations

import time

import lark
import pytest

from structgen.errors import InvalidSchema, LimitExceeded, UnsatisfiableSchema, UnsupportedSchema
from structgen.frontends.json_schema.formatting import dumps
from structgen.frontends.json_schema.lowering import lower_schema
from structgen.ir.printer import to_lark


class Raw(str):
    """Text given as is (not a value to serialize)."""


def _parser(schema, **opt):
    low = lower_schema(schema, opt)
    return lark.Lark(to_lark(low.grammar), parser="earley", lexer="dynamic_complete"), low


def _accepts(p, text):
    try:
        p.parse(text)
        return True
    except lark.exceptions.LarkError:
        return False


CASES = [
    (
        {
            "type": "object",
            "properties": {
                "name": {"type": "string", "maxLength": 5},
                "age": {"type": "integer", "minimum": 0, "maximum": 150},
            },
            "required": ["name"],
        },
        [{"name": "bob"}, {"name": "bob", "age": 3}, {"name": "bob", "age": 3, "x": [1, {"y": None}]}],
        [{"age": 3}, {"name": "bobbbbb"}, {"name": "b", "age": -1}, Raw('{"age": 3, "name": "b"}')],
    ),
    (
        {
            "type": "object",
            "properties": {"a": {"type": "number", "minimum": 0.5, "exclusiveMaximum": 3}},
            "additionalProperties": False,
        },
        [{"a": 0.5}, {"a": 2.999}, {}],
        [{"a": 3}, {"a": 0.4}, {"b": 1}],
    ),
    (
        {
            "anyOf": [
                {"type": "string", "pattern": "^a+$"},
                {"type": "array", "items": {"enum": [1, "x", None]}, "minItems": 2},
            ]
        },
        ["aaa", [1, "x"], [None, None, 1]],
        ["b", [1], [2, 1]],
    ),
    (
        {
            "$defs": {
                "node": {
                    "type": "object",
                    "properties": {
                        "v": {"type": "integer"},
                        "kids": {"type": "array", "items": {"$ref": "#/$defs/node"}},
                    },
                    "required": ["v"],
                    "additionalProperties": False,
                }
            },
            "$ref": "#/$defs/node",
        },
        [{"v": 1, "kids": [{"v": 2}, {"v": 3, "kids": []}]}],
        [{"v": 1, "kids": [{}]}],
    ),
    ({"oneOf": [{"type": "integer"}, {"type": "string"}]}, [1, "a"], [1.5, None]),
    (
        {"oneOf": [{"required": ["a"]}, {"required": ["b"]}], "type": "object"},
        [{"a": 1}, {"b": 1}],
        [{"a": 1, "b": 2}, {}],
    ),
    (
        {
            "allOf": [
                {"type": "object", "properties": {"a": {"type": "integer"}}},
                {"properties": {"a": {"minimum": 3}}, "required": ["a"]},
            ]
        },
        [{"a": 3}],
        [{"a": 2}, {}],
    ),
    (
        {"type": "array", "items": {"type": "boolean"}, "uniqueItems": True},
        [[True, False], [], [False]],
        [[True, True]],
    ),
    (
        {"type": "array", "contains": {"const": 5}, "minContains": 2, "maxContains": 2},
        [[5, 5], [1, 5, 2, 5]],
        [[5], [1, 2], [5, 5, 5]],
    ),
    (
        {
            "type": "object",
            "if": {"properties": {"c": {"const": "US"}}, "required": ["c"]},
            "then": {"properties": {"z": {"type": "string", "pattern": "^[0-9]{5}$"}}},
            "else": {"properties": {"z": {"type": "integer"}}},
        },
        [{"c": "US", "z": "12345"}, {"c": "FR", "z": 3}, {"z": 3}],
        [{"c": "US", "z": "1"}, {"c": "FR", "z": "12345"}],
    ),
    (
        {"type": "string", "format": "date-time"},
        ["2020-02-29T10:00:00Z", "2021-12-31T23:59:59.5+01:00"],
        ["2021-02-29T10:00:00Z", "x"],
    ),
    ({"type": "string", "format": "ipv4"}, ["1.2.3.4", "255.255.255.255"], ["256.1.1.1", "1.2.3"]),
    ({"not": {"type": "string"}}, [1, None, [1]], ["a"]),
    ({"type": "integer", "multipleOf": 7}, [0, 14, -21, 700], [1, 15, -20]),
    ({"type": "number", "multipleOf": 0.01, "minimum": 0}, [0, 1.25, 3], [1.255, -1]),
    ({"dependentRequired": {"a": ["b"]}, "type": "object"}, [{"a": 1, "b": 2}, {"b": 1}, {}], [{"a": 1}]),
    (
        {"type": "object", "patternProperties": {"^x-": {"type": "integer"}}, "additionalProperties": False},
        [{"x-a": 1}, {}],
        [{"x-a": "s"}, {"y": 1}],
    ),
    ({"type": "object", "propertyNames": {"maxLength": 2}}, [{"ab": 1}, {}], [{"abc": 1}]),
    ({"type": "integer", "minimum": 1}, [1, 1.0], [0, 0.5]),
]


@pytest.mark.parametrize("schema,good,bad", CASES)
def test_lowering_agrees_with_lark_reference(schema, good, bad):
    p, _ = _parser(schema)
    for v in good:
        text = v if isinstance(v, Raw) else dumps(v)
        assert _accepts(p, text), f"valid rejected: {text!r}"
    for v in bad:
        text = v if isinstance(v, Raw) else dumps(v)
        assert not _accepts(p, text), f"invalid accepted: {text!r}"


@pytest.mark.parametrize(
    "style,opts,good,bad",
    [
        ("compact", {}, ['{"a":1,"b":[1,2]}'], ['{"a": 1, "b": [1, 2]}']),
        ("pretty", {"indent": 2}, ['{\n  "a": 1,\n  "b": [\n    1,\n    2\n  ]\n}'], ['{"a": 1, "b": [1, 2]}']),
        ("flexible", {"max_ws": 3}, ['{ "a" :1 ,\n"b":[ 1,2]}', '{"a": 1, "b": [1, 2]}'], ['{     "a":1}']),
        ("default", {}, ['{"a": 1, "b": [1, 2]}'], ['{"a":1,"b":[1,2]}', '{"b": [1, 2], "a": 1}']),
    ],
)
def test_styles(style, opts, good, bad):
    schema = {
        "type": "object",
        "properties": {"a": {"type": "integer"}, "b": {"type": "array", "items": {"type": "integer"}}},
    }
    p, _ = _parser(schema, style=style, **opts)
    for t in good:
        assert _accepts(p, t), t
    for t in bad:
        assert not _accepts(p, t), t


def test_any_order_enforces_required_and_forbids_duplicates():
    schema = {
        "type": "object",
        "properties": {"a": {"type": "integer"}, "b": {"type": "integer"}},
        "required": ["a", "b"],
        "additionalProperties": False,
    }
    p, _ = _parser(schema, property_order="any")
    assert _accepts(p, '{"b": 2, "a": 1}') and _accepts(p, '{"a": 1, "b": 2}')
    assert not _accepts(p, '{"a": 1}') and not _accepts(p, '{"a": 1, "a": 1, "b": 2}')


@pytest.mark.parametrize(
    "schema,error,pointer,keyword",
    [
        ({"type": "strin"}, InvalidSchema, "#/type", None),
        ({"properties": {"a": {"minimum": "x"}}}, InvalidSchema, "#/properties/a/minimum", None),
        ({"type": "integer", "minimum": 5, "maximum": 3}, UnsatisfiableSchema, "#", None),
        ({"enum": []}, UnsatisfiableSchema, "#", None),
        ({"allOf": [{"type": "string"}, {"type": "integer"}]}, UnsatisfiableSchema, None, None),
        ({"type": "string", "minLength": 3, "maxLength": 2}, UnsatisfiableSchema, "#", None),
        (
            {"properties": {"p": {"type": "object", "patternProperties": {"(?<=x)y": {}}}}},
            UnsupportedSchema,
            "#/properties/p/patternProperties",
            "patternProperties",
        ),
        ({"$ref": "http://example.com/s.json"}, UnsupportedSchema, "#/$ref", "$ref"),
        ({"$ref": "#/$defs/missing"}, InvalidSchema, "#/$ref", None),
    ],
)
def test_errors_name_pointer_and_keyword(schema, error, pointer, keyword):
    with pytest.raises(error) as e:
        lower_schema(schema)
    if pointer is not None:
        assert e.value.pointer == pointer, str(e.value)
    if keyword is not None:
        assert e.value.keyword == keyword


def test_lenient_drops_and_lists():
    low = lower_schema({"type": "object", "patternProperties": {"(?<=a)b": {}}}, {"lenient": True})
    assert [d["keyword"] for d in low.dropped] == ["patternProperties"]


def test_remote_ref_from_registry():
    reg = {"http://example.com/int.json": {"type": "integer"}}
    p, _ = _parser({"properties": {"a": {"$ref": "http://example.com/int.json"}}}, registry=reg)
    assert _accepts(p, '{"a": 1}') and not _accepts(p, '{"a": "x"}')


@pytest.mark.parametrize(
    "schema,limit",
    [
        (
            {"type": "object", "properties": {f"p{i}": {"type": "integer"} for i in range(10000)}},
            "max_schema_properties",
        ),
        ({"type": "array", "minItems": 100000}, "max_repeat"),
    ],
)
def test_huge_schemas_fail_fast_with_named_limit(schema, limit):
    t0 = time.perf_counter()
    with pytest.raises(LimitExceeded) as e:
        lower_schema(schema)
    assert e.value.limit == limit
    assert time.perf_counter() - t0 < 5


def test_deep_nesting_fails_with_named_limit():
    schema: dict = {"type": "integer"}
    for _ in range(400):
        schema = {"type": "object", "properties": {"a": schema}}
    t0 = time.perf_counter()
    with pytest.raises(LimitExceeded) as e:
        lower_schema(schema)
    assert e.value.limit == "max_schema_depth" and time.perf_counter() - t0 < 5


def test_deep_recursion_is_a_small_grammar():
    schema = {
        "$defs": {"t": {"anyOf": [{"type": "integer"}, {"type": "array", "items": {"$ref": "#/$defs/t"}}]}},
        "$ref": "#/$defs/t",
    }
    p, low = _parser(schema)
    assert low.num_rules < 40
    assert _accepts(p, "[" * 30 + "1" + "]" * 30)
