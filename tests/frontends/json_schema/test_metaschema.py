"""The fast metaschema check (``metaschema.is_valid_schema``) against jsonschema's ``check_schema``,
and the InvalidSchema errors it leaves to jsonschema."""

from __future__ import annotations

import copy
import json
import random
import sys
from pathlib import Path
from typing import Any

import jsonschema
import pytest

import structgen
from structgen.errors import InvalidSchema
from structgen.frontends.json_schema.metaschema import is_valid_schema

ROOT = Path(__file__).resolve().parents[3]
DRAFTS = [
    jsonschema.Draft202012Validator,
    jsonschema.Draft201909Validator,
    jsonschema.Draft7Validator,
    jsonschema.Draft6Validator,
    jsonschema.Draft4Validator,
]
# values that break one keyword's metaschema rule each (and some that do not)
MUTATIONS: list[tuple[str, Any]] = [
    ("type", "strin"),
    ("type", ["string", "string"]),
    ("type", []),
    ("type", 5),
    ("required", "name"),
    ("required", ["a", "a"]),
    ("required", []),
    ("minLength", -1),
    ("minLength", 1.5),
    ("maxItems", "3"),
    ("pattern", "(unclosed"),
    ("pattern", 7),
    ("enum", []),
    ("enum", [1, True]),
    ("enum", [1, 1.0]),
    ("properties", []),
    ("properties", {"a": 3}),
    ("items", "x"),
    ("items", [{"type": "string"}]),
    ("additionalProperties", "no"),
    ("allOf", []),
    ("anyOf", {}),
    ("multipleOf", 0),
    ("multipleOf", -2),
    ("exclusiveMinimum", True),
    ("exclusiveMinimum", 3),
    ("$ref", 5),
    ("$id", 3),
    ("$anchor", "1bad"),
    ("uniqueItems", "yes"),
    ("dependencies", {"a": ["b", "b"]}),
    ("dependencies", {"a": 3}),
    ("dependentRequired", {"a": "b"}),
    ("const", None),
    ("format", 3),
    ("title", 3),
    ("default", {"anything": [1]}),
    ("x-unknown", {"type": 5}),
    ("definitions", {"a": {"type": "nope"}}),
    ("$defs", {"a": {"minimum": "0"}}),
    ("patternProperties", {"[": {}}),
    ("propertyNames", {"pattern": "(("}),
    ("contains", 1),
    ("if", {"type": "bogus"}),
]


def _jsonschema_accepts(cls: Any, schema: Any) -> bool:
    try:
        cls.check_schema(schema)
    except jsonschema.SchemaError:
        return False
    return True


def _subschemas(schema: Any) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    stack = [schema]
    while stack:
        node = stack.pop()
        if isinstance(node, dict):
            out.append(node)
            stack.extend(node.values())
        elif isinstance(node, list):
            stack.extend(node)
    return out


def _bench_schemas(n: int) -> list[Any]:
    sys.path.insert(0, str(ROOT / "tests" / "conformance"))
    try:
        import harness
    finally:
        sys.path.pop(0)
    try:
        return [c["schema"] for split in ("Github_medium", "JsonSchemaStore") for c in harness.bench_cases(split, n)]
    except FileNotFoundError:
        pytest.skip("JSONSchemaBench dev splits not present")


@pytest.mark.filterwarnings("ignore::FutureWarning")  # jsonschema's "regex" format check compiles patterns
def test_fast_check_never_accepts_what_jsonschema_rejects() -> None:
    rng = random.Random(3)
    base = _bench_schemas(12) + [{"type": "object", "properties": {"a": {"type": "string"}}}]
    checked = rejected = 0
    for schema in base:
        for _ in range(5):
            mutant = copy.deepcopy(schema)
            nodes = _subschemas(mutant)
            node = rng.choice(nodes)
            kw, val = rng.choice(MUTATIONS)
            node[kw] = copy.deepcopy(val)
            for cls in DRAFTS:
                fast = is_valid_schema(cls, mutant)
                slow = _jsonschema_accepts(cls, mutant)
                assert not fast or slow, (cls.__name__, kw, val, json.dumps(mutant)[:200])
                checked += 1
                rejected += not slow
    assert rejected > checked // 10  # the mutations do break schemas


@pytest.mark.filterwarnings("ignore::FutureWarning")
def test_fast_check_accepts_valid_bench_schemas() -> None:
    """The fast path is taken for the schemas it is for (else it would save nothing)."""
    schemas = _bench_schemas(10)
    for cls in DRAFTS:
        valid = [s for s in schemas if _jsonschema_accepts(cls, s)]
        fast = [s for s in valid if is_valid_schema(cls, s)]
        assert len(fast) >= 0.9 * len(valid), cls.__name__


@pytest.mark.parametrize(
    ("schema", "pointer"),
    [
        ({"type": "object", "properties": {"a": {"type": "strin"}}}, "#/properties/a/type"),
        ({"properties": {"a": {"minLength": -1}}}, "#/properties/a/minLength"),
        ({"$schema": "http://json-schema.org/draft-04/schema#", "required": []}, "#/required"),
        ({"items": {"enum": 5}}, "#/items/enum"),
    ],
)
def test_invalid_schema_errors_are_jsonschemas(byte_vocab: Any, schema: dict[str, Any], pointer: str) -> None:
    with pytest.raises(InvalidSchema) as got:
        structgen.compile(byte_vocab, json_schema=schema, cache=False)
    assert got.value.pointer == pointer
    cls = jsonschema.Draft4Validator if "$schema" in schema else jsonschema.Draft202012Validator
    with pytest.raises(jsonschema.SchemaError) as ref:
        cls.check_schema(schema)
    assert ref.value.message in str(got.value)
