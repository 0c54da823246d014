"""DINGO: the exact, optimal regex-constrained commit step for masked diffusion LMs.

At each denoising step the block being decoded is a row per position: ``Fixed(token)`` (committed
earlier), ``MASKED`` (stays ``⊥`` this step) or ``Free(logprobs)`` (committed now). DINGO returns the
assignment of the ``Free`` rows with the largest summed log-probability such that the block, read
after the already finished prefix, can still be completed to a word of the regular language, where
every ``⊥`` may become any real token (a nondeterministic wildcard transition). See
``docs/design/dingo.md``.

Exactness and speed come from one observation *(ours)*: tokens whose columns in the token-level
transition table are identical (same destination from every state) are interchangeable for the DP,
so only the best-scoring token of each such *token class* matters. A ``Free`` row is therefore one
``O(V)`` segmented max over tokens grouped by class, followed by a small max-plus relaxation over
the (state, class) pairs; neither step loops over the vocabulary in Python.

EOS semantics (LLaDA/Dream pad the answer tail with EOS): an extra sink state ``DONE``; an EOS token
moves an accepting state to ``DONE`` and ``DONE`` to itself; no other token leaves ``DONE``.
Feasibility is exact over the *whole* answer: a block may only end in a state from which an accepting
state (or ``DONE``) is reachable in exactly the number of positions that remain after the block.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Union

import numpy as np

DEAD = 0
NEG_INF = -np.inf


@dataclass(frozen=True, slots=True)
class Fixed:
    """A position already committed to ``token``."""

    token: int


@dataclass(frozen=True, slots=True)
class _MaskedType:
    """A position that stays masked (``⊥``) this step: any real token may fill it later."""

    def __repr__(self) -> str:
        return "MASKED"


MASKED = _MaskedType()


@dataclass(frozen=True, slots=True, eq=False)
class Free:
    """A position committed this step; ``scores`` are log-probabilities over the vocabulary.

    ``scores`` is a ``(V,)`` numpy array or torch tensor (any device); ``-inf`` forbids a token.
    """

    scores: Any


Row = Union[Fixed, _MaskedType, Free]


@dataclass(frozen=True, eq=False)
class TokenDFA:
    """A token-level DFA: the input DINGO works on.

    Attributes:
        table: ``(S, V)`` int32; ``table[q, t]`` is the state after token ``t`` from ``q``; state 0 is dead
            (its row is all zeros). EOS and other special tokens should be dead here: EOS is handled
            through ``eos_ids``.
        accepting: ``(S,)`` bool.
        start: the start state.
        eos_ids: tokens that end the output (allowed exactly in accepting states, then repeated).
    """

    table: np.ndarray  # (S, V) int32
    accepting: np.ndarray  # (S,) bool
    start: int
    eos_ids: tuple[int, ...] = ()

    @property
    def num_states(self) -> int:
        return int(self.table.shape[0])

    @property
    def vocab_size(self) -> int:
        return int(self.table.shape[1])

    @staticmethod
    def from_byte_dfa(dfa: Any, vocab: Any) -> TokenDFA:
        """Walk every text token of ``vocab`` through a :class:`structgen.automaton.dfa.ByteDFA`."""
        trans = np.asarray(dfa.transitions)
        n_states = trans.shape[0]
        arr = vocab.arrays()
        table = np.zeros((n_states, vocab.size), dtype=np.int32)
        if len(arr.ids):
            # cur[q, k]: state of sorted token k from state q after its first j bytes
            cur = np.broadcast_to(np.arange(n_states, dtype=np.int32)[:, None], (n_states, len(arr.ids))).copy()
            for col in arr.columns:
                n = len(col)
                cur[:, :n] = trans[cur[:, :n], col[None, :]]
            table[:, arr.ids] = cur
        table[DEAD] = DEAD
        return TokenDFA(
            table=table,
            accepting=np.asarray(dfa.accepting, dtype=bool).copy(),
            start=int(dfa.start),
            eos_ids=tuple(sorted(int(e) for e in vocab.eos_ids)),
        )

    @staticmethod
    def from_engine(engine: Any, vocab: Any) -> TokenDFA:
        """From a compiled regex engine: its token index when it has one, else its byte DFA."""
        index = getattr(engine, "index", None)
        dfa = engine.dfa
        if index is not None and hasattr(index, "token_table"):
            n_states = int(np.asarray(dfa.transitions).shape[0])
            states = [s for s in index.reachable_states() if s != DEAD]
            table = np.zeros((n_states, vocab.size), dtype=np.int32)  # (S, V) int32
            if states:
                table[states] = index.token_table(states)
            eos = [e for e in vocab.eos_ids if e < table.shape[1]]
            table[:, eos] = DEAD  # EOS goes through eos_ids, never through the table
            return TokenDFA(
                table,
                np.asarray(dfa.accepting, dtype=bool).copy(),
                int(dfa.start),
                tuple(sorted(int(e) for e in vocab.eos_ids)),
            )
        return TokenDFA.from_byte_dfa(dfa, vocab)


@dataclass(frozen=True, slots=True)
class DingoResult:
    """Outcome of one DP call.

    ``tokens[i]`` is the committed token of row ``i`` (the row's own token for ``Fixed`` rows, ``None``
    for ``MASKED`` rows); ``score`` the summed log-probability of the ``Free`` rows; ``ok`` is False
    when no valid assignment exists (then ``tokens`` is empty and ``score`` is ``-inf``).
    """

    ok: bool
    tokens: tuple[int | None, ...]
    score: float
    end_states: tuple[int, ...] = ()


@dataclass(eq=False)
class Dingo:
    """Precomputed DINGO tables for one token-level DFA (build once per constraint × vocabulary).

    State ids are those of ``TokenDFA.table`` plus ``done = S`` (after EOS).
    """

    tdfa: TokenDFA
    # built in __post_init__
    num_states: int = field(init=False)  # S + 1 (DONE included)
    done: int = field(init=False)
    dest: np.ndarray = field(init=False, repr=False)  # (S+1, V) int32, EOS and DONE included, dead pruned
    class_of: np.ndarray = field(init=False, repr=False)  # (V,) int32, -1 = dead everywhere
    class_perm: np.ndarray = field(init=False, repr=False)  # (V_live,) token ids grouped by class, ascending
    class_offsets: np.ndarray = field(init=False, repr=False)  # (C+1,)
    class_dest: np.ndarray = field(init=False, repr=False)  # (S+1, C) int32
    mask_succ: np.ndarray = field(init=False, repr=False)  # (S+1, S+1) bool
    accepting: np.ndarray = field(init=False, repr=False)  # (S+1,) bool, DONE included
    _good: list[np.ndarray] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        t = self.tdfa
        table = np.asarray(t.table, dtype=np.int32)
        n, v = table.shape
        self.done = n
        self.num_states = n + 1
        dest = np.zeros((n + 1, v), dtype=np.int32)
        dest[:n] = table
        dest[DEAD] = DEAD
        eos = np.array([e for e in t.eos_ids if 0 <= e < v], dtype=np.int64)
        acc = np.zeros(n + 1, dtype=bool)
        acc[:n] = np.asarray(t.accepting, dtype=bool)
        acc[DEAD] = False
        if len(eos):
            dest[:, eos] = np.where(acc[:, None], n, DEAD)
            dest[n, eos] = n
        # prune states that cannot reach acceptance (token level, EOS included)
        adj = np.zeros((n + 1, n + 1), dtype=bool)
        rows, cols = np.nonzero(dest)
        adj[rows, dest[rows, cols]] = True
        live = acc.copy()
        if len(eos):
            live[n] = True
        while True:
            nxt = live | adj[:, live].any(axis=1)
            nxt[DEAD] = False
            if (nxt == live).all():
                break
            live = nxt
        dest = np.where(live[dest], dest, DEAD).astype(np.int32)
        dest[~live] = DEAD
        self.dest = dest
        self.accepting = acc & live
        self._live = live
        # token classes: identical columns
        cols_view = np.ascontiguousarray(dest.T)  # (V, S+1)
        _, first_idx, inverse = np.unique(
            cols_view.view(np.dtype((np.void, cols_view.dtype.itemsize * cols_view.shape[1]))).ravel(),
            return_index=True,
            return_inverse=True,
        )
        inverse = inverse.ravel()
        # order classes by their lowest token id; drop the all-dead class
        order = np.argsort(first_idx, kind="stable")
        rank = np.empty_like(order)
        rank[order] = np.arange(len(order))
        cls = rank[inverse].astype(np.int64)
        firsts = first_idx[order]
        dead_col = ~dest[:, firsts].any(axis=0)
        keep = np.flatnonzero(~dead_col)
        remap = np.full(len(firsts), -1, dtype=np.int64)
        remap[keep] = np.arange(len(keep))
        cls = remap[cls]
        self.class_of = cls.astype(np.int32)
        live_tokens = np.flatnonzero(cls >= 0)
        perm = live_tokens[np.argsort(cls[live_tokens], kind="stable")]
        self.class_perm = perm.astype(np.int64)
        counts = np.bincount(cls[live_tokens], minlength=len(keep))
        self.class_offsets = np.concatenate([[0], np.cumsum(counts)]).astype(np.int64)
        self.class_dest = np.ascontiguousarray(dest[:, firsts[keep]])  # (S+1, C)
        # (state, class) pairs grouped by (src, dst) edges, then edges grouped by dst
        src, c = np.nonzero(self.class_dest)
        dst = self.class_dest[src, c]
        order = np.lexsort((c, dst, src))
        src, c, dst = src[order], c[order], dst[order]
        self._pair_class = c.astype(np.int64)
        key = src.astype(np.int64) * (n + 1) + dst
        if len(key):
            starts = np.flatnonzero(np.r_[True, key[1:] != key[:-1]])
        else:
            starts = np.zeros(0, dtype=np.int64)
        self._pair_starts = starts
        self._pair_ends = np.r_[starts[1:], len(key)].astype(np.int64)
        self._edge_src = src[starts].astype(np.int64)
        self._edge_dst = dst[starts].astype(np.int64)
        eorder = np.lexsort((self._edge_src, self._edge_dst))
        self._edge_order = eorder
        edst = self._edge_dst[eorder]
        self._edst_starts = np.flatnonzero(np.r_[True, edst[1:] != edst[:-1]]) if len(edst) else np.zeros(0, np.int64)
        self._edst_ids = edst[self._edst_starts] if len(edst) else np.zeros(0, np.int64)
        msucc = np.zeros((n + 1, n + 1), dtype=bool)
        msucc[self._edge_src, self._edge_dst] = True
        self.mask_succ = msucc
        good0 = self.accepting.copy()
        if len(eos):
            good0[n] = True
        self._good = [good0]
        self._torch_cache: dict[Any, Any] = {}

    # ---- queries -----------------------------------------------------------------------------
    @property
    def num_classes(self) -> int:
        return int(self.class_dest.shape[1])

    @property
    def start(self) -> int:
        s = int(self.tdfa.start)
        return s if self._live[s] else DEAD

    def good(self, k: int) -> np.ndarray:
        """``(S+1,)`` bool: states from which acceptance (or DONE) is reachable in exactly ``k`` tokens."""
        while len(self._good) <= k:
            prev = self._good[-1]
            self._good.append(np.asarray(self.mask_succ[:, prev].any(axis=1)))
        return self._good[k]

    def step(self, state: int, token: int) -> int:
        """Deterministic transition (EOS included); 0 when dead."""
        return int(self.dest[state, token])

    def run(self, state: int, tokens: Any) -> int:
        for tok in tokens:
            state = int(self.dest[state, int(tok)])
            if state == DEAD:
                return DEAD
        return state

    def allowed_tokens(self, state: int, remaining: int = 0) -> np.ndarray:
        """(V,) bool: tokens from ``state`` that keep the answer completable with ``remaining`` positions after it."""
        return self.good(remaining)[self.dest[state]] & (self.dest[state] != DEAD)

    # ---- the DP ------------------------------------------------------------------------------
    def class_max(self, scores: Any) -> np.ndarray:
        """``(C,)`` float64: best score per token class (one segmented max over the vocabulary)."""
        if hasattr(scores, "detach"):  # torch tensor: reduce on its device, move only C floats
            import torch

            key = (str(scores.device),)
            idx = self._torch_cache.get(key)
            if idx is None:
                cls = torch.as_tensor(self.class_of.astype(np.int64), device=scores.device)
                cls = torch.where(cls < 0, torch.full_like(cls, self.num_classes), cls)
                idx = cls
                self._torch_cache[key] = idx
            s = scores.detach().reshape(-1)[: idx.shape[0]].to(torch.float32)
            out = torch.full((self.num_classes + 1,), float("-inf"), device=s.device, dtype=torch.float32)
            out.scatter_reduce_(0, idx[: s.shape[0]], s, reduce="amax", include_self=True)
            return out[: self.num_classes].cpu().numpy().astype(np.float64)
        s = np.asarray(scores)
        if self.num_classes == 0:
            return np.zeros(0)
        g = s[self.class_perm]
        return np.maximum.reduceat(g, self.class_offsets[:-1]).astype(np.float64)

    def _free_step(self, w: np.ndarray, cmax: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Relax one Free row: returns (new W, per-edge best class score)."""
        n = self.num_states
        if len(self._pair_class) == 0:
            return np.full(n, NEG_INF), np.zeros(0)
        edge_val = np.maximum.reduceat(cmax[self._pair_class], self._pair_starts)  # (E,)
        cand = w[self._edge_src] + edge_val  # (E,)
        cand_sorted = cand[self._edge_order]
        best = np.maximum.reduceat(cand_sorted, self._edst_starts)
        out = np.full(n, NEG_INF)
        out[self._edst_ids] = best
        out[DEAD] = NEG_INF
        return out, edge_val

    def _masked_step(self, w: np.ndarray) -> np.ndarray:
        fin = np.flatnonzero(w > NEG_INF)
        if len(fin) == 0:
            return np.full(self.num_states, NEG_INF)
        m = np.where(self.mask_succ[fin], w[fin][:, None], NEG_INF)
        out = m.max(axis=0)
        out[DEAD] = NEG_INF
        return out

    def _fixed_step(self, w: np.ndarray, token: int) -> np.ndarray:
        out = np.full(self.num_states, NEG_INF)
        if not 0 <= token < self.dest.shape[1]:
            return out
        col = self.dest[:, token]
        fin = np.flatnonzero((w > NEG_INF) & (col != DEAD))
        if len(fin):
            np.maximum.at(out, col[fin], w[fin])
        return out

    def decode_block(self, start: int | np.ndarray, rows: list[Row], *, remaining: int = 0) -> DingoResult:
        """The DP for one denoising step.

        Args:
            start: the state after the finished prefix (or a ``(S+1,)`` bool set of possible states).
            rows: one row per block position, in order.
            remaining: positions of the answer after this block (they may be filled arbitrarily later);
                0 for the final block, which must then end in an accepting state or after EOS.
        """
        n = self.num_states
        w = np.full(n, NEG_INF)
        if isinstance(start, np.ndarray):
            w[np.asarray(start, dtype=bool)] = 0.0
        else:
            w[int(start)] = 0.0
        w[DEAD] = NEG_INF
        w[~self._live] = NEG_INF
        ws = [w]
        aux: list[Any] = []
        for row in rows:
            if isinstance(row, Fixed):
                w = self._fixed_step(w, int(row.token))
                aux.append(None)
            elif isinstance(row, Free):
                cmax = self.class_max(row.scores)
                w, edge_val = self._free_step(w, cmax)
                aux.append((cmax, edge_val))
            elif row is MASKED or isinstance(row, _MaskedType):
                w = self._masked_step(w)
                aux.append(None)
            else:
                raise TypeError(f"unknown row {row!r}")
            ws.append(w)
        final = np.where(self.good(remaining), w, NEG_INF)
        q = int(np.argmax(final))
        if not final[q] > NEG_INF:
            return DingoResult(False, (), float(NEG_INF))
        score = float(final[q])
        # traceback (lowest ids on ties)
        tokens: list[int | None] = [None] * len(rows)
        states = [0] * (len(rows) + 1)
        states[-1] = q
        for i in range(len(rows) - 1, -1, -1):
            row = rows[i]
            prev = ws[i]
            target = ws[i + 1][q]
            if isinstance(row, Fixed):
                col = self.dest[:, int(row.token)]
                cand = np.where(col == q, prev, NEG_INF)
                qp = int(np.argmax(cand))
                tokens[i] = int(row.token)
            elif isinstance(row, Free):
                cmax, edge_val = aux[i]
                eids = np.flatnonzero(self._edge_dst == q)
                vals = prev[self._edge_src[eids]] + edge_val[eids]
                e = int(eids[int(np.argmax(vals))])
                qp = int(self._edge_src[e])
                pcls = self._pair_class[self._pair_starts[e] : self._pair_ends[e]]
                c = int(pcls[int(np.argmax(cmax[pcls]))])
                toks = self.class_perm[self.class_offsets[c] : self.class_offsets[c + 1]]
                sc = row.scores
                if hasattr(sc, "detach"):
                    sv = sc.detach().reshape(-1)[toks.tolist()].float().cpu().numpy()
                else:
                    sv = np.asarray(sc)[toks]
                tokens[i] = int(toks[int(np.argmax(sv))])
            else:
                cand = np.where(self.mask_succ[:, q], prev, NEG_INF)
                qp = int(np.argmax(cand))
            del target
            states[i] = qp
            q = qp
        return DingoResult(True, tuple(tokens), score, tuple(states))


def greedy_block(d: Dingo, start: int, rows: list[Row], *, remaining: int = 0, live_only: bool = True) -> DingoResult:
    """Baseline *greedy masking*: commit Free rows left to right, each the best token that keeps the
    text so far a valid prefix (masked positions to its left as wildcards), blind to the scores and
    committed tokens on its right. With ``live_only=False`` each choice must also leave the answer
    completable in the exact number of positions after it. May fail (``ok=False``) where DINGO succeeds."""
    n = d.num_states
    cur = np.zeros(n, dtype=bool)
    cur[start] = True
    cur[DEAD] = False
    tokens: list[int | None] = []
    score = 0.0
    for i, row in enumerate(rows):
        later = len(rows) - 1 - i + remaining
        good = d._live if (live_only and i < len(rows) - 1) else d.good(later)
        if isinstance(row, Fixed):
            nxt = np.zeros(n, dtype=bool)
            dst = d.dest[cur, int(row.token)]
            nxt[dst[dst != DEAD]] = True
            tokens.append(int(row.token))
        elif isinstance(row, Free):
            s = np.asarray(
                row.scores.detach().float().cpu().numpy() if hasattr(row.scores, "detach") else row.scores,
                dtype=np.float64,
            )
            ok = np.zeros(s.shape[0], dtype=bool)
            for q in np.flatnonzero(cur):
                ok |= good[d.dest[q]] & (d.dest[q] != DEAD)
            masked = np.where(ok, s, NEG_INF)
            t = int(np.argmax(masked))
            if not masked[t] > NEG_INF:
                return DingoResult(False, (), float(NEG_INF))
            score += float(s[t])
            nxt = np.zeros(n, dtype=bool)
            dst = d.dest[cur, t]
            nxt[dst[dst != DEAD]] = True
            tokens.append(t)
        else:
            nxt = np.asarray(d.mask_succ[cur].any(axis=0))
            tokens.append(None)
        cur = nxt & good
        cur[DEAD] = False
        if not cur.any():
            return DingoResult(False, (), float(NEG_INF))
    return DingoResult(True, tuple(tokens), score)
