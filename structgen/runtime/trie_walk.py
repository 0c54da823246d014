"""Depth-first walks of a vocabulary trie through the grammar lexer, with dead-subtree skipping.

The trie is stored flat in DFS preorder (the order of the sorted token bytes), llguidance-style:
node ``i`` has the edge byte ``byte[i]``, its ``depth[i]`` (0 = first byte) and ``end[i]``, the
index just past its subtree, so a rejected byte skips the whole subtree with ``i = end[i]``. The
token ids ending at node ``i`` are ``ids[tok_start[i]:tok_start[i + 1]]`` and the ids of its whole
subtree are ``ids[tok_start[i]:tok_start[end[i]]]``. The kernel reads these arrays interleaved
(``WalkTrie.packed``, one row per node, so a node costs one cache line and a call few arguments),
and a whole-vocabulary walk is given each root's byte, so roots whose first byte cannot continue the
lexeme are skipped without touching the trie (tokens by first byte: :func:`first_byte_complement`).

:func:`walk_kernel` is the classification of :mod:`structgen.runtime.grammar_masks` as one loop:
from lexer state ``q0``, a node whose byte keeps the lexeme alive (under the parser's acceptable
terminals ``A``) is *inside* (its tokens are recorded), a node whose byte ends a complete lexeme is
a *crossing* (recorded with the boundary state; the engine resolves its subtree from the "no open
lexeme" state later), anything else is dead. The function is plain Python over flat sequences; when
numba is installed the same function is compiled with ``numba.njit`` (an optional accelerator, 50–
200x faster; ``STRUCTGEN_NO_NUMBA=1`` forces the Python path, which the tests compare it with).

The *string slice* (:func:`is_slice_token`) is the set of tokens made only of complete UTF-8
characters that a JSON string body takes as is (no control character, quote, backslash or DEL):
95% of Llama-3. Two narrower character classes are kept too: printable ASCII, and ASCII letters
and digits. The vocabulary forest (:func:`vocab_trie`) holds four tries side by side: letter-and-
digit tokens, other printable-ASCII slice tokens, other slice tokens (all of at most
``SLICE_MAX_CHARS`` characters), then everything else (~7k tokens for Llama-3). ``G_k(s)``
(:func:`slice_closure`, per lexer and class, at construction) is the set of terminals alive in
every state reachable from ``s`` by at most ``k`` characters of the class; alive sets only shrink
along a walk, so from a node in state ``s`` whose subtree's remainders are strings of the class of
at most ``k`` characters, ``G_k(s) & A != 0`` puts the whole subtree inside without visiting it. In
a string body that holds at the roots of the first three tries, so a mask walks only the last one;
patterns and formats (ASCII-only, letters and digits) and length-bounded strings skip at the roots
of fewer tries or deeper down.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, NamedTuple

import numpy as np

from structgen.automaton.accel import compiled
from structgen.vocab.vocabulary import Vocabulary

__all__ = [
    "BIG_SUBTREE",
    "WalkResult",
    "WalkTrie",
    "subtree_words",
    "first_byte_complement",
    "vocab_trie",
    "concat_tries",
    "walk",
    "is_slice_token",
    "numba_enabled",
    "SLICE_CHAR_SEQUENCES",
    "SLICE_MAX_CHARS",
    "slice_closure",
]


@dataclass(frozen=True, eq=False)
class WalkTrie:
    """A set of text tokens as a flat preorder trie (see the module docstring)."""

    byte: np.ndarray  # (N,) int32
    depth: np.ndarray  # (N,) int32
    end: np.ndarray  # (N,) int32, one past the last node of the subtree
    tok_start: np.ndarray  # (N + 1,) int32
    ids: np.ndarray  # (T,) int32, token ids in preorder
    roots: np.ndarray  # (R,) int32, the depth-0 nodes
    # slice_rest[i] >= 0: node i ends a complete character, every token of its subtree is a slice
    # token, and their remainders after node i have at most slice_rest[i] (<= SLICE_MAX_CHARS)
    # characters; -1 otherwise
    slice_rest: np.ndarray  # (N,) int8
    ascii_rest: np.ndarray  # (N,) int8, the same for subtrees of printable-ASCII slice tokens only
    alnum_rest: np.ndarray  # (N,) int8, the same for subtrees of ASCII letter-and-digit tokens only
    max_depth: int
    packed: np.ndarray  # ((N + 1) * NODE_COLS,) int32: the node arrays interleaved, for walk_kernel
    lists: tuple[list[int], ...]  # packed, ids, end, tok_start as lists (the pure-Python kernels)
    cache: dict[Any, Any]  # per-vocabulary memo (subtree token sets)

    @property
    def num_nodes(self) -> int:
        return int(self.byte.shape[0])

    def subtree_ids(self, nodes: np.ndarray) -> np.ndarray:
        """Token ids of the subtrees of ``nodes`` (``(n,)`` int), concatenated."""
        lo = self.tok_start[nodes]
        hi = self.tok_start[self.end[nodes]]
        counts = hi - lo
        total = int(counts.sum())
        if total == 0:
            return np.zeros(0, dtype=np.int64)
        pos = np.repeat(lo - np.cumsum(counts) + counts, counts) + np.arange(total)
        return self.ids[pos].astype(np.int64)

    @staticmethod
    def build(token_bytes: list[bytes], token_ids: np.ndarray) -> WalkTrie:
        """Build from parallel lists of (non-empty) token bytes and ids."""
        n = len(token_bytes)
        if n == 0:
            e = np.zeros(0, dtype=np.int32)
            e8 = e.astype(np.int8)
            packed = np.zeros(NODE_COLS, dtype=np.int32)
            return WalkTrie(
                e, e, e, np.zeros(1, dtype=np.int32), e, e, e8, e8, e8, 0, packed, ([0] * NODE_COLS, [], [], [0]), {}
            )
        order = sorted(range(n), key=token_bytes.__getitem__)
        toks = [token_bytes[i] for i in order]
        ids = np.asarray(token_ids, dtype=np.int64)[order].astype(np.int32)
        lengths = np.array([len(t) for t in toks], dtype=np.int64)
        max_len = int(lengths.max())
        buf = np.zeros((n, max_len), dtype=np.uint8)  # (n, L) sorted token bytes, zero padded
        flat = np.frombuffer(b"".join(toks), dtype=np.uint8)
        rows = np.repeat(np.arange(n), lengths)
        cols = np.arange(len(flat)) - np.repeat(np.cumsum(lengths) - lengths, lengths)
        buf[rows, cols] = flat
        lcp = np.zeros(n, dtype=np.int64)  # common prefix with the previous sorted token
        if n > 1:
            neq = buf[1:] != buf[:-1]
            first_diff = np.where(neq.any(axis=1), neq.argmax(axis=1), max_len)
            lcp[1:] = np.minimum(first_diff, np.minimum(lengths[1:], lengths[:-1]))
        new = lengths - lcp  # nodes token k creates (0 for a duplicate of the previous token)
        base = np.cumsum(new) - new
        num = int(new.sum())
        owner = np.repeat(np.arange(n), new)
        depth = lcp[owner] + (np.arange(num) - base[owner])
        byte = buf[owner, depth]
        # a node of depth d created by token k ends where the first later token with lcp <= d starts
        end = np.full(num, num, dtype=np.int64)
        by_depth = np.argsort(depth, kind="stable")
        bounds = np.searchsorted(depth[by_depth], np.arange(max_len + 1))
        for d in range(max_len):
            nodes = by_depth[bounds[d] : bounds[d + 1]]
            starters = np.flatnonzero(lcp <= d)
            j = np.searchsorted(starters, owner[nodes], side="right")
            has = j < len(starters)
            end[nodes[has]] = base[starters[j[has]]]
        tok_node = np.where(new > 0, base + new - 1, -1)
        tok_node = np.maximum.accumulate(tok_node)  # a duplicate shares the previous token's node
        tok_start = np.zeros(num + 1, dtype=np.int64)
        tok_start[1:] = np.cumsum(np.bincount(tok_node, minlength=num))
        # slice subtrees: tokens are in sorted order, so a subtree's tokens are tok_start[i]:tok_start[end[i]]
        cont = (buf & 0xC0) == 0x80  # (n, L) UTF-8 continuation bytes
        chars = np.cumsum(~cont, axis=1)  # characters started up to each byte
        tok_chars = chars[np.arange(n), lengths - 1]
        in_slice = np.array([is_slice_token(t) for t in toks], dtype=bool)
        in_ascii = in_slice & (buf.max(axis=1) < 0x80)
        in_alnum = np.array([t.isascii() and t.isalnum() for t in toks], dtype=bool)
        lo, hi = tok_start[:num], tok_start[end]
        nxt = np.minimum(depth + 1, max_len - 1)
        boundary = (depth + 1 >= lengths[owner]) | ~cont[owner, nxt]
        rest = _range_max(tok_chars, lo, np.maximum(hi, lo + 1)) - chars[owner, depth]
        rests = []
        for members in (in_slice, in_ascii, in_alnum):
            bad_prefix = np.concatenate(([0], np.cumsum(~members)))
            pure = (hi > lo) & (bad_prefix[hi] == bad_prefix[lo])
            rests.append(np.where(pure & boundary & (rest <= SLICE_MAX_CHARS), rest, -1).astype(np.int8))
        return _make((byte, depth, end, tok_start, ids), np.flatnonzero(depth == 0), tuple(rests), max_len)


def concat_tries(parts: list[WalkTrie]) -> WalkTrie:
    """One forest holding the tries of ``parts`` side by side (node and token indices shifted)."""
    node_off = np.cumsum([0] + [p.num_nodes for p in parts])
    tok_off = np.cumsum([0] + [p.ids.shape[0] for p in parts])
    byte = np.concatenate([p.byte for p in parts])
    depth = np.concatenate([p.depth for p in parts])
    end = np.concatenate([p.end + node_off[i] for i, p in enumerate(parts)])
    tok_start = np.concatenate([p.tok_start[:-1] + tok_off[i] for i, p in enumerate(parts)] + [tok_off[-1:]])
    ids = np.concatenate([p.ids for p in parts])
    roots = np.concatenate([p.roots + node_off[i] for i, p in enumerate(parts)])
    rests = tuple(np.concatenate([getattr(p, f"{c}_rest") for p in parts]) for c in ("slice", "ascii", "alnum"))
    return _make((byte, depth, end, tok_start, ids), roots, rests, max(p.max_depth for p in parts))


def _make(arrays: tuple[np.ndarray, ...], roots: np.ndarray, rests: tuple[np.ndarray, ...], max_depth: int) -> WalkTrie:
    byte, depth, end, tok_start, ids = (np.ascontiguousarray(a, dtype=np.int32) for a in arrays)
    n = byte.shape[0]
    packed = np.zeros((n + 1, NODE_COLS), dtype=np.int32)  # (N + 1, NODE_COLS)
    packed[:n, _BYTE] = byte
    packed[:n, _DEPTH] = depth
    packed[:n, _END] = end
    packed[:, _TOK] = tok_start
    for c, rest in enumerate(rests):
        packed[:n, _SLICE + c] = rest
    packed = packed.reshape(-1)
    return WalkTrie(
        byte=byte,
        depth=depth,
        end=end,
        tok_start=tok_start,
        ids=ids,
        roots=roots.astype(np.int32),
        slice_rest=rests[0],
        ascii_rest=rests[1],
        alnum_rest=rests[2],
        max_depth=max_depth,
        packed=packed,
        lists=tuple(a.tolist() for a in (packed, ids, end, tok_start)),
        cache={},
    )


def _range_max(values: np.ndarray, lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
    """``max(values[lo[i]:hi[i]])`` for every i (non-empty ranges), with a sparse table."""
    table = [values]
    while (1 << len(table)) <= len(values):
        prev = table[-1]
        half = 1 << (len(table) - 1)
        table.append(np.maximum(prev[:-half], prev[half:]))
    span = hi - lo
    level = np.floor(np.log2(span)).astype(np.int64)
    out = np.empty(len(lo), dtype=values.dtype)
    for k in np.unique(level).tolist():
        sel = level == k
        out[sel] = np.maximum(table[k][lo[sel]], table[k][hi[sel] - (1 << k)])
    return out


_NOT_IN_SLICE = re.compile('[\\x00-\\x1f"\\\\\\x7f]')


def is_slice_token(b: bytes) -> bool:
    """Complete UTF-8 characters only, none of them a control character, ``"``, ``\\`` or DEL."""
    try:
        s = b.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return bool(s) and _NOT_IN_SLICE.search(s) is None


# Slice tokens are at most this many characters long (99.4% of Llama-3's slice tokens are), so a
# lexer state only needs its slice closure to this depth (length-bounded strings still qualify).
SLICE_MAX_CHARS = 16

# Every UTF-8 encoding of a slice character, as byte-range sequences (Unicode Table 3-7, strict).
_R = tuple[int, int]
SLICE_CHAR_SEQUENCES: tuple[tuple[_R, ...], ...] = (
    ((0x20, 0x21),),
    ((0x23, 0x5B),),
    ((0x5D, 0x7E),),
    ((0xC2, 0xDF), (0x80, 0xBF)),
    ((0xE0, 0xE0), (0xA0, 0xBF), (0x80, 0xBF)),
    ((0xE1, 0xEC), (0x80, 0xBF), (0x80, 0xBF)),
    ((0xED, 0xED), (0x80, 0x9F), (0x80, 0xBF)),
    ((0xEE, 0xEF), (0x80, 0xBF), (0x80, 0xBF)),
    ((0xF0, 0xF0), (0x90, 0xBF), (0x80, 0xBF), (0x80, 0xBF)),
    ((0xF1, 0xF3), (0x80, 0xBF), (0x80, 0xBF), (0x80, 0xBF)),
    ((0xF4, 0xF4), (0x80, 0x8F), (0x80, 0xBF), (0x80, 0xBF)),
)


def vocab_trie(vocab: Vocabulary) -> WalkTrie:
    """The text tokens of ``vocab`` as one forest of three walk tries: printable-ASCII slice tokens,
    other slice tokens (both at most ``SLICE_MAX_CHARS`` characters), everything else.

    Every subtree of the first two is a slice subtree, so a string-like lexer state skips them at
    the roots (an ASCII-only pattern skips the first); the last is small (about 7k tokens for
    Llama-3). Built once, cached on ``vocab``.
    """
    got = vocab._cache.get("walk_trie")
    if got is None:
        ids = vocab.text_token_ids()
        toks = [vocab.token_bytes[int(i)] for i in ids]
        short = np.array([is_slice_token(t) and len(t.decode()) <= SLICE_MAX_CHARS for t in toks], dtype=bool)
        ascii_ = np.array([t.isascii() for t in toks], dtype=bool)
        alnum = np.array([t.isascii() and t.isalnum() for t in toks], dtype=bool)
        parts = []
        for sel in (short & alnum, short & ascii_ & ~alnum, short & ~ascii_, ~short):
            idx = np.flatnonzero(sel)
            parts.append(WalkTrie.build([toks[i] for i in idx], ids[idx]))
        got = vocab._cache["walk_trie"] = concat_tries(parts)
        # the subtrees a string body skips whole (every slice root; every printable-ASCII root),
        # as sorted node ids: the keys under which callers memoize their token sets
        n = np.cumsum([len(p.roots) for p in parts])
        got.cache["slice_roots"] = tuple(got.roots[: n[k]] for k in (2, 1, 0))
        # per root its byte, and every token as a row: first-byte filtering of whole-trie walks
        got.cache["root_byte"] = got.byte[got.roots]
        got.cache["all_words"] = subtree_words(got, got.roots, (vocab.size + 31) // 32)
    return got  # type: ignore[no-any-return]


@dataclass(frozen=True, eq=False)
class LexerTables:
    """The lexer side of a walk, flattened for the kernel (terminal sets as ``words`` uint64 each).

    ``trans[s * 256 + b]``: next lexer state; ``alive``/``accept`` ``[s * words + w]``: terminals that
    state ``s`` can still become / already is; ``g_slice``/``g_ascii``/``g_alnum``
    ``[(k * S + s) * words + w]``: :func:`slice_closure` for the three character classes.
    """

    trans: np.ndarray  # (S * 256,) int32
    alive: np.ndarray  # (S * words,) uint64
    accept: np.ndarray  # (S * words,) uint64
    g_slice: np.ndarray  # ((K+1) * S * words,) uint64
    g_ascii: np.ndarray  # ((K+1) * S * words,) uint64
    g_alnum: np.ndarray  # ((K+1) * S * words,) uint64
    packed: np.ndarray  # alive, accept, g_slice, g_ascii, g_alnum concatenated (the above are views)
    num_states: int
    words: int
    lists: dict[str, list[int]]  # the arrays as lists, filled on the first pure-Python walk

    @staticmethod
    def build(trans: np.ndarray, alive: tuple[int, ...], accept: tuple[int, ...], num_terminals: int) -> LexerTables:
        """From the ``(S, 256)`` table and per-state terminal bitsets (Python ints)."""
        words = max(1, (num_terminals + 63) // 64)
        alive_w = terminal_words(alive, words)
        accept_w = terminal_words(accept, words)
        flat = np.ascontiguousarray(trans, dtype=np.int32).reshape(-1)
        cols: dict[Any, np.ndarray] = {}  # transition columns, shared by the three closures
        parts = [
            alive_w.reshape(-1),
            accept_w.reshape(-1),
            slice_closure(trans, alive_w, columns=cols).reshape(-1),
            slice_closure(trans, alive_w, chars="ascii", columns=cols).reshape(-1),
            slice_closure(trans, alive_w, chars="alnum", columns=cols).reshape(-1),
        ]
        packed = np.concatenate(parts)
        views = np.split(packed, np.cumsum([p.shape[0] for p in parts])[:-1])
        return LexerTables(
            trans=flat,
            alive=views[0],
            accept=views[1],
            g_slice=views[2],
            g_ascii=views[3],
            g_alnum=views[4],
            packed=packed,
            num_states=int(trans.shape[0]),
            words=words,
            lists={},
        )

    def as_lists(self) -> dict[str, list[int]]:
        if not self.lists:
            for name in ("trans", "packed"):
                self.lists[name] = getattr(self, name).tolist()
        return self.lists


def terminal_words(bitsets: tuple[int, ...] | list[int], words: int) -> np.ndarray:
    """``(n, words)`` uint64: terminal bitsets (Python ints) split into 64-bit words."""
    if words == 1 and all(x >> 64 == 0 for x in bitsets):
        return np.array(bitsets, dtype=np.uint64).reshape(-1, 1)
    mask = (1 << 64) - 1
    return np.array([[(x >> (64 * w)) & mask for w in range(words)] for x in bitsets], dtype=np.uint64)


# Columns of a node's row in WalkTrie.packed (flat, NODE_COLS int32 per node, one more row at the
# end holding the total token count in its tok_start column): one cache line serves a node.
NODE_COLS = 8
_BYTE, _DEPTH, _END, _TOK, _SLICE, _ASCII, _ALNUM = range(7)


def walk_kernel(
    nodes: Any,
    ids: Any,
    trans: Any,
    lex: Any,
    num_states: int,
    nw: int,
    stack: Any,
    out: Any,
    out_len: int,
    big: int,
    roots: Any,
    root_bytes: Any,
    q0: int,
    a: Any,
    words: Any,
) -> tuple[int, int, int, int, int]:
    """Walk the subtrees of ``roots`` from lexer state ``q0``.

    Returns ``(#direct ids, #tokens of small skipped subtrees, #crossings, #big skipped subtrees,
    #words of ``words`` set)``. The arguments: the trie (``nodes``: :attr:`WalkTrie.packed`;
    ``ids``); the lexer (``trans``; ``lex``: :attr:`LexerTables.packed`, ``num_states``, ``nw``
    words per terminal set); scratch and output buffers (``stack``, ``max_depth + 1``; ``out``,
    five ``out_len`` regions: direct ids, crossing nodes, their boundary states, skipped nodes,
    indices of the words set) and ``big`` (all fixed per trie, lexer and thread, see
    :func:`_prefix`); then the walk's own: ``roots``, ``root_bytes`` (empty, or the byte of each
    root: a compact copy, so dead roots are skipped without touching the trie), ``q0``, ``a`` (the
    ``nw`` words of the parser's acceptable terminals ``A``) and the zeroed output row ``words``.

    A node whose state keeps a terminal of ``A`` alive is inside: its tokens are recorded and set
    in ``words``; unless its subtree is a slice subtree whose every remainder keeps one alive
    (``G_k`` with ``k`` = the node's slice/ascii/alnum rest): then the whole subtree is inside; a
    root, or a subtree of more than ``big`` tokens, is recorded as skipped (the caller ORs a
    memoized set: in a string body the skipped roots are the same few sets every time), a smaller
    one has its tokens set in ``words``. A node below the roots whose byte ends a complete lexeme
    of ``A`` is a crossing (node and boundary state recorded). A root whose byte ends the lexeme
    crosses with boundary state ``q0``: callers handle those without the walk (tokens by first byte).
    """
    nc = NODE_COLS
    sw = num_states * nw
    o_acc = sw
    g_size = (SLICE_MAX_CHARS + 1) * sw
    o_g = (2 * sw, 2 * sw + g_size, 2 * sw + 2 * g_size)  # slice, ascii, alnum closures
    o_node = out_len
    o_state = 2 * out_len
    o_skip = 3 * out_len
    o_words = 4 * out_len
    n_ids = 0
    n_sub = 0
    n_cross = 0
    n_skip = 0
    n_words = 0
    n_rb = len(root_bytes)
    for ri in range(len(roots)):
        if n_rb:
            ns = trans[q0 * 256 + root_bytes[ri]]
            live = False
            for w in range(nw):
                if lex[ns * nw + w] & a[w]:
                    live = True
                    break
            if not live:
                continue
        r = roots[ri]
        base = nodes[r * nc + _DEPTH]
        stack[0] = q0
        i = r
        stop = nodes[r * nc + _END]
        while i < stop:
            row = i * nc
            d = nodes[row + _DEPTH] - base
            s = stack[d]
            ns = trans[s * 256 + nodes[row + _BYTE]]
            live = False
            for w in range(nw):
                if lex[ns * nw + w] & a[w]:
                    live = True
                    break
            if live:
                whole = False
                for c in range(3):
                    k = nodes[row + _SLICE + c]
                    if k >= 0:
                        o = o_g[c] + (k * num_states + ns) * nw
                        for w in range(nw):
                            if lex[o + w] & a[w]:
                                whole = True
                                break
                        if whole:
                            break
                if whole:
                    e = nodes[row + _END]
                    lo = nodes[row + _TOK]
                    hi = nodes[e * nc + _TOK]
                    if d == 0 or hi - lo > big:
                        out[o_skip + n_skip] = i
                        n_skip += 1
                    else:
                        for t in range(lo, hi):
                            tid = ids[t]
                            if words[tid >> 5] == 0:
                                out[o_words + n_words] = tid >> 5
                                n_words += 1
                            words[tid >> 5] |= 1 << (tid & 31)
                        n_sub += hi - lo
                    i = e
                    continue
                stack[d + 1] = ns
                for t in range(nodes[row + _TOK], nodes[row + nc + _TOK]):
                    tid = ids[t]
                    if words[tid >> 5] == 0:
                        out[o_words + n_words] = tid >> 5
                        n_words += 1
                    words[tid >> 5] |= 1 << (tid & 31)
                    out[n_ids] = tid
                    n_ids += 1
                i += 1
            else:
                if d > 0:
                    for w in range(nw):
                        if lex[o_acc + s * nw + w] & a[w]:
                            out[o_node + n_cross] = i
                            out[o_state + n_cross] = s
                            n_cross += 1
                            break
                i = nodes[row + _END]
    return n_ids, n_sub, n_cross, n_skip, n_words


def subtree_kernel(end: Any, tok_start: Any, ids: Any, nodes: Any, words: Any, clear: bool) -> int:
    """Set (``clear``: clear) in ``words`` the token ids of the subtrees of ``nodes``; returns how many."""
    n = 0
    for i in nodes:
        lo = tok_start[i]
        hi = tok_start[end[i]]
        if clear:
            for t in range(lo, hi):
                tid = ids[t]
                words[tid >> 5] &= ~(1 << (tid & 31))
        else:
            for t in range(lo, hi):
                tid = ids[t]
                words[tid >> 5] |= 1 << (tid & 31)
        n += hi - lo
    return n


# Skipped subtrees below the roots with more tokens than this are returned as nodes (the caller
# ORs a memoized token set); smaller ones are set bit by bit in the walk, cheaper than a dictionary
# lookup and an OR over the whole row. Skipped roots are always returned as nodes.
BIG_SUBTREE = 1024


class WalkResult(NamedTuple):
    """What :func:`walk` found: inside tokens (``words``, ``ids``, ``n_inside``), skipped subtrees,
    crossings.

    ``words``: ``(W,)`` uint32, the inside tokens as a bitmask row (direct tokens and small skipped
    subtrees), ``touched``: the indices of its non-zero words; ``ids``: the direct inside token ids only; ``n_inside``: every token set in ``words``
    (so ``n_inside == len(ids)`` when no small subtree was skipped); ``whole``: skipped roots
    and big subtree nodes, whose tokens are inside too but not in ``words``; ``cross_nodes``/``cross_states``:
    crossing nodes and their boundary lexer states.
    """

    words: np.ndarray  # (W,) uint32
    touched: np.ndarray  # (m,) int64
    ids: np.ndarray  # (n,) int32
    n_inside: int
    whole: np.ndarray  # (k,) int32
    cross_nodes: np.ndarray  # (c,) int32
    cross_states: np.ndarray  # (c,) int32


def _jit() -> tuple[Callable[..., Any], ...] | None:
    """The numba-compiled (walk, subtree) kernels, loaded on first use (numba is a heavy import)."""
    return compiled("trie_walk", walk_kernel, subtree_kernel)


def numba_enabled() -> bool:
    """Whether walks run through the numba-compiled kernel."""
    return _jit() is not None


class _Buffers(threading.local):
    """Per thread: output buffers of the compiled kernel for the last trie (results are copied
    out) and the kernel's leading arguments for the last (trie, lexer) pair."""

    def __init__(self) -> None:
        self.trie: WalkTrie | None = None
        self.lexer: LexerTables | None = None
        self.bufs: tuple[np.ndarray, ...] = ()  # (stack, out)
        self.prefix: tuple[Any, ...] = ()


_buffers = _Buffers()
_EMPTY32 = np.zeros(0, dtype=np.int32)
_EMPTY64 = np.zeros(0, dtype=np.int64)
_INT32 = np.dtype(np.int32)


def _out_len(trie: WalkTrie) -> int:
    """Length of each of the five regions of the kernel's ``out`` buffer."""
    return max(trie.num_nodes, int(trie.ids.shape[0]), 1)


def _prefix(trie: WalkTrie, lexer: LexerTables) -> tuple[Any, ...]:
    """The kernel's arguments that depend only on the trie, the lexer and the thread."""
    buf = _buffers
    if buf.trie is not trie:
        buf.bufs = (np.empty(trie.max_depth + 1, dtype=np.int32), np.empty(5 * _out_len(trie), dtype=np.int32))
        buf.trie = trie
        buf.lexer = None
    if buf.lexer is not lexer:
        stack, out = buf.bufs
        buf.prefix = (
            trie.packed,
            trie.ids,
            lexer.trans,
            lexer.packed,
            lexer.num_states,
            lexer.words,
            stack,
            out,
            _out_len(trie),
            BIG_SUBTREE,
        )
        buf.lexer = lexer
    return buf.prefix


def walk(
    trie: WalkTrie,
    roots: np.ndarray,
    q0: int,
    lexer: LexerTables,
    a_words: np.ndarray,
    width: int,
    *,
    root_bytes: np.ndarray = _EMPTY32,
    use_numba: bool | None = None,
) -> WalkResult:
    """Classify the subtrees of ``roots`` from lexer state ``q0`` (see :func:`walk_kernel`).

    ``a_words``: ``(lexer.words,)`` uint64, the acceptable terminals; ``width``: bitmask words
    (``ceil(V / 32)``); ``root_bytes``: empty or ``(R,)`` int32, the byte of each root.
    ``use_numba=None`` picks the compiled kernel when numba is available; ``False`` runs the same
    function as Python.
    """
    if trie.num_nodes == 0 or roots.size == 0:
        return WalkResult(np.zeros(width, dtype=np.uint32), _EMPTY64, _EMPTY32, 0, _EMPTY32, _EMPTY32, _EMPTY32)
    jit = _jit() if use_numba is None or use_numba else None
    if use_numba and jit is None:
        raise RuntimeError("numba is not available")
    m = _out_len(trie)
    if jit is not None:
        pre = _prefix(trie, lexer)
        words = np.zeros(width, dtype=np.uint32)  # (W,) uint32
        n_ids, n_sub, n_cross, n_skip, n_words = jit[0](
            *pre, roots if roots.dtype is _INT32 else roots.astype(np.int32), root_bytes, q0, a_words, words
        )
        out: Any = pre[7]
    else:
        lx = lexer.as_lists()
        py_words: list[int] = [0] * width
        out = [0] * (5 * m)
        n_ids, n_sub, n_cross, n_skip, n_words = walk_kernel(
            trie.lists[0],
            trie.lists[1],
            lx["trans"],
            lx["packed"],
            lexer.num_states,
            lexer.words,
            [0] * (trie.max_depth + 1),
            out,
            m,
            BIG_SUBTREE,
            roots.tolist(),
            root_bytes.tolist(),
            q0,
            a_words.tolist(),
            py_words,
        )
        words = np.array(py_words, dtype=np.uint32)
    conv = np.array
    return WalkResult(
        words,
        conv(out[4 * m : 4 * m + n_words], dtype=np.int64) if n_words else _EMPTY64,
        conv(out[:n_ids], dtype=np.int32) if n_ids else _EMPTY32,
        n_ids + n_sub,
        conv(out[3 * m : 3 * m + n_skip], dtype=np.int32) if n_skip else _EMPTY32,
        conv(out[m : m + n_cross], dtype=np.int32) if n_cross else _EMPTY32,
        conv(out[2 * m : 2 * m + n_cross], dtype=np.int32) if n_cross else _EMPTY32,
    )


def subtree_words(
    trie: WalkTrie, nodes: np.ndarray, width: int, *, use_numba: bool | None = None
) -> tuple[np.ndarray, int]:
    """(``(W,)`` uint32 bitmask row, token count) of the tokens of the subtrees of ``nodes``."""
    return _subtree_op(trie, nodes, np.zeros(width, dtype=np.uint32), False, use_numba)


def first_byte_complement(trie: WalkTrie, live: np.ndarray, *, use_numba: bool | None = None) -> tuple[np.ndarray, int]:
    """(``(W,)`` uint32 row, token count) of the trie's tokens whose first byte is not in ``live``.

    ``live``: ``(256,)`` bool. Computed as every token minus the subtrees of the live roots (the
    live bytes are usually few), from the per-trie row of all tokens (:func:`vocab_trie`).
    """
    all_words, total = trie.cache["all_words"]
    nodes = trie.roots[live[trie.cache["root_byte"]]]
    if nodes.size == 0:
        return all_words.copy(), total
    words, n = _subtree_op(trie, nodes, all_words.copy(), True, use_numba)
    return words, total - n


def _subtree_op(
    trie: WalkTrie, nodes: np.ndarray, words: np.ndarray, clear: bool, use_numba: bool | None
) -> tuple[np.ndarray, int]:
    if nodes.size == 0:
        return words, 0
    jit = _jit() if use_numba is None or use_numba else None
    if jit is not None:
        n = jit[1](
            trie.end,
            trie.tok_start,
            trie.ids,
            nodes if nodes.dtype == np.int32 else nodes.astype(np.int32),
            words,
            clear,
        )
        return words, int(n)
    py_words = [int(w) for w in words.tolist()]
    n = subtree_kernel(trie.lists[2], trie.lists[3], trie.lists[1], nodes.tolist(), py_words, clear)
    return np.array([w & 0xFFFFFFFF for w in py_words], dtype=np.uint32), n


_ASCII_RANGES = ((0x20, 0x21), (0x23, 0x5B), (0x5D, 0x7E))
_ALNUM_RANGES = ((0x30, 0x39), (0x41, 0x5A), (0x61, 0x7A))


def slice_closure(
    trans: np.ndarray, alive: np.ndarray, *, chars: str = "slice", columns: dict[Any, np.ndarray] | None = None
) -> np.ndarray:
    """``(K+1, S, words)`` uint64: ``G_k(s)``, the terminals alive in every lexer state reachable from
    ``s`` by at most ``k`` slice characters (``K = SLICE_MAX_CHARS``; ``alive`` is ``(S, words)``).

    ``G_0 = alive`` and ``G_k(s) = alive(s) & AND over one-character successors t of G_{k-1}(t)``;
    a multi-byte character is followed byte range by byte range (continuation stages are shared),
    each set of byte ranges reduced to its distinct transition-table columns. ``chars``:
    ``"slice"``, ``"ascii"`` (printable-ASCII slice characters) or ``"alnum"`` (ASCII letters and
    digits). ``columns``: a dict shared by calls on the same ``trans`` (those columns are memoized).
    """
    cols: dict[Any, np.ndarray] = {} if columns is None else columns
    trans_t = cols.get("T")
    if trans_t is None:
        trans_t = cols["T"] = np.ascontiguousarray(trans.T)  # (256, S): one row per byte

    def distinct(ranges: tuple[tuple[int, int], ...]) -> np.ndarray:
        got = cols.get(ranges)
        if got is None:
            first: dict[bytes, int] = {}
            for lo, hi in ranges:
                for b in range(lo, hi + 1):
                    first.setdefault(trans_t[b].tobytes(), b)
            got = cols[ranges] = trans_t[sorted(first.values())]  # (u, S)
        return got

    def step(v: np.ndarray, *ranges: tuple[int, int]) -> np.ndarray:
        """AND over the bytes of ``ranges`` of ``v`` after that byte."""
        return np.bitwise_and.reduce(v[distinct(ranges)], axis=0)  # (S, words)

    def one_char(v: np.ndarray) -> np.ndarray:
        if chars == "alnum":
            return step(v, *_ALNUM_RANGES)
        if chars == "ascii":
            return step(v, *_ASCII_RANGES)
        c1 = step(v, (0x80, 0xBF))
        c2 = step(c1, (0x80, 0xBF))
        c3 = step(c2, (0x80, 0xBF))
        out = step(v, *_ASCII_RANGES) & step(c1, (0xC2, 0xDF))
        out &= step(step(c1, (0xA0, 0xBF)), (0xE0, 0xE0)) & step(c2, (0xE1, 0xEC), (0xEE, 0xEF))
        out &= step(step(c1, (0x80, 0x9F)), (0xED, 0xED))
        out &= step(step(c2, (0x90, 0xBF)), (0xF0, 0xF0)) & step(c3, (0xF1, 0xF3))
        out &= step(step(c2, (0x80, 0x8F)), (0xF4, 0xF4))
        return out

    levels = [alive]
    while len(levels) <= SLICE_MAX_CHARS:
        nxt = alive & one_char(levels[-1])
        if np.array_equal(nxt, levels[-1]):  # a fixpoint: every later level is the same
            levels.extend([nxt] * (SLICE_MAX_CHARS + 1 - len(levels)))
            break
        levels.append(nxt)
    return np.stack(levels)
