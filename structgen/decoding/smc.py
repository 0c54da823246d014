"""Sequential Monte Carlo with AWRS proposals: samples from the *global* constrained distribution.

    smc_generate(lm, prompt_ids, constraint, particles=16, max_new_tokens=256, ess_threshold=0.5,
                 rng=None, *, estimator="recursive", resampling="stratified", proper_weights=True,
                 proposal="awrs", eos_id=None) -> SMCResult
    awrs_generate(lm, prompt_ids, constraint, max_new_tokens=256, rng=None) -> SMCResult   # one sequence

- ``lm``: a :class:`structgen.decoding.lm.LanguageModel` (``next_logprobs(prefixes) -> (B, V)``); all
  live particles go to the model in **one** call per step.
- ``constraint``: anything with ``.matcher()`` (a ``CompiledConstraint``, a ``PredicateConstraint``).
- ``max_new_tokens`` counts the EOS token: a particle that reaches ``max_new_tokens - 1`` tokens is
  forced to EOS and weighted by the target's EOS mass, so the target is
  ``π(x) ∝ p(x, EOS | prompt) · c(x) · 1[len(x) + 1 ≤ max_new_tokens]``.
- ``ess_threshold``: resample (``"stratified"``, ``"systematic"`` or ``"multinomial"``) when
  ``ESS < ess_threshold · N``; after resampling every particle carries the average weight, so
  ``log_marginal_likelihood = log mean_i w_i`` stays an unbiased estimate of ``Σ_x p(x) c(x)``.

``SMCResult``: ``samples`` (generated token ids per particle, EOS excluded), ``texts``,
``log_weights`` (``(N,)``; ``-inf`` for dead particles), ``ess_trace`` (ESS after each step, before
resampling), ``log_marginal_likelihood``, ``finished`` (ended with EOS), ``lm_log_probs`` (each output's log-probability under the
unconstrained model, EOS included: for reranking), ``n_resamples``,
``n_evaluations`` (constraint checks in total), ``steps``; ``posterior()`` aggregates normalized
weights by text; ``sample(rng)`` draws one output from the weighted particles; ``best()`` is the
output with the largest posterior mass.

``mask_after=k`` bounds AWRS's worst case per step (see :func:`structgen.decoding.awrs.awrs_sample_step`).
``proper_weights=False`` turns the weights off (every particle keeps weight 1): N independent
locally-constrained (LCD / token-masking-equivalent) samples, the distorted baseline.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from structgen.decoding.awrs import NEG_INF, as_rng, awrs_sample_batch, masking_sample_step


def _logsumexp(x: np.ndarray) -> float:
    m = float(np.max(x)) if x.size else NEG_INF
    if not math.isfinite(m):
        return m
    return m + math.log(float(np.sum(np.exp(x - m))))


def normalized_weights(log_weights: np.ndarray) -> np.ndarray:
    """Normalized weights (all zero when every weight is -inf)."""
    lse = _logsumexp(log_weights)
    if not math.isfinite(lse):
        return np.zeros_like(log_weights)
    return np.exp(log_weights - lse)


def effective_sample_size(log_weights: np.ndarray) -> float:
    """``(Σw)² / Σw²`` (0 when every weight is -inf)."""
    w = normalized_weights(log_weights)
    s = float(np.sum(w * w))
    return 1.0 / s if s > 0 else 0.0


def resample_indices(weights: np.ndarray, rng: np.random.Generator, method: str = "stratified") -> np.ndarray:
    """Ancestor indices ``(N,)`` for normalized ``weights``."""
    n = weights.shape[0]
    cum = np.cumsum(weights)
    cum[-1] = 1.0
    if method == "multinomial":
        u = rng.random(n)
    elif method == "stratified":
        u = (np.arange(n) + rng.random(n)) / n
    elif method == "systematic":
        u = (np.arange(n) + rng.random()) / n
    else:
        raise ValueError(f"unknown resampling {method!r}; use stratified, systematic or multinomial")
    return np.minimum(np.searchsorted(cum, u, side="right"), n - 1)


@dataclass
class SMCResult:
    """Weighted particles approximating the global constrained distribution (see module docstring)."""

    samples: list[list[int]]
    texts: list[str]
    log_weights: np.ndarray
    ess_trace: list[float]
    log_marginal_likelihood: float
    finished: list[bool]
    n_resamples: int = 0
    n_evaluations: int = 0
    steps: int = 0
    lm_calls: int = 0
    lm_log_probs: np.ndarray | None = None
    info: dict[str, Any] = field(default_factory=dict)

    def normalized_weights(self) -> np.ndarray:
        lw = np.where(np.asarray(self.finished), self.log_weights, NEG_INF)
        return normalized_weights(lw)

    def posterior(self) -> dict[str, float]:
        """Text -> posterior mass (finished particles only; weights summed over identical texts)."""
        out: dict[str, float] = {}
        for text, w in zip(self.texts, self.normalized_weights()):
            if w > 0:
                out[text] = out.get(text, 0.0) + float(w)
        return out

    def token_posterior(self) -> dict[tuple[int, ...], float]:
        """Token sequence -> posterior mass (finished particles only)."""
        out: dict[tuple[int, ...], float] = {}
        for toks, w in zip(self.samples, self.normalized_weights()):
            if w > 0:
                key = tuple(toks)
                out[key] = out.get(key, 0.0) + float(w)
        return out

    def sample(self, rng: Any = None) -> str | None:
        """One output drawn from the weighted particles (None when every particle died)."""
        w = self.normalized_weights()
        if not w.sum() > 0:
            return None
        i = int(as_rng(rng).choice(len(w), p=w / w.sum()))
        return self.texts[i]

    def best(self) -> str | None:
        """The output with the largest posterior mass (None when every particle died)."""
        post = self.posterior()
        return max(post, key=post.__getitem__) if post else None


def _decode(vocab: Any, tokens: list[int]) -> str:
    if vocab is None:
        return " ".join(str(t) for t in tokens)
    data = b"".join(vocab.token_bytes[t] for t in tokens if t not in vocab.eos_ids)
    return data.decode("utf-8", errors="replace")


def smc_generate(
    lm: Any,
    prompt_ids: Any,
    constraint: Any,
    particles: int = 16,
    max_new_tokens: int = 256,
    ess_threshold: float = 0.5,
    rng: Any = None,
    *,
    estimator: str = "recursive",
    resampling: str = "stratified",
    proper_weights: bool = True,
    proposal: str = "awrs",
    eos_id: int | None = None,
    mask_after: int | None = None,
) -> SMCResult:
    """Run AWRS-SMC; see the module docstring. ``proposal="masking"`` uses exact full masks instead of AWRS."""
    if particles < 1:
        raise ValueError(f"particles must be >= 1, got {particles}")
    if max_new_tokens < 1:
        raise ValueError(f"max_new_tokens must be >= 1, got {max_new_tokens}")
    if not 0.0 <= ess_threshold <= 1.0:
        raise ValueError(f"ess_threshold must be in [0, 1], got {ess_threshold}")
    if proposal not in ("awrs", "masking"):
        raise ValueError(f"unknown proposal {proposal!r}; use 'awrs' or 'masking'")
    gen = as_rng(rng)
    prompt = [int(t) for t in (prompt_ids if prompt_ids is not None else [])]
    n = int(particles)
    vocab = getattr(constraint, "vocab", None)
    eos_ids = sorted(vocab.eos_ids) if vocab is not None else ([] if eos_id is None else [eos_id])
    if eos_id is not None:
        eos_ids = [int(eos_id)]
    if not eos_ids:
        raise ValueError("the constraint's vocabulary has no EOS id; pass eos_id=")
    eos_set = set(eos_ids)

    matchers = [constraint.matcher() for _ in range(n)]
    tokens: list[list[int]] = [[] for _ in range(n)]
    logw = np.zeros(n, dtype=np.float64)
    seq_lp = np.zeros(n, dtype=np.float64)  # unconstrained model log-probability of each particle
    done = np.zeros(n, dtype=bool)
    finished = np.zeros(n, dtype=bool)
    ess_trace: list[float] = []
    n_resamples = 0
    n_evals = 0
    steps = 0
    lm_calls = 0
    while not done.all():
        active = np.flatnonzero(~done)
        logprobs = lm.next_logprobs([prompt + tokens[i] for i in active])  # (len(active), V)
        lm_calls += 1
        steps += 1
        free = [row for row, i in enumerate(active) if len(tokens[i]) < max_new_tokens - 1]
        drawn: dict[int, Any] = {}
        if proposal == "awrs" and free:
            steps_b = awrs_sample_batch(
                logprobs[free],
                [matchers[active[r]] for r in free],
                gen,
                estimator=estimator,
                proper_weights=proper_weights,
                mask_after=mask_after,
            )
            drawn = dict(zip(free, steps_b))
        for row, i in enumerate(active):
            m = matchers[i]
            lp = logprobs[row]
            if len(tokens[i]) >= max_new_tokens - 1:
                # forced EOS: a point-mass proposal, weighted by the target's EOS mass
                ok = [e for e in eos_ids if m.is_token_allowed(e)]
                n_evals += 1
                if ok:
                    eos_lp = _logsumexp(np.asarray([lp[e] for e in ok], dtype=np.float64))
                    seq_lp[i] += eos_lp
                    if proper_weights:
                        logw[i] += eos_lp
                    m.accept_token(ok[0])
                    finished[i] = True
                else:
                    logw[i] = NEG_INF
                done[i] = True
                continue
            if proposal == "awrs":
                step = drawn[row]
            else:
                step = masking_sample_step(lp, m, gen)
                if not proper_weights and step.token >= 0:
                    step = step._replace(log_weight=0.0)
            n_evals += step.n_evaluations
            if step.token < 0:
                logw[i] = NEG_INF
                done[i] = True
                continue
            logw[i] += step.log_weight
            seq_lp[i] += float(lp[step.token])
            m.accept_token(step.token)
            if step.token in eos_set:
                done[i] = True
                finished[i] = True
            else:
                tokens[i].append(step.token)
        ess = effective_sample_size(logw)
        ess_trace.append(ess)
        if proper_weights and n > 1 and ess > 0 and ess < ess_threshold * n and not done.all():
            w = normalized_weights(logw)
            idx = resample_indices(w, gen, resampling)
            avg = _logsumexp(logw) - math.log(n)
            matchers = [matchers[j].fork() for j in idx]
            tokens = [list(tokens[j]) for j in idx]
            done = done[idx].copy()
            seq_lp = seq_lp[idx].copy()
            finished = finished[idx].copy()
            logw = np.full(n, avg, dtype=np.float64)
            n_resamples += 1
    log_ml = _logsumexp(logw) - math.log(n)
    return SMCResult(
        samples=tokens,
        texts=[_decode(vocab, t) for t in tokens],
        log_weights=logw,
        ess_trace=ess_trace,
        log_marginal_likelihood=log_ml,
        finished=[bool(f) for f in finished],
        lm_log_probs=seq_lp,
        n_resamples=n_resamples,
        n_evaluations=n_evals,
        steps=steps,
        lm_calls=lm_calls,
    )


def awrs_generate(
    lm: Any,
    prompt_ids: Any,
    constraint: Any,
    max_new_tokens: int = 256,
    rng: Any = None,
    *,
    estimator: str = "recursive",
) -> SMCResult:
    """One sequence drawn token by token with AWRS: the locally constrained distribution (the same
    as token masking) at a handful of checks per token. ``log_weights[0]`` is the sequence's unbiased
    importance weight for the global target (the product of the per-step ``Ẑ``)."""
    return smc_generate(
        lm,
        prompt_ids,
        constraint,
        particles=1,
        max_new_tokens=max_new_tokens,
        ess_threshold=0.0,
        rng=rng,
        estimator=estimator,
    )


def exact_distributions(
    lm: Any, prompt_ids: Any, constraint: Any, max_new_tokens: int
) -> tuple[dict[tuple[int, ...], float], dict[tuple[int, ...], float], float]:
    """Exact ``(π, LCD, Z)`` by enumerating every valid token sequence (tiny LMs and constraints only).

    ``π`` is the global constrained distribution targeted by :func:`smc_generate` (same length rule),
    ``LCD`` the distribution of locally constrained decoding (token masking) normalized over the
    sequences it finishes, ``Z = Σ_x p(x) c(x)``. Keys are generated token ids without EOS.
    """
    prompt = [int(t) for t in (prompt_ids if prompt_ids is not None else [])]
    vocab = constraint.vocab
    eos_ids = sorted(vocab.eos_ids)
    glob: dict[tuple[int, ...], float] = {}
    local: dict[tuple[int, ...], float] = {}

    def visit(m: Any, toks: list[int], p_joint: float, p_lcd: float) -> None:
        lp = lm.next_logprobs([prompt + toks])[0]
        probs = np.exp(lp)
        if len(toks) >= max_new_tokens - 1:
            allowed = [e for e in eos_ids if m.is_token_allowed(e)]
        else:
            allowed = [t for t in range(probs.shape[0]) if probs[t] > 0 and m.is_token_allowed(t)]
        z = float(sum(probs[t] for t in allowed))
        if z <= 0:
            return
        for t in allowed:
            pj, pl = p_joint * float(probs[t]), p_lcd * float(probs[t]) / z
            if t in vocab.eos_ids:
                key = tuple(toks)
                glob[key] = glob.get(key, 0.0) + pj
                local[key] = local.get(key, 0.0) + pl
            else:
                child = m.fork()
                child.accept_token(t)
                visit(child, toks + [t], pj, pl)

    visit(constraint.matcher(), [], 1.0, 1.0)
    z_total = sum(glob.values())
    z_local = sum(local.values())
    pi = {k: v / z_total for k, v in glob.items()} if z_total > 0 else {}
    lcd = {k: v / z_local for k, v in local.items()} if z_local > 0 else {}
    return pi, lcd, z_total


def total_variation(p: dict[Any, float], q: dict[Any, float]) -> float:
    """Total-variation distance between two finite distributions given as dicts."""
    return 0.5 * sum(abs(p.get(k, 0.0) - q.get(k, 0.0)) for k in set(p) | set(q))


__all__ = [
    "SMCResult",
    "awrs_generate",
    "effective_sample_size",
    "exact_distributions",
    "normalized_weights",
    "resample_indices",
    "smc_generate",
    "total_variation",
]
