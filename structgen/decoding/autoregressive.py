"""The KV-cached, batched, constrained decode loop for transformers causal LMs.

One forward pass per step for every unfinished row. Rows are left-padded; the attention mask and
explicit position ids make a padded row compute what it would compute alone. Each step builds one
packed ``(B, ceil(V/32))`` int32 bitmask (rows without a constraint stay all-ones), applies it
through :func:`structgen.kernels.apply_token_bitmask_`, samples, and advances each row's matcher.
Finished rows are dropped from the batch (KV cache rows selected away), so a long row never makes
the short ones pay.

A row may carry:

* a :class:`~structgen.runtime.matcher.Matcher` (its constraint) or none (free text);
* ``start_after``: free text until this delimiter appears, then the constraint (reasoning models);
* a token budget, kept *valid*: see :mod:`structgen.decoding.budget`;
* stop strings (free-text rows only: inside a constraint the constraint decides where output ends).

Dead ends. An engine whose checks run on completed values (``engine.may_dead_end``, e.g. JSON
Schema ``uniqueItems``) can reach a state where no token is allowed and the text is not complete.
The loop then backtracks that row: the matcher rolls back one token, the token is banned at that
position, and a replacement is chosen from the same position's stored scores (the KV cache keeps
the stale entry but the attention mask hides its column and the replacement takes its position
id). Exhausting a position backtracks one further (up to :data:`MAX_BACKTRACK_DEPTH` positions);
after :data:`MAX_BACKTRACKS` tries the row ends with ``stop_reason == "error"`` and a message.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from structgen.decoding.budget import CompletionOracle, oracle_for, pick_within_budget
from structgen.decoding.sampling import SamplingParams, process_logits
from structgen.runtime.bitmask import allocate_bitmask

# How many sampled-but-infeasible tokens a row may reject in one step before it takes the known
# shortest-path token (see structgen.decoding.budget). Rejections are cheap once states are memoized.
MAX_BACKTRACKS = 64  # replacement tokens one row may try after dead ends, in total
MAX_BACKTRACK_DEPTH = 8  # positions a row keeps scores for (how far back a dead end can be undone)


@dataclass
class Row:
    """One sequence of a batch: request, state while decoding, and output when done.

    Attributes (request): ``prompt_ids``, ``matcher`` (None: unconstrained), ``max_new_tokens``,
    ``stop`` (strings ending free text), ``start_after`` / ``start_after_ids`` (delimiter text and its
    tokens), ``generator`` (this row's sampling stream).
    Attributes (output): ``token_ids`` (generated, EOS included when sampled), ``stop_reason``
    (``"eos"``, ``"complete"``, ``"stop"``, ``"length"`` or ``"error"``), ``text`` (visible text, EOS and
    special tokens excluded, cut before a stop string), ``constraint_offset`` (index in ``text``
    where the constrained part starts), ``steered`` (tokens the budget check rejected).
    """

    prompt_ids: Sequence[int]
    matcher: Any = None
    max_new_tokens: int = 256
    stop: tuple[str, ...] = ()
    start_after: str | None = None
    start_after_ids: tuple[int, ...] = ()
    generator: torch.Generator | None = None
    # state and output
    token_ids: list[int] = field(default_factory=list)
    out_bytes: bytearray = field(default_factory=bytearray)
    stop_reason: str | None = None
    error: str | None = None
    constrained: bool = False  # the matcher is live (no start_after, or the delimiter was seen)
    constraint_byte_offset: int = 0
    steered: int = 0
    pending: deque[int] = field(default_factory=deque)
    min_constrained_tokens: int = 0
    _search_from: int = 0
    backtracks: int = 0  # tokens replaced after dead ends
    _trail: deque[tuple[Any, int]] = field(default_factory=lambda: deque(maxlen=MAX_BACKTRACK_DEPTH))
    _bans: dict[int, set[int]] = field(default_factory=dict)  # position -> tokens that led to dead ends
    _cols: list[int] = field(default_factory=list)  # attention column of each generated token fed

    def __post_init__(self) -> None:
        self.constrained = self.matcher is not None and not self.start_after

    @property
    def done(self) -> bool:
        return self.stop_reason is not None

    @property
    def text(self) -> str:
        return bytes(self.out_bytes).decode("utf-8", errors="replace")

    @property
    def constrained_text(self) -> str:
        return bytes(self.out_bytes[self.constraint_byte_offset :]).decode("utf-8", errors="replace")

    @property
    def prefix_text(self) -> str:
        """Free text before the constraint started (delimiter included); "" without ``start_after``."""
        return bytes(self.out_bytes[: self.constraint_byte_offset]).decode("utf-8", errors="replace")

    @property
    def remaining(self) -> int:
        return self.max_new_tokens - len(self.token_ids)


@dataclass
class DecodeStats:
    """Timings of one batched decode (seconds) and counts."""

    prefill_seconds: float = 0.0
    decode_seconds: float = 0.0
    forward_seconds: float = 0.0
    mask_seconds: float = 0.0
    steps: int = 0
    tokens: int = 0


@dataclass(frozen=True, slots=True)
class TokenEvent:
    """One token appended to a row: ``data`` is the visible bytes it added (may split a character)."""

    row: int
    token_id: int
    data: bytes


def _apply_bitmask(logits: torch.Tensor, bitmask: torch.Tensor, rows: list[int], vocab_size: int) -> None:
    try:
        from structgen.kernels import apply_token_bitmask_
    except ImportError:  # pragma: no cover - kernels ship with structgen; fallback for partial installs
        bits = torch.arange(32, dtype=torch.int32)
        for r in rows:
            allowed = ((bitmask[r].unsqueeze(-1) >> bits) & 1).reshape(-1)[: logits.shape[-1]].bool()
            allowed[vocab_size:] = False
            logits[r].masked_fill_(~allowed, float("-inf"))
        return
    apply_token_bitmask_(logits, bitmask, indices=rows, vocab_size=vocab_size)


def _forward(
    model: Any, input_ids: torch.Tensor, attention_mask: torch.Tensor, position_ids: torch.Tensor, cache: Any
) -> Any:
    kwargs = dict(
        input_ids=input_ids,
        attention_mask=attention_mask,
        position_ids=position_ids,
        past_key_values=cache,
        use_cache=True,
    )
    try:
        return model(**kwargs, logits_to_keep=1)
    except TypeError:  # older or custom models without logits_to_keep
        return model(**kwargs)


def _select_cache(cache: Any, keep: torch.Tensor) -> Any:
    if hasattr(cache, "batch_select_indices"):
        cache.batch_select_indices(keep)
        return cache
    if isinstance(cache, tuple):  # legacy tuple-of-tuples cache
        return tuple(tuple(t.index_select(0, keep) for t in layer) for layer in cache)
    raise TypeError(f"cannot drop rows from a KV cache of type {type(cache).__name__}")


class BatchDecoder:
    """Decode a batch of :class:`Row` objects with one model; iterate :meth:`steps` or call :meth:`run`."""

    def __init__(
        self,
        model: Any,
        vocab: Any,
        rows: list[Row],
        params: SamplingParams,
        *,
        pad_id: int = 0,
        tokenize_bytes: Any = None,
    ) -> None:
        self.model = model
        self.vocab = vocab
        self.rows = rows
        self.params = params
        self.pad_id = int(pad_id)
        self.stats = DecodeStats()
        self.device = next(model.parameters()).device
        self.eos_ids = frozenset(int(i) for i in vocab.eos_ids)
        self.special_ids = frozenset(int(i) for i in vocab.special_ids)
        self._eos_list = sorted(self.eos_ids)
        self._tokenize_bytes = tokenize_bytes
        self._oracles: dict[int, CompletionOracle] = {}

    # ---- helpers -------------------------------------------------------------------------------
    def oracle(self, row: Row) -> CompletionOracle:
        eng = row.matcher.engine
        o = self._oracles.get(id(eng))
        if o is None:
            o = oracle_for(eng, self.vocab)
            self._oracles[id(eng)] = o
        return o

    def _visible(self, token_id: int) -> bytes:
        if token_id in self.special_ids or not 0 <= token_id < self.vocab.num_tokens:
            return b""
        return self.vocab.token_bytes[token_id]

    def run(self) -> list[Row]:
        for _ in self.steps():
            pass
        return self.rows

    # ---- the loop ------------------------------------------------------------------------------
    def steps(self) -> Iterator[list[TokenEvent]]:
        """Yield the tokens appended at each step (row indices refer to ``self.rows``)."""
        active = [i for i, r in enumerate(self.rows) if not r.done and r.max_new_tokens > 0]
        for r in self.rows:
            if not r.done and r.max_new_tokens <= 0:
                r.stop_reason = "length"
        if not active:
            return
        t0 = time.perf_counter()
        lengths = [len(self.rows[i].prompt_ids) for i in active]
        L = max(lengths)
        ids = torch.full((len(active), L), self.pad_id, dtype=torch.long)
        attn = torch.zeros((len(active), L), dtype=torch.long)
        for j, i in enumerate(active):
            p = list(self.rows[i].prompt_ids)
            if p:
                ids[j, L - len(p) :] = torch.tensor(p, dtype=torch.long)
                attn[j, L - len(p) :] = 1
        pos = (attn.cumsum(-1) - 1).clamp(min=0)
        ids, attn, pos = ids.to(self.device), attn.to(self.device), pos.to(self.device)
        with torch.inference_mode():
            out = _forward(self.model, ids, attn, pos, None)
        cache = out.past_key_values
        last_pos = pos[:, -1]
        self._ncols = L  # attention columns appended so far (absolute numbering)
        self._trimmed = 0  # columns dropped on the left
        self._hide: dict[int, list[int]] = {}  # row -> columns of backtracked tokens to mask out
        self.stats.prefill_seconds = time.perf_counter() - t0
        t_dec = time.perf_counter()
        width = None
        while True:
            logits = out.logits[:, -1, :]  # (B, V)
            if width is None:
                width = logits.shape[-1]
                if width != self.vocab.size:
                    raise ValueError(
                        f"the model's logits have width {width} but the vocabulary has size {self.vocab.size}"
                    )
            tm = time.perf_counter()
            chosen = self._choose(logits, active)
            self.stats.mask_seconds += time.perf_counter() - tm
            events = []
            for j, i in enumerate(active):
                ev = self._append(i, self.rows[i], chosen[j])
                if ev is not None:
                    events.append(ev)
            self.stats.steps += 1
            self.stats.tokens += len(active)
            yield events
            keep_j = [j for j, i in enumerate(active) if not self.rows[i].done]
            if not keep_j:
                break
            if self._hide:  # backtracked rows: hide the replaced tokens and reuse their positions
                for j, i in enumerate(active):
                    cols = self._hide.pop(i, None)
                    if cols:
                        attn[j, [c - self._trimmed for c in cols]] = 0
                        last_pos[j] -= len(cols)
                self._hide.clear()
            next_tokens = torch.tensor([self.rows[active[j]].token_ids[-1] for j in keep_j], dtype=torch.long)
            if len(keep_j) != len(active):
                keep = torch.tensor(keep_j, dtype=torch.long, device=self.device)
                cache = _select_cache(cache, keep)
                attn = attn.index_select(0, keep)
                last_pos = last_pos.index_select(0, keep)
                active = [active[j] for j in keep_j]
                # left columns masked out for every remaining row carry no information: drop them
                first_live = int(attn.any(dim=0).long().argmax().item())
                if first_live > 0 and hasattr(cache, "layers"):
                    try:
                        for layer in cache.layers:
                            layer.keys = layer.keys[:, :, first_live:, :]
                            layer.values = layer.values[:, :, first_live:, :]
                        attn = attn[:, first_live:]
                        self._trimmed += first_live
                    except AttributeError:
                        pass
            attn = torch.cat([attn, torch.ones((attn.shape[0], 1), dtype=attn.dtype, device=self.device)], dim=1)
            for i in active:
                self.rows[i]._cols.append(self._ncols)
            self._ncols += 1
            last_pos = last_pos + 1
            tf = time.perf_counter()
            with torch.inference_mode():
                out = _forward(self.model, next_tokens.to(self.device).unsqueeze(1), attn, last_pos.unsqueeze(1), cache)
            self.stats.forward_seconds += time.perf_counter() - tf
            cache = out.past_key_values
        self.stats.decode_seconds = time.perf_counter() - t_dec

    # ---- choosing tokens -----------------------------------------------------------------------
    def _choose(self, logits: torch.Tensor, active: list[int]) -> list[int]:
        with torch.inference_mode():
            return self._choose_impl(logits, active)

    def _choose_impl(self, logits: torch.Tensor, active: list[int]) -> list[int]:
        B = len(active)
        V = self.vocab.size
        bitmask_np = allocate_bitmask(B, V)  # (B, ceil(V/32)) int32, all allowed
        masked_rows: list[int] = []
        forced: dict[int, int] = {}
        for j, i in enumerate(active):
            r = self.rows[i]
            if r.matcher is not None and not r.constrained and not r.pending:
                # waiting for start_after: force the delimiter when the budget can no longer wait
                if r.remaining <= len(r.start_after_ids) + r.min_constrained_tokens:
                    r.pending.extend(r.start_after_ids)
            if r.pending:
                forced[j] = r.pending.popleft()
                continue
            if r.constrained:
                r.matcher.fill_bitmask(bitmask_np, j)
                if getattr(r.matcher.engine, "may_dead_end", False) and not bitmask_np[j].any():
                    forced[j] = self._backtrack(i, r)  # a dead end: replace an earlier token
                    continue
                masked_rows.append(j)
            elif r.matcher is not None:
                # before the delimiter: anything but EOS (the constrained value is still owed)
                words = bitmask_np[j].view(np.uint32)
                for e in self._eos_list:
                    words[e >> 5] &= np.uint32(~(1 << (e & 31)) & 0xFFFFFFFF)
                masked_rows.append(j)
        x = logits.float()  # (B, V); a fresh tensor per step, masked in place
        if masked_rows:
            bitmask = torch.from_numpy(bitmask_np).to(x.device)
            _apply_bitmask(x, bitmask, masked_rows, V)
        if not self.params.greedy:
            x = process_logits(x, self.params)
            # Gumbel-max: argmax of log-probs + Gumbel noise is a sample; the descending order of the
            # same keys is a sample without replacement, which the budget check walks on rejection.
            logp = torch.log_softmax(x, dim=-1)  # (B, V)
        out: list[int] = []
        for j, i in enumerate(active):
            if j in forced:
                out.append(forced[j])
                continue
            r = self.rows[i]
            if self.params.greedy:
                keys = x[j]
            else:
                u = torch.rand(V, generator=r.generator, device=x.device).clamp_(min=1e-20)
                keys = logp[j] - torch.log(-torch.log(u))
            t = self._pick_row(r, keys)
            if r.constrained and getattr(r.matcher.engine, "may_dead_end", False):
                if t >= 0:
                    r._trail.append((keys.clone(), len(r.token_ids)))
                elif not r.matcher.is_accepting():  # no token leads to a completion: a dead end
                    t = self._backtrack(i, r)
            out.append(t)
        return out

    def _backtrack(self, i: int, r: Row) -> int:
        """Undo tokens of a dead-ended row and pick a replacement (-1 and ``r.error`` when none)."""
        while True:
            if r.backtracks >= MAX_BACKTRACKS or not r._trail:
                r.error = (
                    f"dead end: no token can follow {r.constrained_text[-80:]!r} and the output is not complete "
                    f"(after {r.backtracks} backtracking tries; a value check of the constraint cannot be met)"
                )
                return -1
            keys, pos = r._trail.pop()
            n = len(r.token_ids) - pos
            if n <= 0 or n > r.matcher.num_accepted:
                continue
            for t in r.token_ids[pos:]:
                del r.out_bytes[len(r.out_bytes) - len(self._visible(t)) :]
            banned = r.token_ids[pos]
            del r.token_ids[pos:]
            r.matcher.rollback(n)
            self._hide.setdefault(i, []).extend(r._cols[-n:])
            del r._cols[-n:]
            for p in [p for p in r._bans if p > pos]:
                del r._bans[p]
            bans = r._bans.setdefault(pos, set())
            bans.add(banned)
            r.backtracks += 1
            k = keys.clone()
            k[list(bans)] = float("-inf")
            t = self._pick_row(r, k)
            if t >= 0:
                r._trail.append((keys, pos))
                return t

    def _pick_row(self, r: Row, keys: torch.Tensor) -> int:
        """The highest-key token that keeps the row valid within its budget (-1: none allowed)."""
        if not r.constrained:
            t = int(torch.argmax(keys).item())
            return -1 if torch.isneginf(keys[t]) else t
        eos = self._eos_list[0] if self._eos_list else -1
        t, rejections = pick_within_budget(
            keys, self.oracle(r), r.matcher.state, r.remaining - 1, self.eos_ids, eos
        )  # fmt: skip
        r.steered += rejections
        return t

    # ---- appending -----------------------------------------------------------------------------
    def _append(self, i: int, r: Row, t: int) -> TokenEvent | None:
        if t < 0:
            # nothing allowed: the constraint is complete without EOS, or the state is dead
            r.stop_reason = "complete" if (r.matcher is not None and r.matcher.is_accepting()) else "error"
            if r.stop_reason == "error":
                r.error = r.error or "no token is allowed"
            return None
        r.token_ids.append(t)
        if t in self.eos_ids and (not r.constrained or r.matcher.is_accepting()):
            if r.constrained:
                r.matcher.accept_token(t)
            if r.matcher is not None and not r.constrained:
                # EOS while waiting for the delimiter can only be a forced or dead end
                r.stop_reason = "error"
                r.error = f"EOS before {r.start_after!r}"
                return TokenEvent(i, t, b"")
            r.stop_reason = "eos"
            return TokenEvent(i, t, b"")
        data = self._visible(t)
        if r.constrained:
            if not r.matcher.accept_token(t):
                r.stop_reason = "error"
                r.error = r.matcher.error or f"token {t} rejected"
                r.token_ids.pop()
                return None
            r.out_bytes += data
            if r.matcher.is_finished() and not getattr(r.matcher.engine, "may_dead_end", False):
                r.stop_reason = "complete"  # (an engine with value checks backtracks at the next step)
            elif r.remaining <= 0:
                r.stop_reason = "length"
            return TokenEvent(i, t, data)
        start = len(r.out_bytes)
        r.out_bytes += data
        if r.matcher is not None:
            self._check_delimiter(r, t, start)
        elif r.stop:
            self._check_stop(r)
        if r.stop_reason is None and r.remaining <= 0:
            r.stop_reason = "length"
        return TokenEvent(i, t, bytes(r.out_bytes[start:]))

    def _check_stop(self, r: Row) -> None:
        buf = bytes(r.out_bytes)
        for s in r.stop:
            sb = s.encode("utf-8")
            k = buf.find(sb, max(0, r._search_from - len(sb)))
            if k >= 0:
                del r.out_bytes[k:]
                r.stop_reason = "stop"
                return
        r._search_from = len(buf)

    def _check_delimiter(self, r: Row, t: int, start: int) -> None:
        delim = (r.start_after or "").encode("utf-8")
        buf = bytes(r.out_bytes)
        k = buf.find(delim, max(0, start - len(delim)))
        if k < 0:
            return
        end = k + len(delim)
        leftover = buf[end:]
        r.constrained = True
        r.constraint_byte_offset = end
        if leftover and not r.matcher.accept_bytes(leftover):
            # the token ran past the delimiter into text the constraint rejects: replace it by the
            # tokens of its text up to the delimiter (it has not been fed to the model yet)
            r.token_ids.pop()
            del r.out_bytes[start:]
            head = self._visible(t)[: end - start]
            toks = list(self._tokenize_bytes(head)) if (self._tokenize_bytes and head) else []
            if not toks:
                r.stop_reason = "error"
                r.error = f"cannot re-tokenize {head!r} after {r.start_after!r}"
                return
            r.token_ids.append(toks[0])
            r.out_bytes += self._visible(toks[0])
            r.pending.extend(toks[1:])
            if r.pending:
                # the delimiter is not complete until the pending tokens are in: rebuild as forced text
                r.constrained = False
                r.constraint_byte_offset = 0
        if r.constrained and r.matcher.is_finished():
            r.stop_reason = "complete"


def greedy_tokenizer(vocab: Any) -> Any:
    """A function ``bytes -> list[int]`` (longest match over the text tokens of ``vocab``; [] if impossible)."""
    from structgen.decoding.budget import token_lookup

    by_bytes, max_len = token_lookup(vocab)

    def tokenize(data: bytes) -> list[int]:
        out = []
        pos = 0
        while pos < len(data):
            for n in range(min(max_len, len(data) - pos), 0, -1):
                tid = by_bytes.get(data[pos : pos + n])
                if tid is not None:
                    out.append(tid)
                    pos += n
                    break
            else:
                return []
        return out

    return tokenize
