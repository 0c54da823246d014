"""Structural signatures of Earley sets (``EarleySet.signature``), which key the grammar engine's
mask cache: equal signatures must mean equal futures, whatever history built the sets."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from _grammar_cases import grammar_text
from _grammar_reference import GrammarReference
from test_grammar_engine import allowed, check_mask, tiny_vocab

import structgen.automaton.earley as earley
from structgen.compile.grammar_compiler import compile_grammar_engine
from structgen.frontends.lark_frontend import grammar_from_lark
from structgen.vocab.vocabulary import Vocabulary

PREFIXES = [
    b"[1, ",
    b"[1, 2, ",
    b"[1, 2, 3, ",
    b"[1, [2], 3, ",
    b'{"a": [1, ',
    b'{"a": [1, 2, ',
    b'[{"b": 1}, ',
    b'{"a": 1, ',
    b'{"a": 1, "b": 2, ',
    b"[[1, ",
    b"[[1, 2, ",
    b'[[1], {"c": [2, ',
]
SUFFIXES = [b"3]", b"3]]", b"3]}", b'"c": 1}', b"4, 5]", b'{"d": null}]', b"]", b"true]}", b"3]]}", b"2]}]"]


@pytest.fixture(scope="module")
def vocab() -> Vocabulary:
    return tiny_vocab()


def _fresh_engine(vocab: Vocabulary):  # type: ignore[no-untyped-def]
    return compile_grammar_engine(grammar_from_lark(grammar_text("json")), vocab)


def _sig(state) -> tuple[tuple[int, int], ...]:  # type: ignore[no-untyped-def]
    return tuple(sorted({(e.signature(), q) for e, q in state}))


def test_equal_signatures_mean_equal_futures(vocab: Vocabulary) -> None:
    eng = _fresh_engine(vocab)
    states = {p: eng.advance_bytes(eng.initial_state(), p) for p in PREFIXES}
    assert all(s is not None for s in states.values())
    sigs = {p: _sig(s) for p, s in states.items()}
    equal_pairs = 0
    for a, b in itertools.combinations(PREFIXES, 2):
        same = sigs[a] == sigs[b]
        futures_a = [(r := eng.advance_bytes(states[a], s)) is not None and eng.is_accepting(r) for s in SUFFIXES]
        futures_b = [(r := eng.advance_bytes(states[b], s)) is not None and eng.is_accepting(r) for s in SUFFIXES]
        if same:
            equal_pairs += 1
            assert futures_a == futures_b, (a, b)
            np.testing.assert_array_equal(allowed(eng, states[a], vocab), allowed(eng, states[b], vocab))
    # sharing happens: an array after its second, third item (whatever the items) has one future
    assert sigs[b"[1, 2, "] == sigs[b"[1, 2, 3, "] == sigs[b"[1, [2], 3, "]
    assert sigs[b"[1, "] == sigs[b'[{"b": 1}, ']
    assert sigs[b"[1, "] != sigs[b'{"a": [1, '] != sigs[b"[[1, "]
    assert equal_pairs >= 4


def test_masks_stay_exact_when_the_signature_table_is_cleared(vocab: Vocabulary, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    """The canonical table is bounded; once cleared, later sets get fresh numbers (misses, never
    collisions), so masks served from the cache stay equal to the reference."""
    monkeypatch.setattr(earley, "_MAX_SIGNATURES", 3)
    eng = _fresh_engine(vocab)
    ref = GrammarReference(grammar_text("json"))
    for text in [b'[1, 2, {"a": [3, 4]}, 5]', b'{"a": [1, 2], "b": {"c": [true, null]}}', b"[[1, 2], [3, [4]]]"]:
        for cut in range(1, len(text) + 1):
            state = eng.advance_bytes(eng.initial_state(), text[:cut])
            assert state is not None
            check_mask(eng, ref, vocab, state, text[:cut])
    assert len(eng._initial[0][0].tables.canon) <= 3
