"""NFA -> minimal byte DFA: subset construction over byte classes, pruning, Moore minimization.

* Bytes are grouped into equivalence classes (bytes no NFA edge distinguishes), so the subset
  construction works on a few dozen columns instead of 256.
* DFA states are frozensets of "important" NFA states (those with byte edges or an accept tag)
  after epsilon closure, so equal sets are found by hashing.
* The state count is checked as states are created (``Limits.max_dfa_states``) and the wall clock
  against ``Limits.compile_timeout_s``: exponential blow-ups such as ``(a|b)*a(a|b){20}`` stop with
  ``LimitExceeded`` instead of hanging.
* States that cannot reach acceptance are merged into the dead state 0; Moore's partition
  refinement (vectorized with numpy) then merges equivalent states, respecting accept tags, and the
  result is renumbered breadth-first from the start state (dead = 0, start = 1 unless empty).

Everything is linear in the input at match time: the output is a plain transition table.
"""

from __future__ import annotations

import time

import numpy as np

from structgen.automaton.nfa import NFA
from structgen.errors import LimitExceeded
from structgen.limits import Limits


def byte_classes(nfa: NFA) -> np.ndarray:
    """``(256,)`` int: class id of every byte (bytes in one class behave identically everywhere)."""
    marks = np.zeros(257, dtype=bool)
    marks[0] = True
    for edges in nfa.edges:
        for lo, hi, _ in edges:
            marks[lo] = True
            marks[hi + 1] = True
    return (np.cumsum(marks[:256]) - 1).astype(np.int64)


def subset_construction(
    nfa: NFA, start: int, tags: dict[int, int], limits: Limits, what: str = ""
) -> tuple[np.ndarray, np.ndarray, list[int]]:
    """Determinize. Returns (``(S, C)`` int32 class transitions, ``(256,)`` byte classes, tag per state).

    ``tags`` maps accepting NFA states to a bitset (bit i = terminal i; a plain regex uses 1).
    State 0 is the empty set (dead); state 1 is the start.
    """
    classes = byte_classes(nfa)
    num_classes = int(classes[-1]) + 1
    cls = classes.tolist()
    cedges = [[(cls[lo], cls[hi], t) for lo, hi, t in edges] for edges in nfa.edges]
    eps = nfa.eps
    important = [bool(cedges[s]) or s in tags for s in range(nfa.num_states)]
    closure_memo: dict[frozenset[int], frozenset[int]] = {}

    def closure(seeds: frozenset[int]) -> frozenset[int]:
        got = closure_memo.get(seeds)
        if got is not None:
            return got
        seen = set(seeds)
        stack = list(seeds)
        while stack:
            s = stack.pop()
            for t in eps[s]:
                if t not in seen:
                    seen.add(t)
                    stack.append(t)
        res = frozenset(s for s in seen if important[s])
        closure_memo[seeds] = res
        return res

    empty: frozenset[int] = frozenset()
    sets: list[frozenset[int]] = [empty]
    index: dict[frozenset[int], int] = {empty: 0}
    first = closure(frozenset((start,)))
    sets.append(first)
    index[first] = 1
    rows: list[list[int]] = [[0] * num_classes]
    state_tags: list[int] = [0]
    max_states = limits.max_dfa_states
    deadline = time.monotonic() + limits.compile_timeout_s
    i = 1
    while i < len(sets):
        if i & 255 == 0 and time.monotonic() > deadline:
            raise LimitExceeded("compile_timeout_s", limits.compile_timeout_s, limits.compile_timeout_s, what)
        cur = sets[i]
        tag = 0
        edges: list[tuple[int, int, int]] = []
        for s in cur:
            tg = tags.get(s)
            if tg:
                tag |= tg
            edges.extend(cedges[s])
        row = [0] * num_classes
        if edges:
            # elementary class intervals: [bounds[k], bounds[k+1]) have one target set each
            opens: dict[int, list[int]] = {}
            closes: dict[int, list[int]] = {}
            for lo, hi, t in edges:
                opens.setdefault(lo, []).append(t)
                closes.setdefault(hi + 1, []).append(t)
            bounds = sorted(opens.keys() | closes.keys())
            active: dict[int, int] = {}  # target -> number of covering edges (sweep over classes)
            local: dict[frozenset[int], int] = {}
            for k in range(len(bounds) - 1):
                b = bounds[k]
                for t in closes.get(b, ()):
                    left = active[t] - 1
                    if left:
                        active[t] = left
                    else:
                        del active[t]
                for t in opens.get(b, ()):
                    active[t] = active.get(t, 0) + 1
                if not active:
                    continue
                targets = frozenset(active)
                nid = local.get(targets)
                if nid is None:
                    nxt = closure(targets)
                    nid = index.get(nxt)
                    if nid is None:
                        nid = len(sets)
                        if nid >= max_states + 1:  # +1: the dead state is not counted
                            raise LimitExceeded("max_dfa_states", nid, max_states, what)
                        sets.append(nxt)
                        index[nxt] = nid
                    local[targets] = nid
                e = bounds[k + 1]
                row[b:e] = [nid] * (e - b)
        rows.append(row)
        state_tags.append(tag)
        i += 1
    trans = np.array(rows, dtype=np.int32).reshape(len(rows), num_classes)
    return trans, classes, state_tags


def _coreachable(trans: np.ndarray, accepting: np.ndarray) -> np.ndarray:
    """``(S,)`` bool: states from which an accepting state is reachable (vectorized reverse BFS)."""
    n, c = trans.shape
    src = np.repeat(np.arange(n, dtype=np.int64), c)
    dst = trans.ravel().astype(np.int64)
    order = np.argsort(dst, kind="stable")
    src_sorted = src[order]
    starts = np.searchsorted(dst[order], np.arange(n + 1))
    live = accepting.copy()
    frontier = np.flatnonzero(accepting)
    while len(frontier):
        lo = starts[frontier]
        lengths = starts[frontier + 1] - lo
        total = int(lengths.sum())
        if total == 0:
            break
        offsets = np.repeat(lo - np.concatenate(([0], np.cumsum(lengths)[:-1])), lengths)
        preds = src_sorted[offsets + np.arange(total)]
        preds = np.unique(preds)
        frontier = preds[~live[preds]]
        live[frontier] = True
    return live


def _refine(part: np.ndarray, t: np.ndarray, weights: np.ndarray) -> tuple[np.ndarray, int]:
    """One Moore step: split blocks by (own block, successor blocks). Exact: a hash groups rows,
    then the rows are compared against their group's representative (collisions fall back)."""
    succ = part[t]  # (S, C) blocks of successors
    with np.errstate(over="ignore"):
        h = part.astype(np.uint64) * weights[0] + (succ.astype(np.uint64) * weights[1:]).sum(axis=1, dtype=np.uint64)
    _, first, inv = np.unique(h, return_index=True, return_inverse=True)
    inv = inv.reshape(-1)
    rep = first[inv]
    if np.array_equal(part[rep], part) and np.array_equal(succ[rep], succ):
        return inv.astype(np.int64), len(first)
    sig = np.ascontiguousarray(np.concatenate([part[:, None], succ], axis=1))  # pragma: no cover
    view = sig.view(np.dtype((np.void, sig.dtype.itemsize * sig.shape[1]))).ravel()
    _, inv2 = np.unique(view, return_inverse=True)
    inv2 = inv2.reshape(-1).astype(np.int64)
    return inv2, int(inv2.max()) + 1


def _partition_acyclic(t: np.ndarray, labels: np.ndarray, live: np.ndarray) -> tuple[np.ndarray, int] | None:
    """Exact minimal partition when the live part is acyclic (bounded repeats), else None.

    In an acyclic DFA equivalent states have equal *height* (length of the longest accepted
    suffix), so states can be canonicalized level by level from the leaves up in one pass
    (Revuz's algorithm) instead of Moore's one round per level of depth.
    """
    n = t.shape[0]
    succ = [list(set(row)) for row in t.tolist()]  # distinct successors (0 = dead, skipped below)
    height = [-1] * n  # -1 unvisited, -2 on the DFS stack
    for root in np.flatnonzero(live).tolist():
        if height[root] >= 0:
            continue
        stack = [(root, 0)]
        height[root] = -2
        while stack:
            s, i = stack[-1]
            nxt = succ[s]
            if i < len(nxt):
                stack[-1] = (s, i + 1)
                c = nxt[i]
                if c == 0:
                    continue
                if height[c] == -2:
                    return None  # a cycle: Moore's refinement handles it
                if height[c] == -1:
                    height[c] = -2
                    stack.append((c, 0))
            else:
                stack.pop()
                height[s] = 1 + max((height[c] for c in nxt if c), default=-1)
    by_height: dict[int, list[int]] = {}
    for s in np.flatnonzero(live).tolist():
        by_height.setdefault(height[s], []).append(s)
    part = np.zeros(n, dtype=np.int64)  # block 0 = dead
    num = 1
    for h in sorted(by_height):
        idx = np.array(by_height[h], dtype=np.int64)
        sig = np.ascontiguousarray(np.concatenate([labels[idx, None], part[t[idx]]], axis=1))
        view = sig.view(np.dtype((np.void, sig.dtype.itemsize * sig.shape[1]))).ravel()
        uniq, inv = np.unique(view, return_inverse=True)
        part[idx] = num + inv.reshape(-1)
        num += len(uniq)
    return part, num


def minimize(
    trans: np.ndarray, tags: list[int], start: int = 1, limits: Limits | None = None, what: str = ""
) -> tuple[np.ndarray, list[int], int]:
    """Prune non-co-reachable states into 0, merge equivalent states, renumber (dead 0, start 1).

    Returns (``(S', C)`` int32 transitions, tags, start) — start is 0 when the language is empty.
    Acyclic automata are minimized in one bottom-up pass; others by Moore refinement, bounded by
    ``limits.compile_timeout_s``.
    """
    timeout = limits.compile_timeout_s if limits is not None else 0.0
    deadline = time.monotonic() + timeout if limits is not None else None
    n = trans.shape[0]
    accepting = np.array([t != 0 for t in tags], dtype=bool)
    live = _coreachable(trans, accepting)
    live[0] = False
    if not live[start]:
        return np.zeros((1, trans.shape[1]), dtype=np.int32), [0], 0
    t = np.where(live[trans], trans, 0).astype(np.int64)  # edges into dead states go to 0
    t[~live] = 0
    # initial partition: dead alone, then by tag
    label_of: dict[int, int] = {}
    labels = np.array([label_of.setdefault(tg, len(label_of) + 1) for tg in tags], dtype=np.int64)
    labels[~live] = 0
    acyclic = _partition_acyclic(t, labels, live)
    if acyclic is not None:
        part, num = acyclic
    else:
        part = labels
        num = len(np.unique(part))
        rng = np.random.default_rng(0x5EED)
        weights = rng.integers(1, 2**63 - 1, size=t.shape[1] + 1, dtype=np.uint64) | np.uint64(1)
        rounds = 0
        while True:
            part, new_num = _refine(part, t, weights)
            if new_num == num:
                break
            num = new_num
            rounds += 1
            if deadline is not None and rounds % 16 == 0 and time.monotonic() > deadline:
                raise LimitExceeded("compile_timeout_s", time.monotonic() - deadline + timeout, timeout, what)
    # number blocks by their first state: subset construction numbered states breadth-first, so
    # the dead block (holding state 0) becomes 0 and the start block (holding state 1) becomes 1
    rep = np.full(num, n, dtype=np.int64)
    np.minimum.at(rep, part, np.arange(n, dtype=np.int64))
    block_order = np.argsort(rep, kind="stable")
    block_id = np.empty(num, dtype=np.int64)
    block_id[block_order] = np.arange(num)
    reps = rep[block_order]  # representative state of new id i
    out = block_id[part[t[reps]]].astype(np.int32)  # (S', C) int32
    out_tags = [tags[int(r)] if live[r] else 0 for r in reps]
    assert block_id[part[start]] == 1 and block_id[part[0]] == 0
    return out, out_tags, 1
