"""Checked-engine masks stay exact (bit set <=> advance_token succeeds) on schemas whose checks sit
at every nesting depth: closing tokens that are skipped as safe, checks proven to pass every value
of a type, unique items that are containers, a format check on strings."""

from __future__ import annotations

import json
import random

import numpy as np
import pytest

import structgen
from structgen.assets import load_tokenizer, load_vocabulary
from structgen.runtime.bitmask import unpack_bitmask
from structgen.runtime.checked_engine import CheckedEngine, closer_counts

_VALUE = {
    "oneOf": [
        {"type": "string"},
        {"type": "number"},
        {"type": "boolean"},
        {"type": "object", "properties": {"x": {"type": "integer"}}, "required": ["x"]},
        {"type": "array", "items": {"$ref": "#/$defs/value"}},
        {"type": "object", "properties": {"y": {"type": "string"}}, "required": ["y"]},
    ]
}
SCHEMAS = [
    {  # a check on every value (oneOf with overlapping object branches), at any depth
        "$defs": {"value": _VALUE},
        "type": "object",
        "properties": {"a": {"$ref": "#/$defs/value"}, "b": {"type": "array", "items": {"$ref": "#/$defs/value"}}},
    },
    {  # unique items that are objects and arrays, inside an object without checks
        "type": "object",
        "properties": {
            "rows": {
                "type": "array",
                "uniqueItems": True,
                "items": {"type": "object", "properties": {"k": {"type": "array", "items": {"type": "integer"}}}},
            },
            "tags": {"type": "array", "uniqueItems": True, "items": {"type": "array", "items": {"type": "string"}}},
        },
    },
    {  # a format checked on completed strings, and a number branch
        "type": "object",
        "properties": {
            "p": {
                "oneOf": [{"type": "string", "format": "regex"}, {"type": "integer", "minimum": 3}, {"type": "number"}]
            }
        },
    },
]
DOCS = [
    [
        {"a": {"x": 1}, "b": [{"y": "q"}, [1, [2, "s"]], True, {"x": 2}]},
        {"a": [[[]], {"x": 3}], "b": []},
        {"a": "str", "b": [1.5, {"x": 2, "y": "n"}]},
    ],
    [
        {"rows": [{"k": [1]}, {"k": [1, 2]}, {"k": [1]}], "tags": [["a"], ["a", "b"], ["a"]]},
        {"rows": [{}, {"k": []}, {}], "tags": [[], [[]]]},
    ],
    [{"p": "a(b)*"}, {"p": "(unclosed"}, {"p": 7}, {"p": 2.5}, {"p": 1}],
]


def _exact_at(engine: CheckedEngine, state: object, vocab: object, rng: random.Random) -> None:
    got = unpack_bitmask(np.asarray(engine.token_mask(state)), vocab.size)  # type: ignore[attr-defined]
    inner = np.flatnonzero(unpack_bitmask(np.asarray(engine.inner.token_mask(state.inner)), vocab.size))  # type: ignore[attr-defined]
    tb = vocab.token_bytes  # type: ignore[attr-defined]
    if inner.size > 2500:  # long string bodies: every token that can end a value, and a sample
        ends = [int(t) for t in inner if any(c in tb[t] for c in b'"]},')]
        inner = np.array(sorted(set(ends) | set(rng.sample(inner.tolist(), 300))), dtype=np.int64)
    for t in inner.tolist():
        assert bool(got[t]) == (engine.advance_token(state, t) is not None), (t, tb[t])


@pytest.mark.parametrize("k", range(len(SCHEMAS)))
def test_checked_masks_exact_on_walks(k: int) -> None:
    vocab = load_vocabulary("llama3")
    tok = load_tokenizer("llama3")
    c = structgen.compile(vocab, json_schema=SCHEMAS[k], cache=False)
    engine = c.engine
    assert isinstance(engine, CheckedEngine)
    rng = random.Random(k)
    for doc in DOCS[k]:
        state = engine.initial_state()
        for t in tok.encode(json.dumps(doc), add_special_tokens=False):
            _exact_at(engine, state, vocab, rng)
            nxt = engine.advance_token(state, t)
            if nxt is None:
                break
            state = nxt


def test_closer_counts() -> None:
    vocab = load_vocabulary("llama3")
    out_c, str_c = closer_counts(vocab)
    tb = vocab.token_bytes
    for i in range(vocab.num_tokens):
        t = tb[i]
        pure = bool(t) and i not in vocab.special_ids and all(b in b"}], \t\n\r" for b in t)
        assert out_c[i] == (t.count(b"}") + t.count(b"]") if pure else -1), t
        spure = bool(t) and i not in vocab.special_ids and t[:1] == b'"' and all(b in b"}], \t\n\r" for b in t[1:])
        assert str_c[i] == (t.count(b"}") + t.count(b"]") if spure else -1), t
