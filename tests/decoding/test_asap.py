"""ASAp (grammar-aligned sampling): exactness on the worked example, sound upper bounds, convergence."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from structgen.decoding.asap import ASApSampler
from structgen.decoding.lm import TabularLM
from structgen.decoding.potentials import FiniteLanguageConstraint
from structgen.decoding.smc import exact_distributions, total_variation
from structgen.vocab.vocabulary import Vocabulary


def gad_setup():
    vocab = Vocabulary.from_bytes([b"0", b"1", b"<eos>"], eos_ids=[2])
    lm = TabularLM(lambda ctx: [0.5, 0.5, 0.0] if len(ctx) < 5 else [0.0, 0.0, 1.0], 3)
    lang = ["00000"] + ["1" + "".join(b) for b in itertools.product("01", repeat=4)]
    return lm, FiniteLanguageConstraint(lang, vocab)


def test_worked_example_is_exact_after_one_sample() -> None:
    lm, constraint = gad_setup()
    sampler = ASApSampler(lm, constraint, max_new_tokens=6)
    assert sampler.next_token_distribution() == pytest.approx({0: 0.5, 1: 0.5})  # = masking at first
    sampler.observe([0, 0, 0, 0, 0, 2])
    assert sampler.next_token_distribution() == pytest.approx({0: 1 / 17, 1: 16 / 17})
    assert sampler.root.E == pytest.approx(1 / 32 + 1 / 2)
    rng = np.random.default_rng(0)
    outs = sampler.sample_many(4000, rng)
    assert all(
        o.finished and o.text in {"00000"} | {"1" + "".join(b) for b in itertools.product("01", repeat=4)} for o in outs
    )
    freq = np.mean([o.text == "00000" for o in outs])
    assert freq == pytest.approx(1 / 17, abs=0.015)  # masking would give 0.5


def random_setup(seed: int):
    vocab = Vocabulary.from_bytes([b"a", b"b", b"ab", b"<eos>"], eos_ids=[3])
    rng = np.random.default_rng(seed)
    rows: dict[tuple[int, ...], np.ndarray] = {}

    def table(ctx: tuple[int, ...]) -> np.ndarray:
        if ctx not in rows:
            rows[ctx] = rng.dirichlet(np.full(4, 0.5))
        return rows[ctx]

    words = ["".join(w) for n in range(1, 5) for w in itertools.product("ab", repeat=n)]
    lang = list(rng.choice(words, size=5, replace=False))
    return TabularLM(table, 4), FiniteLanguageConstraint(lang, vocab)


def efg(lm: TabularLM, constraint, tokens: tuple[int, ...], max_new: int) -> float:
    """Exact expected future grammaticality of a prefix, with the samplers' length rule."""
    m = constraint.matcher()
    if m.accept_tokens(tokens) != len(tokens):
        return 0.0
    if tokens and tokens[-1] in constraint.vocab.eos_ids:
        return 1.0
    p = lm.probs(tokens)
    total = 0.0
    for t in range(len(p)):
        if p[t] == 0 or not m.is_token_allowed(t):
            continue
        if len(tokens) >= max_new - 1 and t not in constraint.vocab.eos_ids:
            continue
        total += p[t] * efg(lm, constraint, tokens + (t,), max_new)
    return total


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_bounds_stay_sound_and_decrease_then_converge(seed: int) -> None:
    lm, constraint = random_setup(seed)
    max_new = 6
    pi, lcd, z = exact_distributions(lm, [], constraint, max_new)
    sampler = ASApSampler(lm, constraint, max_new_tokens=max_new)
    rng = np.random.default_rng(seed)
    previous: dict[tuple[int, ...], float] = {}
    for _ in range(60):
        out = sampler.sample(rng)
        assert out.finished
        m = constraint.matcher()
        assert m.accept_tokens(out.tokens) == len(out.tokens) and m.is_accepting()
        for prefix, node in sampler.nodes():
            assert node.E >= efg(lm, constraint, prefix, max_new) - 1e-12
            assert node.E <= previous.get(prefix, 1.0) + 1e-12
            previous[prefix] = node.E
    # the empirical distribution of later samples approaches Q
    late = sampler.sample_many(3000, rng)
    emp: dict[tuple[int, ...], float] = {}
    for o in late:
        emp[tuple(o.tokens)] = emp.get(tuple(o.tokens), 0.0) + 1 / len(late)
    assert total_variation(emp, pi) < 0.05
    print(
        f"seed {seed}: TV(ASAp late, Q) = {total_variation(emp, pi):.4f}, TV(masking, Q) = {total_variation(lcd, pi):.4f}"
    )


@pytest.mark.parametrize("seed", [0, 1])
def test_fully_expanded_trie_is_exact(seed: int) -> None:
    lm, constraint = random_setup(seed)
    pi, _, z = exact_distributions(lm, [], constraint, 6)
    sampler = ASApSampler(lm, constraint, max_new_tokens=6)
    sampler.expand_all()
    assert sampler.root.E == pytest.approx(z, rel=1e-12)
    for prefix, node in sampler.nodes():
        assert node.E == pytest.approx(efg(lm, constraint, prefix, 6), abs=1e-12)
    first = sampler.next_token_distribution()
    marginal: dict[int, float] = {}
    for seq, q in pi.items():
        marginal[seq[0] if seq else 3] = marginal.get(seq[0] if seq else 3, 0.0) + q
    for t, q in first.items():
        assert q == pytest.approx(marginal.get(t, 0.0), abs=1e-12)


def test_lm_is_called_only_on_first_visits() -> None:
    lm, constraint = gad_setup()
    sampler = ASApSampler(lm, constraint, max_new_tokens=6)
    rng = np.random.default_rng(1)
    sampler.sample_many(300, rng)
    calls = sampler.lm_calls
    sampler.sample_many(100, rng)
    assert sampler.lm_calls - calls < 10  # the 31 internal prefixes are (nearly) all expanded
    sampler.reset_trie()
    assert sampler.root.E == 1.0


def test_dead_ends_and_empty_language() -> None:
    vocab = Vocabulary.from_bytes([b"a", b"b", b"<eos>"], eos_ids=[2])
    lm = TabularLM(lambda ctx: {(): [0.5, 0.5, 0.0], (0,): [0.0, 1.0, 0.0]}.get(ctx, [0.0, 0.0, 1.0]), 3)
    # "a" is viable but its only continuation "a" has probability zero: learned as a dead end
    sampler = ASApSampler(lm, FiniteLanguageConstraint(["aa", "b"], vocab), max_new_tokens=4)
    outs = sampler.sample_many(50, 0)
    assert all(o.finished and o.text == "b" for o in outs)
    assert sampler.next_token_distribution() == pytest.approx({0: 0.0, 1: 1.0})
    empty = ASApSampler(lm, FiniteLanguageConstraint(["aa"], vocab), max_new_tokens=4)
    out = empty.sample(0)
    assert not out.finished
    with pytest.raises(ValueError):
        empty.observe([1])
