"""Vectorized token walks for the grammar engine: which tokens stay inside a lexeme, which cross.

Given a lexer state ``q`` and the set ``A`` of terminals the parser accepts, every token falls in one
of three classes, independent of the rest of the parser state:

* **inside**: every byte continues the open lexeme (maximal munch never lets it end), and the
  lexeme is still completable after the last byte;
* **crossing** at offset ``j``: byte ``j`` cannot continue the lexeme, but the bytes before it form
  a complete lexeme of some terminals in ``A`` (the *boundary set*); the token's fate then depends on
  the parser state after that terminal, and its remaining bytes ``token[j:]`` are walked again from
  the lexer's "no open lexeme" state;
* **dead**: everything else.

:func:`walk_all` classifies the whole vocabulary from ``q`` (column by column over the tokens sorted
by length, see :class:`structgen.vocab.token_arrays.TokenArrays`); :func:`walk_suffixes` classifies
the remainders of crossing tokens. Both return a :class:`Level`, cached by the engine per key, so a
mask at decode time is a few dictionary lookups and ORs of precomputed words.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from structgen.runtime.bitmask import bitmask_width


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


def token_set(token_ids: np.ndarray, vocab_size: int) -> TokenSet:
    """Pack ``token_ids`` (any order, no duplicates needed) into the cheapest TokenSet form."""
    w = bitmask_width(vocab_size)
    ids = np.asarray(token_ids, dtype=np.int64)
    empty_i = np.zeros(0, dtype=np.int64)
    empty_v = np.zeros(0, dtype=np.uint32)
    if ids.size == 0:
        return TokenSet(None, empty_i, empty_v, 0)
    if ids.size * 8 > w:
        allowed = np.zeros(w * 32, dtype=bool)
        allowed[ids] = True
        dense = np.packbits(allowed.reshape(w, 32), axis=-1, bitorder="little").view(np.uint32).reshape(w)
        return TokenSet(np.ascontiguousarray(dense), empty_i, empty_v, int(ids.size))
    ids = np.sort(ids)
    word = ids >> 5
    bits = (np.uint32(1) << (ids & 31).astype(np.uint32)).astype(np.uint32)
    starts = np.flatnonzero(np.r_[True, word[1:] != word[:-1]])
    vals = np.bitwise_or.reduceat(bits, starts).astype(np.uint32)
    return TokenSet(None, word[starts].copy(), vals, int(ids.size))


@dataclass(frozen=True, eq=False)
class Level:
    """Classification of a set of tokens (or token remainders) from one lexer state under one ``A``.

    ``inside``: the tokens that end inside the lexeme. ``groups``: ``(boundary terminal set, node)``
    where ``node`` indexes the engine's table of remainder sets (sorted positions and offsets).
    """

    inside: TokenSet
    groups: tuple[tuple[int, int], ...]
    # tokens whose first byte already ends the open lexeme: (boundary terminal set, those tokens).
    # Their fate is the mask of the parser state after the lexeme with no lexeme open, restricted
    # to them, so they share that (cached) mask instead of a remainder walk of their own.
    first: tuple[int, TokenSet] | None = None


@dataclass(frozen=True, eq=False)
class Crossing:
    """Tokens (by sorted position ``k``) whose remainders start at byte offset ``pos``."""

    k: np.ndarray  # (n,) int64
    pos: np.ndarray  # (n,) int32


def _group(
    bk: np.ndarray, bpos: np.ndarray, bstate: np.ndarray, accepts: tuple[int, ...], a_bits: int
) -> list[tuple[int, Crossing]]:
    """Group crossing tokens by their boundary terminal set ``accepts[state] & A``."""
    if bk.size == 0:
        return []
    uniq, inv = np.unique(bstate, return_inverse=True)
    by_set: dict[int, list[int]] = {}
    for i, s in enumerate(uniq.tolist()):
        by_set.setdefault(accepts[s] & a_bits, []).append(i)
    out = []
    for ts, members in by_set.items():
        sel = np.isin(inv, members) if len(members) > 1 else inv == members[0]
        out.append((ts, Crossing(bk[sel].astype(np.int64), bpos[sel].astype(np.int32))))
    return out


def _cat(xs: list[np.ndarray], dt: type) -> np.ndarray:
    return np.concatenate(xs).astype(dt) if xs else np.zeros(0, dtype=dt)


def walk_all(
    columns: tuple[np.ndarray, ...],
    trans: np.ndarray,
    q0: int,
    alive_a: np.ndarray,
    accept_a: np.ndarray,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Walk every token (sorted positions ``0..N-1``) from lexer state ``q0``.

    ``alive_a[s]``: the lexeme in state ``s`` can still become a terminal of A; ``accept_a[s]``: it
    already is one. Returns (inside positions, crossing positions, crossing offsets, boundary states).
    """
    n_tokens = len(columns[0]) if columns else 0
    act = np.arange(n_tokens, dtype=np.int64)
    st = np.full(n_tokens, q0, dtype=np.int32)
    tflat = trans.reshape(-1)
    dense = True  # act is still 0..len(act)-1: columns need no gather
    inside: list[np.ndarray] = []
    bk: list[np.ndarray] = []
    bp: list[np.ndarray] = []
    bs: list[np.ndarray] = []
    for j, col in enumerate(columns):
        n_j = len(col)
        if act.size and act[-1] >= n_j:  # tokens of length j are finished and still inside
            cut = int(np.searchsorted(act, n_j))
            inside.append(act[cut:])
            act = act[:cut]
            st = st[:cut]
        if act.size == 0:
            break
        byte = col[: act.size] if dense else col[act]
        if j == 0:
            nxt = trans[q0][byte]
        else:
            nxt = tflat[(st << 8) | byte]
        ok = alive_a[nxt]
        if not ok.all():
            bad = ~ok
            cand_k = act[bad]
            cand_s = st[bad]
            acc = accept_a[cand_s]
            if acc.any():
                bk.append(cand_k[acc])
                bs.append(cand_s[acc])
                bp.append(np.full(int(acc.sum()), j, dtype=np.int32))
            act = act[ok]
            st = nxt[ok]
            dense = False
        else:
            st = nxt
    if act.size:
        inside.append(act)
    return _cat(inside, np.int64), _cat(bk, np.int64), _cat(bp, np.int32), _cat(bs, np.int32)


def walk_suffixes(
    buf: np.ndarray,
    lengths: np.ndarray,
    k: np.ndarray,
    pos: np.ndarray,
    trans: np.ndarray,
    q0: int,
    alive_a: np.ndarray,
    accept_a: np.ndarray,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Like :func:`walk_all` for the remainders ``token[pos:]`` of tokens at sorted positions ``k``.

    ``buf`` is the ``(N, max_len)`` uint8 byte matrix of the sorted tokens.
    """
    act = k.astype(np.int64)
    p = pos.astype(np.int64)
    st = np.full(act.size, q0, dtype=np.int32)
    ln = lengths[act].astype(np.int64)
    inside: list[np.ndarray] = []
    bk: list[np.ndarray] = []
    bp: list[np.ndarray] = []
    bs: list[np.ndarray] = []
    while act.size:
        done = p >= ln
        if done.any():
            inside.append(act[done])
            keep = ~done
            act, p, st, ln = act[keep], p[keep], st[keep], ln[keep]
            if act.size == 0:
                break
        nxt = trans[st, buf[act, p]]
        ok = alive_a[nxt]
        if not ok.all():
            bad = ~ok
            acc = accept_a[st[bad]]
            if acc.any():
                bk.append(act[bad][acc])
                bp.append(p[bad][acc].astype(np.int32))
                bs.append(st[bad][acc])
            act, p, ln, st = act[ok], p[ok], ln[ok], nxt[ok]
        else:
            st = nxt
        p = p + 1
    return _cat(inside, np.int64), _cat(bk, np.int64), _cat(bp, np.int32), _cat(bs, np.int32)
