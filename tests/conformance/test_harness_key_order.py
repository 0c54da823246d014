"""The conformance harness's key-order hint: each object is tried in the order of the ``properties``
block naming most of its keys, so schema-order grammars are met without a search that runs out of
budget (JsonSchemaStore/cargo: workspace.package lists Package's keys in another block's order)."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import harness  # noqa: E402
import pytest  # noqa: E402

import structgen  # noqa: E402
from structgen.frontends.json_schema.formatting import Style  # noqa: E402

KEYS = [f"k{i:02d}" for i in range(16)]
SCHEMA = {
    "type": "object",
    "properties": {
        # the first block met names the keys (and one more) in one order ...
        "a": {"type": "object", "properties": {k: {"type": "integer"} for k in [*KEYS, "extra"]}},
        # ... the object checked lists them in the reverse order
        "b": {"$ref": "#/$defs/B"},
    },
    "$defs": {"B": {"type": "object", "properties": {k: {"type": "integer"} for k in reversed(KEYS)}}},
}
VALUE = {"b": {k: i for i, k in enumerate(KEYS)}}


@pytest.fixture(scope="module")
def bytes_vocab():
    from structgen.vocab.vocabulary import Vocabulary

    return Vocabulary.from_bytes([bytes([i]) for i in range(256)] + [b"<eos>"], eos_ids=[256], name="bytes")


def test_key_order_follows_the_best_matching_properties_block():
    harness.ORDERS = harness.property_orders(SCHEMA)
    harness.RANK = harness.property_rank(SCHEMA)
    assert harness.key_order(VALUE["b"]) == list(reversed(KEYS))
    assert harness.key_order({"zz": 1, "k03": 2, "k01": 3}) == ["k03", "k01", "zz"]


def test_schema_order_object_found_within_budget(bytes_vocab):
    c = structgen.compile(bytes_vocab, json_schema=SCHEMA, cache=False)
    ok, text = harness.check_instance(c, VALUE, Style(), SCHEMA)
    assert ok and text is not None and text.index('"k15"') < text.index('"k00"')
    assert harness.check_instance(c, {"b": {"k15": 1, "k00": "x"}}, Style(), SCHEMA) == (False, None)


# ---- the key-order search: dead-key prune, merged states, failure memo ---------------------------
def _check(vocab, schema, value, budget=None):
    c = structgen.compile(vocab, json_schema=schema, cache=False)
    ok, text = harness.check_instance(c, value, Style(), schema, budget)
    return ok, text, harness.UNDECIDED[0]


WIDE = [f"p{i:02d}" for i in range(30)]
# 30 optional keys split over an allOf of two ``properties`` blocks (JsonSchemaStore dart-test's shape),
# and a decoy block elsewhere naming them all in reverse: the key-order hint then points the wrong way
SPLIT_SCHEMA = {
    "allOf": [
        {"properties": {k: {"type": "integer"} for k in WIDE[:15]}},
        {"properties": {k: {"type": "integer"} for k in WIDE[15:]}},
    ],
    "$defs": {"decoy": {"properties": {k: {"type": "string"} for k in reversed(WIDE)}}},
}


def test_split_blocks_reversed_instance_is_found(bytes_vocab):
    value = {k: i for i, k in enumerate(reversed(WIDE))}
    ok, text, undecided = _check(bytes_vocab, SPLIT_SCHEMA, value, budget=2_000)
    assert ok and not undecided
    assert text is not None and [text.index(f'"{k}"') for k in WIDE] == sorted(text.index(f'"{k}"') for k in WIDE)


def test_invalid_value_among_many_optional_keys_is_decided(bytes_vocab):
    # every subset of the 29 other keys could be placed before the bad one: without the dead-key prune
    # the search runs out of budget (undecided); with it each wrong order dies at its first key
    value = {k: i for i, k in enumerate(WIDE)}
    value["p29"] = "not an integer"
    ok, _, undecided = _check(bytes_vocab, SPLIT_SCHEMA, value, budget=2_000)
    assert not ok and not undecided


def test_undeclared_key_under_closed_object_is_decided(bytes_vocab):
    schema = {"type": "object", "properties": {k: {"type": "integer"} for k in WIDE}, "additionalProperties": False}
    value = {"zz": 1, **{k: 1 for k in WIDE}}
    ok, _, undecided = _check(bytes_vocab, schema, value, budget=2_000)
    assert not ok and not undecided


def test_costly_member_placed_too_early_is_cut_at_its_head(bytes_vocab):
    # 'a' holds the bad value; orders that place 'big' (an any-order object of 12 keys: thousands of
    # readings) before 'a' are cut right after big's head, since 'a' can no longer follow it
    schema = {
        "type": "object",
        "properties": {
            "a": {"type": "integer"},
            "b": {"type": "integer"},
            "big": {"type": "object", "additionalProperties": {"type": "integer"}},
        },
    }
    value = {"a": "bad", "b": 1, "big": {f"x{i}": i for i in range(12)}}
    harness.DECIDE[0] = False  # the search alone decides it (the proof could otherwise cover for it)
    try:
        ok, _, undecided = _check(bytes_vocab, schema, value, budget=2_000)
    finally:
        harness.DECIDE[0] = True
    assert not ok and not undecided
    value["a"] = 0
    assert _check(bytes_vocab, schema, value, budget=2_000)[0]


def test_key_unacceptable_now_but_later_is_not_pruned(bytes_vocab):
    # 'b' and 'c' cannot come first ('a' is required and declared first) but are placeable after it
    schema = {
        "type": "object",
        "properties": {"a": {"type": "integer"}, "b": {"type": "integer"}, "c": {"type": "integer"}},
        "required": ["a"],
        "additionalProperties": {"type": "string"},
    }
    ok, text, _ = _check(bytes_vocab, schema, {"x": "s", "c": 3, "b": 2, "a": 1})
    assert ok and text == '{"a": 1, "b": 2, "c": 3, "x": "s"}'
    assert _check(bytes_vocab, schema, {"x": 1, "c": 3, "a": 1})[:2] == (False, None)


def test_second_reading_of_a_nested_value_is_tried(bytes_vocab):
    # 'a' reads in key order x,y (first branch, then b must be 1) or y,x (second branch, b must be 2):
    # the failure after the first reading must not be remembered as a failure of the object
    def branch(order, b):
        return {"properties": {"a": {"properties": {k: {"type": "integer"} for k in order}}, "b": {"const": b}}}

    schema = {"anyOf": [branch("xy", 1), branch("yx", 2)]}
    ok, text, _ = _check(bytes_vocab, schema, {"b": 2, "a": {"x": 0, "y": 0}})
    assert ok and text == '{"a": {"y": 0, "x": 0}, "b": 2}'
    assert _check(bytes_vocab, schema, {"b": 3, "a": {"x": 0, "y": 0}})[:2] == (False, None)


@pytest.mark.parametrize("seed", range(3))
def test_pruned_search_agrees_with_the_plain_search(bytes_vocab, seed):
    import random

    rnd = random.Random(seed)
    keys = list("abcdef")
    props: dict = {k: {"type": rnd.choice(["integer", "string"])} for k in keys}
    # a nested object member: the after-head prune cuts branches before reading its value
    props["n"] = {"type": "object", "properties": {"x": {"type": "integer"}, "y": {"type": "integer"}}}
    schema = {
        "type": "object",
        "properties": props,
        "required": rnd.sample(keys, 2),
        "additionalProperties": rnd.choice([False, {"type": "integer"}]),
    }
    c = structgen.compile(bytes_vocab, json_schema=schema, cache=False)
    for _ in range(25):
        ks = rnd.sample([*keys, "n", "z"], rnd.randint(1, 8))
        value = {k: rnd.choice([1, "s"]) for k in ks}
        if "n" in value:
            value["n"] = {"y": rnd.choice([1, "s"]), "x": 2}
        got = []
        for flag in (True, False):
            harness.PRUNE[0] = harness.MERGE[0] = flag
            try:
                got.append(harness.check_instance(c, value, Style(), schema)[0])
                assert not harness.UNDECIDED[0]
            finally:
                harness.PRUNE[0] = harness.MERGE[0] = True
        assert got[0] == got[1], value


def test_const_object_read_as_one_literal_is_not_pruned(bytes_vocab):
    # the whole object is one terminal: its members are not grammar symbols the prune could see
    schema = {"const": {"foo": "bar", "baz": "bax"}}
    ok, text, _ = _check(bytes_vocab, schema, {"baz": "bax", "foo": "bar"})
    assert ok and text == '{"foo": "bar", "baz": "bax"}'


def test_state_key_merges_equal_grammar_states(bytes_vocab):
    schema = {"type": "object", "additionalProperties": {"type": "integer"}}
    c = structgen.compile(bytes_vocab, json_schema=schema, cache=False)
    harness._CANON.clear()
    harness._SET_SIG.clear()
    harness._CASCADE.clear()

    def after(text):
        m = c.matcher()
        assert m.accept_text(text)
        return m

    ab, ba, a = after('{"a": 1, "b": 2'), after('{"b": 2, "a": 1'), after('{"a": 1')
    assert ab.state != ba.state  # distinct objects (identity) ...
    assert harness.state_key(ab) == harness.state_key(ba)  # ... with the same future
    assert harness.state_key(ab) != harness.state_key(a)


@pytest.mark.parametrize(
    "schema",
    [
        {"type": "object", "patternProperties": {"^[a-z]+$": {"type": "array", "items": {"properties": {"x": {}}}}}},
        {"type": "object", "additionalProperties": {"type": "array", "items": {"type": "integer"}}},
    ],
)
def test_state_key_merges_right_recursive_lists_of_any_length(bytes_vocab, schema):
    # after a finished array (its "]" not yet committed by the engine) the Earley sets inside it differ
    # with its length (right recursion chains the origins); keyed as committed, with tail items keyed
    # by where their completion cascade ends, the states are equal, as their futures are; and the
    # matcher agrees that they are interchangeable on every continuation tried
    c = structgen.compile(bytes_vocab, json_schema=schema, cache=False)
    harness._CANON.clear()
    harness._SET_SIG.clear()
    harness._CASCADE.clear()
    item = '{"x": 1}' if "patternProperties" in schema else "1"
    texts = [
        '{"a": [' + item + "]",
        '{"a": [' + item + ", " + item + "]",
        '{"b": [], "a": [' + ", ".join([item] * 3) + "]",
    ]
    states = []
    for text in texts:
        m = c.matcher()
        assert m.accept_text(text)
        states.append(m)
    assert len({harness.state_key(m) for m in states}) == 1
    for tail in ["}", ', "c": []}', ", 5}", ', "A": []}', "]", ', "c": [' + item + "]}"]:
        got = set()
        for m in states:
            m2 = m.fork()
            got.add(bool(m2.accept_text(tail) and m2.is_accepting()))
        assert len(got) == 1, tail
