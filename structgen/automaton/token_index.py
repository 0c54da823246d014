"""Byte DFA × vocabulary: per-state token transitions and packed masks, computed lazily and cached.

For a DFA state ``s`` the *token row* is ``next[t] = δ*(s, bytes(t))`` for every token id ``t``
(0 = dead; special, empty and padding ids are always 0) and the *mask* packs ``next != 0`` into the
one bitmask layout (int32 words, bit ``t % 32`` of word ``t // 32``).

Rows are computed with numpy over a **token trie stored level by level**: every distinct token
prefix is one node, so the walk costs one gather per trie node (about 0.45 nodes per vocabulary
byte on Llama-3) instead of one per token byte, and it stops as soon as a whole level is dead.
The trie is folded once per DFA onto the DFA's byte classes (see :class:`TokenIndex`), and the
result is spread to token ids through per-node id lists when few tokens are allowed (or few
rejected). Masks are kept in an LRU cache bounded by ``Limits.max_cached_states``; full rows (4
bytes per token) in a smaller one.
"""

from __future__ import annotations

import threading
from collections import OrderedDict, deque
from dataclasses import dataclass
from typing import Any

import numpy as np

from structgen.automaton.dfa import DEAD, ByteDFA
from structgen.limits import DEFAULT_LIMITS, Limits
from structgen.vocab.vocabulary import Vocabulary

__all__ = ["TokenTrie", "TokenIndex"]

_ROW_CACHE = 64  # full next-state rows kept (each is 4 * V bytes)


@dataclass(frozen=True, eq=False)
class TokenTrie:
    """The text tokens of a vocabulary as a trie stored level by level (numpy arrays).

    Nodes are numbered level by level (depth 0 = first byte); ``level_offsets[d]:level_offsets[d+1]``
    are the nodes of depth ``d``. ``parent[n]`` is the parent node (unused at depth 0), ``byte[n]``
    the byte on the edge into ``n``. ``token_ids[k]`` ends at node ``token_node[k]``.
    """

    level_offsets: tuple[int, ...]
    parent: np.ndarray  # (num_nodes,) int64
    byte: np.ndarray  # (num_nodes,) int64
    token_ids: np.ndarray  # (N,) int64
    token_node: np.ndarray  # (N,) int64

    @property
    def num_nodes(self) -> int:
        return int(self.level_offsets[-1])

    @staticmethod
    def of(vocab: Vocabulary) -> TokenTrie:
        """Build (once per vocabulary, cached on it)."""
        got = vocab._cache.get("token_trie")
        if got is None:
            got = TokenTrie._build(vocab)
            vocab._cache["token_trie"] = got
        return got

    @staticmethod
    def _build(vocab: Vocabulary) -> TokenTrie:
        ids = vocab.text_token_ids()
        toks = [vocab.token_bytes[int(i)] for i in ids]
        order = sorted(range(len(toks)), key=toks.__getitem__)
        ids = ids[order].astype(np.int64)
        toks = [toks[i] for i in order]
        n = len(toks)
        if n == 0:
            e = np.zeros(0, dtype=np.int64)
            return TokenTrie((0,), e, e, e, e)
        lengths = np.array([len(t) for t in toks], dtype=np.int64)
        max_len = int(lengths.max())
        buf = np.zeros((n, max_len), dtype=np.uint8)  # (N, L) sorted token bytes, zero padded
        flat = np.frombuffer(b"".join(toks), dtype=np.uint8)
        rows = np.repeat(np.arange(n), lengths)
        cols = np.arange(len(flat)) - np.repeat(np.cumsum(lengths) - lengths, lengths)
        buf[rows, cols] = flat
        # lcp[k] = common prefix length of sorted tokens k-1 and k (lcp[0] = 0)
        lcp = np.zeros(n, dtype=np.int64)
        if n > 1:
            neq = buf[1:] != buf[:-1]
            first_diff = np.where(neq.any(axis=1), neq.argmax(axis=1), max_len)
            lcp[1:] = np.minimum(first_diff, np.minimum(lengths[1:], lengths[:-1]))
        offsets = [0]
        parents: list[np.ndarray] = []
        bytes_: list[np.ndarray] = []
        token_node = np.zeros(n, dtype=np.int64)
        prev_node_of_token = np.zeros(n, dtype=np.int64)  # global node at depth d-1 of each token
        for d in range(max_len):
            has = np.flatnonzero(lengths > d)  # sorted positions with a byte at depth d
            new = lcp[has] <= d
            new[0] = True
            local = np.cumsum(new) - 1  # node index within this level, per token in `has`
            first_tokens = has[new]
            base = offsets[-1]
            parents.append(prev_node_of_token[first_tokens] if d else np.zeros(len(first_tokens), dtype=np.int64))
            bytes_.append(buf[first_tokens, d].astype(np.int64))
            node_of = base + local
            prev_node_of_token[has] = node_of
            ends = lengths[has] == d + 1
            token_node[has[ends]] = node_of[ends]
            offsets.append(base + len(first_tokens))
        return TokenTrie(
            level_offsets=tuple(offsets),
            parent=np.concatenate(parents),
            byte=np.concatenate(bytes_),
            token_ids=ids,
            token_node=token_node,
        )


class TokenIndex:
    """Lazy per-state token rows and masks of one ByteDFA over one vocabulary (thread-safe).

    At construction the vocabulary trie is folded onto the DFA's byte classes (bytes whose columns
    of the transition table are equal): tokens that agree class by class behave identically in
    every state, so the per-state walk runs over this much smaller *class trie* (a few thousand
    nodes for typical regexes instead of ~275k for Llama-3), then one gather spreads the result to
    all token ids.
    """

    def __init__(self, dfa: ByteDFA, vocab: Vocabulary, limits: Limits | None = None) -> None:
        self.dfa = dfa
        self.vocab = vocab
        self.limits = limits or DEFAULT_LIMITS
        self.width = (vocab.size + 31) // 32
        trie = TokenTrie.of(vocab)
        trans = np.ascontiguousarray(dfa.transitions, dtype=np.int32)  # (S, 256)
        _, first_byte, byte_class = np.unique(trans.T, axis=0, return_index=True, return_inverse=True)
        byte_class = byte_class.reshape(-1).astype(np.int64)
        num_classes = len(first_byte)
        self.num_classes = num_classes
        self._trans_cls: Any = np.ascontiguousarray(trans[:, first_byte]).ravel()  # (S*C,) int32
        wide = trans.shape[0] * num_classes >= 2**31
        idx_dtype = np.int64 if wide else np.int32
        # fold the byte trie onto classes, level by level
        offs = trie.level_offsets
        node_to_c = np.zeros(trie.num_nodes, dtype=np.int64)
        c_offsets = [0]
        c_parent: list[np.ndarray] = []
        c_class: list[np.ndarray] = []
        for d in range(len(offs) - 1):
            lo, hi = offs[d], offs[d + 1]
            cls = byte_class[trie.byte[lo:hi]]
            if d == 0:
                key = cls
            else:
                key = node_to_c[trie.parent[lo:hi]] * num_classes + cls
            uniq, inv = np.unique(key, return_inverse=True)
            base = c_offsets[-1]
            node_to_c[lo:hi] = base + inv.reshape(-1)
            c_parent.append(uniq // num_classes if d else np.zeros(len(uniq), dtype=np.int64))
            c_class.append((uniq % num_classes).astype(idx_dtype))
            c_offsets.append(base + len(uniq))
        self._c_offsets = tuple(c_offsets)
        self._c_parent = np.concatenate(c_parent) if c_parent else np.zeros(0, dtype=np.int64)
        self._c_class: Any = np.concatenate(c_class) if c_class else np.zeros(0, dtype=idx_dtype)
        self._idx_dtype = idx_dtype
        # per level (depth >= 1): (lo, hi, parent nodes, class ids), sliced once
        self._levels = [
            (
                c_offsets[d],
                c_offsets[d + 1],
                self._c_parent[c_offsets[d] : c_offsets[d + 1]],
                self._c_class[c_offsets[d] : c_offsets[d + 1]],
            )
            for d in range(1, len(c_offsets) - 1)
        ]
        num_c = c_offsets[-1]
        # per token id: its class-trie node; ids that are never text point at slot num_c (always 0)
        by_id = np.full(vocab.size, num_c, dtype=np.int32 if num_c < 2**31 - 1 else np.int64)
        by_id[trie.token_ids] = node_to_c[trie.token_node]
        self._cnode_by_id: Any = by_id  # (V,) class-trie node of every token id
        # token ids grouped by class-trie node (CSR), for states that allow few tokens
        ids_sorted = np.argsort(by_id, kind="stable")
        self._ids_by_cnode: Any = ids_sorted.astype(np.int64)  # (V,) token ids ordered by node
        self._cnode_counts: Any = np.bincount(by_id, minlength=num_c + 1).astype(np.int64)  # (num_c + 1,)
        self._cnode_starts: Any = np.concatenate(([0], np.cumsum(self._cnode_counts)))  # (num_c + 2,)
        self._is_text: Any = by_id != num_c  # (V,) bool
        self._num_text = int(self._is_text.sum())
        self._padded_width = self.width * 32
        self._masks: OrderedDict[int, np.ndarray] = OrderedDict()
        self._rows: OrderedDict[int, np.ndarray] = OrderedDict()
        self._lock = threading.Lock()
        self._lru_bump_from = self.limits.max_cached_states // 2

    @property
    def num_class_nodes(self) -> int:
        return int(self._c_offsets[-1])

    # ---- core walk -------------------------------------------------------------------------
    def _node_states(self, state: int) -> np.ndarray:
        """``(num_class_nodes + 1,)`` int32: state after each class-trie node from ``state``; last = 0."""
        offs = self._c_offsets
        flat = np.zeros(offs[-1] + 1, dtype=np.int32)
        if state == DEAD or offs[-1] == 0:
            return flat
        c = self.num_classes
        tf = self._trans_cls
        np.take(tf, self._c_class[: offs[1]] + state * c, out=flat[: offs[1]])
        wide = self._idx_dtype is not np.int32
        for d, (lo, hi, parent, cls) in enumerate(self._levels, start=1):
            ps = flat.take(parent)
            if (d <= 8 or d % 8 == 0) and not ps.any():
                break  # the whole level is dead, so is everything below
            if wide:
                ps = ps.astype(np.int64)
            ps *= c
            ps += cls
            tf.take(ps, out=flat[lo:hi])
        return flat

    def _compute_row(self, state: int) -> np.ndarray:
        return np.take(self._node_states(state), self._cnode_by_id, mode="wrap")  # (V,) int32

    @staticmethod
    def _pack(row: np.ndarray, width: int) -> np.ndarray:
        allowed = np.zeros(width * 32, dtype=bool)
        allowed[: row.shape[0]] = row != 0
        words = np.packbits(allowed, bitorder="little").view(np.int32)  # (W,) int32
        words.setflags(write=False)
        return words

    # ---- public -----------------------------------------------------------------------------
    def next_states(self, state: int) -> np.ndarray:
        """Read-only ``(V,)`` int32: the state after each token from ``state`` (0 = not allowed)."""
        state = int(state)
        with self._lock:
            row = self._rows.get(state)
            if row is not None:
                self._rows.move_to_end(state)
                return row
        row = self._compute_row(state)
        row.setflags(write=False)
        words = self._pack(row, self.width)
        with self._lock:
            self._rows[state] = row
            while len(self._rows) > min(_ROW_CACHE, self.limits.max_cached_states):
                self._rows.popitem(last=False)
            self._store_mask(state, words)
        return row

    def _store_mask(self, state: int, words: np.ndarray) -> None:
        self._masks[state] = words
        self._masks.move_to_end(state)
        while len(self._masks) > self.limits.max_cached_states:
            self._masks.popitem(last=False)

    def mask(self, state: int) -> np.ndarray:
        """Read-only ``(ceil(V/32),)`` int32 packed mask of the tokens allowed from ``state``."""
        masks = self._masks
        words = masks.get(state)
        if words is not None:
            if len(masks) >= self._lru_bump_from:  # recency only matters once eviction is near
                with self._lock:
                    if state in masks:
                        masks.move_to_end(state)
            return words
        live = self._node_states(int(state)) != 0  # (num_class_nodes + 1,) bool
        allowed = np.zeros(self._padded_width, dtype=bool)
        nodes = np.flatnonzero(live)
        counts = self._cnode_counts[nodes]
        total = int(counts.sum())
        if total * 8 < self.vocab.size:
            # few tokens allowed: set them from the per-node id lists instead of a gather over V
            allowed[self._ids_of_nodes(nodes, counts, total)] = True
        elif (self._num_text - total) * 8 < self.vocab.size:
            # few text tokens rejected: start from all text tokens and clear those of dead nodes
            allowed[: self.vocab.size] = self._is_text
            dead = np.flatnonzero(~live[:-1])
            dcounts = self._cnode_counts[dead]
            allowed[self._ids_of_nodes(dead, dcounts, int(dcounts.sum()))] = False
        else:
            np.take(live, self._cnode_by_id, out=allowed[: self.vocab.size], mode="wrap")
        words = np.packbits(allowed, bitorder="little").view(np.int32)  # (W,) int32
        words.setflags(write=False)
        with self._lock:
            self._store_mask(int(state), words)
        return words

    def _ids_of_nodes(self, nodes: np.ndarray, counts: np.ndarray, total: int) -> np.ndarray:
        """Token ids of the given class-trie nodes (``counts[i]`` tokens each, ``total`` in all)."""
        if total == 0:
            return np.zeros(0, dtype=np.int64)
        firsts = self._cnode_starts[nodes]
        pos = np.repeat(firsts - np.cumsum(counts) + counts, counts) + np.arange(total)
        return self._ids_by_cnode[pos]

    def cached_mask(self, state: int) -> np.ndarray | None:
        """The mask if it is already cached (no computation)."""
        return self._masks.get(state)

    def reachable_states(self, limit: int | None = None) -> tuple[int, ...]:
        """DFA states reachable from the start by whole tokens (breadth-first, start first)."""
        start = self.dfa.start
        if start == DEAD:
            return ()
        bound = limit if limit is not None else self.limits.max_dfa_states
        seen = {start}
        order = [start]
        queue = deque([start])
        while queue:
            s = queue.popleft()
            row = self.next_states(s) if len(order) <= _ROW_CACHE else self._compute_row(s)
            for t in np.unique(row).tolist():
                if t != DEAD and t not in seen:
                    seen.add(t)
                    order.append(t)
                    queue.append(t)
                    if len(order) > bound:
                        from structgen.errors import LimitExceeded

                        raise LimitExceeded("max_dfa_states", len(order), bound, "enumerating token-reachable states")
        return tuple(order)

    def token_table(self, states: list[int] | tuple[int, ...] | np.ndarray) -> np.ndarray:
        """``(len(states), V)`` int32: ``table[i, t]`` = state after token ``t`` from ``states[i]``."""
        states = [int(s) for s in states]
        out = np.zeros((len(states), self.vocab.size), dtype=np.int32)  # (K, V) int32
        for i, s in enumerate(states):
            cached = self._rows.get(s)
            out[i] = cached if cached is not None else self._compute_row(s)
        return out
