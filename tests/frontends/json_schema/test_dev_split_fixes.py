"""Regressions found by running every JSONSchemaBench dev-split schema through the conformance harness."""

from __future__ import annotations

import structgen
from structgen.frontends.json_schema.explain import explain
from structgen.frontends.json_schema.formats import check_format
from structgen.frontends.json_schema.formatting import dumps


def _accepts(compiled, value) -> bool:
    m = compiled.matcher()
    return m.accept_text(dumps(value)) and m.is_accepting()


def test_long_max_items_chain_compiles_without_recursion(byte_vocab):
    # Github_easy/o9925, o9953: maxItems 1000 built its chain of states recursively (RecursionError)
    schema = {"type": "array", "items": {"type": "string", "maxLength": 2}, "maxItems": 1500}
    c = structgen.compile(byte_vocab, json_schema=schema, cache=False)
    assert _accepts(c, ["ab"] * 1500)
    assert not _accepts(c, ["ab"] * 1501)
    assert _accepts(c, [])


def test_long_max_items_chain_with_contains(byte_vocab):
    schema = {"type": "array", "items": {"type": "integer"}, "maxItems": 1200, "contains": {"const": 7}}
    c = structgen.compile(byte_vocab, json_schema=schema, cache=False, draft="2020-12")
    assert _accepts(c, [1] * 1199 + [7])
    assert not _accepts(c, [1] * 1200)
    assert not _accepts(c, [1] * 1200 + [7])


def test_iri_formats(byte_vocab):
    # Github_easy/o76630: "format": "iri" was an annotation, so "not-an-iri" (no scheme) was accepted
    c = structgen.compile(byte_vocab, json_schema={"type": "string", "format": "iri"}, cache=False)
    for good in ["http://例え.jp/パス?q=ü", "urn:isbn:0451450523", "https://example.com/\U00010348"]:
        assert check_format("iri", good)
        assert _accepts(c, good), good
    for bad in ["not-an-iri", "", "http://a b", "//example.com/x", "ht tp://x"]:
        assert not check_format("iri", bad)
        assert not _accepts(c, bad), bad
    ref = structgen.compile(byte_vocab, json_schema={"type": "string", "format": "iri-reference"}, cache=False)
    for good in ["not-an-iri", "", "//example.com/ü", "../a?b#c", "http://例え.jp"]:
        assert _accepts(ref, good), good
    for bad in ["a b", "\\\\x", "%zz"]:
        assert not _accepts(ref, bad), bad


def test_keywords_newer_than_the_draft_are_ignored(byte_vocab):
    # Github_medium/o39097, o3385: a draft-04 schema with if/then; draft 4 has no 'if', so jsonschema
    # ignores it and {} is valid, while structgen applied it and rejected {}
    item = {
        "properties": {"type": {"type": "string"}},
        "if": {"properties": {"type": {"const": "action"}}},
        "then": {"required": ["category"]},
    }
    d4 = structgen.compile(
        byte_vocab, json_schema={"$schema": "http://json-schema.org/draft-04/schema#", **item}, cache=False
    )
    d7 = structgen.compile(
        byte_vocab, json_schema={"$schema": "http://json-schema.org/draft-07/schema#", **item}, cache=False
    )
    assert _accepts(d4, {}) and _accepts(d4, {"type": "action"})
    assert not _accepts(d7, {}) and not _accepts(d7, {"type": "action"}) and _accepts(d7, {"type": "x"})
    assert _accepts(d7, {"type": "action", "category": "c"})
    # const / propertyNames arrived in draft 6, dependentRequired in 2019-09
    c4 = structgen.compile(byte_vocab, json_schema={"$schema": "http://json-schema.org/draft-04/schema#", "const": 1})
    assert _accepts(c4, "anything")
    dr = {"$schema": "http://json-schema.org/draft-07/schema#", "dependentRequired": {"a": ["b"]}}
    c7 = structgen.compile(byte_vocab, json_schema=dr, cache=False)
    assert _accepts(c7, {"a": 1})
    c20 = structgen.compile(byte_vocab, json_schema={**dr, "$schema": "https://json-schema.org/draft/2020-12/schema"})
    assert not _accepts(c20, {"a": 1}) and _accepts(c20, {"a": 1, "b": 2})
    entries = explain(dr).entries
    assert {"pointer": "#", "keyword": "dependentRequired", "how": "not a keyword of draft-07 (ignored)"} in entries
