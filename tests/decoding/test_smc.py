"""AWRS-SMC against exact enumeration on tiny language models.

Every case: the exact global constrained distribution π and the exact locally constrained (masking)
distribution are enumerated; SMC's weighted particles must be within total variation 0.05 of π, and
on the cases built to show myopia masking must not be.
"""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest

from structgen.decoding.lm import TabularLM
from structgen.decoding.potentials import FiniteLanguageConstraint
from structgen.decoding.smc import (
    awrs_generate,
    effective_sample_size,
    exact_distributions,
    resample_indices,
    smc_generate,
    total_variation,
)
from structgen.vocab.vocabulary import Vocabulary

TV_TARGET = 0.05


def gad_case():
    """gad-asap.md's example: L = {00000} ∪ {1bbbb}; π(00000) = 1/17 while masking gives 1/2."""
    vocab = Vocabulary.from_bytes([b"0", b"1", b"<eos>"], eos_ids=[2])
    lm = TabularLM(lambda ctx: [0.5, 0.5, 0.0] if len(ctx) < 5 else [0.0, 0.0, 1.0], 3)
    lang = ["00000"] + ["1" + "".join(b) for b in itertools.product("01", repeat=4)]
    return lm, FiniteLanguageConstraint(lang, vocab), 6


def bigram_case():
    """awrs.md §8.5: a bigram LM over {a, b, EOS}, constraint a*b with length <= 4."""
    vocab = Vocabulary.from_bytes([b"a", b"b", b"<eos>"], eos_ids=[2])
    table = np.array([[0.7, 0.2, 0.1], [0.3, 0.2, 0.5], [0.0, 0.0, 1.0]])
    lm = TabularLM(table, 3, start=[0.6, 0.3, 0.1])
    return lm, FiniteLanguageConstraint(["b", "ab", "aab", "aaab"], vocab), 5


def dirichlet_lm(vocab_size: int, alpha: float, rng: np.random.Generator) -> TabularLM:
    """A context-dependent LM: each context's row is drawn from ``Dirichlet(alpha)`` by ``rng`` on first use."""
    rows: dict[tuple[int, ...], np.ndarray] = {}

    def table(ctx: tuple[int, ...]) -> np.ndarray:
        if ctx not in rows:
            rows[ctx] = rng.dirichlet(np.full(vocab_size, alpha))
        return rows[ctx]

    return TabularLM(table, vocab_size)


def random_case(seed: int):
    """A random context-dependent LM over overlapping tokens (a, b, ab, ba) and a random finite language."""
    vocab = Vocabulary.from_bytes([b"a", b"b", b"ab", b"ba", b"<eos>"], eos_ids=[4])
    rng = np.random.default_rng(seed)
    words = ["".join(w) for n in range(1, 5) for w in itertools.product("ab", repeat=n)]
    lang = list(rng.choice(words, size=6, replace=False))
    return dirichlet_lm(5, 0.7, rng), FiniteLanguageConstraint(lang, vocab), 6


def regex_case():
    """The real regex engine (skips until structgen.compile supports regex=)."""
    import structgen

    vocab = Vocabulary.from_bytes([b"a", b"b", b"ab", b"c", b"<eos>"], eos_ids=[4])
    try:
        compiled = structgen.compile(vocab, regex=r"(ab|c)a?b{0,2}")
    except (ImportError, ModuleNotFoundError, NotImplementedError) as e:
        pytest.skip(f"regex engine not available yet: {e}")
    return dirichlet_lm(5, 0.5, np.random.default_rng(99)), compiled, 5


CASES = {
    "gad": gad_case,
    "bigram": bigram_case,
    "random0": lambda: random_case(0),
    "random1": lambda: random_case(1),
    "random2": lambda: random_case(2),
    "regex": regex_case,
}


def language_check(constraint, tokens: list[int]) -> bool:
    m = constraint.matcher()
    return all(m.accept_token(t) for t in tokens) and m.is_accepting()


@pytest.mark.parametrize("name", sorted(CASES))
def test_smc_matches_exact_global_distribution(name: str) -> None:
    lm, constraint, max_new = CASES[name]()
    pi, lcd, z = exact_distributions(lm, [], constraint, max_new)
    assert pi, "the case must have valid outputs"
    result = smc_generate(lm, [], constraint, particles=8000, max_new_tokens=max_new, ess_threshold=0.5, rng=1)
    post = result.token_posterior()
    tv_smc = total_variation(post, pi)
    tv_lcd = total_variation(lcd, pi)
    print(f"{name}: TV(SMC, π) = {tv_smc:.4f}   TV(masking, π) = {tv_lcd:.4f} (exact)")
    assert tv_smc < TV_TARGET, f"SMC TV {tv_smc:.4f} (masking: {tv_lcd:.4f})"
    # every finished output validates; the marginal likelihood estimate is close to Σ p(x)c(x)
    for toks, fin in zip(result.samples, result.finished):
        if fin:
            assert language_check(constraint, toks)
    assert math.exp(result.log_marginal_likelihood) == pytest.approx(z, rel=0.1)
    # one batched LM call per step for all live particles
    assert result.lm_calls == result.steps == len(result.ess_trace)


@pytest.mark.parametrize("name", ["gad", "bigram"])
def test_masking_is_distorted_where_smc_is_not(name: str) -> None:
    lm, constraint, max_new = CASES[name]()
    pi, lcd, _ = exact_distributions(lm, [], constraint, max_new)
    assert total_variation(lcd, pi) > 2 * TV_TARGET
    # sampled masking (exact full masks, no weights) converges to the distorted LCD distribution
    masked = smc_generate(
        lm, [], constraint, particles=2000, max_new_tokens=max_new, rng=2, proposal="masking", proper_weights=False
    )
    tv_masked = total_variation(masked.token_posterior(), pi)
    assert tv_masked > 2 * TV_TARGET
    assert total_variation(masked.token_posterior(), lcd) < TV_TARGET
    # so is AWRS without weights (ARS-LCD): same distribution as masking, far fewer checks
    ars = smc_generate(lm, [], constraint, particles=2000, max_new_tokens=max_new, rng=3, proper_weights=False)
    assert total_variation(ars.token_posterior(), lcd) < TV_TARGET


@pytest.mark.parametrize("name", ["gad", "bigram", "random0"])
def test_marginal_likelihood_estimate_is_unbiased(name: str) -> None:
    lm, constraint, max_new = CASES[name]()
    _, _, z = exact_distributions(lm, [], constraint, max_new)
    rng = np.random.default_rng(8)
    est = np.exp(
        [
            smc_generate(lm, [], constraint, particles=8, max_new_tokens=max_new, rng=rng).log_marginal_likelihood
            for _ in range(300)
        ]
    )
    assert abs(est.mean() - z) < 5 * est.std() / math.sqrt(est.size)


def test_gad_example_numbers() -> None:
    lm, constraint, max_new = gad_case()
    pi, lcd, z = exact_distributions(lm, [], constraint, max_new)
    assert pi[(0, 0, 0, 0, 0)] == pytest.approx(1 / 17)
    assert lcd[(0, 0, 0, 0, 0)] == pytest.approx(1 / 2)
    assert z == pytest.approx(17 / 32)


def test_dead_end_particles_get_zero_weight_without_crashing() -> None:
    vocab = Vocabulary.from_bytes([b"a", b"b", b"<eos>"], eos_ids=[2])
    lm = TabularLM(lambda ctx: [0.0, 1.0, 0.0] if ctx else [1.0, 0.0, 0.0], 3)  # "a" then only "b"
    constraint = FiniteLanguageConstraint(["aa"], vocab)  # needs "a" after "a": probability 0
    with np.errstate(divide="ignore"):
        result = smc_generate(lm, [], constraint, particles=16, max_new_tokens=5, rng=0)
    assert np.all(np.isneginf(result.log_weights))
    assert result.log_marginal_likelihood == float("-inf")
    assert result.posterior() == {} and result.best() is None and result.sample(0) is None
    assert result.n_resamples == 0 and result.ess_trace[-1] == 0.0


def test_max_new_tokens_forces_eos_and_matches_length_conditioned_target() -> None:
    vocab = Vocabulary.from_bytes([b"a", b"b", b"<eos>"], eos_ids=[2])
    table = np.array([[0.5, 0.3, 0.2], [0.4, 0.4, 0.2], [0.0, 0.0, 1.0]])
    lm = TabularLM(table, 3, start=[0.5, 0.5, 0.0])
    words = ["".join(w) for n in range(1, 5) for w in itertools.product("ab", repeat=n)]
    constraint = FiniteLanguageConstraint(words, vocab)
    pi, _, _ = exact_distributions(lm, [], constraint, 3)
    assert max(len(k) for k in pi) == 2
    result = smc_generate(lm, [], constraint, particles=3000, max_new_tokens=3, rng=4)
    assert all(result.finished) and all(len(s) <= 2 for s in result.samples)
    assert total_variation(result.token_posterior(), pi) < TV_TARGET


def test_resampling_helpers() -> None:
    rng = np.random.default_rng(0)
    w = np.array([0.7, 0.1, 0.2, 0.0])
    for method in ("stratified", "systematic", "multinomial"):
        idx = np.concatenate([resample_indices(w, rng, method) for _ in range(2000)])
        assert 3 not in idx
        np.testing.assert_allclose(np.bincount(idx, minlength=4) / idx.size, w, atol=0.02)
    assert effective_sample_size(np.log([0.25, 0.25, 0.25, 0.25])) == pytest.approx(4)
    assert effective_sample_size(np.array([0.0, -np.inf, -np.inf])) == pytest.approx(1)
    with pytest.raises(ValueError):
        resample_indices(w, rng, "nope")


def test_resamples_when_ess_drops_and_result_helpers() -> None:
    lm, constraint, max_new = gad_case()
    result = smc_generate(lm, [], constraint, particles=200, max_new_tokens=max_new, ess_threshold=0.9, rng=5)
    assert result.n_resamples > 0
    assert result.best() in result.posterior()
    assert result.sample(0) in result.posterior()
    assert sum(result.posterior().values()) == pytest.approx(1.0)
    assert all(set(t) <= {"0", "1"} for t in result.texts)


def test_argument_validation() -> None:
    lm, constraint, _ = gad_case()
    for kwargs in ({"particles": 0}, {"max_new_tokens": 0}, {"ess_threshold": 2.0}, {"proposal": "x"}):
        with pytest.raises(ValueError):
            smc_generate(lm, [], constraint, **kwargs)


def test_awrs_generate_single_sequence_follows_the_local_distribution() -> None:
    lm, constraint, max_new = bigram_case()
    _, lcd, _ = exact_distributions(lm, [], constraint, max_new)
    rng = np.random.default_rng(12)
    counts: dict[tuple[int, ...], float] = {}
    for _ in range(1500):
        r = awrs_generate(lm, [], constraint, max_new_tokens=max_new, rng=rng)
        assert r.finished == [True] and language_check(constraint, r.samples[0])
        key = tuple(r.samples[0])
        counts[key] = counts.get(key, 0.0) + 1 / 1500
    assert total_variation(counts, lcd) < TV_TARGET


def test_lm_log_probs_are_the_unconstrained_sequence_probabilities() -> None:
    lm, constraint, max_new = bigram_case()
    result = smc_generate(lm, [], constraint, particles=50, max_new_tokens=max_new, rng=6)
    for toks, lp in zip(result.samples, result.lm_log_probs):  # type: ignore[arg-type]
        ctx: list[int] = []
        exact = 0.0
        for t in toks + [2]:
            exact += math.log(lm.probs(ctx)[t])
            ctx.append(t)
        assert lp == pytest.approx(exact)
