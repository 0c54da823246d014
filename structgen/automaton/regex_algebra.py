"""Intersection and complement of regular languages, exactly, by products of minimal byte DFAs.

    bool_dfa(node, limits, what) -> (transitions, accepting, start)   # And / Not node -> DFA

An :class:`~structgen.frontends.regex_ast.And` node is the product of its items' minimal DFAs
(accepting where every component accepts); a :class:`~structgen.frontends.regex_ast.Not` node is
the product of the DFA for all UTF-8 text with the item's DFA (accepting where the first accepts
and the second does not), so a complement never contains invalid UTF-8. Components are built with
the ordinary pipeline (Thompson NFA -> subset construction -> minimization), so nested And/Not
nodes work. The product runs breadth-first over the joint byte classes of its components,
vectorized per level, and checks ``Limits.max_dfa_states`` and ``compile_timeout_s`` as it grows;
the result is minimized and embedded back into an NFA by :meth:`structgen.automaton.nfa.NFA.add`.
"""

from __future__ import annotations

import time
from collections.abc import Sequence

import numpy as np

from structgen.automaton.determinize import minimize, subset_construction
from structgen.automaton.nfa import build_nfa
from structgen.automaton.utf8 import UNIVERSE
from structgen.errors import LimitExceeded
from structgen.frontends.regex_ast import And, CharSet, Node, Not, Repeat
from structgen.limits import Limits

__all__ = ["bool_dfa", "node_dfa", "product_dfa"]

Table = tuple[np.ndarray, np.ndarray, int]  # ((S, 256) int32 transitions, (S,) bool accepting, start)

_ANY_TEXT: Node = Repeat(CharSet(UNIVERSE), 0, None)
_CACHE: dict[tuple[Node, Limits], Table] = {}
_CACHE_MAX = 512


def node_dfa(node: Node, limits: Limits, what: str = "") -> Table:
    """Minimal complete byte DFA of one AST (state 0 dead; ``start`` 0 for the empty language)."""
    key = (node, limits)
    got = _CACHE.get(key)
    if got is not None:
        return got
    if isinstance(node, And | Not):
        table = bool_dfa(node, limits, what)
    else:
        nfa, start, ends = build_nfa([node], limits.max_nfa_states, what, limits)
        trans_cls, classes, tags = subset_construction(nfa, start, {ends[0]: 1}, limits, what)
        trans_min, tags_min, start_min = minimize(trans_cls, tags, 1, limits, what)
        full = np.ascontiguousarray(trans_min[:, classes], dtype=np.int32)
        table = (full, np.array([t != 0 for t in tags_min], dtype=bool), start_min)
    if len(_CACHE) >= _CACHE_MAX:
        _CACHE.clear()
    _CACHE[key] = table
    return table


def bool_dfa(node: And | Not, limits: Limits, what: str = "") -> Table:
    """Minimal DFA of an intersection or complement node."""
    if isinstance(node, And):
        if not node.items:
            return node_dfa(_ANY_TEXT, limits, what)
        parts = [node_dfa(i, limits, what) for i in node.items]
        return product_dfa(parts, [True] * len(parts), [True] * len(parts), limits, what)
    parts = [node_dfa(_ANY_TEXT, limits, what), node_dfa(node.item, limits, what)]
    return product_dfa(parts, [True, False], [True, False], limits, what)


def product_dfa(
    parts: Sequence[Table], polarity: Sequence[bool], required: Sequence[bool], limits: Limits, what: str = ""
) -> Table:
    """Product automaton of ``parts``: a state accepts when component ``i`` accepts iff
    ``polarity[i]``; a product state is dead as soon as a ``required`` component is dead.

    Raises ``LimitExceeded("max_dfa_states")`` when the reachable product grows past the limit.
    """
    k = len(parts)
    if any(req and p[2] == 0 for p, req in zip(parts, required, strict=True)):
        return np.zeros((1, 256), dtype=np.int32), np.zeros(1, dtype=bool), 0
    # joint byte classes: bytes whose column is identical in every component table
    stacked = np.concatenate([p[0] for p in parts], axis=0)  # (sum S_i, 256)
    _, reps, classes = np.unique(stacked.T, axis=0, return_index=True, return_inverse=True)
    classes = classes.reshape(-1).astype(np.int64)
    num_classes = len(reps)
    tables = [p[0][:, reps].astype(np.int64) for p in parts]  # (S_i, C)
    accs = [p[1] for p in parts]
    sizes = [t.shape[0] for t in tables]
    radix = np.cumprod([1] + sizes[:-1], dtype=object)
    if int(np.prod(np.array(sizes, dtype=object))) >= 2**62:
        raise LimitExceeded("max_dfa_states", int(np.prod(np.array(sizes, dtype=object))), limits.max_dfa_states, what)
    weights = np.array([int(r) for r in radix], dtype=np.int64)
    req = np.array(required, dtype=bool)
    pol = np.array(polarity, dtype=bool)
    max_states = limits.max_dfa_states
    deadline = time.monotonic() + limits.compile_timeout_s

    start = np.array([[p[2] for p in parts]], dtype=np.int64)  # (1, k)
    index: dict[int, int] = {int((start[0] * weights).sum()): 1}
    states = [start[0]]
    rows: list[np.ndarray] = [np.zeros(num_classes, dtype=np.int64)]  # the dead state
    frontier = start
    while len(frontier):
        if time.monotonic() > deadline:
            raise LimitExceeded("compile_timeout_s", limits.compile_timeout_s, limits.compile_timeout_s, what)
        nxt = np.stack([tables[i][frontier[:, i]] for i in range(k)], axis=-1)  # (n, C, k)
        dead = (nxt[..., req] == 0).any(axis=-1)  # (n, C)
        keys = (nxt * weights).sum(axis=-1)  # (n, C)
        ids = np.zeros(keys.shape, dtype=np.int64)
        uniq, inv = np.unique(keys[~dead], return_inverse=True)
        flat_live = nxt[~dead]  # (m, k)
        first_at = np.zeros(len(uniq), dtype=np.int64)
        first_at[inv[::-1]] = np.arange(len(inv))[::-1]
        new_states: list[np.ndarray] = []
        uid = np.empty(len(uniq), dtype=np.int64)
        for j, key in enumerate(uniq.tolist()):
            got = index.get(key)
            if got is None:
                got = len(states) + len(new_states) + 1  # states[j] is product state j + 1
                if got > max_states:
                    raise LimitExceeded("max_dfa_states", got, max_states, what)
                index[key] = got
                new_states.append(flat_live[first_at[j]])
            uid[j] = got
        ids[~dead] = uid[inv]
        rows.extend(ids)
        states.extend(new_states)
        frontier = np.array(new_states, dtype=np.int64).reshape(-1, k)
    trans = np.stack(rows).astype(np.int32)  # (P, C)
    comp = np.stack(states)  # (P-1, k) component states of product states 1..
    ok = np.ones(len(comp), dtype=bool)
    for i in range(k):
        ok &= accs[i][comp[:, i]] == pol[i]
    tags = [0] + [int(x) for x in ok]
    trans_min, tags_min, start_min = minimize(trans, tags, 1, limits, what)
    full = np.ascontiguousarray(trans_min[:, classes], dtype=np.int32)  # (S, 256) int32
    return full, np.array([t != 0 for t in tags_min], dtype=bool), start_min
