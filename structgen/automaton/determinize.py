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
from collections.abc import Callable
from typing import Any

import numpy as np

from structgen.automaton.accel import compiled
from structgen.automaton.nfa import NFA
from structgen.errors import LimitExceeded
from structgen.limits import Limits


def _flat_edges(nfa: NFA) -> tuple[np.ndarray, np.ndarray]:
    """(``(N,)`` edge count per state, ``(E, 3)`` int64 ``(lo, hi, target)`` rows in state order)."""
    lens = np.array([len(es) for es in nfa.edges], dtype=np.int64)
    flat = np.array([x for es in nfa.edges for e in es for x in e], dtype=np.int64).reshape(-1, 3)
    return lens, flat


def byte_classes(nfa: NFA) -> np.ndarray:
    """``(256,)`` int: class id of every byte (bytes in one class behave identically everywhere)."""
    return _byte_classes(_flat_edges(nfa)[1])


def _byte_classes(flat: np.ndarray) -> np.ndarray:
    marks = np.zeros(257, dtype=bool)
    marks[0] = True
    marks[flat[:, 0]] = True
    marks[flat[:, 1] + 1] = True
    return (np.cumsum(marks[:256]) - 1).astype(np.int64)


def subset_construction(
    nfa: NFA, start: int, tags: dict[int, int], limits: Limits, what: str = "", *, use_numba: bool | None = None
) -> tuple[np.ndarray, np.ndarray, list[int]]:
    """Determinize. Returns (``(S, C)`` int32 class transitions, ``(256,)`` byte classes, tag per state).

    ``tags`` maps accepting NFA states to a bitset (bit i = terminal i; a plain regex uses 1).
    State 0 is the empty set (dead); state 1 is the start.
    """
    lens, flat = _flat_edges(nfa)
    classes = _byte_classes(flat)
    cflat = np.stack([classes[flat[:, 0]], classes[flat[:, 1]], flat[:, 2]], axis=1)
    trans, state_tags = _determinize(nfa, lens, cflat, int(classes[-1]) + 1, start, tags, limits, what, use_numba)
    return trans, classes, state_tags


def interval_classes(nfa: NFA) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Classes of a code-point NFA: ``(C,)`` sorted starts of the elementary intervals (class ``k``
    is ``[starts[k], starts[k+1])``, the last one runs to the end), the edge count per state and the
    ``(E, 3)`` edges ``(lo class, hi class, target)``."""
    lens, flat = _flat_edges(nfa)
    starts = np.unique(np.concatenate(([0], flat[:, 0], flat[:, 1] + 1)))
    lo = np.searchsorted(starts, flat[:, 0])
    hi = np.searchsorted(starts, flat[:, 1] + 1) - 1
    return starts, lens, np.stack([lo, hi, flat[:, 2]], axis=1)


def subset_construction_cp(
    nfa: NFA, start: int, tags: dict[int, int], limits: Limits, what: str = "", *, use_numba: bool | None = None
) -> tuple[np.ndarray, np.ndarray, list[int]]:
    """Determinize an NFA whose edges are code-point ranges (see :func:`interval_classes`).

    Returns (``(S, C)`` int32 class transitions, ``(C,)`` class starts, tag per state).
    """
    starts, lens, cflat = interval_classes(nfa)
    trans, state_tags = _determinize(nfa, lens, cflat, len(starts), start, tags, limits, what, use_numba)
    return trans, starts, state_tags


def _determinize(
    nfa: NFA,
    lens: np.ndarray,
    cflat: np.ndarray,
    num_classes: int,
    start: int,
    tags: dict[int, int],
    limits: Limits,
    what: str,
    use_numba: bool | None = None,
) -> tuple[np.ndarray, list[int]]:
    """The subset construction proper over class-id edges ``(lo_class, hi_class, target)``.

    ``use_numba=None``: the compiled kernel when numba is available (same states, numbering, tags).
    """
    kernels = compiled("subset", subset_kernel) if use_numba is None or use_numba else None
    if use_numba and kernels is None:
        raise RuntimeError("numba is not available")
    if kernels is not None:
        return _determinize_compiled(kernels[0], nfa, lens, cflat, num_classes, start, tags, limits, what)
    rows_l = cflat.tolist()
    cuts = np.concatenate(([0], np.cumsum(lens))).tolist()
    cedges = [[tuple(e) for e in rows_l[a:b]] for a, b in zip(cuts[:-1], cuts[1:], strict=True)]
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
    return trans, state_tags


def _coreachable(trans: np.ndarray, accepting: np.ndarray) -> np.ndarray:
    """``(S,)`` bool: states from which an accepting state is reachable (vectorized reverse BFS)."""
    kernels = compiled("coreach", coreach_kernel)
    if kernels is not None:
        live = accepting.astype(np.bool_).copy()
        kernels[0](np.ascontiguousarray(trans, dtype=np.int32), live)
        return live
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
        kernels = compiled("moore", moore_kernel)
        if kernels is not None:
            part, num = _moore_compiled(kernels[0], t, part, num, deadline, timeout, what)
        else:
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


_MASK62 = (1 << 62) - 1


def moore_kernel(t: np.ndarray, part: np.ndarray, num: int, rounds: int) -> tuple[np.ndarray, int, bool]:
    """Up to ``rounds`` Moore refinement steps (plain Python; compiled with numba when available).

    ``t`` is ``(S, C)`` int64, ``part`` the ``(S,)`` block of every state (``num`` distinct values).
    A step gives each state the block of its signature (own block, successors' blocks), found by
    open addressing on a hash and compared exactly. Returns (``part`` numbered 0.., its block count,
    whether it is stable).
    """
    n, num_classes = t.shape
    size = 4
    while size < 2 * n:
        size *= 2
    mask = size - 1
    for _ in range(rounds):
        slots = np.full(size, -1, dtype=np.int64)
        new = np.empty(n, dtype=np.int64)
        count = 0
        for s in range(n):
            h = int(part[s])
            for c in range(num_classes):
                h = ((h ^ int(part[t[s, c]])) * 1099511628211 + c) & _MASK62
            slot = (h ^ (h >> 29)) & mask
            while True:
                rep = slots[slot]
                if rep < 0:
                    slots[slot] = s
                    new[s] = count
                    count += 1
                    break
                same = part[rep] == part[s]
                if same:
                    for c in range(num_classes):
                        if part[t[rep, c]] != part[t[s, c]]:
                            same = False
                            break
                if same:
                    new[s] = new[rep]
                    break
                slot = (slot + 1) & mask
        stable = count == num
        part = new
        num = count
        if stable:
            return part, num, True
    return part, num, False


def _moore_compiled(
    kernel: Callable[..., Any],
    t: np.ndarray,
    part: np.ndarray,
    num: int,
    deadline: float | None,
    timeout: float,
    what: str,
) -> tuple[np.ndarray, int]:
    """Moore's refinement to the fixed point by the compiled kernel, looking at the clock in between."""
    t = np.ascontiguousarray(t, dtype=np.int64)
    part = np.ascontiguousarray(part, dtype=np.int64)
    while True:
        part, num, stable = kernel(t, part, num, 16)
        if stable:
            return part, num
        if deadline is not None and time.monotonic() > deadline:
            raise LimitExceeded("compile_timeout_s", time.monotonic() - deadline + timeout, timeout, what)


def subset_kernel(
    e_off: np.ndarray,
    e_lo: np.ndarray,
    e_hi: np.ndarray,
    e_t: np.ndarray,
    eps_off: np.ndarray,
    eps_t: np.ndarray,
    important: np.ndarray,
    num_classes: int,
    pool: np.ndarray,
    set_off: np.ndarray,
    trans: np.ndarray,
    slots: np.ndarray,
    count: int,
    lo: int,
    budget: int,
) -> tuple[int, int, int]:
    """Breadth-first subset construction from DFA state ``lo`` on (plain Python; numba-compiled).

    The NFA is in CSR form: class-range edges ``e_lo..e_hi -> e_t`` of state ``s`` at
    ``e_off[s]:e_off[s+1]``, epsilon edges likewise. DFA state ``i`` is the sorted set of important
    NFA states ``pool[set_off[i]:set_off[i+1]]``; ``slots`` is an open-addressing table of DFA ids
    (-1 = empty) keyed by a hash of the set, compared exactly. Returns ``(count, lo, status)``:
    0 = done, 1 = budget spent, 2 = ``trans`` full, 3 = ``pool`` full (grow, call again).
    """
    n = important.shape[0]
    mark = np.zeros(n, dtype=np.int64)
    stack = np.empty(n, dtype=np.int64)
    raw = np.empty(n, dtype=np.int64)
    prev_raw = np.empty(n, dtype=np.int64)
    found = np.empty(n, dtype=np.int64)
    gen = 0
    mask = slots.shape[0] - 1
    done = 0
    while lo < count:
        if done >= budget:
            return count, lo, 1
        a, b = set_off[lo], set_off[lo + 1]
        prev_len = -1
        prev_id = 0
        for c in range(num_classes):
            # targets of the edges covering class c (sorted, distinct)
            gen += 1
            n_raw = 0
            for i in range(a, b):
                m = pool[i]
                for e in range(e_off[m], e_off[m + 1]):
                    if e_lo[e] <= c <= e_hi[e]:
                        t = e_t[e]
                        if mark[t] != gen:
                            mark[t] = gen
                            raw[n_raw] = t
                            n_raw += 1
            if n_raw == 0:
                trans[lo, c] = 0
                prev_len = 0
                prev_id = 0
                continue
            raw[:n_raw].sort()
            if n_raw == prev_len:
                same = True
                for i in range(n_raw):
                    if raw[i] != prev_raw[i]:
                        same = False
                        break
                if same:
                    trans[lo, c] = prev_id
                    continue
            # epsilon closure, keeping the important states
            gen += 1
            top = 0
            for i in range(n_raw):
                mark[raw[i]] = gen
                stack[top] = raw[i]
                top += 1
            n_found = 0
            while top > 0:
                top -= 1
                x = stack[top]
                if important[x]:
                    found[n_found] = x
                    n_found += 1
                for e in range(eps_off[x], eps_off[x + 1]):
                    y = eps_t[e]
                    if mark[y] != gen:
                        mark[y] = gen
                        stack[top] = y
                        top += 1
            sid = 0
            if n_found > 0:
                found[:n_found].sort()
                h = 0
                for i in range(n_found):
                    h = ((h ^ int(found[i])) * 1099511628211 + 1) & _MASK62
                slot = (h ^ (h >> 29)) & mask
                while True:
                    cand = slots[slot]
                    if cand < 0:
                        if count >= trans.shape[0]:
                            return count, lo, 2
                        base = set_off[count]
                        if base + n_found > pool.shape[0]:
                            return count, lo, 3
                        for i in range(n_found):
                            pool[base + i] = found[i]
                        set_off[count + 1] = base + n_found
                        slots[slot] = count
                        sid = count
                        count += 1
                        break
                    ca, cb = set_off[cand], set_off[cand + 1]
                    if cb - ca == n_found:
                        same = True
                        for i in range(n_found):
                            if pool[ca + i] != found[i]:
                                same = False
                                break
                        if same:
                            sid = cand
                            break
                    slot = (slot + 1) & mask
            trans[lo, c] = sid
            for i in range(n_raw):
                prev_raw[i] = raw[i]
            prev_len = n_raw
            prev_id = sid
        lo += 1
        done += 1
    return count, lo, 0


def _determinize_compiled(
    kernel: Callable[..., Any],
    nfa: NFA,
    lens: np.ndarray,
    flat: np.ndarray,
    num_classes: int,
    start: int,
    tags: dict[int, int],
    limits: Limits,
    what: str,
) -> tuple[np.ndarray, list[int]]:
    """The subset construction by the compiled kernel: same states, numbering and tags."""
    n = nfa.num_states
    e_off = np.zeros(n + 1, dtype=np.int64)
    e_off[1:] = np.cumsum(lens)
    e_lo, e_hi, e_t = (np.ascontiguousarray(flat[:, i], dtype=np.int64) for i in range(3))
    eps_off = np.zeros(n + 1, dtype=np.int64)
    eps_off[1:] = np.cumsum([len(e) for e in nfa.eps])
    eps_t = np.array([t for ts in nfa.eps for t in ts], dtype=np.int64)
    important = np.diff(e_off) > 0
    tagged = np.zeros(n, dtype=bool)
    if tags:
        tagged[list(tags)] = True
    important |= tagged
    # the start set: closure of the start state (important states only), as the Python path
    seen = {start}
    todo = [start]
    while todo:
        x = todo.pop()
        for y in nfa.eps[x]:
            if y not in seen:
                seen.add(y)
                todo.append(y)
    first = sorted(x for x in seen if important[x])
    limit = limits.max_dfa_states + 2  # + the dead state, + the one that goes over
    cap = min(256, limit)
    trans = np.zeros((cap, num_classes), dtype=np.int32)
    pool = np.empty(max(1024, 4 * len(first)), dtype=np.int64)
    set_off = np.zeros(limit + 1, dtype=np.int64)
    pool[: len(first)] = first
    set_off[2] = len(first)
    slots = np.full(4 << (cap - 1).bit_length(), -1, dtype=np.int64)
    count, lo = 2, 1
    if first:
        _insert_set(slots, pool, set_off, 1)
    deadline = time.monotonic() + limits.compile_timeout_s
    while True:
        if time.monotonic() > deadline:
            raise LimitExceeded("compile_timeout_s", limits.compile_timeout_s, limits.compile_timeout_s, what)
        count, lo, status = kernel(
            e_off, e_lo, e_hi, e_t, eps_off, eps_t, important, num_classes,
            pool, set_off, trans, slots, count, lo, 1024,
        )  # fmt: skip
        if status == 0:
            break
        if status == 2:
            if cap >= limit:
                raise LimitExceeded("max_dfa_states", count, limits.max_dfa_states, what)
            cap = min(2 * cap, limit)
            trans = np.concatenate([trans, np.zeros((cap - trans.shape[0], num_classes), dtype=np.int32)])
            slots = np.full(4 << (cap - 1).bit_length(), -1, dtype=np.int64)
            for i in range(1, count):
                _insert_set(slots, pool, set_off, i)
        elif status == 3:
            pool = np.concatenate([pool, np.empty_like(pool)])
    trans = trans[:count]
    state_tags = [0] * count
    tagged_members = tagged[pool[: set_off[count]]]
    if tagged_members.any():
        lens = np.diff(set_off[: count + 1])
        owner = np.repeat(np.arange(count), lens)
        for i, m in zip(owner[tagged_members].tolist(), pool[: set_off[count]][tagged_members].tolist(), strict=True):
            state_tags[i] |= tags[m]
    return trans, state_tags


def _insert_set(slots: np.ndarray, pool: np.ndarray, set_off: np.ndarray, i: int) -> None:
    """Put DFA state ``i`` into the kernel's hash table (same hash as :func:`subset_kernel`)."""
    h = 0
    for x in pool[set_off[i] : set_off[i + 1]].tolist():
        h = ((h ^ x) * 1099511628211 + 1) & _MASK62
    mask = slots.shape[0] - 1
    slot = (h ^ (h >> 29)) & mask
    while slots[slot] >= 0:
        slot = (slot + 1) & mask
    slots[slot] = i


def coreach_kernel(trans: np.ndarray, live: np.ndarray) -> None:
    """Mark in ``live`` (accepting states on entry) every state that reaches one (plain Python;
    numba-compiled): reverse edges in CSR form, then a depth-first search backwards."""
    n, num_classes = trans.shape
    deg = np.zeros(n + 1, dtype=np.int64)
    for s in range(n):
        for c in range(num_classes):
            deg[trans[s, c] + 1] += 1
    for i in range(n):
        deg[i + 1] += deg[i]
    fill = deg[:n].copy()
    preds = np.empty(n * num_classes, dtype=np.int64)
    for s in range(n):
        for c in range(num_classes):
            t = trans[s, c]
            preds[fill[t]] = s
            fill[t] += 1
    stack = np.empty(n, dtype=np.int64)
    top = 0
    for s in range(n):
        if live[s]:
            stack[top] = s
            top += 1
    while top > 0:
        top -= 1
        t = stack[top]
        for i in range(deg[t], deg[t + 1]):
            p = preds[i]
            if not live[p]:
                live[p] = True
                stack[top] = p
                top += 1
