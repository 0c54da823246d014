"""The grammar token engine: a contextual, maximal-munch lexer over an Earley parser, × a vocabulary.

Semantics (those of Lark's contextual lexer, with longest match):

* A state is a set of *threads* ``(E, q)``: ``E`` an immutable Earley chart column
  (:class:`structgen.automaton.earley.EarleySet`), ``q`` the lexer-DFA state of the lexeme being
  read (the extra state ``nolex`` when no lexeme is open). ``A(E)`` = terminals the parser accepts
  next, plus the ``%ignore`` terminals.
* On byte ``b``: if the lexeme extended by ``b`` can still become a terminal of ``A(E)``, it must
  continue (maximal munch). Otherwise the lexeme ends here: for each terminal ``T`` it matches in
  ``A(E)`` (only the highest priority among them; equal priorities keep every reading as separate
  threads), the parser advances by ``T`` (an ``%ignore`` terminal leaves it as is) and ``b`` starts a
  new lexeme, which must be a prefix of a terminal the new parser state accepts. No reading → the
  thread dies; no thread → the bytes are rejected.
* End of text is accepted when a thread has no open lexeme and a complete parse, or its open lexeme
  is a terminal whose reading completes the parse.

Masks (see :mod:`structgen.runtime.grammar_masks`): for a thread ``(E, q)`` the vocabulary splits,
depending only on ``(q, A(E))``, into tokens that stay inside the lexeme (a precomputed word set),
dead tokens, and tokens crossing a lexeme boundary, grouped by the boundary's terminal set (tokens
whose first byte already ends the lexeme are taken by first byte, without a walk). One
depth-first walk of the vocabulary trie classifies them (:mod:`structgen.runtime.trie_walk`: dead
subtrees skipped, string bodies skipped whole through the slice closure, numba-compiled when
available); crossing tokens come out as trie subtrees, resolved by advancing ``E`` by those
terminals (memoized on the chart) and walking the subtrees from "no open lexeme" under the new
``A``, recursively; every classification is cached in the engine keyed by (lexer state or subtree
set, ``A``), so it is computed once per engine. Final
masks are cached per state (LRU, ``Limits.max_cached_states``) under the parser states' structural
signatures (:meth:`EarleySet.signature`), so equal states reached by different histories (the
elements of an array, a second instance of the same schema) share them; the parser state does not
change while a long lexeme such as a string is being read, so consecutive tokens inside it hit too.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from typing import Any

import numpy as np

from structgen.automaton.dfa import LexerDFA
from structgen.automaton.earley import EarleySet, EarleyTables
from structgen.limits import Limits
from structgen.runtime.bitmask import bitmask_width
from structgen.runtime.grammar_masks import (
    EMPTY,
    SMALL_SET,
    Crossing,
    Level,
    TokenSet,
    group_crossings,
    union,
)
from structgen.runtime.trie_walk import (
    LexerTables,
    WalkTrie,
    first_byte_complement,
    subtree_words,
    terminal_words,
    vocab_trie,
    walk,
)
from structgen.vocab.vocabulary import Vocabulary

Thread = tuple[EarleySet, int]
EMPTY32 = np.zeros(0, dtype=np.int32)
GrammarState = tuple[Thread, ...]


class GrammarEngine:
    """Compiled grammar × vocabulary (implements :class:`structgen.runtime.engine.TokenEngine`)."""

    def __init__(
        self,
        tables: EarleyTables,
        lexer: LexerDFA,
        vocab: Vocabulary,
        limits: Limits,
        *,
        ignore: tuple[int, ...] = (),
        priorities: tuple[int, ...] = (),
    ) -> None:
        self.tables = tables
        self.lexer = lexer
        self.vocab = vocab
        self.limits = limits
        n_states = lexer.dfa.num_states
        self.nolex = n_states  # extra state: no lexeme open (a copy of the start row nothing enters)
        start = lexer.dfa.start
        trans = np.empty((n_states + 1, 256), dtype=np.int32)  # (S+1, 256) int32
        trans[:n_states] = lexer.dfa.transitions
        trans[n_states] = lexer.dfa.transitions[start]
        trans.setflags(write=False)
        self.trans = trans
        self._tflat: list[int] = trans.reshape(-1).tolist()
        self.alive: tuple[int, ...] = tuple(lexer.alive) + (lexer.alive[start],)
        self.accepts: tuple[int, ...] = tuple(lexer.accepts) + (0,)
        self.ignore_bits = 0
        for i in ignore:
            self.ignore_bits |= 1 << i
        n_terms = len(lexer.names)
        self.priorities = tuple(priorities) if priorities else (0,) * n_terms
        self._top_cache: dict[int, tuple[int, ...]] = {}
        self._u64 = n_terms <= 63
        if self._u64:
            self._alive_u = np.array(self.alive, dtype=np.uint64)
            self._accept_u = np.array(self.accepts, dtype=np.uint64)
        self._bool_cache: dict[int, tuple[np.ndarray, np.ndarray]] = {}
        self.width = bitmask_width(vocab.size)
        self._trie: WalkTrie | None = None
        self._lex = LexerTables.build(trans, self.alive, self.accepts, n_terms)  # slice closures: a few ms
        self._a_words: dict[int, np.ndarray] = {}
        self._levels0: dict[tuple[int, int], Level] = {}
        self._levels: dict[tuple[int, int], Level] = {}
        self._nodes: list[Crossing] = []
        self._node_index: dict[bytes, int] = {}
        self._masks: OrderedDict[Any, np.ndarray] = OrderedDict()
        self._succ: dict[tuple[int, int], list[EarleySet]] = {}
        self._lock = threading.RLock()
        self._initial: GrammarState = ((EarleySet.initial(tables), self.nolex),)

    # ---- small helpers -----------------------------------------------------------------------
    def _top(self, ts: int) -> tuple[int, ...]:
        """Terminals of bitset ``ts`` with the highest priority among them."""
        r = self._top_cache.get(ts)
        if r is None:
            bits = [i for i in range(ts.bit_length()) if ts >> i & 1]
            best = max(self.priorities[i] for i in bits)
            r = tuple(i for i in bits if self.priorities[i] == best)
            self._top_cache[ts] = r
        return r

    def _successors(self, e: EarleySet, term: int) -> list[EarleySet]:
        """Parser states after a lexeme read as ``term`` (both readings if it is also ignored)."""
        out = []
        if e.accepts >> term & 1:
            nxt = e.advance(term)
            if nxt is not None:
                out.append(nxt)
        if self.ignore_bits >> term & 1:
            out.append(e)
        return out

    def _mask_successors(self, e: EarleySet, term: int) -> list[EarleySet]:
        """:meth:`_successors` for masks, memoized under ``e``'s signature (FIFO-bounded).

        Mask computation advances parser states that decoding then abandons (the chart memoizes
        them only weakly), and structurally equal states advance to equal states, so the parser
        scans of a mask are shared with every later mask of an equal state.
        """
        key = (e.signature(), term)
        got = self._succ.get(key)
        if got is None:
            got = self._succ[key] = self._successors(e, term)
            if len(self._succ) > self.limits.max_cached_states:
                del self._succ[next(iter(self._succ))]
        return got

    def _bools(self, a_bits: int) -> tuple[np.ndarray, np.ndarray]:
        """(alive & A != 0, accepts & A != 0) as bool arrays over lexer states."""
        r = self._bool_cache.get(a_bits)
        if r is None:
            if self._u64:
                a = np.uint64(a_bits)
                r = ((self._alive_u & a) != 0, (self._accept_u & a) != 0)
            else:  # from the lexer tables' 64-bit words, one row per state
                aw = self._a_words.get(a_bits)
                if aw is None:
                    aw = self._a_words[a_bits] = terminal_words([a_bits], self._lex.words)[0]
                nw = self._lex.words
                r = (
                    np.asarray((self._lex.alive.reshape(-1, nw) & aw).any(axis=1)),
                    np.asarray((self._lex.accept.reshape(-1, nw) & aw).any(axis=1)),
                )
            self._bool_cache[a_bits] = r
        return r

    def _step(self, threads: Any, b: int) -> set[Thread]:
        tf = self._tflat
        alive = self.alive
        ign = self.ignore_bits
        nolex_row = self.nolex * 256
        out: set[Thread] = set()
        for e, q in threads:
            a_bits = e.accepts | ign
            q2 = tf[q * 256 + b]
            if alive[q2] & a_bits:
                out.add((e, q2))
                continue
            acc = self.accepts[q] & a_bits
            if not acc:
                continue
            q3 = tf[nolex_row + b]
            for term in self._top(acc):
                for e2 in self._successors(e, term):
                    if alive[q3] & (e2.accepts | ign):
                        out.add((e2, q3))
        return out

    @staticmethod
    def _canon(threads: set[Thread]) -> GrammarState:
        if len(threads) == 1:
            return tuple(threads)
        return tuple(sorted(threads, key=lambda t: (t[0].id, t[1])))

    # ---- TokenEngine -------------------------------------------------------------------------
    def initial_state(self) -> GrammarState:
        return self._initial

    def advance_bytes(self, state: GrammarState, data: bytes) -> GrammarState | None:
        threads: Any = state
        with self._lock:
            for b in data:
                threads = self._step(threads, b)
                if not threads:
                    return None
        return self._canon(threads) if isinstance(threads, set) else state

    def advance_token(self, state: GrammarState, token_id: int) -> GrammarState | None:
        tb = self.vocab.token_bytes
        if not 0 <= token_id < len(tb) or token_id in self.vocab.special_ids or not tb[token_id]:
            return None
        return self.advance_bytes(state, tb[token_id])

    def is_accepting(self, state: GrammarState) -> bool:
        ign = self.ignore_bits
        for e, q in state:
            if q == self.nolex:
                if e.complete:
                    return True
                continue
            acc = self.accepts[q] & (e.accepts | ign)
            if not acc:
                continue
            for term in self._top(acc):
                for e2 in self._successors(e, term):
                    if e2.complete:
                        return True
        return False

    def _viable_bytes(self, state: GrammarState) -> np.ndarray:
        """(256,) bool: bytes some thread survives."""
        viable = np.zeros(256, dtype=bool)
        ign = self.ignore_bits
        nolex_row = self.trans[self.nolex]
        for e, q in state:
            a_bits = e.accepts | ign
            alive_a, _ = self._bools(a_bits)
            cont = alive_a[self.trans[q]]
            viable |= cont
            acc = self.accepts[q] & a_bits
            if acc:
                for term in self._top(acc):
                    for e2 in self._successors(e, term):
                        alive2, _ = self._bools(e2.accepts | ign)
                        viable |= ~cont & alive2[nolex_row]
        return viable

    def can_continue(self, state: GrammarState) -> bool:
        with self._lock:
            return bool(self._viable_bytes(state).any())

    def forced_bytes(self, state: GrammarState, limit: int) -> bytes:
        out = bytearray()
        with self._lock:
            threads: Any = state
            while len(out) < limit:
                if self.is_accepting(threads):
                    break
                viable = np.flatnonzero(self._viable_bytes(threads))
                if viable.size != 1:
                    break
                b = int(viable[0])
                nxt = self._step(threads, b)
                if not nxt:
                    break
                out.append(b)
                threads = self._canon(nxt)
        return bytes(out)

    # ---- masks -------------------------------------------------------------------------------
    def _vocab_trie(self) -> WalkTrie:
        if self._trie is None:
            trie = self._trie = vocab_trie(self.vocab)
            for nodes in trie.cache["slice_roots"]:  # the string-body subtrees: built once per vocabulary
                self._subtree_set(trie, nodes)
        return self._trie

    def _walk(
        self, trie: WalkTrie, roots: np.ndarray, q0: int, a_bits: int, root_bytes: np.ndarray = EMPTY32
    ) -> tuple[TokenSet, np.ndarray, np.ndarray]:
        """(inside tokens, crossing nodes, boundary states) of the subtrees of ``roots`` from ``q0``."""
        a = self._a_words.get(a_bits)
        if a is None:
            a = self._a_words[a_bits] = terminal_words([a_bits], self._lex.words)[0]
        r = walk(trie, roots, q0, self._lex, a, self.width, root_bytes=root_bytes)
        if not r.n_inside:
            inside = EMPTY
        elif r.n_inside <= SMALL_SET:  # a few ids: a sparse set
            inside = TokenSet(None, r.touched, r.words[r.touched], r.n_inside)
        else:
            inside = TokenSet(r.words, EMPTY.idx, EMPTY.vals, r.n_inside)
        if r.whole.size:
            inside = union(self._subtree_set(trie, r.whole), inside, self.width)
        return inside, r.cross_nodes, r.cross_states

    def _groups(self, nodes: np.ndarray, states: np.ndarray, a_bits: int) -> tuple[tuple[int, int], ...]:
        groups = []
        for ts, members in group_crossings(nodes, states, self.accepts, a_bits):
            key = members.tobytes()
            idx = self._node_index.get(key)
            if idx is None:
                idx = self._node_index[key] = len(self._nodes)
                self._nodes.append(Crossing(members))
            groups.append((ts, idx))
        return tuple(groups)

    def _level0(self, q: int, a_bits: int) -> Level:
        key = (q, a_bits)
        lv = self._levels0.get(key)
        if lv is None:
            trie = self._vocab_trie()
            inside, cn, cs = self._walk(trie, trie.roots, q, a_bits, trie.cache["root_byte"])
            first = None
            ts = self.accepts[q] & a_bits
            if ts:  # a first byte that cannot continue ends the lexeme as one of q's terminals
                live = self._bools(a_bits)[0][self.trans[q]]  # (256,) bool: first bytes that continue
                if not live.all():
                    members = self._first_set(trie, live)
                    if members.count:
                        first = (ts, members)
            lv = Level(inside, self._groups(cn, cs, a_bits), first)
            self._levels0[key] = lv
        return lv

    def _first_set(self, trie: WalkTrie, live: np.ndarray) -> TokenSet:
        """The tokens whose first byte is not in ``live`` (memoized on the trie)."""
        key = ("first", live.tobytes())
        got = trie.cache.get(key)
        if got is None:
            words, count = first_byte_complement(trie, live)
            got = trie.cache[key] = TokenSet(words, EMPTY.idx, EMPTY.vals, count) if count else EMPTY
        return got  # type: ignore[no-any-return]

    def _subtree_set(self, trie: WalkTrie, nodes: np.ndarray) -> TokenSet:
        """The tokens of the subtrees of ``nodes`` (int32), memoized on the (per-vocabulary) trie."""
        key = ("set", nodes.tobytes())
        got = trie.cache.get(key)
        if got is None:
            words, count = subtree_words(trie, nodes, self.width)
            got = trie.cache[key] = TokenSet(words, EMPTY.idx, EMPTY.vals, count) if count else EMPTY
        return got  # type: ignore[no-any-return]

    def _level(self, node: int, a_bits: int) -> Level:
        key = (node, a_bits)
        lv = self._levels.get(key)
        if lv is None:
            ins, cn, cs = self._walk(self._vocab_trie(), self._nodes[node].nodes, self.nolex, a_bits)
            lv = Level(ins, self._groups(cn, cs, a_bits))
            self._levels[key] = lv
        return lv

    def _resolve(self, level: Level, e: EarleySet, words: np.ndarray, seen: dict[Any, Any]) -> None:
        """OR into ``words`` the crossing tokens of ``level`` (computed for parser state ``e``).

        ``seen`` holds (remainder set, parser state) pairs already resolved and, strongly, the parser
        states advanced during this mask, so each advance happens once per mask.
        """
        ign = self.ignore_bits
        for ts, node in level.groups:
            for term in self._top(ts):
                skey = (e.id, term, None)
                succ = seen.get(skey)
                if succ is None:
                    succ = seen[skey] = self._mask_successors(e, term)
                for e2 in succ:
                    key = (node, e2.id)
                    if key in seen:
                        continue
                    seen[key] = True
                    sub = self._level(node, e2.accepts | ign)
                    sub.inside.or_into(words)
                    if sub.groups:
                        self._resolve(sub, e2, words, seen)

    def _thread_words(self, e: EarleySet, q: int, words: np.ndarray) -> None:
        level = self._level0(q, e.accepts | self.ignore_bits)
        level.inside.or_into(words)
        if not level.groups and level.first is None:
            return
        seen: dict[Any, Any] = {}
        if level.groups:
            self._resolve(level, e, words, seen)
        if level.first is not None:
            ts, members = level.first
            for term in self._top(ts):
                skey = (e.id, term, None)
                succ = seen.get(skey)
                if succ is None:
                    succ = seen[skey] = self._mask_successors(e, term)
                for e2 in succ:
                    members.or_masked_into(words, self._cached_thread_mask(e2, self.nolex))

    def _cached_thread_mask(self, e: EarleySet, q: int) -> np.ndarray:
        """The (cached) mask words of the single thread ``(e, q)``, as uint32."""
        key = ((e.signature(), q),)
        hit = self._masks.get(key)
        if hit is not None:
            self._masks.move_to_end(key)
            return hit.view(np.uint32)
        words = np.zeros(self.width, dtype=np.uint32)  # (W,) uint32
        self._thread_words(e, q, words)
        self._store(key, words)
        return words

    def _store(self, key: Any, words: np.ndarray) -> np.ndarray:
        out = words.view(np.int32)
        out.setflags(write=False)
        self._masks[key] = out
        while len(self._masks) > self.limits.max_cached_states:
            self._masks.popitem(last=False)
        return out

    def token_mask(self, state: GrammarState) -> np.ndarray:
        with self._lock:
            if len(state) == 1:
                e0, q0 = state[0]
                key: tuple[tuple[int, int], ...] = ((e0.signature(), q0),)
            else:
                key = tuple(sorted({(e.signature(), q) for e, q in state}))
            hit = self._masks.get(key)
            if hit is not None:
                self._masks.move_to_end(key)
                return hit
            words = np.zeros(self.width, dtype=np.uint32)  # (W,) uint32
            for e, q in state:
                self._thread_words(e, q, words)
            return self._store(key, words)

    # ---- introspection -----------------------------------------------------------------------
    def stats(self) -> dict[str, int]:
        """Sizes for reports: lexer states, terminals, rules, cached classifications."""
        return {
            "lexer_states": self.lexer.dfa.num_states,
            "terminals": len(self.lexer.names),
            "rules": self.tables.num_rules,
            "level0_tables": len(self._levels0),
            "remainder_tables": len(self._levels),
            "cached_masks": len(self._masks),
        }
