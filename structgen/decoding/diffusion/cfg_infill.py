"""CFG infilling: can a partially unmasked output still be completed to a word of the grammar?

Two checks, both CFG ∩ regular-language emptiness (Mündler et al., arXiv 2508.10111):

- :meth:`InfillChecker.check` (the decoding loop's) is **exact over token slots**: every masked position
  holds exactly one token of the vocabulary, and the masked positions after the last committed text
  token may instead be EOS padding (EOS pads the rest of the answer). The completion language is built
  over tokens: a committed token is its bytes, a masked slot the union over the filler tokens.
  *(ours)* That union is summarized once per vocabulary through the grammar's lexer: a token read
  from an open-lexeme state ``s`` deterministically closes a sequence of lexemes and leaves state
  ``s'`` (longest match), so a slot is a "gadget" of edges ``s -(lexemes)-> s'`` (a few dozen outcomes
  per state instead of the vocabulary; tokens with the same lexer byte-class string are one filler).
  The slots up to the last committed token form a layered graph ``(slot, lexer state)`` parsed by an
  Earley recogniser over a DAG of positions; the trailing EOS-paddable slots are handled by a
  Dijkstra over (Earley item, gadget node) that jumps over whole grammar symbols with a precomputed
  table of min slot counts per symbol and gadget node pair (min-plus fixpoint, once per grammar x
  vocabulary), bounded by the number of trailing slots. Exact: ``check`` is true iff some filling
  parses, so a loop that commits only accepted tokens never gets stuck.
- :meth:`InfillChecker.check_segments` / :meth:`check_text` treat a gap as ``Σ*`` (any byte string:
  the reference implementation's over-approximation, right for fill-in-the-middle with unbounded
  gaps): ``C = w0 Σ* w1 Σ* … wk``; terminal relations over byte positions (a lexeme may end at ``j``
  only if it is a maximal munch when the next byte is fixed), ignored terminals closed into ``J``,
  then Earley over positions with any terminal scannable in place at a gap.

Lexing is longest match with terminal priorities (the lexeme's terminal is its highest-priority
accepting terminal); cost of the exact check grows with the number of masked slots *before* the last
committed token (layered positions), so it suits small blocks; the trailing slots are cheap.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from structgen.automaton.dfa import DEAD

_TOP = -1  # synthetic rule index for S' -> S
_Item = tuple[int, int, int]  # (rule, dot, origin)


@dataclass(frozen=True)
class _Rule:
    lhs: int
    rhs: tuple[int, ...]  # symbol ids: terminals are < n_terms, nonterminals >= n_terms


class _Chart:
    """Earley item sets over positions ``0..n_pos-1`` (index order is topological); positions not
    ``alive`` take no items."""

    __slots__ = ("sets", "agenda", "done_here", "waiting", "alive")

    def __init__(self, n_pos: int, alive: list[bool] | None = None) -> None:
        self.sets: list[set[_Item]] = [set() for _ in range(n_pos)]
        self.agenda: list[list[_Item]] = [[] for _ in range(n_pos)]
        self.done_here: list[dict[int, set[int]]] = [dict() for _ in range(n_pos)]  # completed X with origin o at i
        self.waiting: list[dict[int, list[_Item]]] = [dict() for _ in range(n_pos)]
        self.alive = alive
        self.add(0, (_TOP, 0, 0))

    def add(self, i: int, item: _Item) -> None:
        if (self.alive is None or self.alive[i]) and item not in self.sets[i]:
            self.sets[i].add(item)
            self.agenda[i].append(item)


@dataclass(eq=False)
class InfillChecker:
    """CFG ∩ completion-language emptiness checks for one grammar × vocabulary."""

    grammar: Any  # structgen.ir.grammar.Grammar
    vocab: Any = None
    checks: int = 0
    _cache: dict[Any, bool] = field(default_factory=dict, repr=False)

    def __post_init__(self) -> None:
        from structgen.automaton.lexer import build_lexer_dfa

        g = self.grammar
        lex = build_lexer_dfa(g.terminals)
        self.lexer = lex
        self.trans = np.asarray(lex.dfa.transitions)  # (S, 256) int32
        self.lex_start = int(lex.dfa.start)
        n_s = self.trans.shape[0]
        names = list(lex.names)
        self.term_names = names
        prio = [t.priority for t in g.terminals]
        # per lexer state: the terminals a lexeme ending here counts as (max priority among accepted)
        emit = np.zeros((n_s, len(names)), dtype=bool)
        for s in range(n_s):
            bits = int(lex.accepts[s])
            acc = [k for k in range(len(names)) if bits >> k & 1]
            if acc:
                top = max(prio[k] for k in acc)
                for k in acc:
                    if prio[k] == top:
                        emit[s, k] = True
        emit[self.lex_start] = False  # lexemes are non-empty
        self.emit = emit
        # reach[s, s']: s' reachable from s by some byte string (reflexive)
        adj = np.zeros((n_s, n_s), dtype=bool)
        for s in range(1, n_s):
            adj[s, self.trans[s][self.trans[s] != DEAD]] = True
        reach = np.eye(n_s, dtype=bool) | adj
        while True:
            nxt = reach | ((reach.astype(np.float32) @ reach.astype(np.float32)) > 0)
            if (nxt == reach).all():
                break
            reach = nxt
        reach[DEAD] = False
        reach[:, DEAD] = False
        self.reach = reach
        self.can_continue = self.trans != DEAD  # (S, 256)
        self.nonempty_terms = emit[reach[self.lex_start]].any(axis=0)  # terminals with a non-empty lexeme
        ignore = set(g.ignore)
        self.ignore_ids = [k for k, n in enumerate(names) if n in ignore]
        # grammar: symbols
        n_t = len(names)
        nts = sorted({r.lhs for r in g.rules} | {s.name for r in g.rules for s in r.rhs if not s.is_terminal})
        self.nt_id = {n: n_t + i for i, n in enumerate(nts)}
        tid = {n: k for k, n in enumerate(names)}
        rules = []
        for r in g.rules:
            rhs = tuple(tid[s.name] if s.is_terminal else self.nt_id[s.name] for s in r.rhs)
            rules.append(_Rule(self.nt_id[r.lhs], rhs))
        self.n_terms = n_t
        self.start_sym = self.nt_id[g.start]
        self.rules = rules
        self.by_lhs: dict[int, list[int]] = {}
        for i, r in enumerate(rules):
            self.by_lhs.setdefault(r.lhs, []).append(i)
        nullable: set[int] = set()
        changed = True
        while changed:
            changed = False
            for r in rules:
                if r.lhs not in nullable and all(s in nullable for s in r.rhs):
                    nullable.add(r.lhs)
                    changed = True
        self.nullable = nullable

    @staticmethod
    def from_lark(text: str, vocab: Any = None, start: str = "start") -> InfillChecker:
        from structgen.frontends.lark_frontend import grammar_from_lark

        return InfillChecker(grammar_from_lark(text, start=start), vocab)

    # ---- building C from tokens ----------------------------------------------------------------
    def segments_of(self, tokens: list[int | None]) -> list[bytes | None] | None:
        """Token ids (None = masked) -> words and gaps; None when a non-EOS special token occurs."""
        vocab = self.vocab
        segs: list[bytes | None] = []
        cur = b""
        for t in tokens:
            if t is None:
                if cur:
                    segs.append(cur)
                    cur = b""
                if not segs or segs[-1] is not None:
                    segs.append(None)
                continue
            if t in vocab.eos_ids:
                break
            if t in vocab.special_ids or not 0 <= t < vocab.num_tokens:
                return None
            cur += vocab.token_bytes[t]
        if cur:
            segs.append(cur)
        return segs

    def _memo(self, key: Any, compute: Callable[[], bool]) -> bool:
        """``compute()`` once per ``key`` (counted in ``checks``); the cache is dropped past 50k entries."""
        hit = self._cache.get(key)
        if hit is not None:
            return hit
        self.checks += 1
        ans = compute()
        if len(self._cache) > 50_000:
            self._cache.clear()
        self._cache[key] = ans
        return ans

    def _predict_complete(self, chart: _Chart, i: int) -> Iterator[tuple[int, _Item]]:
        """Close position ``i`` of ``chart`` under prediction and completion; yields ``(terminal, item)``
        for each item waiting on a terminal (the caller scans it; items it adds at ``i`` are closed too)."""
        rules, n_t = self.rules, self.n_terms
        done_here, waiting, add = chart.done_here[i], chart.waiting, chart.add
        ag = chart.agenda[i]
        while ag:
            item = ag.pop()
            r, dot, o = item
            rhs = (self.start_sym,) if r == _TOP else rules[r].rhs
            if dot == len(rhs):
                if r == _TOP:
                    continue
                lhs = rules[r].lhs
                dh = done_here.setdefault(lhs, set())
                if o in dh:
                    continue
                dh.add(o)
                for r2, d2, o2 in list(waiting[o].get(lhs, ())):
                    add(i, (r2, d2 + 1, o2))
                continue
            sym = rhs[dot]
            if sym < n_t:
                yield sym, item
                continue
            waiting[i].setdefault(sym, []).append(item)
            if i in done_here.get(sym, ()):
                add(i, (r, dot + 1, o))
            if sym in self.nullable:
                add(i, (r, dot + 1, o))
            for ri in self.by_lhs.get(sym, ()):
                add(i, (ri, 0, i))

    def check(self, tokens: list[int | None], complete: bool = False) -> bool:
        """Whether the answer (one entry per position; None = masked slot) can be completed exactly.

        Exact token-level semantics (the loop's): every masked slot holds exactly one filler token
        (any non-special token of the vocabulary), except that the masked slots after the last
        committed text token may be EOS padding (EOS pads everything after it). The text is the
        concatenation of the tokens before the first EOS. A committed text token after an EOS, or a
        non-EOS special token, makes the answer invalid.
        """
        toks = list(tokens)
        if complete and any(t is None for t in toks):
            return False
        return self._memo(("slots", tuple(toks)), lambda: self._check_slots(toks))

    # ---- exact token-slot check ------------------------------------------------------------------
    def _init_slots(self) -> None:
        """Per vocabulary: byte classes of the lexer and the filler tokens deduplicated by class string."""
        vocab = self.vocab
        n_s = self.trans.shape[0]
        self.nolex = n_s  # "no lexeme open" (a copy of the start row nothing else enters)
        self.row = np.vstack([self.trans, self.trans[self.lex_start][None]])  # (S+1, 256)
        _, byte_cls = np.unique(self.row.T, axis=0, return_inverse=True)
        byte_cls = byte_cls.reshape(-1)
        rep: dict[int, int] = {}
        for b in range(256):
            rep.setdefault(int(byte_cls[b]), b)
        fill: dict[bytes, None] = {}
        for t in range(vocab.num_tokens):
            if t in vocab.special_ids or t in vocab.eos_ids:
                continue
            tb = vocab.token_bytes[t]
            fill[bytes(rep[int(byte_cls[b])] for b in tb)] = None  # same class string = same lexer effect
        self.fillers = list(fill)
        self.emit_id: dict[tuple[int, ...], int] = {}
        self.emit_sets: list[tuple[int, ...]] = []
        self._outcomes: dict[int, list[tuple[tuple[int, ...], int]]] = {}
        self._tok_out: dict[tuple[int, int], Any] = {}
        ign = set(self.ignore_ids)
        self._emit_ign: list[bool] = []
        self._emit_term: list[tuple[int, ...]] = []
        self._ign = ign

    def _set_id(self, s: int) -> int:
        key = tuple(np.flatnonzero(self.emit[s]).tolist())
        i = self.emit_id.get(key)
        if i is None:
            i = len(self.emit_sets)
            self.emit_id[key] = i
            self.emit_sets.append(key)
            self._emit_ign.append(any(k in self._ign for k in key))
            self._emit_term.append(tuple(k for k in key if k not in self._ign))
        return i

    def _run(self, s: int, data: bytes) -> tuple[tuple[int, ...], int] | None:
        """Lexer transducer: from open-lexeme state ``s``, read ``data``; (emitted lexeme set ids, new state)."""
        row, emit, start = self.row, self.emit, self.lex_start
        out: list[int] = []
        cur = s
        for b in data:
            n = int(row[cur, b])
            if n != DEAD:
                cur = n
                continue
            if cur == self.nolex or not emit[cur].any():
                return None
            out.append(self._set_id(cur))
            n = int(row[start, b])
            if n == DEAD:
                return None
            cur = n
        return tuple(out), cur

    def _outcomes_of(self, s: int) -> list[tuple[tuple[int, ...], int]]:
        o = self._outcomes.get(s)
        if o is None:
            res = {r for r in (self._run(s, f) for f in self.fillers) if r is not None}
            o = sorted(res)
            self._outcomes[s] = o
        return o

    def _token_out(self, s: int, t: int) -> tuple[tuple[int, ...], int] | None:
        key = (s, t)
        if key not in self._tok_out:
            self._tok_out[key] = self._run(s, self.vocab.token_bytes[t])
        return self._tok_out[key]

    def _check_slots(self, toks: list[int | None]) -> bool:
        vocab = self.vocab
        if vocab is None:
            raise TypeError("InfillChecker.check needs a vocabulary; use check_text for text parts")
        if not hasattr(self, "fillers"):
            self._init_slots()
        end = len(toks)
        for i, t in enumerate(toks):
            if t is not None and t in vocab.eos_ids:
                end = i
                break
        if any(t is not None and t not in vocab.eos_ids for t in toks[end:]):
            return False  # text committed after EOS
        for t in toks[:end]:
            if t is not None and (t in vocab.special_ids or not 0 <= t < vocab.num_tokens):
                return False
        last = max((i for i in range(end) if toks[i] is not None), default=-1)
        first_final = last + 1  # EOS padding may start at any slot after the last committed token
        # ---- layered graph: node key = (layer k, 0, lexer state) or an intermediate (k, 1, (rest, state))
        # inside slot k; edge label = emitted lexeme-set id or -1 (epsilon)
        layer = {self.nolex}
        pending: list[tuple[Any, int, Any]] = []
        for k in range(first_final):
            t = toks[k]
            nxt: set[int] = set()
            for st in layer:
                outs = self._outcomes_of(st) if t is None else [o for o in [self._token_out(st, t)] if o is not None]
                src = (k, 0, st)
                for w, s2 in outs:
                    nxt.add(s2)
                    prev = src
                    for j, lab in enumerate(w[:-1]):
                        mid = (k, 1, (w[j + 1 :], s2))
                        pending.append((prev, lab, mid))
                        prev = mid
                    pending.append((prev, w[-1] if w else -1, (k + 1, 0, s2)))
            layer = nxt
            if not layer:
                return False

        def topo(key: Any) -> tuple[int, int, int]:
            k, kind, x = key
            return (k, kind, -len(x[0]) if kind else 0)  # intermediates: longer rest first

        all_keys = sorted({a for a, _, _ in pending} | {b for _, _, b in pending} | {(0, 0, self.nolex)}, key=topo)
        idx = {key: i for i, key in enumerate(all_keys)}
        n = len(all_keys)
        out_edges: list[list[tuple[int, int]]] = [[] for _ in range(n)]
        for a, lab, b in pending:
            out_edges[idx[a]].append((lab, idx[b]))
        ends = [(idx[(first_final, 0, st)], st) for st in layer if (first_final, 0, st) in idx]
        # prune to nodes that reach the last layer
        alive = [False] * n
        for i, _ in ends:
            alive[i] = True
        for i in range(n - 1, -1, -1):
            alive[i] = alive[i] or any(alive[b] for _, b in out_edges[i])
        if not alive[0]:
            return False
        return self._earley_graph(out_edges, alive, ends, end - first_final)

    def _earley_graph(
        self, out_edges: list[list[tuple[int, int]]], alive: list[bool], ends: list[tuple[int, int]], budget: int
    ) -> bool:
        """Earley recogniser over a DAG of positions (index order is topological); edges carry a lexeme's
        terminal-set id (the lexeme may be any terminal of the set; an ignored one makes it an epsilon)
        or -1 (epsilon)."""
        chart = _Chart(len(out_edges), alive)
        sets, add = chart.sets, chart.add
        emit_term, emit_ign = self._emit_term, self._emit_ign
        for i in range(len(out_edges)):
            by_term: dict[int, list[_Item]] = {}
            for sym, item in self._predict_complete(chart, i):
                by_term.setdefault(sym, []).append(item)
            for lab, j in out_edges[i]:
                if not alive[j]:
                    continue
                if lab < 0 or emit_ign[lab]:
                    for item in sets[i]:
                        add(j, item)
                if lab >= 0:
                    for term in emit_term[lab]:
                        for r, dot, o in by_term.get(term, ()):
                            add(j, (r, dot + 1, o))
        return self._trailing(chart, ends, budget)

    def _trailing(self, chart: _Chart, ends: list[tuple[int, int]], budget: int) -> bool:
        """Complete the parse in at most ``budget`` more slots (the trailing masked slots, EOS-padded):
        a Dijkstra over (item, gadget node) that jumps over whole symbols with their min slot costs."""
        import heapq

        cost = self._min_costs()
        fin = self._final_node
        waiting = chart.waiting
        heap: list[tuple[int, int, int, int, int]] = []
        best: dict[tuple[int, int, int, int], int] = {}
        for i, st in ends:
            for r, dot, o in chart.sets[i]:
                heap.append((0, r, dot, o, st))
        heapq.heapify(heap)
        rules = self.rules
        while heap:
            c, r, dot, o, u = heapq.heappop(heap)
            key = (r, dot, o, u)
            if best.get(key, budget + 1) <= c:
                continue
            best[key] = c
            rhs = (self.start_sym,) if r == _TOP else rules[r].rhs
            if dot == len(rhs):
                if r == _TOP:
                    if u == fin:
                        return True
                    continue
                for r2, d2, o2 in waiting[o].get(rules[r].lhs, ()):
                    heapq.heappush(heap, (c, r2, d2 + 1, o2, u))
                continue
            row = cost[rhs[dot]][u]
            for v in np.flatnonzero(row <= budget - c).tolist():
                heapq.heappush(heap, (c + int(row[v]), r, dot + 1, o, v))
        return False

    def _min_costs(self) -> np.ndarray:
        """``(symbols, U, U)`` min number of slots for a symbol to drive the slot gadget from node u to v.

        Gadget nodes: lexer states (+ no-lexeme), intermediates inside a token (lexemes still to be
        emitted within the slot) and FINAL (the last lexeme closed at EOS). A filler token from state s
        is a chain of edges labelled by the lexemes it closes, the last edge costing one slot."""
        cached: np.ndarray | None = getattr(self, "_cost", None)
        if cached is not None:
            return cached
        big = np.int32(1 << 20)
        n_lex = self.nolex + 1
        inter: dict[Any, int] = {}
        edges: list[tuple[int, int, int, int]] = []  # (u, label, v, cost)
        for st in range(1, n_lex):
            for w, s2 in self._outcomes_of(st):
                prev = st
                for j, lab in enumerate(w[:-1]):
                    key = (w[j + 1 :], s2)
                    mid = inter.setdefault(key, n_lex + len(inter))
                    edges.append((prev, lab, mid, 0))
                    prev = mid
                edges.append((prev, w[-1] if w else -1, s2, 1))
        fin = n_lex + len(inter)
        self._final_node = fin
        for st in range(1, n_lex):
            if st == self.nolex:
                edges.append((st, -1, fin, 0))
            elif self.emit[st].any():
                edges.append((st, self._set_id(st), fin, 0))
        u_n = fin + 1
        eps = np.full((u_n, u_n), big, dtype=np.int32)
        np.fill_diagonal(eps, 0)
        n_sym = self.n_terms + len(self.nt_id)
        cost = np.full((n_sym, u_n, u_n), big, dtype=np.int32)
        for u, lab, v, c in edges:
            if lab < 0 or self._emit_ign[lab]:
                eps[u, v] = min(eps[u, v], c)
        while True:  # epsilon closure (min-plus)
            nxt = np.minimum(eps, (eps[:, :, None] + eps[None, :, :]).min(axis=1))
            if (nxt == eps).all():
                break
            eps = nxt
        for u, lab, v, c in edges:
            if lab >= 0:
                for term in self._emit_term[lab]:
                    cost[term, u, v] = min(cost[term, u, v], c)

        def mp(x: np.ndarray, y: np.ndarray) -> np.ndarray:
            return np.minimum((x[:, :, None] + y[None, :, :]).min(axis=1), big)

        for term in range(self.n_terms):
            cost[term] = mp(mp(eps, cost[term]), eps)
        changed = True
        while changed:
            changed = False
            for rule in self.rules:
                acc = eps
                for sym in rule.rhs:
                    acc = mp(acc, cost[sym])
                new = np.minimum(cost[rule.lhs], acc)
                if (new != cost[rule.lhs]).any():
                    cost[rule.lhs] = new
                    changed = True
        self._cost = cost
        return cost

    def check_text(self, parts: list[str | None]) -> bool:
        """Same on text: ``["{", None, "}"]`` is ``{`` gap ``}``."""
        return self.check_segments([None if p is None else p.encode("utf-8") for p in parts])

    # ---- the check -----------------------------------------------------------------------------
    def check_segments(self, segs: list[bytes | None]) -> bool:
        return self._memo(tuple(segs), lambda: self._check_segments(segs))

    def _check_segments(self, segs: list[bytes | None]) -> bool:
        data = bytearray()
        gap_at: list[int] = []
        for s in segs:
            if s is None:
                gap_at.append(len(data))
            else:
                data += s
        m = len(data)
        gap = np.zeros(m + 1, dtype=bool)
        gap[gap_at] = True
        rel = self._terminal_relations(bytes(data), gap)
        return self._earley(rel, gap, m)

    def _terminal_relations(self, data: bytes, gap: np.ndarray) -> np.ndarray:
        """``(T, M+1, M+1)`` bool: R[T, i, j]."""
        m = len(data)
        n_t = self.n_terms
        rel = np.zeros((n_t, m + 1, m + 1), dtype=bool)
        origins = np.zeros(0, dtype=np.int64)
        states = np.zeros(0, dtype=np.int64)
        emit = self.emit
        for i in range(m + 1):
            origins = np.r_[origins, i]
            states = np.r_[states, self.lex_start]
            if gap[i]:
                o_idx, s_idx = np.nonzero(self.reach[states])
                origins, states = origins[o_idx], s_idx.astype(np.int64)
                keys = np.unique(origins * self.trans.shape[0] + states)
                origins, states = keys // self.trans.shape[0], keys % self.trans.shape[0]
            # lexeme ends at i (maximal munch when the next byte is fixed)
            if len(states):
                ok = emit[states]  # (P, T)
                if not gap[i] and i < m:
                    ok = ok & ~self.can_continue[states, data[i]][:, None]
                po, pt = np.nonzero(ok)
                rel[pt, origins[po], i] = True
            if gap[i]:
                rel[self.nonempty_terms, i, i] = True
            if i == m:
                break
            nxt = self.trans[states, data[i]]
            live = nxt != DEAD
            origins, states = origins[live], nxt[live].astype(np.int64)
        return rel

    def _earley(self, rel: np.ndarray, gap: np.ndarray, m: int) -> bool:
        n_pos = m + 1
        # J: ignored lexemes, reflexive-transitive
        j = np.eye(n_pos, dtype=bool)
        if self.ignore_ids:
            j |= rel[self.ignore_ids].any(axis=0)
            jf = j.astype(np.float32)
            while True:
                nxt = (jf @ jf) > 0
                if (nxt == j).all():
                    break
                j = nxt
                jf = j.astype(np.float32)
        jf = j.astype(np.float32)
        # effective scan edges: ignored* then terminal
        scan = (jf[None] @ rel.astype(np.float32)) > 0  # (T, M+1, M+1)
        scan_targets = [[np.flatnonzero(scan[t, i]).tolist() for i in range(n_pos)] for t in range(self.n_terms)]
        chart = _Chart(n_pos)
        for i in range(n_pos):
            for sym, (r, dot, o) in self._predict_complete(chart, i):
                for k in scan_targets[sym][i]:
                    chart.add(k, (r, dot + 1, o))
        return any((_TOP, 1, 0) in chart.sets[i] for i in np.flatnonzero(j[:, m]))
