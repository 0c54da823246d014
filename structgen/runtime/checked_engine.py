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
  delimiter) are replayed through the tracker, and failures are cleared. Masks stay exact:
  bit set ⇔ ``advance_token`` succeeds.
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
from structgen.runtime.bitmask import bitmask_width, pack_bool_mask
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


class CheckedEngine:
    """``inner`` × value checks (implements :class:`structgen.runtime.engine.TokenEngine`)."""

    may_dead_end = True  # a state can have an empty mask without being complete (decoders backtrack)

    def __init__(self, inner: TokenEngine, vocab: Vocabulary, plan: CheckPlan) -> None:
        self.inner = inner
        self.vocab = vocab
        self.plan = plan
        self.flags = event_flags(vocab)
        self._token_bytes = vocab.token_bytes
        self._root_hot = any(
            plan.root(t) is not None for t in ("object", "array", "string", "number", "boolean", "null")
        )
        # while a mask replays its candidate tokens: completed values by (text chain, span, bytes of
        # the token up to the end), so a value completed by many candidates is parsed and checked once
        self._memo: dict[Any, Any] | None = None
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
        cand = self._candidates(trk, base)
        if cand is None:
            return base
        ids = _ids_of(cand)
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
    def _candidates(self, trk: _Trk, base: np.ndarray) -> np.ndarray | None:
        """Allowed tokens that may complete a checked value (a superset), as words; None: none."""
        sc_cur, sc_new, cc = self.flags
        m = trk.mode
        lm = STR if m == KEY else ESC if m == KESC else m
        acc = np.zeros_like(base)
        any_flag = False
        top = trk.stack
        if m in (STR, ESC, NUM, LIT) and (trk.vctx is not None and trk.vctx.checks or _dup_parent(top)):
            if not (m == STR and self._no_dup_ahead(trk)):
                acc |= sc_cur[lm]
                any_flag = True
        if trk.hot and top is not None:
            acc |= cc[lm]
            any_flag = True
        if top is not None and top.ctx is not None:
            acc |= sc_new[lm]
            any_flag = True
        elif top is None and self._root_hot:  # the root value may start, and end, in this token
            acc |= sc_new[lm] | cc[lm]
            any_flag = True
        if not any_flag:
            return None
        acc &= base
        return acc

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
                got = self._check_value(_slice(text, data, pos0, start, end), ctx, dup)
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
    return b"".join(reversed(parts)).decode("utf-8", "replace")


def _ids_of(words: np.ndarray) -> np.ndarray:
    nz = np.flatnonzero(words)
    if nz.size == 0:
        return nz
    w = words.view(np.uint32)[nz]
    bits = (w[:, None] >> np.arange(32, dtype=np.uint32)) & 1
    r, c = np.nonzero(bits)
    return nz[r] * 32 + c


def event_flags(vocab: Vocabulary) -> tuple[list[np.ndarray], list[np.ndarray], list[np.ndarray]]:
    """Per lexical mode (OUT, STR, ESC, NUM, LIT), words of the tokens that may complete a value.

    ``(completes the scalar open before the token, completes a scalar the token opens, closes a
    container)``; a conservative superset (a literal counts as complete at any 'e' or 'l').
    Cached on the vocabulary.
    """
    key = "structgen.checked_engine.event_flags"
    hit = vocab._cache.get(key)
    if hit is not None:
        return hit  # type: ignore[no-any-return]
    toks = vocab.token_bytes
    V = len(toks)
    lens = np.fromiter((len(t) for t in toks), dtype=np.int64, count=V)
    special = np.zeros(V, dtype=bool)
    special[[i for i in vocab.special_ids if i < V]] = True
    L = int(lens.max()) if V else 0
    mat = np.zeros((V, max(L, 1)), dtype=np.uint8)
    flat = np.frombuffer(b"".join(toks), dtype=np.uint8)
    rows = np.repeat(np.arange(V), lens)
    cols = np.arange(flat.size) - np.repeat(np.cumsum(lens) - lens, lens)
    mat[rows, cols] = flat
    cls = np.zeros(256, dtype=np.int8)  # byte classes
    Q, BS, NUMC, LETTER, LITEND, CLOSE, TFN = 1, 2, 3, 4, 5, 6, 7
    for ch in b"0123456789-+.Ee":
        cls[ch] = NUMC
    for ch in range(ord("a"), ord("z") + 1):
        cls[ch] = LETTER
    cls[ord("e")] = LITEND
    cls[ord("l")] = LITEND
    cls[ord("t")] = TFN
    cls[ord("f")] = TFN
    cls[ord("n")] = TFN
    cls[ord('"')] = Q
    cls[ord("\\")] = BS
    cls[ord("]")] = CLOSE
    cls[ord("}")] = CLOSE
    num_bytes = np.zeros(256, dtype=bool)
    num_bytes[list(b"0123456789.eE+-")] = True
    starts_num = np.zeros(256, dtype=bool)
    starts_num[list(b"-0123456789")] = True
    order = np.argsort(-lens, kind="stable")  # longest first: the tokens still active are a prefix
    mat = mat[order]
    slens = lens[order]
    out: tuple[list[np.ndarray], list[np.ndarray], list[np.ndarray]] = ([], [], [])
    for start_mode in (OUT, STR, ESC, NUM, LIT):
        mode = np.full(V, start_mode, dtype=np.int8)
        inside = np.zeros(V, dtype=bool)  # the open scalar started inside the token
        f_cur = np.zeros(V, dtype=bool)
        f_new = np.zeros(V, dtype=bool)
        f_cc = np.zeros(V, dtype=bool)
        for j in range(L):
            k = int(np.searchsorted(-slens, -j, side="left"))  # rows with length > j
            if k == 0:
                break
            md = mode[:k]
            b = mat[:k, j]
            c = cls[b]
            nb = num_bytes[b]
            done = np.zeros(k, dtype=bool)
            ev = np.zeros(k, dtype=bool)
            # strings
            in_str = md == STR
            close = in_str & (c == Q)
            ev |= close
            md[close] = OUT
            md[in_str & (c == BS)] = ESC
            done |= in_str
            in_esc = (md == ESC) & ~done
            md[in_esc] = STR
            done |= in_esc
            # numbers: a non-number byte completes, then is read as OUT
            in_num = (md == NUM) & ~done
            done |= in_num & nb
            leave = in_num & ~nb
            ev |= leave
            md[leave] = OUT
            # literals: any 'e'/'l' may complete; a non-letter completes and is read as OUT
            in_lit = (md == LIT) & ~done
            letter = in_lit & ((c == LETTER) | (c == LITEND) | (c == TFN))
            ev |= in_lit & (c == LITEND)
            done |= letter
            leave = in_lit & ~letter
            ev |= leave
            md[leave] = OUT
            ins = inside[:k]
            f_cur[:k] |= ev & ~ins
            f_new[:k] |= ev & ins
            # OUT
            o = (md == OUT) & ~done
            f_cc[:k] |= o & (c == CLOSE)
            sn = starts_num[b]
            md[o & (c == Q)] = STR
            md[o & sn] = NUM
            md[o & (c == TFN)] = LIT
            ins |= o & ((c == Q) | sn | (c == TFN))
        for lst, f in zip(out, (f_cur, f_new, f_cc)):
            unsorted = np.zeros(V, dtype=bool)
            unsorted[order] = f
            unsorted &= ~special
            padded = np.zeros(vocab.size, dtype=bool)
            padded[:V] = unsorted
            words = pack_bool_mask(padded)
            words.setflags(write=False)
            lst.append(words)
    assert all(w.shape == (bitmask_width(vocab.size),) for w in out[0])
    vocab._cache[key] = out
    return out
