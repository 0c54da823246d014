"""The process-wide caches of the JSON Schema compile path carry no state from one schema to the
next: extra-key terminals registered by their text, format terminals warmed once per process."""

from __future__ import annotations

from typing import Any

import structgen
from structgen.frontends.json_schema.formatting import dumps
from structgen.limits import Limits


def _accepts(compiled: Any, value: Any) -> bool:
    m = compiled.matcher()
    return bool(m.accept_text(dumps(value)) and m.is_accepting())


def test_extra_key_terminals_do_not_leak_between_schemas(byte_vocab: Any) -> None:
    """Schema A declares "a" (so its extra keys exclude it); schema B declares "b": "a" is an extra
    key of B, and "b" one of A, whichever was compiled first and whatever the caches hold."""
    a = {"type": "object", "properties": {"a": {"type": "integer"}}, "additionalProperties": {"type": "string"}}
    b = {"type": "object", "properties": {"b": {"type": "integer"}}, "additionalProperties": {"type": "string"}}
    for first, second in ((a, b), (b, a), (a, b)):
        structgen.compile(byte_vocab, json_schema=first, cache=False)
        structgen.compile(byte_vocab, json_schema=second, cache=False)
    ca = structgen.compile(byte_vocab, json_schema=a, cache=False)
    cb = structgen.compile(byte_vocab, json_schema=b, cache=False)
    assert _accepts(ca, {"a": 1, "b": "x"}) and not _accepts(ca, {"a": "x"}) and not _accepts(ca, {"b": 1})
    assert _accepts(cb, {"b": 1, "a": "x"}) and not _accepts(cb, {"b": "x"}) and not _accepts(cb, {"a": 1})


def test_warmed_format_terminals_give_the_same_lexer(byte_vocab: Any) -> None:
    from structgen.automaton import lexer
    from structgen.compile import json_schema_compiler as jsc

    schema = {"type": "object", "properties": {"when": {"type": "string", "format": "date-time"}}}
    warm = structgen.compile(byte_vocab, json_schema=schema, cache=False)
    lexer._terminal_dfa.cache_clear()
    saved = set(jsc._WARMED)
    jsc._WARMED.clear()
    try:
        cold = structgen.compile(byte_vocab, json_schema=schema, cache=False, formats="enforce")
    finally:
        jsc._WARMED.update(saved)
    assert (warm.engine.lexer.dfa.transitions == cold.engine.lexer.dfa.transitions).all()
    assert _accepts(cold, {"when": "2024-01-02T03:04:05Z"}) and not _accepts(cold, {"when": "yesterday"})


def test_format_warm_up_under_tight_limits(byte_vocab: Any) -> None:
    """Format DFAs that do not fit the limits are skipped by the warm-up, not raised for a schema
    that does not use them."""
    schema = {"type": "object", "properties": {"a": {"type": "integer"}}}
    c = structgen.compile(byte_vocab, json_schema=schema, limits=Limits(max_dfa_states=300), cache=False)
    assert _accepts(c, {"a": 3}) and not _accepts(c, {"a": "x"})
