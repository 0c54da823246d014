"""Keywords enforced by checks on completed values: uniqueItems and non-disjoint oneOf.

Real Llama-3 vocabulary; every label is confirmed by ``jsonschema``. Valid instances are accepted
token by token (the tokenizer's own tokenization), invalid ones are rejected, and at sampled states
the mask equals a brute-force ``advance_token`` over the candidate tokens.
"""

from __future__ import annotations

import json

import jsonschema
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import structgen
from structgen import assets
from structgen.frontends.json_schema.formatting import dumps
from structgen.runtime.bitmask import unpack_bitmask
from structgen.runtime.checked_engine import CheckedEngine

UNIQUE_INTS = {"type": "array", "items": {"type": "integer"}, "uniqueItems": True}
UNIQUE_OBJECTS = {
    "type": "object",
    "properties": {
        "tags": {
            "type": "array",
            "items": {"type": "object", "properties": {"n": {"type": "string"}, "k": {"type": "integer"}}},
            "uniqueItems": True,
        },
        "name": {"type": "string"},
    },
    "required": ["tags"],
}
# uniqueItems in the one branch that admits arrays: checked per item, no root check
STRING_OR_SET = {
    "type": "object",
    "properties": {
        "t": {"anyOf": [{"type": "string"}, {"type": "array", "items": {"type": "string"}, "uniqueItems": True}]}
    },
}
# both branches admit arrays: the anyOf is ambiguous, so the whole document is checked before EOS
AMBIGUOUS = {
    "anyOf": [
        {"type": "array", "items": {"type": "string"}, "uniqueItems": True},
        {"type": "array", "items": {"type": "integer"}},
    ]
}
# branches overlap ([1, 2] matches both) and uniqueItems has no negation: oneOf is checked
ONE_OF = {
    "oneOf": [
        {"type": "array", "items": {"type": "integer"}, "uniqueItems": True},
        {"type": "array", "items": {"type": "integer"}, "maxItems": 2},
    ]
}
NESTED_ONE_OF = {"type": "object", "properties": {"v": ONE_OF, "w": {"type": "boolean"}}, "required": ["v"]}

CASES = [
    (
        UNIQUE_INTS,
        [[], [1], [1, 2, 3], [10, 1, 100], [-1, 1]],
        [[1, 1], [1, 2, 1], [3, 3.0], [0, 10, 0]],
    ),
    (
        {"type": "array", "items": {"type": "string"}, "uniqueItems": True, "maxItems": 3},
        [["a", "b"], ["a", "ab", "abc"], ['x"y', "x"]],
        [["a", "a"], ["ab", "b", "ab"], ["a", "b", "c", "d"]],
    ),
    (
        {"type": "array", "uniqueItems": True},
        [[1, True], [0, False], [[1], [True]], [{"a": 1}, {"a": 2}], [None, 0, "", [], {}]],
        [[1, 1.0], [{"a": 1, "b": 2}, {"b": 2, "a": 1}], [[1, 2], [1, 2]], [None, None]],
    ),
    (
        UNIQUE_OBJECTS,
        [{"tags": [{"n": "a"}, {"n": "b"}]}, {"tags": [{"n": "a", "k": 1}, {"n": "a", "k": 2}], "name": "x"}],
        [{"tags": [{"n": "a"}, {"n": "a"}]}, {"tags": [{"n": "a", "k": 1}, {"k": 2}, {"n": "a", "k": 1}]}],
    ),
    (STRING_OR_SET, [{"t": "a"}, {"t": ["a", "b"]}, {}], [{"t": ["a", "a"]}, {"t": ["b", "a", "b"]}]),
    (AMBIGUOUS, [["a", "b"], [1, 1], []], [["a", "a"], ["a", 1]]),
    (ONE_OF, [[1, 2, 3], [1, 1], [7, 8, 9, 10]], [[1, 2], [], [4], [1, 1, 1]]),
    (NESTED_ONE_OF, [{"v": [1, 2, 3], "w": True}, {"v": [2, 2]}], [{"v": [1, 2]}, {"v": [1, 1, 1], "w": False}]),
]


@pytest.fixture(scope="module")
def vocab():
    return assets.load_vocabulary("llama3")


@pytest.fixture(scope="module")
def tokenizer():
    return assets.load_tokenizer("llama3")


def _compile(vocab, schema):
    return structgen.compile(vocab, json_schema=schema)


def _accepts_tokens(compiled, tokenizer, text: str) -> bool:
    m = compiled.matcher()
    for t in tokenizer.encode(text, add_special_tokens=False):
        if not m.accept_token(t):
            return False
    return m.is_accepting()


@pytest.mark.parametrize("schema,valid,invalid", CASES)
def test_valid_accepted_invalid_rejected(vocab, tokenizer, schema, valid, invalid):
    compiled = _compile(vocab, schema)
    assert isinstance(compiled.engine, CheckedEngine)
    check = jsonschema.Draft202012Validator(schema)
    for value in valid:
        assert check.is_valid(value), value
        assert _accepts_tokens(compiled, tokenizer, dumps(value)), value
    for value in invalid:
        assert not check.is_valid(value), value
        assert not _accepts_tokens(compiled, tokenizer, dumps(value)), value
        m = compiled.matcher()  # also as raw text, whatever its tokenization
        assert not (m.accept_text(dumps(value)) and m.is_accepting()), value


def _brute_force_agrees(compiled, m, rng) -> None:
    """The mask bit of every candidate token equals whether advance_token accepts it."""
    eng = compiled.engine
    state = m.state
    got = unpack_bitmask(eng.token_mask(state), compiled.vocab.size)
    inner = unpack_bitmask(eng.inner.token_mask(state.inner), compiled.vocab.size)
    assert not (got & ~inner).any()
    ids = np.flatnonzero(inner)
    tb = compiled.vocab.token_bytes
    if ids.size <= 2000:  # structure, numbers, literals: every allowed token
        sample = ids.tolist()
    else:  # inside a string: every token that can close it, and a random sample of the rest
        closing = [t for t in ids.tolist() if any(c in tb[t] for c in b'"]}')]
        others = ids[~np.isin(ids, closing)]
        sample = closing + rng.choice(others, size=min(150, others.size), replace=False).tolist()
    for t in sample:
        assert bool(got[t]) == (eng.advance_token(state, t) is not None), (t, tb[t])
    assert m.is_accepting() == eng.is_accepting(state)


@pytest.mark.parametrize("schema,valid,invalid", CASES[:2] + CASES[3:5] + CASES[6:7])
def test_mask_equals_brute_force(vocab, tokenizer, schema, valid, invalid):
    compiled = _compile(vocab, schema)
    rng = np.random.default_rng(0)
    for value in valid + invalid:
        ids = tokenizer.encode(dumps(value), add_special_tokens=False)
        m = compiled.matcher()
        for i, t in enumerate(ids):
            if i % 2 == 0 or i == len(ids) - 1:
                _brute_force_agrees(compiled, m, rng)
            if not m.accept_token(t):
                break


def test_duplicate_closing_token_is_masked(vocab):
    compiled = _compile(vocab, {"type": "array", "items": {"type": "string"}, "uniqueItems": True})
    m = compiled.matcher()
    assert m.accept_text('["ab", "ab')
    allowed = {vocab.token_bytes[t] for t in m.allowed_token_ids() if t < vocab.num_tokens}
    assert b'"' not in allowed and b'",' not in allowed and b'"]' not in allowed
    assert b"c" in allowed  # the item may still grow into a new value
    assert m.accept_text('c"]') and m.is_accepting()


def test_forced_text_stops_before_a_failing_closing(vocab):
    schema = {"prefixItems": [{"const": "a"}, {"const": "a"}], "items": False, "minItems": 2, "uniqueItems": True}
    m = _compile(vocab, schema).matcher()
    assert m.accept_text('["a", ')
    assert m.forced_text() == '"a'  # the grammar alone would force '"a"]'
    assert m.accept_text('"a')
    assert m.allowed_token_ids().size == 0 and not m.is_accepting()  # a dead end, no crash


def test_root_check_when_location_is_ambiguous(vocab):
    compiled = _compile(vocab, AMBIGUOUS)
    assert compiled.engine.plan.root_check is not None
    assert [c["checked"] for c in compiled.info["value_checks"]] == ["before EOS (whole document)"]
    m = compiled.matcher()
    assert m.accept_text('["a", "a"]')  # the text is complete, but EOS is not allowed
    assert not m.is_accepting()
    assert not any(e in m.allowed_token_ids() for e in vocab.eos_ids)


def test_no_wrapper_without_checks(vocab):
    compiled = _compile(vocab, {"type": "array", "items": {"type": "integer"}})
    assert not isinstance(compiled.engine, CheckedEngine)
    assert compiled.info["value_checks"] == []


def test_explain_and_info_say_checked(vocab):
    schema = {"type": "object", "properties": {"b": {"type": "array", "uniqueItems": True}}}
    report = structgen.explain(schema)
    entry = next(e for e in report.entries if e["keyword"] == "uniqueItems")
    assert entry["pointer"] == "#/properties/b"
    assert entry["how"].startswith("enforced by a check on completed values")
    assert report.compiles and not report.refused
    info = _compile(vocab, schema).info
    assert info["value_checks"] == [
        {"pointer": "#/properties/b", "keyword": "uniqueItems", "checked": "when each item completes"}
    ]
    one_of = structgen.explain(ONE_OF)
    assert any(
        e["keyword"] == "oneOf" and e["how"].startswith("enforced by a check on completed values")
        for e in one_of.entries
    )


def test_rollback_and_fork_keep_checks(vocab):
    m = _compile(vocab, UNIQUE_INTS).matcher()
    assert m.accept_text("[1, 2")
    f = m.fork()
    m.rollback(1)
    assert not m.accept_text("[1, 1]"[1:]) or True  # any text: rollback restored the state
    m.reset()
    assert m.accept_text("[1, 2, 1") and not m.accept_text("]")
    assert f.accept_text(", 3]") and f.is_accepting()


_ITEMS = st.one_of(st.integers(-3, 3), st.sampled_from(["a", "b", "ab"]), st.booleans(), st.none())


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(_ITEMS, max_size=6))
def test_random_arrays_accepted_iff_unique(vocab, tokenizer, value):
    compiled = _compile(vocab, {"type": "array", "uniqueItems": True})
    expected = jsonschema.Draft202012Validator({"uniqueItems": True}).is_valid(value)
    assert _accepts_tokens(compiled, tokenizer, dumps(value)) == expected
    assert _accepts_tokens(compiled, tokenizer, json.dumps(value, separators=(",", ":"))) is False or expected


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(st.integers(0, 4), min_size=1, max_size=5), st.data())
def test_random_states_mask_exact(vocab, tokenizer, value, data):
    compiled = _compile(vocab, UNIQUE_INTS)
    ids = tokenizer.encode(dumps(value), add_special_tokens=False)
    cut = data.draw(st.integers(0, len(ids)))
    m = compiled.matcher()
    n = m.accept_tokens(ids[:cut])
    _brute_force_agrees(compiled, m, np.random.default_rng(n))
