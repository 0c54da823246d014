"""A token engine that adds checks on completed values to a grammar engine (JSON Schema).

The inner engine accepts a superset of the schema's documents (``uniqueItems`` and non-disjoint
``oneOf`` relaxed, see :mod:`structgen.frontends.json_schema.check_plan`). This wrapper follows the
JSON text as it is written with a small streaming tracker (lexical mode, container stack with byte
offsets, the check context of each open value) and rejects any token or byte string that
*completes* a value failing its checks: a duplicate item of a checked array, a value at a checked
location that fails validation, or (``is_accepting``) a document failing the root check. So
``advance_token`` returns None, and the mask clears the token, exactly where a check fails:

* ``token_mask``: the inner mask, then only the allowed tokens that can complete a value at all
  (precomputed per vocabulary and lexical mode: they contain a closing quote, bracket or number
  delimiter; read off the nonzero words of the union needed here) are replayed through the
  tracker, and failures are cleared. Tokens made only of closers, commas and whitespace that close
  no container whose completion runs a check are not replayed (they cannot fail). Completed values
  are checked once per mask and remembered across states (value text × context). Masks stay
  exact: bit set ⇔ ``advance_token`` succeeds.
* ``forced_bytes`` stops before a byte that would complete a failing value.
* ``can_continue`` is the inner engine's answer (a checked state can be a dead end whose mask is
  empty; decoders treat an empty mask as a dead end).

States are :class:`CheckedState` objects compared by identity.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

import numpy as np

from structgen.frontends.json_schema.check_plan import CheckPlan, Ctx, canonical, json_type
from structgen.runtime.bitmask import pack_bool_mask
from structgen.runtime.engine import State, TokenEngine
from structgen.vocab.vocabulary import Vocabulary

# lexical modes of the tracker
OUT, STR, ESC, NUM, LIT, KEY, KESC = range(7)
_NUM_BYTES = frozenset(b"0123456789.eE+-")
_SCALAR_START = frozenset(b'"-0123456789tfn')
_LIT_LEN = {ord("t"): 4, ord("f"): 5, ord("n"): 4}


class _Frame:
    """One open container: kind, start offset, check context, seen items, current key or index."""

    __slots__ = ("parent", "is_obj", "start", "ctx", "seen", "key", "index")

    def __init__(
        self, parent: _Frame | None, is_obj: bool, start: int, ctx: Ctx | None, seen: Any, key: Any, index: int
    ) -> None:
        self.parent = parent
        self.is_obj = is_obj
        self.start = start
        self.ctx = ctx
        self.seen = seen
        self.key = key
        self.index = index

    def but(self, **kw: Any) -> _Frame:
        f = _Frame(self.parent, self.is_obj, self.start, self.ctx, self.seen, self.key, self.index)
        for k, v in kw.items():
            setattr(f, k, v)
        return f


class _Trk:
    """Tracker state: bytes so far (a chain of chunks), lexical mode, the open scalar, the stack."""

    __slots__ = ("pos", "text", "mode", "vstart", "vctx", "litend", "stack", "hot")

    def __init__(
        self, pos: int, text: Any, mode: int, vstart: int, vctx: Ctx | None, litend: int, stack: _Frame | None
    ) -> None:
        self.pos = pos
        self.text = text  # (previous chain, chunk bytes, end offset) or None
        self.mode = mode
        self.vstart = vstart
        self.vctx = vctx
        self.litend = litend
        self.stack = stack
        f = stack
        hot = vctx is not None
        while f is not None and not hot:
            hot = f.ctx is not None
            f = f.parent
        self.hot = hot  # some open value has a check context


class CheckedState:
    """Inner engine state × tracker state (immutable; compared by identity)."""

    __slots__ = ("inner", "trk", "_acc")

    def __init__(self, inner: State, trk: _Trk) -> None:
        self.inner = inner
        self.trk = trk
        self._acc: bool | None = None


class _Fail(Exception):
    pass


_FAILED = object()  # memo value: the value's checks failed
_VALUES_MEMO = 8192  # entries of the cross-state memo of completed values (cleared when full)
_VALUES_CHARS = 1 << 22  # and the most characters of value text it holds


class CheckedEngine:
    """``inner`` × value checks (implements :class:`structgen.runtime.engine.TokenEngine`)."""

    may_dead_end = True  # a state can have an empty mask without being complete (decoders backtrack)

    def __init__(self, inner: TokenEngine, vocab: Vocabulary, plan: CheckPlan) -> None:
        self.inner = inner
        self.vocab = vocab
        self.plan = plan
        self.cand_tables = candidate_tables(vocab)
        self.closers = closer_counts(vocab)
        self._token_bytes = vocab.token_bytes
        self._root_hot = any(
            plan.root(t) is not None for t in ("object", "array", "string", "number", "boolean", "null")
        )
        # while a mask replays its candidate tokens: completed values by (text chain, span, bytes of
        # the token up to the end), so a value completed by many candidates is parsed and checked once
        self._memo: dict[Any, Any] | None = None
        # across states: completed value text × check context -> outcome (the same value is often
        # completed again at the next state: ``ab|c"`` then ``abc|"``)
        self._values: dict[tuple[str, Ctx | None, bool], Any] = {}
        self._values_chars = 0
        inner_viable = getattr(inner, "viable_bytes", None) or getattr(inner, "_viable_bytes", None)
        if inner_viable is not None:
            self._viable_bytes = lambda s: inner_viable(s.inner)

    # ---- TokenEngine -------------------------------------------------------------------------
    def initial_state(self) -> CheckedState:
        return CheckedState(self.inner.initial_state(), _Trk(0, None, OUT, 0, None, 0, None))

    def advance_token(self, state: CheckedState, token_id: int) -> CheckedState | None:
        nxt = self.inner.advance_token(state.inner, token_id)
        if nxt is None:
            return None
        trk = self.feed(state.trk, self._token_bytes[token_id])
        return None if trk is None else CheckedState(nxt, trk)

    def advance_bytes(self, state: CheckedState, data: bytes) -> CheckedState | None:
        nxt = self.inner.advance_bytes(state.inner, data)
        if nxt is None:
            return None
        trk = self.feed(state.trk, bytes(data))
        return None if trk is None else CheckedState(nxt, trk)

    def is_accepting(self, state: CheckedState) -> bool:
        acc = state._acc
        if acc is None:
            acc = bool(self.inner.is_accepting(state.inner)) and self.finish_ok(state.trk)
            state._acc = acc
        return acc

    def can_continue(self, state: CheckedState) -> bool:
        return bool(self.inner.can_continue(state.inner))

    def forced_bytes(self, state: CheckedState, limit: int) -> bytes:
        data = self.inner.forced_bytes(state.inner, limit)
        if not data or self.feed(state.trk, data) is not None:
            return data
        trk: _Trk | None = state.trk
        for i in range(len(data)):  # the longest prefix not completing a failing value
            trk = self.feed(trk, data[i : i + 1])  # type: ignore[arg-type]
            if trk is None:
                return data[:i]
        return data

    def token_mask(self, state: CheckedState) -> np.ndarray:
        base = self.inner.token_mask(state.inner)
        trk = state.trk
        if not trk.hot and not (self._root_hot and trk.stack is None):
            return base
        ids = self._candidates(trk, base)
        if ids.size and trk.mode in (OUT, STR, NUM):
            ids = self._drop_safe_closers(trk, ids)
        if ids.size == 0:
            return base
        out = np.array(base, dtype=np.int32, copy=True)
        words = out.view(np.uint32)
        tb = self._token_bytes
        feed = self.feed
        self._memo = {}
        try:
            self._replay(trk, ids, tb, feed, words)
        finally:
            self._memo = None
        out.setflags(write=False)
        return out

    @staticmethod
    def _replay(trk: _Trk, ids: np.ndarray, tb: Sequence[bytes], feed: Any, words: np.ndarray) -> None:
        """Clear in ``words`` the candidate tokens ``ids`` whose bytes fail a check."""
        if ids.size < 3:
            for t in ids.tolist():
                if feed(trk, tb[t]) is None:
                    words[t >> 5] &= np.uint32(~(1 << (t & 31)) & 0xFFFFFFFF)
        else:
            # The tracker is streaming, so a token is fed as its first byte, then the rest. The
            # first byte is shared by many candidates and is often the one that completes a value
            # (a closing quote, a delimiter after a number): its checks then run once per byte
            # value, not once per token, and a first byte that fails rejects all its tokens.
            heads: dict[int, _Trk | None] = {}
            for t in ids.tolist():
                data = tb[t]
                b0 = data[0]
                if b0 in heads:
                    head = heads[b0]
                else:
                    head = heads[b0] = feed(trk, data[:1])
                if head is None or (len(data) > 1 and feed(head, data[1:]) is None):
                    words[t >> 5] &= np.uint32(~(1 << (t & 31)) & 0xFFFFFFFF)

    # ---- masks -------------------------------------------------------------------------------
    def _drop_safe_closers(self, trk: _Trk, ids: np.ndarray) -> np.ndarray:
        """``ids`` less the tokens that cannot fail here: made of ``}``, ``]``, ``,`` and
        whitespace (after the ``"`` that closes the open string, in a string), closing no more
        containers than the open frames whose completion runs no check, and completing an open
        scalar that runs none either. Such a token only completes those values, so it passes."""
        top = trk.stack
        if trk.mode != OUT and ((trk.vctx is not None and trk.vctx.checks) or _dup_parent(top)):
            return ids
        safe = 0  # open containers, innermost first, whose completion runs no check
        f = top
        while (
            f is not None and safe < _MAX_CLOSERS and not (f.ctx is not None and f.ctx.checks or _dup_parent(f.parent))
        ):
            safe += 1
            f = f.parent
        counts = self.closers[1 if trk.mode == STR else 0][ids]
        return ids[(counts < 0) | (counts > safe)]

    def _candidates(self, trk: _Trk, base: np.ndarray) -> np.ndarray:
        """Ids of the allowed tokens that may complete a checked value (a superset), ascending."""
        m = trk.mode
        lm = STR if m == KEY else ESC if m == KESC else m
        which = 0  # bits: 1 completes the open scalar, 2 completes a scalar it opens, 4 closes a container
        top = trk.stack
        if m in (STR, ESC, NUM, LIT) and (trk.vctx is not None and trk.vctx.checks or _dup_parent(top)):
            if not (m == STR and self._no_dup_ahead(trk)):
                which |= 1
        if trk.hot and top is not None:
            which |= 4
        if top is not None and top.ctx is not None:
            which |= 2
        elif top is None and self._root_hot:  # the root value may start, and end, in this token
            which |= 6
        if not which:
            return _NO_IDS
        flags, nz = self.cand_tables[lm][which]  # (W,) uint32 words, indices of their nonzero words
        bw = base.view(np.uint32)
        idx = nz
        if nz.size > _SPARSE_WORDS:  # dense flags: look only where the inner mask allows something
            bnz = np.flatnonzero(bw)
            if bnz.size < nz.size:
                idx = bnz
        w = bw[idx] & flags[idx]
        sel = np.flatnonzero(w)
        if sel.size == 0:
            return _NO_IDS
        bits = (w[sel][:, None] >> _BIT_SHIFTS) & 1
        r, c = np.nonzero(bits)
        return idx[sel][r] * 32 + c

    @staticmethod
    def _no_dup_ahead(trk: _Trk) -> bool:
        """A string item only checked for duplicates, and no earlier item extends what it holds so far.

        Then completing it cannot fail, whatever the token (the common case: tokens that close the
        string need not be replayed).
        """
        if trk.vctx is not None and trk.vctx.checks:
            return False
        try:
            so_far = json.loads(_slice(trk.text, b"", trk.pos, trk.vstart, trk.pos) + '"')
        except ValueError:  # an escape cut in the middle
            return False
        seen = trk.stack.seen  # type: ignore[union-attr]
        return not any(k[0] == "s" and k[1].startswith(so_far) for k in seen)

    # ---- the tracker -------------------------------------------------------------------------
    def feed(self, trk: _Trk, data: bytes) -> _Trk | None:
        """Tracker state after ``data`` (bytes the inner engine accepted); None when a check fails."""
        try:
            return self._feed(trk, data)
        except _Fail:
            return None

    def _feed(self, trk: _Trk, data: bytes) -> _Trk:
        pos0 = trk.pos
        mode, vstart, vctx, litend, stack = trk.mode, trk.vstart, trk.vctx, trk.litend, trk.stack
        text = trk.text
        n = len(data)
        i = 0
        while i < n:
            if mode == STR or mode == KEY:
                q = data.find(b'"', i)
                bs = data.find(b"\\", i, q if q >= 0 else n)
                if bs >= 0:
                    mode = ESC if mode == STR else KESC
                    i = bs + 1
                    continue
                if q < 0:
                    break
                end = pos0 + q + 1
                if mode == KEY:
                    key: Any = True
                    if stack is not None and stack.ctx is not None:
                        key = json.loads(_slice(text, data, pos0, vstart, end))
                    stack = stack.but(key=key) if stack is not None else None
                else:
                    stack = self._complete(text, data, pos0, vstart, end, vctx, stack)
                mode = OUT
                i = q + 1
                continue
            if mode == ESC or mode == KESC:
                mode = STR if mode == ESC else KEY
                i += 1
                continue
            b = data[i]
            if mode == NUM:
                if b in _NUM_BYTES:
                    i += 1
                    continue
                stack = self._complete(text, data, pos0, vstart, pos0 + i, vctx, stack)
                mode = OUT
            elif mode == LIT:
                if pos0 + i + 1 >= litend:
                    stack = self._complete(text, data, pos0, vstart, litend, vctx, stack)
                    mode = OUT
                i += 1
                continue
            # OUT
            if b == 0x5D or b == 0x7D:  # ] }
                if stack is not None:
                    top = stack
                    stack = self._complete(text, data, pos0, top.start, pos0 + i + 1, top.ctx, top.parent)
            elif b == 0x22:  # "
                vstart = pos0 + i
                if stack is not None and stack.is_obj and stack.key is None:
                    mode = KEY
                else:
                    vctx = self._ctx_for(stack, "string")
                    mode = STR
            elif b == 0x7B or b == 0x5B:  # { [
                ctx = self._ctx_for(stack, "object" if b == 0x7B else "array")
                seen: frozenset[Any] | None = frozenset() if ctx is not None and ctx.unique else None
                stack = _Frame(stack, b == 0x7B, pos0 + i, ctx, seen, None, 0)
            elif b in _SCALAR_START:
                vstart = pos0 + i
                vctx = self._ctx_for(stack, json_type(b))
                if b in _LIT_LEN:
                    mode = LIT
                    litend = vstart + _LIT_LEN[b]
                else:
                    mode = NUM
            i += 1
        if mode == OUT:
            vctx = None
        return _Trk(pos0 + n, (text, data, pos0 + n) if n else text, mode, vstart, vctx, litend, stack)

    def _ctx_for(self, stack: _Frame | None, t: str) -> Ctx | None:
        if stack is None:
            return self.plan.root(t)
        if stack.ctx is None:
            return None
        return self.plan.child(stack.ctx, stack.key if stack.is_obj else stack.index, t)

    def _complete(
        self, text: Any, data: bytes, pos0: int, start: int, end: int, ctx: Ctx | None, parent: _Frame | None
    ) -> _Frame | None:
        """Run the checks of the value ``[start, end)``; returns its parent frame, updated."""
        dup = parent is not None and parent.seen is not None
        seen = None
        if (ctx is not None and ctx.checks) or dup:
            memo = self._memo
            key = None
            if memo is not None:  # the span's text is fixed by the chain and the token's bytes up to end
                key = (id(text), pos0, start, end, data[: end - pos0] if end > pos0 else b"", id(ctx), dup)
                got = memo.get(key)
            else:
                got = None
            if got is None:
                raw = _slice(text, data, pos0, start, end)
                vkey = (raw, ctx, dup)  # the outcome depends on nothing else (the seen set is below)
                got = self._values.get(vkey)
                if got is None:
                    got = self._check_value(raw, ctx, dup)
                    self._values_chars += len(raw)
                    if len(self._values) >= _VALUES_MEMO or self._values_chars > _VALUES_CHARS:
                        self._values.clear()
                        self._values_chars = len(raw)
                    self._values[vkey] = got
                if key is not None:
                    memo[key] = got  # type: ignore[index]
            if got is _FAILED:
                raise _Fail()
            if dup:
                if got in parent.seen:  # type: ignore[union-attr, operator]
                    raise _Fail()
                seen = parent.seen | {got}  # type: ignore[union-attr, operator]
        if parent is None:
            return None
        if parent.is_obj:
            return parent.but(key=None)
        return parent.but(index=parent.index + 1, seen=seen if dup else parent.seen)

    def _check_value(self, raw: str, ctx: Ctx | None, dup: bool) -> Any:
        """``_FAILED`` if ``raw`` is not JSON or fails ``ctx``'s checks, else its canonical key (``dup``)
        or True."""
        try:
            value = json.loads(raw)
        except ValueError:
            return _FAILED
        if ctx is not None:
            for c in ctx.checks:
                if not self.plan.validate(c, raw, value):
                    return _FAILED
        return canonical(value) if dup else True

    def finish_ok(self, trk: _Trk) -> bool:
        """The checks that end of text triggers: a root number completing, then the root check."""
        stack = trk.stack
        if trk.mode == NUM and stack is None:
            try:
                self._complete(trk.text, b"", trk.pos, trk.vstart, trk.pos, trk.vctx, None)
            except _Fail:
                return False
        if self.plan.root_check is None:
            return True
        return self.plan.document_ok(_slice(trk.text, b"", trk.pos, 0, trk.pos))


def _dup_parent(f: _Frame | None) -> bool:
    return f is not None and f.seen is not None


def _slice(node: Any, data: bytes, pos0: int, a: int, b: int) -> str:
    """Text of bytes ``[a, b)``: ``data`` starts at ``pos0``, earlier bytes are in the chunk chain."""
    return slice_bytes(node, data, pos0, a, b).decode("utf-8", "replace")


def slice_bytes(node: Any, data: bytes, pos0: int, a: int, b: int) -> bytes:
    """Bytes ``[a, b)`` (undecoded): ``data`` starts at ``pos0``, earlier bytes are in the chunk chain."""
    parts = []
    hi = b
    if b > pos0:
        parts.append(data[max(a - pos0, 0) : b - pos0])
        hi = pos0
    while node is not None and hi > a:
        prev, chunk, end = node
        start = end - len(chunk)
        if start < hi:
            parts.append(chunk[max(a - start, 0) : hi - start])
            hi = max(start, a)
        node = prev
    return b"".join(reversed(parts))


# event_flags runs a small automaton over every token's bytes, per starting lexical mode: its state
# is (mode, the open scalar started inside the token), its outputs the three events below.
_EV_MODES = (OUT, STR, ESC, NUM, LIT)
_EV_NUM = frozenset(b"0123456789.eE+-")
_EV_NUM_START = frozenset(b"-0123456789")
_EV_LETTER = frozenset(range(ord("a"), ord("z") + 1))


def _event_step(mode: int, inside: bool, b: int) -> tuple[int, bool, bool, bool, bool]:
    """One byte of a token from ``(mode, inside)``: ``(mode, inside, completes the scalar open before
    the token, completes a scalar the token opened, closes a container)``. A literal counts as
    complete at any 'e' or 'l' (a conservative superset)."""
    ev = False
    if mode == STR:
        if b == 0x22:
            return OUT, inside, not inside, inside, False
        return (ESC if b == 0x5C else STR), inside, False, False, False
    if mode == ESC:
        return STR, inside, False, False, False
    if mode == NUM:
        if b in _EV_NUM:
            return NUM, inside, False, False, False
        ev = True
    elif mode == LIT:
        if b in _EV_LETTER:
            done = b in b"el"
            return LIT, inside, done and not inside, done and inside, False
        ev = True
    cur, new = ev and not inside, ev and inside
    if b == 0x22:
        return STR, True, cur, new, False
    if b in _EV_NUM_START:
        return NUM, True, cur, new, False
    if b in b"tfn":
        return LIT, True, cur, new, False
    return OUT, inside, cur, new, b in b"]}"


def _event_tables() -> tuple[np.ndarray, np.ndarray]:
    """``(next state, event bits)``, each ``(10 * 256,)`` indexed by ``state * 256 + byte``; state
    ``2 * mode + inside``, event bits 1/2/4 = completes the open scalar / a new one / a container."""
    nxt = np.zeros(10 * 256, dtype=np.int16)
    bits = np.zeros(10 * 256, dtype=np.uint8)
    for mode in _EV_MODES:
        for inside in (False, True):
            st = 2 * mode + inside
            for b in range(256):
                m2, in2, cur, new, cc = _event_step(mode, inside, b)
                nxt[st * 256 + b] = 2 * m2 + in2
                bits[st * 256 + b] = cur | new << 1 | cc << 2
    return nxt, bits


def _token_columns(vocab: Vocabulary) -> tuple[np.ndarray, list[np.ndarray]]:
    """Non-special tokens by decreasing byte length, and byte ``j`` of those longer than ``j``
    (a prefix of that order) for each ``j``: ``(ids (N,) int64, [(n_j,) int16])``."""
    toks = vocab.token_bytes
    all_lens = np.fromiter(map(len, toks), dtype=np.int64, count=len(toks))
    keep = all_lens > 0
    keep[[i for i in vocab.special_ids if i < len(toks)]] = False
    ids = np.flatnonzero(keep)
    lens = all_lens[ids]
    order = np.argsort(-lens, kind="stable")
    ids, lens = ids[order], lens[order]
    L = int(lens[0]) if len(lens) else 0
    flat = np.frombuffer(b"".join(toks), dtype=np.uint8)
    starts = np.cumsum(all_lens) - all_lens
    offs = np.arange(int(lens.sum())) - np.repeat(np.cumsum(lens) - lens, lens)  # byte index in its token
    mat = np.zeros((L, len(ids)), dtype=np.int16)  # (L, N): byte j of each token
    mat[offs, np.repeat(np.arange(len(ids)), lens)] = flat[np.repeat(starts[ids], lens) + offs]
    counts = np.searchsorted(-lens, -np.arange(L), side="left")  # tokens longer than j
    return ids, [mat[j, : counts[j]] for j in range(L)]


_FLAGS_KEY = "structgen.checked_engine.event_flags"
_CLOSERS_KEY = "structgen.checked_engine.closer_counts"
_CANDIDATES_KEY = "structgen.checked_engine.candidate_tables"
_MAX_CLOSERS = 64
_SPARSE_WORDS = 256  # candidate flags with more nonzero words than this: gather where the mask is set
_BIT_SHIFTS = np.arange(32, dtype=np.uint32)
_NO_IDS = np.zeros(0, dtype=np.int64)
_NO_IDS.setflags(write=False)


def candidate_tables(vocab: Vocabulary) -> list[list[tuple[np.ndarray, np.ndarray]]]:
    """Per lexical mode (OUT, STR, ESC, NUM, LIT) and per union of :func:`event_flags` (bits 1, 2,
    4: completes the open scalar, completes a scalar it opens, closes a container; index 0
    unused), the union's words as uint32 and the indices of its nonzero words. Cached on the
    vocabulary."""
    hit = vocab._cache.get(_CANDIDATES_KEY)
    if hit is None:
        _build_tables(vocab)
        hit = vocab._cache[_CANDIDATES_KEY]
    return hit  # type: ignore[no-any-return]


def _candidate_tables(
    flags: tuple[list[np.ndarray], list[np.ndarray], list[np.ndarray]],
) -> list[list[tuple[np.ndarray, np.ndarray]]]:
    sc_cur, sc_new, cc = flags
    out: list[list[tuple[np.ndarray, np.ndarray]]] = []
    for lm in range(len(sc_cur)):
        row = []
        for which in range(8):
            acc = np.zeros(sc_cur[lm].shape, dtype=np.uint32)
            for bit, words in ((1, sc_cur[lm]), (2, sc_new[lm]), (4, cc[lm])):
                if which & bit:
                    acc |= words.view(np.uint32)
            nz = np.flatnonzero(acc)
            acc.setflags(write=False)
            nz.setflags(write=False)
            row.append((acc, nz))
        out.append(row)
    return out


_CLOSER_BYTES = b"}],\x20\t\n\r"


def closer_counts(vocab: Vocabulary) -> tuple[np.ndarray, np.ndarray]:
    """Per token id, how many containers it closes when it is made only of ``}``, ``]``, ``,`` and
    whitespace (-1 otherwise): read outside any string or number (also: ending an open number),
    and read in a string (the token then starts with its closing ``"``). ``(V,)`` int16 each;
    cached on the vocabulary."""
    hit = vocab._cache.get(_CLOSERS_KEY)
    if hit is None:
        _build_tables(vocab)
        hit = vocab._cache[_CLOSERS_KEY]
    return hit  # type: ignore[no-any-return]


def _closer_counts(vocab: Vocabulary, ids: np.ndarray, columns: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    N = len(ids)
    is_c = np.zeros(256, dtype=bool)
    is_c[list(_CLOSER_BYTES)] = True
    closes = np.zeros(256, dtype=np.int16)
    closes[list(b"}]")] = 1
    pure = np.ones(N, dtype=bool)  # every byte a closer byte
    pure_tail = np.ones(N, dtype=bool)  # every byte after the first
    count = np.zeros(N, dtype=np.int16)
    count_tail = np.zeros(N, dtype=np.int16)
    for j, col in enumerate(columns):
        n = len(col)
        pure[:n] &= is_c[col]
        count[:n] += closes[col]
        if j:
            pure_tail[:n] &= is_c[col]
            count_tail[:n] += closes[col]
    first_quote = (columns[0] == ord('"')) if columns else np.zeros(0, dtype=bool)
    out_c = np.full(vocab.size, -1, dtype=np.int16)
    str_c = np.full(vocab.size, -1, dtype=np.int16)
    out_c[ids] = np.where(pure, count, -1)
    str_c[ids] = np.where(pure_tail & first_quote, count_tail, -1)
    out_c.setflags(write=False)
    str_c.setflags(write=False)
    return out_c, str_c


def event_flags(vocab: Vocabulary) -> tuple[list[np.ndarray], list[np.ndarray], list[np.ndarray]]:
    """Per lexical mode (OUT, STR, ESC, NUM, LIT), words of the tokens that may complete a value.

    ``(completes the scalar open before the token, completes a scalar the token opens, closes a
    container)``; a conservative superset (see :func:`_event_step`). Cached on the vocabulary.
    """
    hit = vocab._cache.get(_FLAGS_KEY)
    if hit is None:
        _build_tables(vocab)
        hit = vocab._cache[_FLAGS_KEY]
    return hit  # type: ignore[no-any-return]


def _build_tables(vocab: Vocabulary) -> None:
    """All per-vocabulary tables of the checked engine at once (they share one pass over the
    tokens' bytes); the JSON Schema compiler builds them with its first schema via event_flags."""
    ids, columns = _token_columns(vocab)
    flags = _event_flags(vocab, ids, columns)
    vocab._cache[_CLOSERS_KEY] = _closer_counts(vocab, ids, columns)
    vocab._cache[_FLAGS_KEY] = flags
    vocab._cache[_CANDIDATES_KEY] = _candidate_tables(flags)


def _event_flags(
    vocab: Vocabulary, ids: np.ndarray, columns: list[np.ndarray]
) -> tuple[list[np.ndarray], list[np.ndarray], list[np.ndarray]]:
    N = len(ids)
    nxt, bits = _event_tables()
    M = len(_EV_MODES)
    state = np.repeat(np.array([2 * m for m in _EV_MODES], dtype=np.int16)[:, None], N, axis=1)  # (M, N)
    ev = np.zeros((M, N), dtype=np.uint8)
    for col in columns:  # col: byte j of the tokens longer than j (a prefix of the order)
        n = len(col)
        idx = state[:, :n] * 256 + col
        ev[:, :n] |= bits[idx]
        state[:, :n] = nxt[idx]
    out: tuple[list[np.ndarray], list[np.ndarray], list[np.ndarray]] = ([], [], [])
    for mi in range(M):
        for lst, bit in zip(out, (1, 2, 4)):
            allowed = np.zeros(vocab.size, dtype=bool)
            allowed[ids] = (ev[mi] & bit) != 0
            words = pack_bool_mask(allowed)
            words.setflags(write=False)
            lst.append(words)
    return out
