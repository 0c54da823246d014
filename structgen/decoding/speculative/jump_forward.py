"""Jump-forward: text the grammar forces is appended as canonical tokens, with no sampling.

When every valid continuation starts with the same text (``matcher.forced_text()``), decoding it
token by token wastes model calls and lets the model pick odd tokenizations of it. Instead:

1. **front boundary**: the last output token(s) and the forced text are re-tokenized together with the
   real tokenizer, so a join like ``"`` + ``:`` becomes the ``":`` the model was trained on (the
   replaced tokens are dropped from the output, the matcher and the KV cache);
2. **tail back-off** (llguidance's "fast-forward tokens" guard): a trailing forced token is dropped
   while some token the grammar allows at its start is longer than the text we would emit, i.e. a
   token could span the end of the forced text (``"`` followed by a key's first letters);
3. the surviving tokens are fed to the model in one forward pass (done by the decode loop).

See docs/design/speculation.md and ../shared/design/masks-and-speculation.md (e).
"""

from __future__ import annotations

import weakref
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from structgen.runtime.bitmask import unpack_bitmask

TokenizeBytes = Callable[[bytes], list[int]]

_lengths: weakref.WeakKeyDictionary[Any, np.ndarray] = weakref.WeakKeyDictionary()


def token_lengths(vocab: Any) -> np.ndarray:
    """``(vocab.size,)`` int64 byte length of every token id (0 for padding ids)."""
    arr = _lengths.get(vocab)
    if arr is None:
        arr = np.zeros(vocab.size, dtype=np.int64)
        arr[: vocab.num_tokens] = [len(b) for b in vocab.token_bytes]
        _lengths[vocab] = arr
    return arr


def make_tokenize_bytes(vocab: Any, tokenizer: Any = None) -> TokenizeBytes:
    """``bytes -> token ids``: the real tokenizer when given (canonical), else longest match over ``vocab``.

    Returns ``[]`` when the bytes cannot be tokenized into text tokens that spell them exactly.
    """
    specials = vocab.special_ids
    if tokenizer is not None:

        def tokenize(data: bytes) -> list[int]:
            try:
                text = data.decode("utf-8")
            except UnicodeDecodeError:
                return []
            ids = [int(i) for i in tokenizer.encode(text, add_special_tokens=False)]
            if any(i in specials or not 0 <= i < vocab.num_tokens for i in ids):
                return []
            if b"".join(vocab.token_bytes[i] for i in ids) != data:
                return []
            return ids

        return tokenize
    from structgen.decoding.autoregressive import greedy_tokenizer

    return greedy_tokenizer(vocab)


@dataclass(frozen=True, slots=True)
class Jump:
    """A planned jump: drop the last ``n_replace`` output tokens, then append ``tokens``."""

    n_replace: int
    tokens: tuple[int, ...]
    forced: bytes  # the forced bytes this jump was planned for


def _tail_backoff(matcher: Any, tokens: list[int], min_keep: int, max_backoff: int) -> int:
    """How many of ``tokens`` to keep (``matcher`` is at the state before ``tokens[0]``)."""
    vocab = matcher.vocab
    lens = token_lengths(vocab)
    fork = matcher.fork()
    fork.accept_tokens(tokens)
    keep = len(tokens)
    emitted = sum(len(vocab.token_bytes[t]) for t in tokens)
    backed = 0
    while keep > min_keep and backed < max_backoff:
        last = tokens[keep - 1]
        fork.rollback(1)  # state before ``last``
        words = fork.mask_words()
        allowed = unpack_bitmask(words, vocab.size)  # (V,) bool
        start = emitted - len(vocab.token_bytes[last])
        # tokens longer than what we emit from this start would spill past the forced text's end
        longest = int(lens[allowed].max()) if allowed.any() else 0
        if longest <= emitted - start:
            break
        keep -= 1
        emitted = start
        backed += 1
    return keep


def plan_jump(
    matcher: Any,
    output_ids: Sequence[int],
    tokenize: TokenizeBytes,
    *,
    front_tokens: int = 1,
    max_tail_backoff: int = 2,
) -> Jump | None:
    """The canonical tokens for the text ``matcher`` forces now, or None (nothing forced / no safe jump).

    ``output_ids`` are the generated tokens so far, each accepted by ``matcher`` with ``accept_token``
    (so ``rollback(k)`` undoes the last ``k`` of them). ``front_tokens`` of them may be re-tokenized
    together with the forced text (0 disables it: required when the output cannot change).
    """
    forced = matcher.forced_bytes()
    if not forced:
        return None
    cut = len(forced)  # whole UTF-8 characters only
    while cut > 0:
        try:
            forced[:cut].decode("utf-8")
            break
        except UnicodeDecodeError:
            cut -= 1
    forced = forced[:cut]
    if not forced:
        return None
    vocab = matcher.vocab
    k = min(front_tokens, len(output_ids), matcher.num_accepted)
    while k > 0 and any(t in vocab.special_ids or not 0 <= t < vocab.num_tokens for t in output_ids[-k:]):
        k -= 1
    toks: list[int] = []
    prev: list[int] = []
    while True:
        prev = [int(t) for t in output_ids[len(output_ids) - k :]] if k else []
        prev_bytes = b"".join(vocab.token_bytes[t] for t in prev)
        toks = tokenize(prev_bytes + forced) if (prev_bytes or k == 0) else []
        if toks or k == 0:
            break
        k = 0
    if not toks:
        return None
    base = matcher.fork()
    if k:
        base.rollback(k)
    prev_len = sum(len(vocab.token_bytes[t]) for t in prev)
    # keep at least enough tokens to get past the re-tokenized prefix (else the jump makes no progress)
    covered, min_keep = 0, 0
    for t in toks:
        min_keep += 1
        covered += len(vocab.token_bytes[t])
        if covered > prev_len:
            break
    keep = _tail_backoff(base, toks, min_keep, max_tail_backoff)
    toks = toks[:keep]
    if sum(len(vocab.token_bytes[t]) for t in toks) <= prev_len:
        return None
    common = 0
    while common < min(len(prev), len(toks)) and prev[common] == toks[common]:
        common += 1
    return Jump(n_replace=len(prev) - common, tokens=tuple(toks[common:]), forced=forced)


def apply_jump(matcher: Any, jump: Jump) -> bool:
    """Roll back ``jump.n_replace`` tokens and accept ``jump.tokens``; False (no change) if they do not fit."""
    trial = matcher.fork()
    if jump.n_replace:
        trial.rollback(jump.n_replace)
    if trial.accept_tokens(jump.tokens) != len(jump.tokens):
        return False
    if jump.n_replace:
        matcher.rollback(jump.n_replace)
    matcher.accept_tokens(jump.tokens)
    return True
