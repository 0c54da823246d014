"""structgen.compile(vocab, json_schema=...) end to end on a byte vocabulary; pydantic sources; explain."""

from __future__ import annotations

import enum
import json
from typing import Annotated, Literal, Union

import jsonschema
import pydantic
import pytest

import structgen
from structgen.errors import InvalidSchema, LimitExceeded, UnsupportedSchema
from structgen.frontends.json_schema.formatting import dumps
from structgen.frontends.json_schema.pydantic_source import schema_from_any


class Color(enum.Enum):
    RED = "red"
    GREEN = "green"


class Address(pydantic.BaseModel):
    street: str
    zip: Annotated[str, pydantic.StringConstraints(pattern=r"^[0-9]{5}$")]


class Person(pydantic.BaseModel):
    name: Annotated[str, pydantic.StringConstraints(min_length=1, max_length=20)]
    age: Annotated[int, pydantic.Field(ge=0, le=150)]
    color: Color
    kind: Literal["a", "b"]
    address: Address | None = None


class Tree(pydantic.BaseModel):
    value: int
    children: list[Tree] = []


def _accepts(compiled, text):
    m = compiled.matcher()
    return m.accept_text(text) and m.is_accepting()


def test_pydantic_model(byte_vocab):
    c = structgen.compile(byte_vocab, json_schema=Person)
    ok = Person(name="Ann", age=30, color=Color.RED, kind="a", address=Address(street="Main", zip="12345"))
    assert _accepts(c, dumps(ok.model_dump(mode="json")))
    assert _accepts(c, dumps({"name": "Ann", "age": 30, "color": "green", "kind": "b"}))
    assert not _accepts(c, dumps({"name": "", "age": 30, "color": "green", "kind": "b"}))
    assert not _accepts(c, dumps({"name": "Ann", "age": 151, "color": "green", "kind": "b"}))
    assert not _accepts(c, dumps({"name": "Ann", "age": 3, "color": "blue", "kind": "b"}))
    bad_zip = {"name": "Ann", "age": 30, "color": "red", "kind": "a", "address": {"street": "x", "zip": "1234"}}
    assert not _accepts(c, dumps(bad_zip))


def test_recursive_model(byte_vocab):
    c = structgen.compile(byte_vocab, json_schema=Tree)
    assert _accepts(c, dumps({"value": 1, "children": [{"value": 2, "children": [{"value": 3, "children": []}]}]}))
    assert not _accepts(c, dumps({"value": 1, "children": [{"children": []}]}))


@pytest.mark.parametrize(
    "tp,good,bad",
    [
        (list[Address], [[{"street": "a", "zip": "00000"}], []], [[{"street": "a"}]]),
        (Union[int, str], [1, "x"], [1.5, None]),
        (Color, ["red"], ["blue"]),
        (Literal[1, "x"], [1, "x"], [2]),
        (Annotated[int, pydantic.Field(gt=0, multiple_of=5)], [5, 10], [0, 7]),
        (Annotated[float, pydantic.Field(ge=0.5, lt=2)], [0.5, 1.75], [2, 0.25]),
    ],
)
def test_type_adapter_types(byte_vocab, tp, good, bad):
    c = structgen.compile(byte_vocab, json_schema=tp)
    for v in good:
        assert _accepts(c, dumps(v)), v
    for v in bad:
        assert not _accepts(c, dumps(v)), v


def test_schema_from_any_passes_dicts_and_rejects_junk():
    assert schema_from_any({"type": "string"}) == {"type": "string"}
    assert schema_from_any('{"type": "integer"}') == {"type": "integer"}
    with pytest.raises(InvalidSchema):
        schema_from_any(object())


def test_masks_allow_exactly_the_next_bytes(byte_vocab):
    c = structgen.compile(
        byte_vocab, json_schema={"type": "object", "properties": {"ok": {"type": "boolean"}}, "required": ["ok"]}
    )
    m = c.matcher()
    assert m.accept_text('{"ok": ')
    allowed = {byte_vocab.token_bytes[i] for i in m.allowed_token_ids() if i < 256}
    assert allowed == {b"t", b"f"}
    assert m.accept_text("true}") and m.is_accepting()


def test_options_and_info(byte_vocab):
    c = structgen.compile(
        byte_vocab, json_schema={"type": "object", "patternProperties": {"(?<=a)b": {}}}, lenient=True
    )
    assert [d["keyword"] for d in c.info["dropped"]] == ["patternProperties"]
    with pytest.raises(UnsupportedSchema) as e:
        structgen.compile(byte_vocab, json_schema={"type": "object", "patternProperties": {"(?<=a)b": {}}})
    assert e.value.keyword == "patternProperties" and e.value.pointer == "#/patternProperties"
    with pytest.raises(TypeError):
        structgen.compile(byte_vocab, json_schema={"type": "string"}, colour="red")
    with pytest.raises(LimitExceeded):
        structgen.compile(byte_vocab, json_schema={"type": "array", "minItems": 100000})
    compact = structgen.compile(
        byte_vocab, json_schema={"type": "array", "items": {"type": "integer"}}, style="compact"
    )
    assert _accepts(compact, "[1,2]") and not _accepts(compact, "[1, 2]")


def test_explain_reports_every_keyword():
    r = structgen.explain(
        {
            "type": "object",
            "properties": {
                "a": {"type": "string", "maxLength": 3},
                "b": {"type": "object", "patternProperties": {"(?<=a)b": {}}},
            },
        }
    )
    kws = {(e["pointer"], e["keyword"]) for e in r.entries}
    assert ("#/properties/a", "maxLength") in kws
    assert [e["keyword"] for e in r.refused] == ["patternProperties"] and not r.compiles
    assert "refused" in str(r)
    r2 = structgen.explain({"type": "integer", "minimum": 3, "maximum": 1})
    assert r2.error is not None and "UnsatisfiableSchema" in r2.error
    r3 = structgen.explain({"type": "object", "patternProperties": {"(?<=a)b": {}}}, lenient=True)
    assert r3.compiles is True and any(e["how"].startswith("dropped") for e in r3.entries)


@pytest.mark.parametrize(
    "schema,good,bad",
    [
        (
            {"type": "object", "properties": {"a": {"type": "integer"}}, "unevaluatedProperties": False},
            ['{"a": 1}', "{}"],
            ['{"a": 1, "b": 2}', '{"b": 2}'],
        ),
        (
            {
                "type": "object",
                "allOf": [{"properties": {"a": {"type": "integer"}}}],
                "properties": {"b": {"type": "string"}},
                "unevaluatedProperties": False,
            },
            ['{"b": "x", "a": 1}', '{"b": "x"}'],  # properties in schema order: own, then allOf's
            ['{"a": 1, "c": 2}'],
        ),
        (
            {"type": "array", "prefixItems": [{"type": "integer"}], "unevaluatedItems": {"type": "string"}},
            ["[1]", '[1, "x", "y"]'],
            ["[1, 2]", '[1, "x", 3]'],
        ),
        (
            {
                "$defs": {
                    "node": {"$dynamicAnchor": "t", "type": "object", "properties": {"k": {"$dynamicRef": "#t"}}}
                },
                "$ref": "#/$defs/node",
            },
            ['{"k": {"k": {}}}', "{}"],
            ['{"k": 1}', '{"k": {"k": []}}'],
        ),
    ],
)
def test_annotation_dependent_keywords_are_checked_exactly(byte_vocab, schema, good, bad):
    """unevaluatedProperties/unevaluatedItems/$dynamicRef depend on what other keywords evaluated:
    the grammar drops them (a superset) and a check on the completed value enforces them exactly."""
    c = structgen.compile(byte_vocab, json_schema=schema)
    v = jsonschema.Draft202012Validator(schema)
    for text in good:
        assert v.is_valid(json.loads(text)) and _accepts(c, text), text
    for text in bad:
        assert not v.is_valid(json.loads(text)) and not _accepts(c, text), text
    assert any("check on completed values" in e["how"] for e in structgen.explain(schema).entries)
