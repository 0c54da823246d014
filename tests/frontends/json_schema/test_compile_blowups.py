"""Huge or adversarial JSON Schemas compile, or raise LimitExceeded naming the limit, within a few
seconds (issue #3 "Bad input"): big enums, conjunctions of many applicators, deep $ref chains,
exponential oneOf rewrites, and (when the data is present) two JSONSchemaBench schemas that used
to take 20-30 s."""

from __future__ import annotations

import json
import time
from pathlib import Path

import jsonschema
import pytest

import structgen
from structgen.compile.grammar_compiler import compile_grammar_engine
from structgen.errors import LimitExceeded
from structgen.frontends.json_schema.formatting import dumps
from structgen.frontends.json_schema.lowering import lower_schema
from structgen.limits import Limits

BENCH = Path("/work/shared/data/jsonschemabench")


def _accepts(compiled, text: str) -> bool:
    m = compiled.matcher()
    return m.accept_text(text) and m.is_accepting()


def _timed_compile(vocab, schema, limits: Limits | None = None):
    t0 = time.perf_counter()
    try:
        return structgen.compile(vocab, json_schema=schema, limits=limits, cache=False), time.perf_counter() - t0
    except LimitExceeded as e:
        return e, time.perf_counter() - t0


def test_big_enum_is_filtered_in_linear_time_and_stays_exact(byte_vocab):
    # an enum of n values was filtered by jsonschema's linear enum scan per value (O(n^2)) and
    # became n literal terminals; now a hash index and one trie-shaped regex terminal
    words = [f"item-{i:05d}" for i in range(6000)]
    schema = {"type": ["string", "number", "boolean"], "enum": [*words, 1.5, 7, True, "a", "ab", "abc"]}
    compiled, dt = _timed_compile(byte_vocab, schema)
    assert not isinstance(compiled, LimitExceeded), compiled
    assert dt < 10.0, f"compile took {dt:.1f} s"
    for v in ["item-00000", "item-05999", "a", "ab", "abc", 1.5, 7, True]:
        assert _accepts(compiled, dumps(v)), v
    assert _accepts(compiled, "7.0")  # 7 == 7.0 in JSON Schema
    for text in ['"item-06000"', '"item-0000"', '"abcd"', '""', "1.50", "false", "null", '"item-00000 "']:
        assert not _accepts(compiled, text), text


def test_intersected_big_enums_keep_only_common_values(byte_vocab):
    a = [f"v{i}" for i in range(0, 3000)]
    b = [f"v{i}" for i in range(2000, 5000)]
    compiled, dt = _timed_compile(byte_vocab, {"allOf": [{"enum": a}, {"enum": b}]})
    assert dt < 10.0, f"compile took {dt:.1f} s"
    assert _accepts(compiled, '"v2000"') and _accepts(compiled, '"v2999"')
    assert not _accepts(compiled, '"v1999"') and not _accepts(compiled, '"v3000"')


def test_conflicting_types_stop_distribution_of_many_anyofs(byte_vocab):
    # six anyOf of ten branches each: 10^6 combinations if distributed blindly; every object
    # branch contradicts the outer "type": "string", so only the string branches survive
    branches = [{"type": "object", "required": [f"k{i}"]} for i in range(9)] + [{"minLength": 1}]
    schema = {"type": "string", "allOf": [{"anyOf": branches} for _ in range(6)]}
    compiled, dt = _timed_compile(byte_vocab, schema)
    assert not isinstance(compiled, LimitExceeded), compiled
    assert dt < 5.0, f"compile took {dt:.1f} s"
    assert _accepts(compiled, '"x"') and not _accepts(compiled, '""') and not _accepts(compiled, "{}")


def test_deep_ref_chain_raises_the_depth_limit_not_recursion_error(byte_vocab):
    n = 400
    defs = {f"d{i}": {"type": "object", "properties": {"x": {"$ref": f"#/$defs/d{i + 1}"}}} for i in range(n)}
    defs[f"d{n}"] = {"type": "integer"}
    got, dt = _timed_compile(byte_vocab, {"$defs": defs, "$ref": "#/$defs/d0"})
    assert isinstance(got, LimitExceeded), got
    assert got.limit == "max_schema_depth"
    assert dt < 10.0, f"took {dt:.1f} s"


def test_exponential_oneof_rewrite_falls_back_to_a_checked_union(byte_vocab):
    # oneOf branches that are not disjoint (every branch accepts {}) are rewritten exactly as
    # "B_i and not B_j": each negation is a union of cases, so the grammar grows like 3^(n-1). Past
    # Limits.max_grammar_rules the lowering is retried with the branches' union in the grammar and
    # the exclusivity checked on the completed value: exact, and compiled in seconds
    props = ("country", "state", "code")
    branches = [{"properties": {p: {"enum": [f"{p}{i}"]} for p in props}} for i in range(10)]
    schema = {"type": "object", "oneOf": branches}
    limits = Limits(max_grammar_rules=5_000)
    got, dt = _timed_compile(byte_vocab, schema, limits)
    assert not isinstance(got, LimitExceeded), got
    assert dt < 10.0, f"took {dt:.1f} s"
    v = jsonschema.Draft202012Validator(schema)
    samples = [
        {},
        {"country": "country3"},
        {"country": "country3", "state": "state3"},
        {"country": "country1", "state": "state2"},
    ]
    samples += [{"country": "country9", "state": "state9", "code": "code9"}, {"code": "code0", "other": 1}]
    for inst in samples:
        assert _accepts(got, json.dumps(inst)) is v.is_valid(inst), inst
    hows = {(e["pointer"], e["keyword"]): e["how"] for e in structgen.explain(schema, limits=limits).entries}
    assert "max_grammar_rules" in hows[("#", "oneOf")] and "check" in hows[("#", "oneOf")]


def test_rule_blowup_without_a_oneof_still_raises_the_limit(byte_vocab):
    # many anyOf of overlapping object branches distributed into each other: no oneOf to relax, so
    # the lowering stops at the documented limit
    branches = [{"properties": {f"p{i}": {"enum": [i, i + 1]}}, "required": [f"p{i}"]} for i in range(12)]
    schema = {"type": "object", "allOf": [{"anyOf": branches[k : k + 4]} for k in range(0, 12, 2)]}
    got, dt = _timed_compile(byte_vocab, schema, Limits(max_grammar_rules=2_000))
    assert isinstance(got, LimitExceeded), got
    assert got.limit == "max_grammar_rules"
    assert dt < 10.0, f"took {dt:.1f} s"


def _bench_schema(split: str, sid: str):
    path = BENCH / f"{split}.jsonl"
    if not path.exists():
        pytest.skip(f"JSONSchemaBench data not present at {path}")
    with path.open() as fh:
        for line in fh:
            d = json.loads(line)
            if d["id"] == sid:
                s = d["schema"]
                return json.loads(s) if isinstance(s, str) else s
    pytest.skip(f"{sid} not in {path}")


def test_real_schema_with_a_6000_value_enum_compiles_in_seconds():
    from structgen import assets

    schema = _bench_schema("JsonSchemaStore", "JsonSchemaStore/transcend-yml-schema-v4")
    vocab = assets.load_vocabulary("llama3")
    compiled, dt = _timed_compile(vocab, schema)  # was ~23 s
    assert not isinstance(compiled, LimitExceeded), compiled
    assert dt < 15.0, f"compile took {dt:.1f} s"


def test_real_recursive_intersection_schema_fails_fast_with_a_named_limit(byte_vocab):
    schema = _bench_schema("JsonSchemaStore", "JsonSchemaStore/web-types")
    got, dt = _timed_compile(byte_vocab, schema)  # was max_grammar_rules / compile_timeout_s after 27-30 s
    assert isinstance(got, LimitExceeded), got
    assert got.limit in ("max_schema_depth", "max_grammar_rules")
    assert dt < 15.0, f"took {dt:.1f} s"


@pytest.mark.parametrize(
    "schema,length_ok,length_bad",
    [
        ({"type": "string", "maxLength": 100_000}, 100_000, 100_001),
        ({"type": "string", "maxLength": 32_767, "minLength": 20_000}, 20_000, 19_999),
        ({"type": "string", "maxLength": 32_767, "minLength": 20_000}, 32_767, 32_768),
        ({"type": "string", "minLength": 3, "allOf": [{"maxLength": 65_535}]}, 3, 2),
        ({"type": "string", "pattern": "^[a-z]+$", "maxLength": 65_535}, 65_535, 65_536),
    ],
)
def test_length_bounds_above_max_repeat_are_checked_exactly(byte_vocab, schema, length_ok, length_bad) -> None:
    """maxLength 32767/65535 are common (about 100 dev-split schemas): above Limits.max_repeat the
    bound is enforced by a check on the completed string instead of a huge regex, exactly."""
    t0 = time.perf_counter()
    compiled = structgen.compile(byte_vocab, json_schema={"type": "object", "properties": {"s": schema}})
    assert time.perf_counter() - t0 < 5
    for n, want in ((length_ok, True), (length_bad, False)):
        text = json.dumps({"s": "x" * n})
        m = compiled.matcher()
        assert (m.accept_text(text) and m.is_accepting()) is want, (schema, n)
        assert (
            jsonschema.Draft202012Validator({"type": "object", "properties": {"s": schema}}).is_valid(json.loads(text))
            is want
        )
    report = structgen.explain({"properties": {"s": schema}})
    assert "is above max_repeat" in str(report)


def test_string_regex_over_the_dfa_limit_falls_back_to_a_check(byte_vocab) -> None:
    """A pattern/length intersection whose string DFA exceeds Limits.max_dfa_states is not refused:
    the grammar takes any string there and the string keywords are checked on the completed string."""
    limits = Limits(max_dfa_states=300)
    schema = {
        "type": "object",
        "properties": {"s": {"type": "string", "pattern": "^[a-z]*x[a-z]{3}$", "maxLength": 40}},
    }
    compiled = structgen.compile(byte_vocab, json_schema=schema, limits=limits, cache=False)
    v = jsonschema.Draft202012Validator(schema)
    for s in ["abcxdef", "xabc", "abcdef", "x" * 41, "a" * 36 + "xabc", "a" * 37 + "xabc", "XABC"]:
        text = json.dumps({"s": s})
        m = compiled.matcher()
        assert (m.accept_text(text) and m.is_accepting()) is v.is_valid({"s": s}), s
    hows = {(e["pointer"], e["keyword"]): e["how"] for e in structgen.explain(schema, limits=limits).entries}
    assert "max_dfa_states" in hows[("#/properties/s", "pattern")]
    assert "max_dfa_states" in hows[("#/properties/s", "maxLength")]


def test_lexer_over_the_dfa_limit_retries_with_strings_checked(byte_vocab) -> None:
    """Unanchored patterns that each fit but whose lexer product exceeds Limits.max_dfa_states
    (Github_trivial/o35155's shape: one pattern per anyOf branch) compile with those strings checked on
    completion; the matcher agrees with jsonschema on both sides, and explain reports what compile did.
    A lexer that is too large for another reason still raises the named limit."""
    ids = {"A": "AB-\\d{4}", "B": "(\\w+\\.)+\\d+", "C": "\\d{4}-\\d{3}[0-9X]", "D": "CD-\\d+", "E": "(\\w|-){6}"}
    schema = {
        "anyOf": [
            {"properties": {"type": {"const": k}, "value": {"type": "string", "pattern": p}}} for k, p in ids.items()
        ],
        "required": ["type", "value"],
    }
    limits = Limits(max_dfa_states=400)
    with pytest.raises(LimitExceeded) as exc:  # each pattern fits alone: the lexer of all of them does not
        compile_grammar_engine(lower_schema(schema, {}, limits).grammar, byte_vocab, limits)
    assert exc.value.limit == "max_dfa_states" and "lexer for terminals" in str(exc.value)
    compiled = structgen.compile(byte_vocab, json_schema=schema, limits=limits, cache=False)
    v = jsonschema.Draft202012Validator(schema)
    cases = [("A", "AB-1234"), ("A", "xAB-1234y"), ("A", "AB-12"), ("B", "a.b.7"), ("B", "ab7"), ("C", "1234-567X")]
    cases += [("C", "1234-56"), ("D", "CD-"), ("D", "zCD-9"), ("E", "ab-cd_"), ("E", "ab cd"), ("Z", "AB-1234")]
    for k, s in cases:
        inst = {"type": k, "value": s}
        m = compiled.matcher()
        assert (m.accept_text(json.dumps(inst)) and m.is_accepting()) is v.is_valid(inst), inst
    hows = {(e["pointer"], e["keyword"]): e["how"] for e in structgen.explain(schema, limits=limits).entries}
    for i in range(len(ids)):
        assert "lexer of all string regexes" in hows[(f"#/anyOf/{i}/properties/value", "pattern")]
    assert {c["pointer"] for c in compiled.info["value_checks"]} >= {f"#/anyOf/{i}/properties/value" for i in range(5)}
    big_enum = {"enum": [f"k{i}" * 40 for i in range(20)]}  # literals only: the retry has nothing to relax
    with pytest.raises(LimitExceeded, match="max_dfa_states"):
        structgen.compile(byte_vocab, json_schema=big_enum, limits=Limits(max_dfa_states=50), cache=False)


def test_long_length_bound_beside_a_pattern_is_checked_not_intersected(byte_vocab) -> None:
    """maxLength 2000 on a URL pattern (JsonSchemaStore winget-pkgs-locale) took seconds as a 32k-state
    intersection DFA: above LENGTH_BESIDE_PATTERN the bound is checked on the completed string, the
    pattern stays in the grammar; a pattern whose length range misses the bounds is still unsatisfiable."""
    from structgen.errors import UnsatisfiableSchema
    from structgen.frontends.json_schema.lower_strings import LENGTH_BESIDE_PATTERN

    url = {"type": "string", "pattern": "^([Hh][Tt][Tt][Pp][Ss]?)://.+$", "maxLength": 2000}
    schema = {"type": "object", "properties": {"u": url}}
    t0 = time.perf_counter()
    compiled = structgen.compile(byte_vocab, json_schema=schema, cache=False)
    assert time.perf_counter() - t0 < 5.0
    v = jsonschema.Draft202012Validator(schema)
    for s in ["https://x", "ftp://x", "http://" + "a" * 1993, "http://" + "a" * 1994, "https:/x"]:
        inst = {"u": s}
        m = compiled.matcher()
        assert (m.accept_text(json.dumps(inst)) and m.is_accepting()) is v.is_valid(inst), s[:12]
    hows = {(e["pointer"], e["keyword"]): e["how"] for e in structgen.explain(schema).entries}
    assert hows[("#/properties/u", "pattern")].startswith("regex")
    assert f"above {LENGTH_BESIDE_PATTERN}" in hows[("#/properties/u", "maxLength")]
    with pytest.raises(UnsatisfiableSchema):
        structgen.compile(byte_vocab, json_schema={"type": "string", "pattern": "^(ab){150,200}$", "maxLength": 299})
