"""Valid within the budget: short completions of matcher states, counted in tokens.

``max_new_tokens`` must never cut a constrained output in the middle of a value. The decode loop keeps
the invariant

    the row's state has a known completion of at most ``remaining`` tokens

by accepting a sampled token only when the state it leads to has a completion of at most
``remaining - 1`` tokens. A refused token is removed and the next one is taken in the same random
order (Gumbel keys: rejection without replacement, i.e. an exact sample from the model's
distribution restricted to the accepted tokens; under greedy decoding, the best accepted token).

The completion of a state ``s`` is found as bytes, then tokenized greedily (longest match):

    U(s) = tokens of greedy_tokenize(C(s))        C(s): a short byte string taking s to acceptance

``C(s)`` comes from, in order: the engine's own ``shortest_completion(s)`` when it has one (exact, no
search); a suffix of the previous state's completion (a string that keeps growing still ends with the
same ``"}``: one ``advance_bytes`` call per candidate); a breadth-first search over bytes (with
forced-byte jumps and the engine's viable-byte set when it exposes one), capped in work. ``U`` is an
upper bound of the true minimum ``d``, so the check is sound: it can refuse a token whose completion
only a cleverer tokenization would fit, never accept one that cannot finish. Before generation an
exact token-level search (bounded) computes the true minimum for the error message, and records the
path it found so the decode loop can follow it when the budget is exactly that minimum.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Hashable
from typing import Any

import numpy as np

from structgen.runtime.bitmask import unpack_bitmask

_BYTE_SEARCH_MAX_CALLS = 600  # advance_bytes calls of the breadth-first byte search
_DFS_MAX_CALLS = 20_000  # advance_bytes calls of the depth-first fallback
_DFS_MAX_DEPTH = 4_096
# depth-first fallback order: bytes that close things first, then digits and letters, then the rest
_PRIORITY = [ord(c) for c in "\"}])>''0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ .,;:_-+\n"]
_ORDER = list(dict.fromkeys(_PRIORITY + list(range(256))))
_RANK = np.empty(256, dtype=np.int64)
_RANK[np.array(_ORDER)] = np.arange(256)
_MEMO_MAX = 200_000


class _Memo(OrderedDict):  # type: ignore[type-arg]
    def put(self, key: Any, value: Any) -> None:
        self[key] = value
        if len(self) > _MEMO_MAX:
            self.popitem(last=False)


def token_lookup(vocab: Any) -> tuple[dict[bytes, int], int]:
    """``({token bytes: lowest text-token id}, longest token length)`` of ``vocab`` (cached on it)."""
    key = "structgen.decoding.token_lookup"
    hit = vocab._cache.get(key)
    if hit is None:
        special = vocab.special_ids
        by_bytes: dict[bytes, int] = {}
        for i, b in enumerate(vocab.token_bytes):
            if b and i not in special and b not in by_bytes:
                by_bytes[b] = i
        hit = (by_bytes, max((len(b) for b in by_bytes), default=1))
        vocab._cache[key] = hit
    return hit  # type: ignore[no-any-return]


class CompletionOracle:
    """Completions of one engine's states over one vocabulary (memoized; not thread-safe)."""

    def __init__(self, engine: Any, vocab: Any) -> None:
        self.engine = engine
        self.vocab = vocab
        self._by_bytes, self.max_token_len = token_lookup(vocab)
        self._hook = getattr(engine, "shortest_completion", None)
        viable = getattr(engine, "viable_bytes", None) or getattr(engine, "_viable_bytes", None)
        self._viable = viable
        self._completion: _Memo = _Memo()  # state -> byte completion (None: none found)
        self._upper: _Memo = _Memo()  # state -> (U, first token of that path)
        self._witness: _Memo = _Memo()  # state -> next token of a path found by the exact search
        self.stats = {"byte_searches": 0, "hint_hits": 0, "token_searches": 0}

    # ---- bytes ---------------------------------------------------------------------------------
    def byte_completion(self, state: Hashable, hint: bytes | None = None) -> bytes | None:
        """Bytes that take ``state`` to an accepting state (None: none found within the caps)."""
        if state in self._completion:
            return self._completion[state]  # type: ignore[no-any-return]
        eng = self.engine
        if eng.is_accepting(state):
            self._completion.put(state, b"")
            return b""
        found: bytes | None = None
        if self._hook is not None:
            found = self._hook(state)
        if found is None and hint:
            for k in range(len(hint) - 1, -1, -1):  # shortest suffix first
                n = eng.advance_bytes(state, hint[k:])
                if n is not None and eng.is_accepting(n):
                    found = hint[k:]
                    self.stats["hint_hits"] += 1
                    break
        if found is None:
            found = self._search(state)
        self._completion.put(state, found)
        return found

    def _steps(self, s: Hashable) -> list[bytes]:
        eng = self.engine
        forced = eng.forced_bytes(s, 4096)
        if forced:
            return [forced]
        if self._viable is not None:
            try:
                return [bytes([int(b)]) for b in np.flatnonzero(self._viable(s))]
            except Exception:  # noqa: BLE001 - an optional hook; fall back to every byte
                self._viable = None
        return [bytes([b]) for b in range(256)]

    def _search(self, state: Hashable) -> bytes | None:
        """Breadth-first over bytes (forced runs jump), stopping at a memoized or accepting state."""
        self.stats["byte_searches"] += 1
        eng = self.engine
        parents: dict[Hashable, tuple[Hashable, bytes]] = {}
        seen = {state}
        frontier = [state]
        calls = 0
        while frontier:
            nxt: list[Hashable] = []
            best: bytes | None = None
            for s in frontier:
                for step in self._steps(s):
                    calls += 1
                    if calls > _BYTE_SEARCH_MAX_CALLS:
                        return best if best is not None else self._dfs(state)
                    n = eng.advance_bytes(s, step)
                    if n is None or n in seen:
                        continue
                    seen.add(n)
                    parents[n] = (s, step)
                    tail = b"" if eng.is_accepting(n) else self._completion.get(n)
                    if tail is not None:
                        path = self._path(parents, n) + tail
                        if best is None or len(path) < len(best):
                            best = path
                        continue
                    nxt.append(n)
            if best is not None:
                return best
            frontier = nxt
        return None

    def _dfs(self, state: Hashable) -> bytes | None:
        """Depth-first, closing bytes first: finds *a* completion fast when breadth-first is too wide."""
        eng = self.engine
        seen = {state}
        stack: list[tuple[Hashable, list[bytes], int]] = [(state, self._ordered_steps(state), 0)]
        path: list[bytes] = []
        calls = 0
        while stack:
            s, steps, k = stack[-1]
            if k >= len(steps) or len(path) >= _DFS_MAX_DEPTH:
                stack.pop()
                if path:
                    path.pop()
                continue
            stack[-1] = (s, steps, k + 1)
            calls += 1
            if calls > _DFS_MAX_CALLS:
                return None
            n = eng.advance_bytes(s, steps[k])
            if n is None or n in seen:
                continue
            seen.add(n)
            tail = b"" if eng.is_accepting(n) else self._completion.get(n)
            if tail is not None:
                return b"".join(path) + steps[k] + tail
            path.append(steps[k])
            stack.append((n, self._ordered_steps(n), 0))
        return None

    def _ordered_steps(self, s: Hashable) -> list[bytes]:
        steps = self._steps(s)
        if len(steps) > 1:
            steps.sort(key=lambda b: _RANK[b[0]])
        return steps

    @staticmethod
    def _path(parents: dict[Hashable, tuple[Hashable, bytes]], node: Hashable) -> bytes:
        parts = []
        while node in parents:
            node, step = parents[node]
            parts.append(step)
        return b"".join(reversed(parts))

    # ---- tokens --------------------------------------------------------------------------------
    def upper_bound(self, state: Hashable, hint: bytes | None = None) -> int | None:
        """``U(state)``: tokens of a greedy tokenization of a completion (None: none found)."""
        hit = self._upper.get(state)
        if hit is not None:
            return hit[0]  # type: ignore[no-any-return]
        if self.engine.is_accepting(state):
            self._upper.put(state, (0, -1))
            return 0
        data = self.byte_completion(state, hint)
        if data is None:
            return None
        eng = self.engine
        n_tokens = 0
        first = -1
        s = state
        pos = 0
        while pos < len(data):
            for length in range(min(self.max_token_len, len(data) - pos), 0, -1):
                tid = self._by_bytes.get(data[pos : pos + length])
                if tid is None:
                    continue
                n = eng.advance_token(s, tid)
                if n is None:
                    continue
                if first < 0:
                    first = tid
                s = n
                pos += length
                n_tokens += 1
                break
            else:
                return None  # a byte with no token: this vocabulary cannot spell the completion
        self._upper.put(state, (n_tokens, first))
        return n_tokens

    def completion_hint(self, state: Hashable) -> bytes | None:
        """The memoized completion of ``state`` (a cheap hint for its successors)."""
        return self._completion.get(state)

    def feasible(self, state: Hashable, limit: int, hint: bytes | None = None) -> bool:
        """Whether a completion of at most ``limit`` tokens is known for ``state``."""
        if limit < 0:
            return False
        if self.engine.is_accepting(state):
            return True
        if limit == 0:
            return False
        if state in self._witness and self._witness[state][1] <= limit:
            return True
        u = self.upper_bound(state, hint)
        return u is not None and u <= limit

    def witness(self, state: Hashable) -> int:
        """The first token of the shortest known completion of ``state`` (-1 when none is known)."""
        w = self._witness.get(state)
        if w is not None:
            return int(w[0])
        self.upper_bound(state)
        hit = self._upper.get(state)
        return int(hit[1]) if hit is not None else -1

    def allowed_ids(self, state: Hashable) -> np.ndarray:
        words = self.engine.token_mask(state)
        return np.flatnonzero(unpack_bitmask(np.asarray(words), self.vocab.size))

    # ---- exact minimum (before generation) -----------------------------------------------------
    def min_tokens(self, state: Hashable, *, seconds: float = 3.0, max_expansions: int = 256) -> tuple[int, bool]:
        """``(d, exact)``: the fewest tokens from ``state`` to acceptance, by breadth-first search over
        tokens (``exact`` False: the search ran out of time or expansions and ``d`` is the upper bound U).

        The path found is recorded, so :meth:`feasible` and :meth:`witness` follow it afterwards.
        """
        eng = self.engine
        if eng.is_accepting(state):
            return 0, True
        u = self.upper_bound(state)
        if u is not None and u <= 1:
            return u, True
        self.stats["token_searches"] += 1
        deadline = time.perf_counter() + seconds
        parents: dict[Hashable, tuple[Hashable, int]] = {}
        seen = {state}
        frontier = [state]
        expansions = 0
        depth = 0
        limit = u if u is not None else 1 << 30
        while frontier and depth + 1 < limit:
            depth += 1
            nxt: list[Hashable] = []
            for s in frontier:
                expansions += 1
                if expansions > max_expansions or time.perf_counter() > deadline:
                    return (u, False) if u is not None else (depth, False)
                for tid in self.allowed_ids(s):
                    n = eng.advance_token(s, int(tid))
                    if n is None or n in seen:
                        continue
                    seen.add(n)
                    parents[n] = (s, int(tid))
                    if eng.is_accepting(n):
                        self._record(parents, n, state)
                        return depth, True
                    nxt.append(n)
            frontier = nxt
        return (u, True) if u is not None else (depth, False)

    def _record(self, parents: dict[Hashable, tuple[Hashable, int]], node: Hashable, root: Hashable) -> None:
        path: list[tuple[Hashable, int]] = []
        while node in parents:
            prev, tid = parents[node]
            path.append((prev, tid))
            node = prev
        path.reverse()
        for k, (s, tid) in enumerate(path):
            self._witness.put(s, (tid, len(path) - k))


_oracles: OrderedDict[int, tuple[Any, CompletionOracle]] = OrderedDict()


def oracle_for(engine: Any, vocab: Any) -> CompletionOracle:
    """The shared oracle of an engine (memos survive across generations with the same constraint)."""
    key = id(engine)
    hit = _oracles.get(key)
    if hit is not None and hit[0] is engine:
        _oracles.move_to_end(key)
        return hit[1]
    oracle = CompletionOracle(engine, vocab)
    _oracles[key] = (engine, oracle)
    while len(_oracles) > 32:
        _oracles.popitem(last=False)
    return oracle


# ---- choosing a token under the budget --------------------------------------------------------------
MAX_BUDGET_REJECTIONS = 256  # sampled-but-infeasible tokens one step may reject before the witness
BUDGET_STEP_SECONDS = 0.25


def pick_within_budget(
    keys: Any,
    oracle: CompletionOracle,
    state: Hashable,
    limit: int,
    eos_ids: frozenset[int],
    eos_fallback: int,
) -> tuple[int, int]:
    """``(token, rejections)``: the highest-key token whose successor state finishes in ``limit`` tokens.

    ``keys`` is a ``(V,)`` torch tensor (masked logits for greedy, log-probs plus Gumbel noise for
    sampling; ``-inf`` = not allowed). EOS is taken as is (allowed only in accepting states). When no
    token among the top :data:`MAX_BUDGET_REJECTIONS` fits, the first token of the shortest known
    completion is returned (``eos_fallback`` if ``state`` accepts and none is known, the highest-key
    token if it does not; -1: nothing allowed). The same rule as the batched loop's per-row choice, so both paths pick the same token.
    """
    t = int(keys.argmax().item())
    if float(keys[t].item()) == float("-inf"):
        return -1, 0
    if t in eos_ids:
        return t, 0
    eng = oracle.engine
    hint = oracle.completion_hint(state)
    nxt = eng.advance_token(state, t)
    if nxt is not None and oracle.feasible(nxt, limit, hint):
        return t, 0
    rejections = 0
    deadline = time.perf_counter() + BUDGET_STEP_SECONDS
    top = keys.topk(min(MAX_BUDGET_REJECTIONS, int(keys.shape[0])))
    for key, cand in zip(top.values.tolist(), top.indices.tolist()):
        if key == float("-inf"):
            break
        if cand == t:
            continue
        rejections += 1
        if cand in eos_ids:
            return int(cand), rejections
        nxt = eng.advance_token(state, cand)
        if nxt is not None and oracle.feasible(nxt, limit, hint):
            return int(cand), rejections
        if time.perf_counter() > deadline:
            break
    rejections += 1
    w = oracle.witness(state)
    if w < 0:
        if eng.is_accepting(state):
            return eos_fallback, rejections
        # no completion is known (the searches' caps: e.g. a string whose value check rules out the
        # short ones): unknown is not infeasible, so the model's choice stands
        return t, rejections
    return w, rejections
