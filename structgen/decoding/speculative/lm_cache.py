"""A single-sequence KV cache that follows a token list: feed only what changed, crop what was dropped.

``CachedLM.logits(ids, keep)`` returns the logits of the last ``keep`` positions of ``ids``. It reuses
the longest common prefix of ``ids`` and what the cache already holds, crops the rest (rejected
draft tokens, re-tokenized boundary tokens) and feeds the new suffix in one forward pass.
"""

from __future__ import annotations

from typing import Any

import torch


def crop_cache(cache: Any, length: int) -> Any:
    """Shrink ``cache`` to its first ``length`` positions (in place when possible); returns the cache."""
    current = int(cache.get_seq_length())
    remove = current - length
    if remove <= 0:
        return cache
    try:
        cache.crop(-remove)  # transformers >= 5: a negative count removes that many tokens
    except (ValueError, TypeError):
        cache.crop(length)  # transformers 4.x: the absolute length to keep
    return cache


class CachedLM:
    """A causal LM with one KV cache for one growing (and sometimes shrinking) token sequence.

    Attributes:
        forward_passes: model calls made so far (each feeds one or more tokens).
        fed_tokens: tokens fed to the model in total (prefill included).
    """

    def __init__(self, model: Any) -> None:
        self.model = model
        self.device = next(model.parameters()).device
        self.cache: Any = None
        self.fed: list[int] = []
        self.forward_passes = 0
        self.fed_tokens = 0

    def logits(self, ids: list[int], keep: int = 1) -> torch.Tensor:
        """``(keep, V)`` float logits for the last ``keep`` positions of ``ids`` (``keep <= len(ids)``)."""
        n = len(ids)
        common = 0
        limit = min(len(self.fed), n)
        while common < limit and self.fed[common] == ids[common]:
            common += 1
        # the positions we need logits for must be (re)computed: they cannot come from the cache
        start = min(common, n - keep)
        if self.cache is not None and start < len(self.fed):
            crop_cache(self.cache, start)
            del self.fed[start:]
        new = ids[start:]
        x = torch.tensor([new], dtype=torch.long, device=self.device)
        kwargs: dict[str, Any] = dict(input_ids=x, use_cache=True)
        if self.cache is not None:
            kwargs["past_key_values"] = self.cache
        with torch.inference_mode():
            try:
                out = self.model(**kwargs, logits_to_keep=keep)
            except TypeError:  # models without logits_to_keep
                out = self.model(**kwargs)
        self.cache = out.past_key_values
        self.fed.extend(int(t) for t in new)
        self.forward_passes += 1
        self.fed_tokens += len(new)
        lg = out.logits[0, -keep:, :]  # (keep, V)
        return lg.clone() if lg.dtype == torch.float64 else lg.float().clone()

    def truncate(self, length: int) -> None:
        """Forget cached positions at and after ``length`` (rejected tokens)."""
        if self.cache is not None and length < len(self.fed):
            crop_cache(self.cache, length)
            del self.fed[length:]
