"""Token classes for the grammar engine: which tokens stay inside a lexeme, which cross, which die.

Given a lexer state ``q`` and the set ``A`` of terminals the parser accepts, every token falls in one
of three classes, independent of the rest of the parser state:

* **inside**: every byte continues the open lexeme (maximal munch never lets it end), and the
  lexeme is still completable after the last byte;
* **crossing** at offset ``j``: byte ``j`` cannot continue the lexeme, but the bytes before it form
  a complete lexeme of some terminals in ``A`` (the *boundary set*); the token's fate then depends on
  the parser state after that terminal, and its remaining bytes ``token[j:]`` are walked again from
  the lexer's "no open lexeme" state;
* **dead**: everything else.

:func:`structgen.runtime.trie_walk.walk` classifies a set of vocabulary-trie subtrees in one
depth-first pass; crossing tokens come out as trie nodes (their whole subtree crosses at the same
offset with the same boundary state), grouped here by boundary terminal set. The engine caches a
:class:`Level` per key, so a mask at decode time is mostly dictionary lookups and ORs of
precomputed words.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True, eq=False)
class TokenSet:
    """A set of token ids as bitmask words: dense ``(W,)`` uint32, or sparse (word index, bits)."""

    dense: np.ndarray | None  # (W,) uint32
    idx: np.ndarray  # (n,) int64, unique word indices (sparse form)
    vals: np.ndarray  # (n,) uint32
    count: int

    def or_into(self, words: np.ndarray) -> None:
        """``words |= self`` for a ``(W,)`` uint32 row."""
        if self.dense is not None:
            np.bitwise_or(words, self.dense, out=words)
        elif self.count:
            words[self.idx] |= self.vals

    def or_masked_into(self, words: np.ndarray, other: np.ndarray) -> None:
        """``words |= self & other`` for ``(W,)`` uint32 rows."""
        if self.dense is not None:
            words |= self.dense & other
        elif self.count:
            words[self.idx] |= self.vals & other[self.idx]


EMPTY = TokenSet(None, np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.uint32), 0)
SMALL_SET = 48  # up to this many ids a set is stored sparse; up to this many crossing nodes, grouped in Python


def union(a: TokenSet, b: TokenSet, width: int) -> TokenSet:
    """``a | b`` as a dense set (or one of them when the other is empty)."""
    if not b.count:
        return a
    if not a.count:
        return b
    dense = a.dense.copy() if a.dense is not None else np.zeros(width, dtype=np.uint32)  # (W,) uint32
    if a.dense is None:
        a.or_into(dense)
    b.or_into(dense)
    return TokenSet(dense, np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.uint32), a.count + b.count)


@dataclass(frozen=True, eq=False)
class Level:
    """Classification of a set of tokens (or token remainders) from one lexer state under one ``A``.

    ``inside``: the tokens that end inside the lexeme. ``groups``: ``(boundary terminal set, node)``
    where ``node`` indexes the engine's table of :class:`Crossing` remainder sets.
    """

    inside: TokenSet
    groups: tuple[tuple[int, int], ...]
    # tokens whose first byte already ends the open lexeme: (boundary terminal set, those tokens).
    # Their fate is the mask of the parser state after the lexeme with no lexeme open, restricted
    # to them, so they share that (cached) mask instead of a remainder walk of their own.
    first: tuple[int, TokenSet] | None = None


@dataclass(frozen=True, eq=False)
class Crossing:
    """Tokens crossing a lexeme boundary: the subtrees of ``nodes`` in the vocabulary's walk trie.

    The lexeme ended just before each node's byte, so the remainders are walked from the "no open
    lexeme" state starting with that byte.
    """

    nodes: np.ndarray  # (n,) int32, sorted


def group_crossings(
    nodes: np.ndarray, states: np.ndarray, accepts: tuple[int, ...], a_bits: int
) -> list[tuple[int, np.ndarray]]:
    """Group crossing nodes by their boundary terminal set ``accepts[state] & A``.

    ``nodes`` come from one walk, so they are ascending (depth-first preorder of disjoint
    subtrees); each group keeps that order.
    """
    if nodes.size == 0:
        return []
    if nodes.size <= SMALL_SET:
        st_list = states.tolist()
        s0 = st_list[0]
        if st_list.count(s0) == len(st_list):  # one boundary state (the common case)
            return [(accepts[s0] & a_bits, nodes)]
        small: dict[int, list[int]] = {}
        for n, st in zip(nodes.tolist(), st_list, strict=True):
            small.setdefault(accepts[st] & a_bits, []).append(n)
        return [(ts, np.array(ns, dtype=np.int32)) for ts, ns in small.items()]
    present = np.flatnonzero(np.bincount(states))  # the distinct boundary states (a few)
    group_of: dict[int, int] = {}
    sets: list[int] = []
    table = np.zeros(int(present[-1]) + 1, dtype=np.int64)  # boundary state -> group index
    for st in present.tolist():
        ts = accepts[st] & a_bits
        g = group_of.get(ts)
        if g is None:
            g = group_of[ts] = len(sets)
            sets.append(ts)
        table[st] = g
    if len(sets) == 1:
        return [(sets[0], nodes)]
    gid = table[states]
    order = np.argsort(gid, kind="stable")  # by group, nodes ascending within
    parts = np.split(nodes[order], np.cumsum(np.bincount(gid, minlength=len(sets)))[:-1])
    return list(zip(sets, parts, strict=True))
