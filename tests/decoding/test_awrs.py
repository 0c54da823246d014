"""AWRS: exact draw from the locally constrained distribution and unbiased normalizer estimates.

Exactness is checked by enumerating every without-replacement order (Plackett-Luce probabilities)
and feeding it to the estimator code itself; the sampling path is then checked statistically.
"""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest

from structgen.decoding.awrs import (
    GumbelOrder,
    SequentialOrder,
    awrs_sample_batch,
    awrs_sample_step,
    masking_sample_step,
    paper_estimate,
    recursive_estimate,
)
from structgen.decoding.potentials import FiniteLanguageConstraint
from structgen.vocab.vocabulary import Vocabulary

chi2 = pytest.importorskip("scipy.stats").chisquare


class FixedOrder:
    """A scripted without-replacement order."""

    def __init__(self, order: tuple[int, ...]) -> None:
        self.order = list(order)

    def next(self) -> int | None:
        return self.order.pop(0) if self.order else None


def orders_with_probs(p: np.ndarray, exclude: set[int] = frozenset()):  # type: ignore[assignment]
    """Every without-replacement order of the positive-probability tokens, with its probability."""
    pool = [i for i in range(len(p)) if p[i] > 0 and i not in exclude]
    for perm in itertools.permutations(pool):
        prob, left = 1.0, sum(p[i] for i in pool)
        for i in perm:
            prob *= p[i] / left
            left -= p[i]
        yield perm, prob


def random_cases(n: int, size: int = 5):
    rng = np.random.default_rng(1234)
    for _ in range(n):
        p = rng.integers(0, 6, size=size).astype(np.float64)
        if p.sum() == 0:
            p[0] = 1
        p /= p.sum()
        valid = rng.random(size) < 0.5
        yield p, valid


@pytest.mark.parametrize("case", range(40))
def test_recursive_estimator_exact_by_enumeration(case: int) -> None:
    p, valid = list(random_cases(40))[case]
    z = float(p[valid].sum())
    mean_z, token_probs = 0.0, np.zeros(len(p))
    for perm, prob in orders_with_probs(p):
        tok, zhat, _ = recursive_estimate(FixedOrder(perm), p, lambda t: bool(valid[t]))
        mean_z += prob * zhat
        if tok >= 0:
            token_probs[tok] += prob
    assert mean_z == pytest.approx(z, abs=1e-12)
    if z > 0:  # the accepted token is distributed as p restricted to the valid set
        np.testing.assert_allclose(token_probs, np.where(valid, p, 0) / z, atol=1e-12)


@pytest.mark.parametrize("case", range(40))
def test_paper_estimator_exact_by_enumeration(case: int) -> None:
    p, valid = list(random_cases(40))[case]
    z = float(p[valid].sum())
    mean_z = 0.0
    for perm, prob in orders_with_probs(p):
        # loop 1 fixes the rejected set; enumerate loop 2's orders over the remaining pool
        first_ok = next((k for k, t in enumerate(perm) if valid[t]), None)
        rej1 = set(perm[: first_ok if first_ok is not None else len(perm)])
        for perm2, prob2 in orders_with_probs(p, rej1):
            _, zhat, _ = paper_estimate(
                FixedOrder(perm), p, lambda t: bool(valid[t]), lambda ex, o=perm2: FixedOrder(o)
            )
            mean_z += prob * prob2 * zhat
            if first_ok is None:
                break  # no acceptance: loop 2 never runs
    assert mean_z == pytest.approx(z, abs=1e-12)


def test_two_token_recursive_has_zero_variance() -> None:
    z = 0.3
    rng = np.random.default_rng(0)
    for _ in range(200):
        step = awrs_sample_step(np.log([z, 1 - z]), lambda t: t == 0, rng)
        assert step.token == 0
        assert math.exp(step.log_weight) == pytest.approx(z, rel=1e-12)
    paper = [
        math.exp(awrs_sample_step(np.log([z, 1 - z]), lambda t: t == 0, rng, estimator="paper").log_weight)
        for _ in range(2000)
    ]
    assert np.std(paper) > 0.01  # the paper estimator is unbiased but not zero-variance
    assert np.mean(paper) == pytest.approx(z, abs=5 * np.std(paper) / math.sqrt(len(paper)))


@pytest.mark.parametrize("estimator", ["recursive", "paper"])
def test_token_draw_matches_local_distribution_chi_square(estimator: str) -> None:
    p = np.array([0.5, 0.3, 0.2])
    rng = np.random.default_rng(7)
    n = 6_000
    draws = [awrs_sample_step(np.log(p), lambda t: t in (1, 2), rng, estimator=estimator) for _ in range(n)]
    counts = np.bincount([d.token for d in draws], minlength=3)
    assert counts[0] == 0
    stat = chi2(counts[1:], f_exp=n * np.array([0.6, 0.4]))
    assert stat.pvalue > 1e-3
    w = np.exp([d.log_weight for d in draws])
    assert abs(w.mean() - 0.5) < 5 * w.std() / math.sqrt(n) + 1e-12


def test_larger_vocabulary_chi_square_and_unbiased_weight() -> None:
    rng = np.random.default_rng(3)
    logits = rng.normal(size=200) * 2
    p = np.exp(logits - logits.max())
    p /= p.sum()
    valid = rng.random(200) < 0.2
    z = p[valid].sum()
    n = 10_000
    draws = [awrs_sample_step(np.log(p), lambda t: bool(valid[t]), rng) for _ in range(n)]
    tokens = np.array([d.token for d in draws])
    assert valid[tokens].all()
    g = np.where(valid, p, 0) / z
    top = np.argsort(-g)[:10]  # chi-square on the 10 most likely valid tokens + the rest pooled
    obs = np.append(np.bincount(tokens, minlength=200)[top], n - np.isin(tokens, top).sum())
    exp = np.append(g[top], 1 - g[top].sum()) * n
    assert chi2(obs, f_exp=exp).pvalue > 1e-3
    w = np.exp([d.log_weight for d in draws])
    assert abs(w.mean() - z) < 5 * w.std() / math.sqrt(n)


def test_evaluation_counts_match_analytic_expectation() -> None:
    rng = np.random.default_rng(11)
    # valid mass 0.9, invalid 0.1 -> mean rejection-run length 0.9*1 + 0.1*2 = 1.1
    n = [
        awrs_sample_step(np.log([0.9, 0.1]), lambda t: t == 0, rng, proper_weights=False).n_evaluations
        for _ in range(10_000)
    ]
    assert np.mean(n) == pytest.approx(1.1, abs=0.015)
    # one valid token of mass 0.5 and 1000 invalid tokens of 0.0005: ~2 evaluations, masking costs 1001
    p = np.concatenate([[0.5], np.full(1000, 0.0005)])
    runs = [awrs_sample_step(np.log(p), lambda t: t == 0, rng, proper_weights=False).n_evaluations for _ in range(2000)]
    expected = 1 + 1000 * 0.0005 / 0.5005
    assert np.mean(runs) == pytest.approx(expected, rel=0.05)
    full = [awrs_sample_step(np.log(p), lambda t: t == 0, rng).n_evaluations for _ in range(2000)]
    assert np.mean(full) == pytest.approx(expected + 1, rel=0.05)  # recursive: one extra check
    assert masking_sample_step(np.log(p), lambda t: t == 0, rng).n_evaluations == 1001


def test_dead_end_returns_minus_one_and_zero_weight() -> None:
    step = awrs_sample_step(np.log([0.2, 0.8]), lambda t: False, 0)
    assert step.token == -1 and step.log_weight == float("-inf") and step.n_evaluations == 2
    # the only valid token has probability zero
    with np.errstate(divide="ignore"):
        step = awrs_sample_step(np.log([0.0, 1.0]), lambda t: t == 0, 0)
    assert step.token == -1 and step.log_weight == float("-inf")
    assert awrs_sample_step(np.log([0.5, 0.5]), lambda t: False, 0, max_rejects=1).n_evaluations == 1


def test_unnormalized_logits_and_pruning_keep_weights_unbiased() -> None:
    # tokens: a, b, ab, <pad-special>, <eos>; the special token carries mass and is pruned
    vocab = Vocabulary.from_bytes([b"a", b"b", b"ab", b"<s>", b"</s>"], eos_ids=[4], special_ids=[3])
    m = FiniteLanguageConstraint(["ab", "abb"], vocab).matcher()
    logits = np.array([1.0, 0.5, 0.2, 2.0, -1.0])  # unnormalized
    rng = np.random.default_rng(5)
    p = np.exp(logits)
    z = p[0] + p[2]  # "a" and "ab" are viable prefixes of the language
    draws = [awrs_sample_step(logits, m, rng) for _ in range(10_000)]
    assert {d.token for d in draws} <= {0, 2}
    w = np.exp([d.log_weight for d in draws])
    assert abs(w.mean() - z) < 5 * w.std() / math.sqrt(len(w)) + 1e-9
    assert max(d.n_evaluations for d in draws) <= 4  # the special token is never tested
    exact = masking_sample_step(logits, m, rng)
    assert exact.log_weight == pytest.approx(math.log(z))


@pytest.mark.parametrize("order_cls", [SequentialOrder, GumbelOrder])
def test_orders_are_without_replacement_orders(order_cls) -> None:
    p = np.array([0.4, 0.0, 0.35, 0.25])
    rng = np.random.default_rng(0)
    firsts, seconds = np.zeros(4), np.zeros(4)
    for _ in range(10_000):
        o = order_cls(p, rng)
        seq = [o.next(), o.next(), o.next(), o.next()]
        assert seq[-1] is None and sorted(seq[:3]) == [0, 2, 3]  # type: ignore[type-var]
        firsts[seq[0]] += 1
        if seq[0] == 0:
            seconds[seq[1]] += 1
    np.testing.assert_allclose(firsts / firsts.sum(), p, atol=0.015)
    np.testing.assert_allclose(seconds[[2, 3]] / seconds.sum(), np.array([0.35, 0.25]) / 0.6, atol=0.02)
    excluded = order_cls(p, rng, exclude={0, 3})
    assert excluded.next() == 2 and excluded.next() is None


def test_accepts_torch_logprobs_and_matcher_state_is_unchanged() -> None:
    torch = pytest.importorskip("torch")
    vocab = Vocabulary.from_bytes([b"a", b"b", b"</s>"], eos_ids=[2])
    m = FiniteLanguageConstraint(["ab"], vocab).matcher()
    step = awrs_sample_step(torch.log_softmax(torch.tensor([0.0, 1.0, 2.0]), -1), m, 0)
    assert step.token == 0 and m.num_accepted == 0
    assert m.accept_token(step.token)


def test_unknown_estimator_raises() -> None:
    with pytest.raises(ValueError, match="estimator"):
        awrs_sample_step(np.log([0.5, 0.5]), lambda t: True, 0, estimator="nope")


@pytest.mark.parametrize("width", [3, 1001])  # Gumbel-sorted rows and lazy sequential rows
@pytest.mark.parametrize("estimator", ["recursive", "paper"])
def test_batch_step_matches_the_single_step_distribution(width: int, estimator: str) -> None:
    rng = np.random.default_rng(17)
    p = np.concatenate([[0.5, 0.3, 0.2], np.zeros(width - 3)]) if width > 3 else np.array([0.5, 0.3, 0.2])
    if width > 3:
        p[3:] = 0.1 / (width - 3)
        p[:3] *= 0.9
    valid = np.zeros(width, dtype=bool)
    valid[[1, 2]] = True
    valid[3::7] = True
    z = p[valid].sum()
    n = 4000
    with np.errstate(divide="ignore"):
        rows = np.log(np.tile(p, (n, 1)))
    steps = awrs_sample_batch(rows, [lambda t: bool(valid[t])] * n, rng, estimator=estimator)
    tokens = np.array([s.token for s in steps])
    assert valid[tokens].all()
    g = np.where(valid, p, 0) / z
    obs = np.array([(tokens == 1).sum(), (tokens == 2).sum(), (tokens > 2).sum()])
    exp = n * np.array([g[1], g[2], g[3:].sum()])
    keep = exp > 0
    assert chi2(obs[keep], f_exp=exp[keep]).pvalue > 1e-3
    w = np.exp([s.log_weight for s in steps])
    assert abs(w.mean() - z) < 5 * w.std() / math.sqrt(n) + 1e-12
    dead = awrs_sample_batch(np.log([[0.5, 0.5]]), [lambda t: False], rng)
    assert dead[0].token == -1 and dead[0].log_weight == float("-inf")
    assert awrs_sample_batch(np.zeros((0, 4)), [], rng) == []


@pytest.mark.parametrize("width", [40, 1001])
def test_mask_fallback_keeps_the_law_and_the_unbiased_weight(width: int) -> None:
    """After k rejections the walk is finished from the full mask: same token law, same E[Ẑ]."""
    rng = np.random.default_rng(23)
    p = rng.dirichlet(np.full(width, 0.3))
    valid = np.zeros(width, dtype=bool)
    valid[np.argsort(p)[: width // 4]] = True  # the valid tokens are the least likely ones
    z = p[valid].sum()

    class Oracle:
        def __init__(self) -> None:
            self.masks = 0

        def is_token_allowed(self, t: int) -> bool:
            return bool(valid[t])

        def allowed_token_ids(self) -> np.ndarray:
            self.masks += 1
            return np.flatnonzero(valid)

    oracle = Oracle()
    n = 6000
    steps = [awrs_sample_step(np.log(p), oracle, rng, mask_after=3) for _ in range(n)]
    assert oracle.masks > n // 10  # the fallback really ran
    tokens = np.array([s.token for s in steps])
    assert valid[tokens].all()
    w = np.exp([s.log_weight for s in steps])
    assert abs(w.mean() - z) < 5 * w.std() / math.sqrt(n)
    g = np.where(valid, p, 0) / z
    top = np.argsort(-g)[:5]
    obs = np.append(np.bincount(tokens, minlength=width)[top], n - np.isin(tokens, top).sum())
    assert chi2(obs, f_exp=np.append(g[top], 1 - g[top].sum()) * n).pvalue > 1e-3
    assert max(s.n_evaluations for s in steps) <= 3 + width
