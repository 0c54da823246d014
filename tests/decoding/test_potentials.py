"""User predicates composed with compiled constraints, enforced by rejection (AWRS / SMC)."""

from __future__ import annotations

import json
import re

import numpy as np
import pytest

import structgen
from structgen.decoding.awrs import awrs_sample_step, masking_sample_step
from structgen.decoding.lm import TabularLM
from structgen.decoding.potentials import (
    FiniteLanguageConstraint,
    PredicateConstraint,
    json_predicate,
    unique_items,
)
from structgen.decoding.smc import exact_distributions, smc_generate, total_variation
from structgen.runtime.bitmask import allocate_bitmask, unpack_bitmask
from structgen.vocab.vocabulary import Vocabulary

ITEMS = re.compile(r'"[abc]"')
ARRAY_TOKENS = [b"[", b"]", b",", b'"a"', b'"b"', b'"c"', b"<eos>"]


def array_setup():
    """A JSON array of 1..4 strings from {a, b, c} (regex engine) and a random tabular LM."""
    vocab = Vocabulary.from_bytes(ARRAY_TOKENS, eos_ids=[6])
    compiled = structgen.compile(vocab, regex=r'\[("a"|"b"|"c")(,("a"|"b"|"c")){0,3}\]')
    rng = np.random.default_rng(21)
    rows: dict[tuple[int, ...], np.ndarray] = {}

    def table(ctx: tuple[int, ...]) -> np.ndarray:
        # a random LM that, like a real one, mostly follows the syntax (the automaton's tokens x 8)
        if ctx not in rows:
            m = compiled.matcher()
            boost = np.ones(7)
            if m.accept_tokens(ctx) == len(ctx):
                boost[m.allowed_token_ids()] = 8.0
            rows[ctx] = rng.dirichlet(np.full(7, 0.6)) * boost
        return rows[ctx]

    return vocab, compiled, TabularLM(table, 7)


def unique_so_far(text: str) -> bool:
    """Prefix-sound uniqueItems: a repeated item can never be undone by a continuation."""
    items = ITEMS.findall(text)
    return len(items) == len(set(items))


@pytest.mark.parametrize("mode", ["prefix", "complete"])
def test_unique_items_by_rejection_matches_exact_distribution(mode: str) -> None:
    _, compiled, lm = array_setup()
    if mode == "prefix":
        constraint = PredicateConstraint(compiled, prefix=unique_so_far)
    else:  # checked only at EOS: dead ends appear, the target is the same
        constraint = PredicateConstraint(compiled, complete=json_predicate(unique_items))
    pi, lcd, _ = exact_distributions(lm, [], constraint, 10)
    assert len(pi) == 15  # 3 + 6 + 6 unique arrays (4 items cannot be unique)
    result = smc_generate(lm, [], constraint, particles=4000, max_new_tokens=10, rng=3)
    tv = total_variation(result.token_posterior(), pi)
    assert tv < 0.05, f"TV(SMC, π) = {tv:.4f}, masking {total_variation(lcd, pi):.4f}"
    for text, fin in zip(result.texts, result.finished):
        if fin:
            value = json.loads(text)
            assert unique_items(value) and 1 <= len(value) <= 3


def test_predicate_is_called_only_on_drawn_tokens() -> None:
    _, compiled, lm = array_setup()
    calls = []

    def rule(text: str) -> bool:
        calls.append(text)
        return unique_so_far(text)

    m = PredicateConstraint(compiled, prefix=rule).matcher()
    for t in (0, 3, 2):  # [ "a" ,
        assert m.accept_token(t)
    calls.clear()
    rng = np.random.default_rng(0)
    lp = np.log(np.full(7, 1 / 7))
    step = awrs_sample_step(lp, m, rng)
    assert step.token in (4, 5)
    assert len(calls) <= min(step.n_evaluations, 3)
    calls.clear()
    masking_sample_step(lp, m, rng)
    assert len(calls) == 3  # masking checks every token the automaton allows


def test_predicate_matcher_mechanics() -> None:
    vocab, compiled, _ = array_setup()
    m = PredicateConstraint(compiled, prefix=unique_so_far).matcher()
    for t in (0, 3, 2):
        assert m.accept_token(t)
    assert m.text == '["a",'
    assert not m.is_token_allowed(3)  # "a" again breaks uniqueness
    assert not m.accept_token(3) and m.error
    f = m.fork()
    assert f.accept_token(4) and f.text == '["a","b"' and m.text == '["a",'
    f.rollback(2)
    assert f.text == '["a"' and f.is_token_allowed(1)
    assert f.accept_token(1) and f.is_accepting() and f.accept_token(6) and f.is_terminated()
    # the bitmask is the automaton mask filtered by the predicate
    bm = allocate_bitmask(1, vocab.size)
    m.fill_bitmask(bm)
    assert list(np.flatnonzero(unpack_bitmask(bm[0], vocab.size))) == [4, 5]
    assert list(m.allowed_token_ids()) == [4, 5]
    assert m.predicate_calls > 0
    m.reset()
    assert m.text == "" and m.accept_text('["c"')
    with pytest.raises(TypeError):
        PredicateConstraint(compiled)
    with pytest.raises(TypeError):
        PredicateConstraint(compiled, prefix="not callable")  # type: ignore[arg-type]


def test_cross_field_rule_every_output_validates() -> None:
    """{"min": d, "max": d} with max >= min: a rule no regular automaton states compactly."""
    digits = [str(d).encode() for d in range(10)]
    vocab = Vocabulary.from_bytes([b'{"min":', b',"max":', b"}", *digits, b"<eos>"], eos_ids=[13])
    words = [f'{{"min":{a},"max":{b}}}' for a in range(10) for b in range(10)]
    base = FiniteLanguageConstraint(words, vocab)

    def rule(value: dict) -> bool:
        return value["max"] >= value["min"]

    constraint = PredicateConstraint(base, complete=json_predicate(rule))
    lm = TabularLM(
        lambda ctx: np.r_[np.full(13, 1.0), 0.5] if len(ctx) == 5 else np.r_[1.0, 1.0, 1.0, np.arange(1, 11), 0.5], 14
    )
    pi, _, _ = exact_distributions(lm, [], constraint, 6)
    assert len(pi) == 55
    result = smc_generate(lm, [], constraint, particles=500, max_new_tokens=6, rng=0)
    assert any(result.finished)
    for text, fin in zip(result.texts, result.finished):
        if fin:
            assert rule(json.loads(text))
    post = result.posterior()
    assert post and all(rule(json.loads(t)) for t in post)
