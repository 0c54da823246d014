"""A minimal DFA over code points -> the minimal DFA over UTF-8 bytes, built directly.

Determinizing at the code-point level keeps each character class one NFA edge (a byte NFA spells
large classes out as UTF-8 sequence automata, duplicated in every branch, and its subset
construction yields many equivalent copies of those tails for Moore's minimization to merge). This
module spells the UTF-8 out once, after minimization:

* a code-point state ``q`` maps an ASCII byte to ``δ(q, byte)``;
* a lead byte of a multi-byte character opens a *tail*: the partial map from the remaining
  continuation bytes to the code-point state reached. Tails are hash-consed by
  ``(bytes left, the map as maximal (lo, hi, target) pieces relative to the block)``; invalid UTF-8
  (overlong forms, surrogates, beyond U+10FFFF, stray continuation bytes) goes to the dead state.

The result is minimal when the input is: distinct code-point states have distinct residuals,
a code-point state's non-empty residual starts with a non-continuation byte (or is ε) while a
tail's starts with a continuation byte, and distinct canonical tails differ on some continuation
sequence. States are renumbered breadth-first in byte order, which is the numbering the byte-level
subset construction + minimization gives, so tables are identical, not just isomorphic.
"""

from __future__ import annotations

from bisect import bisect_right

import numpy as np

from structgen.errors import LimitExceeded
from structgen.limits import Limits

__all__ = ["expand_utf8", "bfs_renumber"]

Pieces = tuple[tuple[int, int, int], ...]  # sorted, disjoint, maximal (lo, hi, target), target != 0

# lead byte -> (bytes that follow, first code point of its block, valid code points in the block)
_LEADS: dict[int, tuple[int, int, int, int]] = {}
for _b in range(0xC2, 0xE0):
    _base = (_b & 0x1F) << 6
    _LEADS[_b] = (1, _base, _base, _base + 0x3F)
for _b in range(0xE0, 0xF0):
    _base = (_b & 0x0F) << 12
    _lo, _hi = _base, _base + 0xFFF
    if _b == 0xE0:
        _lo = 0x800  # shorter forms are overlong
    if _b == 0xED:
        _hi = 0xD7FF  # surrogates have no encoding
    _LEADS[_b] = (2, _base, _lo, _hi)
for _b in range(0xF0, 0xF5):
    _base = (_b & 0x07) << 18
    _LEADS[_b] = (3, _base, max(_base, 0x10000), min(_base + 0x3FFFF, 0x10FFFF))


def _clip(pieces: Pieces, lo: int, hi: int, base: int) -> Pieces:
    """Pieces within ``[lo, hi]``, shifted to start at ``base``."""
    i = max(0, bisect_right(pieces, (lo, -1, -1)) - 1)
    out = []
    for p_lo, p_hi, t in pieces[i:]:
        if p_lo > hi:
            break
        if p_hi < lo:
            continue
        out.append((max(p_lo, lo) - base, min(p_hi, hi) - base, t))
    return tuple(out)


class _Tails:
    """Hash-consed tail states; ids start at ``first``; ``rows[i]`` = continuation targets (64,)."""

    def __init__(self, first: int, max_states: int, what: str) -> None:
        self.first = first
        self.ids: dict[tuple[int, Pieces], int] = {}
        self.rows: list[list[int]] = []
        self.max_states = max_states
        self.what = what

    def get(self, n: int, pieces: Pieces) -> int:
        """State for "``n`` continuation bytes left, then the code point's target by ``pieces``"."""
        if not pieces:
            return 0
        key = (n, pieces)
        got = self.ids.get(key)
        if got is not None:
            return got
        sid = self.first + len(self.rows)
        if sid >= self.max_states + 1:  # +1: the dead state is not counted
            raise LimitExceeded("max_dfa_states", sid, self.max_states, self.what)
        self.ids[key] = sid
        row = [0] * 64
        self.rows.append(row)
        if n == 1:
            for lo, hi, t in pieces:
                row[lo : hi + 1] = [t] * (hi - lo + 1)
            return sid
        sub = 1 << (6 * (n - 1))
        pending: dict[int, list[tuple[int, int, int]]] = {}
        for lo, hi, t in pieces:
            j_lo, j_hi = lo // sub, hi // sub
            full_lo = j_lo if lo == j_lo * sub else j_lo + 1  # sub-blocks the piece covers whole
            full_hi = j_hi if hi == j_hi * sub + sub - 1 else j_hi - 1
            if full_lo <= full_hi:
                row[full_lo : full_hi + 1] = [self.get(n - 1, ((0, sub - 1, t),))] * (full_hi - full_lo + 1)
            for j in {j_lo, j_hi}:
                if not full_lo <= j <= full_hi:
                    a, b = max(lo, j * sub), min(hi, j * sub + sub - 1)
                    pending.setdefault(j, []).append((a - j * sub, b - j * sub, t))
        for j, ps in pending.items():
            row[j] = self.get(n - 1, tuple(sorted(ps)))
        return sid


def expand_utf8(
    trans: np.ndarray,
    starts: np.ndarray,
    tags: list[int],
    start: int,
    limits: Limits,
    what: str = "",
    renumber: bool = True,
) -> tuple[np.ndarray, list[int], int]:
    """Byte DFA of a minimal code-point DFA: ``((S', 256)`` int32, tags, start), minimal.

    ``trans`` is ``(S, C)`` over code-point classes (class ``k`` starts at ``starts[k]``), state 0
    dead and every other state live. With ``renumber`` states are numbered breadth-first (start 1);
    otherwise code-point states keep their numbers and tail states follow them.
    """
    if start == 0:
        return np.zeros((1, 256), dtype=np.int32), [0], 0
    n = trans.shape[0]
    out = np.zeros((n, 256), dtype=np.int32)
    cls_ascii = np.searchsorted(starts, np.arange(128), side="right") - 1
    out[:, :128] = trans[:, cls_ascii]
    first_multi = int(np.searchsorted(starts, 0x80, side="right")) - 1
    multi = np.ascontiguousarray(trans[:, first_multi:])  # (S, C') classes holding non-ASCII code points
    lo_l = [max(0x80, x) for x in starts[first_multi:].tolist()]
    hi_l = np.append(starts[first_multi + 1 :] - 1, 0x10FFFF).tolist()
    tails = _Tails(n, limits.max_dfa_states, what)
    lead_rows: dict[bytes, list[int]] = {}
    for s in range(1, n):
        raw = multi[s].tobytes()
        lead = lead_rows.get(raw)
        if lead is None:
            pieces: list[tuple[int, int, int]] = []
            for lo, hi, t in zip(lo_l, hi_l, multi[s].tolist(), strict=True):
                if t == 0:
                    continue
                if pieces and pieces[-1][2] == t and pieces[-1][1] + 1 == lo:
                    pieces[-1] = (pieces[-1][0], hi, t)
                else:
                    pieces.append((lo, hi, t))
            key = tuple(pieces)
            lead = [0] * 128
            for b, (m, base, lo, hi) in _LEADS.items():
                lead[b - 0x80] = tails.get(m, _clip(key, lo, hi, base))
            lead_rows[raw] = lead
        out[s, 128:] = lead
    if tails.rows:
        tail_tab = np.zeros((len(tails.rows), 256), dtype=np.int32)
        tail_tab[:, 0x80:0xC0] = np.array(tails.rows, dtype=np.int32)
        out = np.concatenate([out, tail_tab])
    all_tags = list(tags) + [0] * len(tails.rows)
    if not renumber:
        return out, all_tags, start
    return bfs_renumber(out, all_tags, start)


def bfs_renumber(table: np.ndarray, tags: list[int], start: int) -> tuple[np.ndarray, list[int], int]:
    """Renumber a ``(S, 256)`` DFA breadth-first from ``start`` (dead 0, start 1, successors in order
    of their smallest byte); unreachable states are dropped."""
    n = table.shape[0]
    new_id = np.full(n, -1, dtype=np.int64)
    new_id[0] = 0
    new_id[start] = 1
    order = [0, start]
    frontier = np.array([start], dtype=np.int64)
    while len(frontier):
        flat = table[frontier].ravel()
        uniq, first = np.unique(flat, return_index=True)
        fresh = uniq[new_id[uniq] < 0]
        if not len(fresh):
            break
        fresh = fresh[np.argsort(first[np.searchsorted(uniq, fresh)], kind="stable")]
        new_id[fresh] = np.arange(len(order), len(order) + len(fresh))
        order.extend(fresh.tolist())
        frontier = fresh
    keep = np.array(order, dtype=np.int64)
    out = new_id[table[keep]].astype(np.int32)
    return out, [tags[s] for s in order], 1
