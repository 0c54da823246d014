"""Tagged union of minimal DFAs by a product construction: the lexer DFA from per-terminal parts.

A lexer recognises many terminals at once; its DFA is built here from *components*, each a
trimmed minimal DFA over its own byte classes whose states carry terminal bitsets (a regex
terminal's own DFA, or one trie for all plain literals). The product explores the reachable tuples
``(q_1, ..., q_K)`` breadth-first over a joint byte-class partition, a whole BFS level at a time
with numpy (tuples are found again through a 64-bit hash of the row, verified exactly).

Why no minimization and no liveness pass: a product state's future is, per terminal, the residual
language of its component state; components are minimal (distinct states have distinct residuals,
0 is the only empty one), so distinct reachable tuples are never equivalent and the product is
already the minimal tagged DFA. Every non-zero tuple has a live component, hence is co-reachable;
``accepts``/``alive`` are the OR of the components' bits. The breadth-first numbering (classes in
byte order, new states in order of first discovery) is the one the subset construction + Moore
minimization gave, so the tables equal the old ones exactly, not just up to isomorphism.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from structgen.automaton.accel import compiled
from structgen.errors import LimitExceeded
from structgen.limits import Limits

__all__ = ["Component", "literal_trie", "product_dfa"]


@dataclass(frozen=True, eq=False)
class Component:
    """One part of a lexer: a trimmed minimal DFA over byte classes with tagged states.

    Attributes:
        trans: ``(S, C)`` int32 class transitions; state 0 is dead, every other state live.
        classes: ``(256,)`` int64 class of every byte.
        start: start state (0 for an empty language; such a component can be left out).
        accepts: ``(S,)`` terminal bitset accepted in each state (Python ints, global bit numbers).
        alive: ``(S,)`` terminal bitset still completable from each state.
    """

    trans: np.ndarray
    classes: np.ndarray
    start: int
    accepts: tuple[int, ...]
    alive: tuple[int, ...]


def literal_trie(literals: Sequence[tuple[bytes, int]]) -> Component:
    """The trie of ``(text, terminal bit)`` pairs as a component, built directly (no regex parse).

    A trie is trimmed (every node lies on the way to a literal) and minimal for per-terminal tags:
    two nodes with a literal below them have different residuals for that literal's bit.
    """
    children: list[dict[int, int]] = [{}, {}]  # node 0 dead, 1 root
    accepts = [0, 0]
    for text, bit in literals:
        node = 1
        for b in text:
            nxt = children[node].get(b)
            if nxt is None:
                nxt = len(children)
                children[node][b] = nxt
                children.append({})
                accepts.append(0)
            node = nxt
        accepts[node] |= bit
    n = len(children)
    used = sorted({b for kids in children for b in kids})
    classes = np.zeros(256, dtype=np.int64)  # class 0: bytes no literal uses
    classes[used] = np.arange(1, len(used) + 1)
    trans = np.zeros((n, len(used) + 1), dtype=np.int32)
    for s, kids in enumerate(children):
        for b, t in kids.items():
            trans[s, classes[b]] = t
    alive = list(accepts)
    for s in range(n - 1, 0, -1):  # children are numbered after their parent
        for t in children[s].values():
            alive[s] |= alive[t]
    return Component(trans=trans, classes=classes, start=1, accepts=tuple(accepts), alive=tuple(alive))


def _joint_classes(parts: Sequence[Component]) -> tuple[np.ndarray, np.ndarray]:
    """Joint byte classes: ``(256,)`` class id (numbered by first byte) and one byte per class."""
    stacked = np.stack([p.classes for p in parts])  # (K, 256)
    weights = np.random.default_rng(0x5EED).integers(1, 2**63 - 1, size=len(parts), dtype=np.uint64)
    with np.errstate(over="ignore"):
        h = (stacked.T.astype(np.uint64) * weights).sum(axis=1, dtype=np.uint64)  # (256,)
    _, first, inv = np.unique(h, return_index=True, return_inverse=True)
    if not np.array_equal(stacked[:, first[inv.reshape(-1)]], stacked):  # pragma: no cover - collision
        _, first, inv = np.unique(stacked.T, axis=0, return_index=True, return_inverse=True)
    order = np.argsort(first, kind="stable")  # class ids in order of their smallest byte
    rank = np.empty_like(order)
    rank[order] = np.arange(len(order))
    return rank[inv.reshape(-1)].astype(np.int64), first[order]


def _tags(parts: Sequence[Component], tuples: np.ndarray, field: str, wide: bool) -> list[int]:
    """OR of the components' ``field`` bitsets for every product state."""
    dtype = object if wide else np.uint64
    out = np.zeros(tuples.shape[0], dtype=dtype)
    for k, p in enumerate(parts):
        bits = np.array(getattr(p, field), dtype=dtype)
        out = out | bits[tuples[:, k]]
    return [int(x) for x in out.tolist()]


def product_dfa(
    parts: Sequence[Component], num_terminals: int, limits: Limits, what: str = "", *, use_numba: bool | None = None
) -> tuple[np.ndarray, list[int], list[int], int]:
    """The reachable product of ``parts``: ``((S, 256)`` int32 transitions, accepts, alive, start).

    State 0 is dead, 1 the start (0 and a single dead state when every part is empty). Raises
    ``LimitExceeded`` on ``max_dfa_states`` or ``compile_timeout_s``. ``use_numba=None`` runs the
    numba-compiled breadth-first kernel when numba is available, else the numpy level-at-a-time
    version (``STRUCTGEN_NO_NUMBA=1`` forces it); both give the same tables.
    """
    parts = [p for p in parts if p.start != 0]
    if not parts:
        return np.zeros((1, 256), dtype=np.int32), [0], [0], 0
    deadline = time.monotonic() + limits.compile_timeout_s
    max_states = limits.max_dfa_states
    classes, reps = _joint_classes(parts)
    num_classes = len(reps)
    k_parts = len(parts)
    # all parts' transitions on the joint classes, stacked: part k's state q is row offs[k] + q
    sizes = [p.trans.shape[0] for p in parts]
    offs = np.concatenate(([0], np.cumsum(sizes)[:-1])).astype(np.int64)  # (K,)
    stacked = np.concatenate([p.trans[:, p.classes[reps]] for p in parts]).astype(np.int64)  # (sum S_k, C)
    wide = num_terminals > 64
    kernel = _jit() if use_numba is None or use_numba else None
    if use_numba and kernel is None:
        raise RuntimeError("numba is not available")
    if kernel is not None:
        tuples, trans_cls = _product_compiled(kernel, parts, stacked, offs, limits, what, deadline)
        full = np.ascontiguousarray(trans_cls[:, classes], dtype=np.int32)  # (S, 256) int32
        return full, _tags(parts, tuples, "accepts", wide), _tags(parts, tuples, "alive", wide), 1
    rng = np.random.default_rng(0x5EED)
    weights = rng.integers(1, 2**63 - 1, size=k_parts, dtype=np.uint64) | np.uint64(1)
    part_of_row = np.repeat(np.arange(k_parts), sizes)
    with np.errstate(over="ignore"):
        hashed = stacked.astype(np.uint64) * weights[part_of_row][:, None]  # (sum S_k, C): w_k * q'
    cap = 64
    tuples = np.zeros((cap, k_parts), dtype=np.int64)  # component states of each product state
    tuples[1] = [p.start for p in parts]
    with np.errstate(over="ignore"):
        start_hash = int((tuples[1].astype(np.uint64) * weights).sum(dtype=np.uint64))
    index: dict[int, int] = {start_hash: 1}
    rows: list[np.ndarray] = [np.zeros((1, num_classes), dtype=np.int64)]
    count = 2
    lo, hi = 1, 2
    while lo < hi:
        if time.monotonic() > deadline:
            raise LimitExceeded("compile_timeout_s", limits.compile_timeout_s, limits.compile_timeout_s, what)
        at = tuples[lo:hi] + offs  # (F, K) rows into the stacked tables
        with np.errstate(over="ignore"):
            h = hashed[at].sum(axis=1, dtype=np.uint64).ravel()  # (F*C,) successor hashes, 0 = dead
        live = np.flatnonzero(h)
        ids = np.zeros(h.shape[0], dtype=np.int64)
        uniq, first, inv = np.unique(h[live], return_index=True, return_inverse=True)
        order = np.argsort(first, kind="stable")  # distinct successors in discovery order
        got = np.empty(len(uniq), dtype=np.int64)
        fresh: list[int] = []
        for u, key, pos in zip(order.tolist(), uniq[order].tolist(), live[first[order]].tolist(), strict=True):
            sid = index.get(key)
            if sid is None:
                sid = index[key] = count
                count += 1
                fresh.append(pos)
            got[u] = sid
        if count > max_states + 1:  # +1: the dead state is not counted
            raise LimitExceeded("max_dfa_states", count - 1, max_states, what)
        ids[live] = got[inv.reshape(-1)]
        rows.append(ids.reshape(-1, num_classes))
        if fresh:
            where = np.array(fresh, dtype=np.int64)
            new = stacked[at[where // num_classes], (where % num_classes)[:, None]]  # (new, K)
            if count > cap:
                cap = max(2 * cap, count)
                tuples = np.concatenate([tuples, np.zeros((cap - tuples.shape[0], k_parts), dtype=np.int64)])
            tuples[hi:count] = new
        lo, hi = hi, count
    tuples = tuples[:count]
    trans_cls = np.concatenate(rows)  # (S, C)
    # the hash named each state; check that equal hashes were equal tuples (else redo exactly)
    succ = stacked[tuples + offs]  # (S, K, C)
    if not np.array_equal(succ, np.transpose(tuples[trans_cls], (0, 2, 1))):  # pragma: no cover
        return _exact_product(parts, stacked, offs, num_classes, classes, num_terminals, limits, what)
    full = np.ascontiguousarray(trans_cls[:, classes], dtype=np.int32)  # (S, 256) int32
    return full, _tags(parts, tuples, "accepts", wide), _tags(parts, tuples, "alive", wide), 1


def _exact_product(
    parts: Sequence[Component],
    stacked: np.ndarray,
    offs: np.ndarray,
    num_classes: int,
    classes: np.ndarray,
    num_terminals: int,
    limits: Limits,
    what: str,
) -> tuple[np.ndarray, list[int], list[int], int]:  # pragma: no cover - only after a 64-bit collision
    """The same product with tuples as dictionary keys (slow, exact)."""
    start = tuple(p.start for p in parts)
    dead = (0,) * len(parts)
    index: dict[tuple[int, ...], int] = {dead: 0, start: 1}
    order = [dead, start]
    rows = [[0] * num_classes]
    i = 1
    while i < len(order):
        cur = np.array(order[i], dtype=np.int64) + offs
        row = []
        for succ in zip(*stacked[cur].tolist(), strict=True):
            sid = index.get(succ)
            if sid is None:
                if len(order) >= limits.max_dfa_states + 1:
                    raise LimitExceeded("max_dfa_states", len(order), limits.max_dfa_states, what)
                sid = index[succ] = len(order)
                order.append(succ)
            row.append(sid)
        rows.append(row)
        i += 1
    tuples = np.array(order, dtype=np.int64)
    full = np.ascontiguousarray(np.array(rows, dtype=np.int32)[:, classes], dtype=np.int32)
    wide = num_terminals > 64
    return full, _tags(parts, tuples, "accepts", wide), _tags(parts, tuples, "alive", wide), 1


# ---- the compiled breadth-first kernel (numba) ---------------------------------------------------

_BUDGET = 4096  # product states per kernel call between two looks at the clock
_MASK62 = (1 << 62) - 1


def product_kernel(
    stacked: np.ndarray,
    offs: np.ndarray,
    tuples: np.ndarray,
    trans: np.ndarray,
    slots: np.ndarray,
    count: int,
    lo: int,
    budget: int,
) -> tuple[int, int, int]:
    """Breadth-first product from state ``lo`` on (plain Python; compiled with numba when available).

    ``tuples[i]`` holds product state i's component states and ``trans[i]`` its successors per joint
    class; ``slots`` is an open-addressing table of state ids (-1 = empty) keyed by a hash of the
    tuple, compared exactly. Returns ``(count, lo, status)``: status 0 = done, 1 = budget spent,
    2 = ``tuples`` is full (grow it, rehash, call again: the row ``lo`` is redone from scratch).
    """
    k_parts = offs.shape[0]
    num_classes = stacked.shape[1]
    cap = tuples.shape[0]
    mask = slots.shape[0] - 1
    buf = np.empty(k_parts, dtype=np.int64)
    done = 0
    while lo < count:
        if done >= budget:
            return count, lo, 1
        for c in range(num_classes):
            h = 0
            live = False
            for k in range(k_parts):
                q = int(stacked[tuples[lo, k] + offs[k], c])
                buf[k] = q
                if q != 0:
                    live = True
                h = ((h ^ q) * 1099511628211 + k) & _MASK62  # FNV-style mixing, same in Python and numba
            if not live:
                trans[lo, c] = 0
                continue
            slot = (h ^ (h >> 29)) & mask
            while True:
                sid = slots[slot]
                if sid < 0:
                    if count >= cap:
                        return count, lo, 2
                    for k in range(k_parts):
                        tuples[count, k] = buf[k]
                    slots[slot] = count
                    trans[lo, c] = count
                    count += 1
                    break
                same = True
                for k in range(k_parts):
                    if tuples[sid, k] != buf[k]:
                        same = False
                        break
                if same:
                    trans[lo, c] = sid
                    break
                slot = (slot + 1) & mask
        lo += 1
        done += 1
    return count, lo, 0


def rehash_kernel(tuples: np.ndarray, count: int, slots: np.ndarray) -> None:
    """Insert states ``1..count-1`` into an empty ``slots`` table (same hash as the product kernel)."""
    k_parts = tuples.shape[1]
    mask = slots.shape[0] - 1
    for i in range(1, count):
        h = 0
        for k in range(k_parts):
            h = ((h ^ int(tuples[i, k])) * 1099511628211 + k) & _MASK62
        slot = (h ^ (h >> 29)) & mask
        while slots[slot] >= 0:
            slot = (slot + 1) & mask
        slots[slot] = i


def _product_compiled(
    kernel: tuple[Callable[..., Any], ...],
    parts: Sequence[Component],
    stacked: np.ndarray,
    offs: np.ndarray,
    limits: Limits,
    what: str,
    deadline: float,
) -> tuple[np.ndarray, np.ndarray]:
    """Run the compiled kernel to the end: (``(S, K)`` tuples, ``(S, C)`` class transitions)."""
    bfs, rehash = kernel
    k_parts, num_classes = len(parts), stacked.shape[1]
    limit = limits.max_dfa_states + 2  # + the dead state, + the one that goes over
    cap = min(256, limit)
    tuples = np.zeros((cap, k_parts), dtype=np.int64)
    trans = np.zeros((cap, num_classes), dtype=np.int64)
    tuples[1] = [p.start for p in parts]
    slots = np.full(4 << (cap - 1).bit_length(), -1, dtype=np.int64)  # a power of two, load <= 1/4
    rehash(tuples, 2, slots)
    count, lo = 2, 1
    while True:
        if time.monotonic() > deadline:
            raise LimitExceeded("compile_timeout_s", limits.compile_timeout_s, limits.compile_timeout_s, what)
        count, lo, status = bfs(stacked, offs, tuples, trans, slots, count, lo, _BUDGET)
        if status == 0:
            return tuples[:count], trans[:count]
        if status == 2:
            if cap >= limit:
                raise LimitExceeded("max_dfa_states", count, limits.max_dfa_states, what)
            cap = min(2 * cap, limit)
            tuples = np.concatenate([tuples, np.zeros((cap - tuples.shape[0], k_parts), dtype=np.int64)])
            trans = np.concatenate([trans, np.zeros((cap - trans.shape[0], num_classes), dtype=np.int64)])
            slots = np.full(4 << (cap - 1).bit_length(), -1, dtype=np.int64)
            rehash(tuples, count, slots)


def _jit() -> tuple[Callable[..., Any], ...] | None:
    return compiled("product", product_kernel, rehash_kernel)
