"""Training-free drafts: prompt lookup plus an adaptive n-gram table learned online (the ADED idea).

* **Prompt lookup** (Saxena 2023; vLLM ``ngram``): find the most recent earlier occurrence of the
  last ``n`` tokens (``n`` from ``max_ngram`` down to ``min_ngram``) in prompt + output and propose
  what followed it.
* **Adaptive table** (ADED, Liu et al. AAAI 2025, simplified to a greedy chain instead of an MCTS
  tree): counts of the next token after the previous two tokens (and after one), updated with every
  verified output token, shared across requests, so schema structure seen once is drafted next time.
* **Grammar filter**: every draft is walked through a forked matcher and cut at the first token the
  grammar forbids (that token would be rejected by the target anyway: its masked probability is 0).
  Table candidates are pruned with the grammar before one is chosen.
"""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Sequence
from typing import Any


def prompt_lookup(ids: Sequence[int], k: int, *, max_ngram: int = 3, min_ngram: int = 1) -> list[int]:
    """Up to ``k`` tokens that followed the latest earlier occurrence of the longest matching suffix."""
    n_ids = len(ids)
    for n in range(min(max_ngram, n_ids - 1), min_ngram - 1, -1):
        tail = list(ids[n_ids - n :])
        for start in range(n_ids - n - 1, -1, -1):
            if list(ids[start : start + n]) == tail:
                follow = list(ids[start + n : start + n + k])
                if follow:
                    return follow
    return []


class NGramTable:
    """Next-token counts after the previous two tokens (and after one, as back-off); thread-safe.

    ``max_contexts`` bounds memory: when exceeded, the table is cleared of its least-seen half.
    """

    def __init__(self, max_contexts: int = 200_000) -> None:
        self.max_contexts = max_contexts
        self._tri: dict[tuple[int, int], Counter[int]] = {}
        self._bi: dict[int, Counter[int]] = {}
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._tri)

    def observe(self, ids: Sequence[int], start: int = 0) -> None:
        """Count the transitions ending at positions ``start..len(ids)-1`` of ``ids``."""
        with self._lock:
            for i in range(max(start, 1), len(ids)):
                nxt = int(ids[i])
                self._bi.setdefault(int(ids[i - 1]), Counter())[nxt] += 1
                if i >= 2:
                    self._tri.setdefault((int(ids[i - 2]), int(ids[i - 1])), Counter())[nxt] += 1
            if len(self._tri) > self.max_contexts:
                self._shrink()

    def _shrink(self) -> None:
        ranked = sorted(self._tri.items(), key=lambda kv: sum(kv[1].values()), reverse=True)
        self._tri = dict(ranked[: self.max_contexts // 2])
        if len(self._bi) > self.max_contexts:
            ranked_bi = sorted(self._bi.items(), key=lambda kv: sum(kv[1].values()), reverse=True)
            self._bi = dict(ranked_bi[: self.max_contexts // 2])

    def candidates(self, ids: Sequence[int]) -> list[int]:
        """Next-token candidates after ``ids``, most frequent first (tri-gram, then bi-gram counts)."""
        out: list[int] = []
        with self._lock:
            if len(ids) >= 2:
                c = self._tri.get((int(ids[-2]), int(ids[-1])))
                if c:
                    out.extend(t for t, _ in c.most_common(8))
            if len(ids) >= 1:
                c = self._bi.get(int(ids[-1]))
                if c:
                    out.extend(t for t, _ in c.most_common(8) if t not in out)
        return out


_tables: dict[str, NGramTable] = {}
_tables_lock = threading.Lock()


def shared_table(vocab: Any) -> NGramTable:
    """The process-wide table for ``vocab`` (keyed by its fingerprint): learns across requests."""
    key = vocab.fingerprint
    with _tables_lock:
        table = _tables.get(key)
        if table is None:
            table = _tables[key] = NGramTable()
        return table


def filter_draft(matcher: Any, draft: Sequence[int]) -> list[int]:
    """The longest prefix of ``draft`` the grammar allows from ``matcher``'s state (nothing after EOS)."""
    fork = matcher.fork()
    out: list[int] = []
    for t in draft:
        if fork.is_terminated() or not fork.accept_token(int(t)):
            break
        out.append(int(t))
    return out


def ngram_draft(
    matcher: Any,
    ids: Sequence[int],
    k: int,
    table: NGramTable | None = None,
    *,
    max_ngram: int = 3,
    min_ngram: int = 1,
) -> list[int]:
    """Up to ``k`` grammar-valid draft tokens continuing ``ids`` (prompt + output) from ``matcher``'s state.

    Prompt lookup proposes first; its valid prefix is extended token by token with the table's most
    frequent candidate the grammar allows.
    """
    if k <= 0 or matcher.is_terminated():
        return []
    draft = filter_draft(matcher, prompt_lookup(ids, k, max_ngram=max_ngram, min_ngram=min_ngram))
    if table is None or len(draft) >= k:
        return draft
    fork = matcher.fork()
    fork.accept_tokens(draft)
    ctx = list(ids[-2:]) + draft
    eos = fork.vocab.eos_ids
    while len(draft) < k and not fork.is_terminated():
        for t in table.candidates(ctx):
            if t in eos:
                continue  # EOS ends the request: not worth a verification slot
            if fork.accept_token(t):
                draft.append(t)
                ctx.append(t)
                break
        else:
            break
    return draft
