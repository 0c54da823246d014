"""Grammar-aligned sampling (ASAp, Park et al. 2024) for repeated sampling of one prompt.

    sampler = ASApSampler(lm, constraint, prompt_ids, max_new_tokens=64)
    out = sampler.sample(rng)          # ASApSample(tokens, text, finished, log_prob)
    outs = sampler.sample_many(100, rng)
    sampler.next_token_distribution(prefix) -> {token: prob}   # the current proposal at a prefix

Token masking (locally constrained decoding) samples ``P(t|u)·1[ut viable]`` and over-samples
prefixes whose futures the model mostly leaves. The exact target ``Q(w) ∝ P(w)·1[w ∈ L]`` has
``Q(t|u) = P(t|u)·EFG(ut)/EFG(u)`` with ``EFG(u)`` the probability that the model, continuing from
``u``, produces a valid output. ASAp keeps a trie of visited prefixes with an upper bound
``Ẽ(u) ≥ EFG(u)`` (1 until expanded), samples with ``P(t|u)·Ẽ(ut)`` over allowed tokens, and tightens
the bounds after each sample: on expansion ``Ẽ(u) = Σ_{t allowed} P(t|u)·Ẽ(ut)``, propagated to the
root incrementally (``O(depth)``). Every output is valid; the sampling distribution converges to
``Q`` as the trie fills in (exact once the explored tree is complete). Samples are **not** i.i.d.
draws from ``Q`` in finite time; use SMC (:mod:`structgen.decoding.smc`) for weighted, unbiased
estimates.

Design choices: children are stored sparsely (allowed ids + their probabilities as arrays, explicit
nodes only for tokens actually sampled); the model is called only when a prefix is expanded for the
first time (revisits reuse the stored probabilities, so the trie stays self-consistent and repeated
samples get cheaper); the length rule matches :func:`smc_generate` (at ``max_new_tokens - 1``
generated tokens only EOS is allowed, so ``Q`` is conditioned on that length). The trie is valid
only for one (prompt, constraint, model, temperature); build a new sampler when any changes.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from structgen.decoding.awrs import as_rng


class TrieNode:
    """One prefix: ``p`` = P(token | parent prefix), ``E`` = upper bound on EFG(prefix)."""

    __slots__ = ("token", "p", "E", "parent", "children", "allowed", "probs", "index", "expanded", "eos")

    def __init__(self, token: int, p: float, parent: TrieNode | None, eos: bool = False) -> None:
        self.token = token
        self.p = p
        self.E = 1.0
        self.parent = parent
        self.children: dict[int, TrieNode] = {}
        self.allowed: np.ndarray | None = None  # (K,) int64 allowed token ids after expansion
        self.probs: np.ndarray | None = None  # (K,) float64 P(t | prefix) for the allowed ids
        self.index: dict[int, int] = {}
        self.expanded = False
        self.eos = eos

    def child_weights(self) -> np.ndarray:
        """``P(t|u)·Ẽ(ut)`` for every allowed ``t`` (unexpanded children count with Ẽ = 1)."""
        assert self.probs is not None
        w = self.probs.copy()
        for t, c in self.children.items():
            w[self.index[t]] = c.p * c.E
        return w


def _propagate(node: TrieNode, new_e: float) -> None:
    delta = new_e - node.E
    node.E = new_e
    while node.parent is not None and delta != 0.0:
        delta *= node.p
        node = node.parent
        node.E = max(node.E + delta, 0.0)


@dataclass
class ASApSample:
    """One output: generated ``tokens`` (EOS excluded), ``text``, ``finished`` (ended with EOS) and
    ``log_prob``, the log-probability of the whole output (EOS included) under the model."""

    tokens: list[int]
    text: str
    finished: bool
    log_prob: float


class ASApSampler:
    """Adaptive sampling with approximate expected futures over a shared prefix trie.

    Args:
        lm: a :class:`structgen.decoding.lm.LanguageModel`.
        constraint: anything with ``.matcher()`` and ``.vocab`` (compiled constraint, predicates).
        prompt_ids: the prompt's token ids (fixed for the sampler's lifetime).
        max_new_tokens: output budget, EOS included.
        max_restarts: dead ends met in one ``sample`` call before giving up (returns an unfinished sample).
    """

    def __init__(
        self, lm: Any, constraint: Any, prompt_ids: Any = (), *, max_new_tokens: int = 256, max_restarts: int = 100
    ) -> None:
        if max_new_tokens < 1:
            raise ValueError(f"max_new_tokens must be >= 1, got {max_new_tokens}")
        self.lm = lm
        self.constraint = constraint
        self.vocab = constraint.vocab
        self.prompt = [int(t) for t in prompt_ids]
        self.max_new_tokens = int(max_new_tokens)
        self.max_restarts = int(max_restarts)
        self.eos_ids = frozenset(int(e) for e in self.vocab.eos_ids)
        self.root = TrieNode(-1, 1.0, None)
        self.lm_calls = 0
        self.num_samples = 0

    def reset_trie(self) -> None:
        """Forget every learned estimate."""
        self.root = TrieNode(-1, 1.0, None)

    def _expand(self, node: TrieNode, tokens: list[int], matcher: Any) -> None:
        if len(tokens) >= self.max_new_tokens - 1:
            allowed = np.asarray([e for e in sorted(self.eos_ids) if matcher.is_token_allowed(e)], dtype=np.int64)
        else:
            allowed = np.asarray(matcher.allowed_token_ids(), dtype=np.int64)
        if allowed.size:
            lp = self.lm.next_logprobs([self.prompt + tokens])[0]
            self.lm_calls += 1
            probs = np.exp(np.asarray(lp, dtype=np.float64)[allowed])
        else:
            probs = np.zeros(0, dtype=np.float64)
        keep = probs > 0
        node.allowed, node.probs = allowed[keep], probs[keep]
        node.index = {int(t): i for i, t in enumerate(node.allowed)}
        node.expanded = True
        _propagate(node, float(node.probs.sum()))

    def _walk_to(self, prefix: Any) -> tuple[TrieNode, list[int], Any]:
        node, matcher = self.root, self.constraint.matcher()
        tokens: list[int] = []
        for t in prefix:
            t = int(t)
            if not node.expanded:
                self._expand(node, tokens, matcher)
            if t not in node.index or not matcher.accept_token(t):
                raise ValueError(f"token {t} is not allowed after {tokens}")
            node = self._child(node, t, float(node.probs[node.index[t]]))  # type: ignore[index]
            tokens.append(t)
        return node, tokens, matcher

    def _child(self, node: TrieNode, t: int, p: float) -> TrieNode:
        """``node``'s child for token ``t`` (model probability ``p``), created on the first visit."""
        child = node.children.get(t)
        if child is None:
            child = node.children[t] = TrieNode(t, p, node, t in self.eos_ids)
        return child

    def _child_weights(self, node: TrieNode, tokens: list[int], matcher: Any) -> tuple[np.ndarray, float]:
        """``P(t|u)·Ẽ(ut)`` over ``node``'s allowed tokens (expanding it first) and their sum."""
        if not node.expanded:
            self._expand(node, tokens, matcher)
        w = node.child_weights()
        return w, float(w.sum())

    def next_token_distribution(self, prefix: Any = ()) -> dict[int, float]:
        """The current proposal ``P(t|u)·Ẽ(ut)`` normalized, at prefix ``u`` (expands it if needed)."""
        node, tokens, matcher = self._walk_to(prefix)
        w, total = self._child_weights(node, tokens, matcher)
        if total <= 0:
            return {}
        return {int(t): float(x / total) for t, x in zip(node.allowed, w)}  # type: ignore[arg-type]

    def observe(self, tokens: Any) -> None:
        """Expand the trie along a given output (as if it had been sampled): warm starts and tests."""
        self._walk_to(tokens)

    def expand_all(self, max_nodes: int = 100_000) -> int:
        """Expand every reachable prefix (small problems only): afterwards ``Ẽ = EFG`` everywhere and
        the proposal is exactly ``Q``. Returns the number of expanded nodes; stops at ``max_nodes``."""
        count = 0
        stack: list[tuple[TrieNode, list[int], Any]] = [(self.root, [], self.constraint.matcher())]
        while stack and count < max_nodes:
            node, tokens, matcher = stack.pop()
            if node.eos:
                continue
            if not node.expanded:
                self._expand(node, tokens, matcher)
                count += 1
            for k, t in enumerate(node.allowed):  # type: ignore[arg-type]
                t = int(t)
                child = self._child(node, t, float(node.probs[k]))  # type: ignore[index]
                if child.eos:
                    continue
                m = matcher.fork()
                if m.accept_token(t):
                    stack.append((child, tokens + [t], m))
                else:
                    _propagate(child, 0.0)
        return count

    def sample(self, rng: Any = None) -> ASApSample:
        """Draw one output and tighten the trie along its path."""
        gen = as_rng(rng)
        self.num_samples += 1
        tokens: list[int] = []
        for _ in range(self.max_restarts + 1):
            if self.root.expanded and self.root.E <= 0.0:
                break  # no valid output at all
            node, tokens, matcher = self.root, [], self.constraint.matcher()
            logp = 0.0
            while True:
                if node.eos:
                    return ASApSample(tokens, self._text(tokens), True, logp)
                w, total = self._child_weights(node, tokens, matcher)
                if total <= 0.0:
                    _propagate(node, 0.0)  # dead end: remember it, restart from the root
                    break
                k = int(np.searchsorted(np.cumsum(w), gen.random() * total, side="right"))
                k = min(k, w.shape[0] - 1)
                t = int(node.allowed[k])  # type: ignore[index]
                p = float(node.probs[k])  # type: ignore[index]
                logp += math.log(p)
                child = self._child(node, t, p)
                if not child.eos:
                    if not matcher.accept_token(t):  # engine disagreement: treat as a dead end
                        _propagate(child, 0.0)
                        break
                    tokens.append(t)
                node = child
        return ASApSample(tokens, self._text(tokens), False, float("-inf"))

    def sample_many(self, n: int, rng: Any = None) -> list[ASApSample]:
        gen = as_rng(rng)
        return [self.sample(gen) for _ in range(n)]

    def nodes(self) -> list[tuple[tuple[int, ...], TrieNode]]:
        """Every trie node with its token prefix (root first)."""
        out: list[tuple[tuple[int, ...], TrieNode]] = []
        stack: list[tuple[tuple[int, ...], TrieNode]] = [((), self.root)]
        while stack:
            prefix, node = stack.pop()
            out.append((prefix, node))
            for t, c in node.children.items():
                stack.append((prefix + (t,), c))
        return out

    def _text(self, tokens: list[int]) -> str:
        return b"".join(self.vocab.token_bytes[t] for t in tokens).decode("utf-8", errors="replace")


__all__ = ["ASApSample", "ASApSampler", "TrieNode"]
