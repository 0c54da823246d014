"""A KV-cached, single-sequence constrained decode loop with jump-forward and speculation.

Each iteration:

1. **jump-forward** (``"jump_forward"``): forced text is appended as canonical tokens (no model call
   of its own: the tokens ride along with the next forward pass);
2. **draft**: n-gram / prompt-lookup (``"ngram"``) and/or a draft model (``"draft"``) propose tokens,
   cut at the first token the grammar forbids;
3. **verify**: one target forward over every token not yet in the KV cache plus the draft, per-position
   masks from a forked matcher, the lossless acceptance rule; rejected tokens are cropped from the
   cache (``DynamicCache.crop``) and never reach the matcher.

With an empty ``mode`` it is plain constrained decoding (one forward per token), the baseline the
speculative modes are tested and benchmarked against. ``jump_verify=True`` turns forced tokens into a
zero-cost *draft* instead (lossless: greedy output equals plain decoding exactly), at the price of
keeping whatever tokenization the target prefers.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import torch

from structgen.decoding.budget import oracle_for, pick_within_budget
from structgen.decoding.sampling import SamplingParams
from structgen.decoding.speculative.draft_model import AdaptiveLength, DraftModel
from structgen.decoding.speculative.jump_forward import Jump, TokenizeBytes, apply_jump, make_tokenize_bytes, plan_jump
from structgen.decoding.speculative.lm_cache import CachedLM
from structgen.decoding.speculative.ngram import NGramTable, ngram_draft, shared_table
from structgen.decoding.speculative.verify import Pick, accept_draft, apply_masks, walk_draft

MODES = frozenset({"jump_forward", "ngram", "draft"})


@dataclass
class SpeculativeResult:
    """Output and counters of one speculative decode.

    Attributes:
        token_ids: generated tokens (EOS included when sampled).
        text: their visible text (special tokens excluded).
        stop_reason: ``"eos"``, ``"complete"`` (no token can follow), ``"length"`` or ``"error"``.
        forward_passes: target-model calls, prefill included.
        drafted / accepted: draft tokens sent to verification / accepted by it.
        jumped: tokens appended by jump-forward without verification.
        steered: tokens the budget check refused (as ``budget_rejections`` in generate()).
        draft_forward_passes: draft-model calls.
        seconds: wall-clock time of the decode.
        matcher: the matcher after the output (fed exactly ``token_ids``), or None.
    """

    token_ids: list[int]
    text: str
    stop_reason: str
    forward_passes: int = 0
    drafted: int = 0
    accepted: int = 0
    jumped: int = 0
    draft_forward_passes: int = 0
    steered: int = 0
    prefill_seconds: float = 0.0
    seconds: float = 0.0
    error: str | None = None
    matcher: Any = None

    @property
    def forwards_per_token(self) -> float:
        return self.forward_passes / max(1, len(self.token_ids))


def _modes(mode: Iterable[str] | str | None) -> frozenset[str]:
    if mode is None:
        return frozenset()
    if isinstance(mode, str):
        mode = {mode}
    modes = frozenset(mode)
    bad = modes - MODES
    if bad:
        raise ValueError(f"unknown speculation mode(s) {sorted(bad)}; choose from {sorted(MODES)}")
    return modes


def speculative_generate(
    loaded: Any,
    prompt_ids: Sequence[int],
    matcher: Any = None,
    *,
    mode: Iterable[str] | str | None = ("jump_forward",),
    draft_model: Any = None,
    max_new_tokens: int = 256,
    temperature: float = 0.0,
    top_p: float | None = None,
    top_k: int | None = None,
    generator: torch.Generator | None = None,
    num_draft_tokens: int = 8,
    ngram_table: NGramTable | None = None,
    jump_verify: bool = False,
    tokenize: TokenizeBytes | None = None,
) -> SpeculativeResult:
    """Decode one sequence from ``prompt_ids`` under ``matcher`` (None: unconstrained) with speculation.

    Args:
        loaded: a :class:`~structgen.api.loading.LoadedModel` (``.model``, ``.tokenizer`` or None, ``.vocab``).
        matcher: a fresh or advanced :class:`~structgen.runtime.matcher.Matcher`; it is advanced in place.
        mode: any of ``"jump_forward"``, ``"ngram"``, ``"draft"`` (empty: plain decoding).
        draft_model: a LoadedModel / transformers model sharing the tokenizer, or a :class:`DraftModel`
            (required for ``"draft"``).
        max_new_tokens: the token budget, steered like the batched loop (structgen.decoding.budget): a
            constrained output closes within it whenever plain decoding would; jumped tokens count.
        temperature, top_p, top_k: as in :class:`~structgen.decoding.sampling.SamplingParams` (0: greedy).
        generator: the sampling stream (CPU ``torch.Generator``). Verified positions draw their keys
            like the batched loop, so ``jump_verify`` / n-gram runs emit what plain decoding emits
            for the same generator.
        num_draft_tokens: n-gram draft length, and the draft model's starting length (it adapts).
        ngram_table: the adaptive table (default: the process-wide one for this vocabulary).
        jump_verify: verify forced tokens like a draft instead of appending them unverified.
        tokenize: ``bytes -> ids`` for forced text (default: the loaded tokenizer, canonical).

    Decode time never raises on the model's output: problems end the decode with ``stop_reason="error"``.
    """
    modes = _modes(mode)
    if max_new_tokens < 0:
        raise ValueError(f"max_new_tokens must be >= 0, got {max_new_tokens}")
    params = SamplingParams(temperature=float(temperature), top_k=top_k, top_p=top_p)
    vocab = loaded.vocab
    drafter: DraftModel | None = None
    if "draft" in modes:
        if draft_model is None:
            raise ValueError("mode 'draft' needs draft_model= (a smaller model sharing the tokenizer)")
        drafter = (
            draft_model
            if isinstance(draft_model, DraftModel)
            else DraftModel(draft_model, k=min(4, num_draft_tokens), max_k=max(4, num_draft_tokens))
        )
    table = None
    if "ngram" in modes:
        table = ngram_table if ngram_table is not None else shared_table(vocab)
    jump = "jump_forward" in modes and matcher is not None
    if jump and tokenize is None:
        tokenize = make_tokenize_bytes(vocab, getattr(loaded, "tokenizer", None))
    ngram_len = AdaptiveLength(min(4, num_draft_tokens), 1, max(4, num_draft_tokens)) if table is not None else None

    t0 = time.perf_counter()
    target = CachedLM(loaded.model)
    prompt = [int(t) for t in prompt_ids]
    out: list[int] = []
    res = SpeculativeResult(token_ids=out, text="", stop_reason="length", matcher=matcher)
    eos = frozenset(int(i) for i in vocab.eos_ids)
    steer = _Steer(matcher, vocab, eos, max_new_tokens, res)
    stop: str | None = None
    if table is not None:
        table.observe(prompt)
    while stop is None:
        remaining = max_new_tokens - len(out)
        if remaining <= 0:
            stop = "length"
            break
        if matcher is not None and matcher.is_finished():
            stop = "complete"
            break
        before = len(prompt) + len(out)
        prefix: list[int] = []
        # 1. jump-forward
        if jump and tokenize is not None:
            plan = plan_jump(matcher, out, tokenize, front_tokens=0 if jump_verify else 1)
            if plan is not None and jump_verify:
                prefix = list(plan.tokens[: remaining - 1])
            elif plan is not None:
                room = max_new_tokens - (len(out) - plan.n_replace)
                if len(plan.tokens) > room:
                    plan = Jump(plan.n_replace, plan.tokens[:room], plan.forced)
                if plan.tokens and steer.jump_fits(plan, len(out)) and apply_jump(matcher, plan):
                    if plan.n_replace:
                        del out[len(out) - plan.n_replace :]
                    out.extend(plan.tokens)
                    res.jumped += len(plan.tokens)
                    before = min(before, len(prompt) + len(out) - len(plan.tokens))
                    if len(out) >= max_new_tokens or matcher.is_finished():
                        stop = "length" if len(out) >= max_new_tokens else "complete"
                        break
        remaining = max_new_tokens - len(out)
        ids = prompt + out
        # 2. drafts (each cut at the first grammar-invalid token)
        budget = remaining - 1 - len(prefix)
        draft: list[int] = list(prefix)
        q_rows: list[torch.Tensor | None] = [None] * len(prefix)
        source: AdaptiveLength | None = None
        if budget > 0 and (table is not None or drafter is not None):
            base = matcher.fork() if matcher is not None else None
            if base is not None and prefix:
                base.accept_tokens(prefix)
            if base is None or not base.is_terminated():
                extra: list[int] = []
                if table is not None and ngram_len is not None:
                    extra = _ngram(base, ids + prefix, min(budget, ngram_len.k), table)
                    source = ngram_len
                if (
                    not extra
                    and drafter is not None
                    and steer.may_sample_draft(base, params, budget + 1, drafter.length.k)
                ):
                    extra, dists = drafter.propose(
                        base, ids + prefix, min(budget, drafter.length.k), params, generator, vocab.size
                    )
                    q_rows.extend(dists)
                    source = drafter.length
                else:
                    q_rows.extend([None] * len(extra))
                draft.extend(extra)
        # 3. verify: one forward over the uncached tail + draft, masks per position
        draft, masks, states = walk_draft(matcher, draft)
        q_rows = q_rows[: len(draft)]
        tf = time.perf_counter()
        try:
            logits = target.logits(ids + draft, keep=len(draft) + 1)  # (k+1, V)
        except Exception as exc:  # noqa: BLE001 - decode time reports, never raises
            res.error = f"{type(exc).__name__}: {exc}"
            stop = "error"
            break
        if target.forward_passes == 1:
            res.prefill_seconds = time.perf_counter() - tf
        if logits.shape[-1] != vocab.size:
            res.error = f"the model's logits have width {logits.shape[-1]} but the vocabulary has size {vocab.size}"
            stop = "error"
            break
        apply_masks(logits, masks)
        n_acc, nxt = accept_draft(logits, draft, params, generator, q_rows, pick=steer.pick(states, len(out)))
        n_model = len(draft) - len(prefix)
        res.drafted += len(draft)
        res.accepted += n_acc
        if source is not None and n_model > 0 and n_acc >= len(prefix):
            source.update(n_model, n_acc - len(prefix))
        accepted = draft[:n_acc]
        for t in accepted:
            if matcher is not None:
                matcher.accept_token(t)
            out.append(t)
            if t in eos:
                stop = "eos"
                break
        if stop is None:
            if nxt < 0:
                ok = matcher is not None and matcher.is_accepting()
                stop = "complete" if ok else "error"
                if not ok:
                    res.error = "no token is allowed"
            else:
                if matcher is not None and not matcher.accept_token(nxt):
                    res.error = matcher.error or f"token {nxt} rejected"
                    stop = "error"
                else:
                    out.append(nxt)
                    if nxt in eos:
                        stop = "eos"
        if table is not None:
            table.observe(prompt + out, start=max(0, before - 2))
    res.stop_reason = stop or "length"
    res.forward_passes = target.forward_passes
    res.draft_forward_passes = drafter.forward_passes if drafter is not None else 0
    res.text = b"".join(
        vocab.token_bytes[t] for t in out if t not in vocab.special_ids and 0 <= t < vocab.num_tokens
    ).decode("utf-8", errors="replace")
    res.seconds = time.perf_counter() - t0
    return res


class _Steer:
    """The token budget of one decode (structgen.decoding.budget), applied at every chosen position."""

    # a sampled draft model's proposals are verified against the unsteered masked target, so it only
    # drafts while every token's completion fits easily: this far (in tokens) from the budget's end
    SAMPLED_DRAFT_MARGIN = 8

    def __init__(self, matcher: Any, vocab: Any, eos: frozenset[int], max_new_tokens: int, res: SpeculativeResult):
        self.matcher = matcher
        self.max_new_tokens = max_new_tokens
        self.eos = eos
        self.eos_fallback = min(eos) if eos else -1
        self.res = res
        self.oracle = oracle_for(matcher.engine, vocab) if matcher is not None else None

    def pick(self, states: list[Any], n_out: int) -> Pick:
        """``pick(i, keys)`` for the verified positions: position ``i`` follows ``n_out + i`` output tokens."""
        oracle = self.oracle
        if oracle is None:
            return _argmax

        def choose(i: int, keys: torch.Tensor) -> int:
            limit = self.max_new_tokens - (n_out + i) - 1
            t, rejections = pick_within_budget(keys, oracle, states[i], limit, self.eos, self.eos_fallback)
            self.res.steered += rejections
            return t

        return choose

    def jump_fits(self, plan: Jump, n_out: int) -> bool:
        """Whether the state after ``plan`` still finishes within the budget left after its tokens."""
        if self.oracle is None:
            return True
        trial = self.matcher.fork()
        if plan.n_replace:
            trial.rollback(plan.n_replace)
        if trial.accept_tokens(plan.tokens) != len(plan.tokens):
            return False
        left = self.max_new_tokens - (n_out - plan.n_replace + len(plan.tokens))
        return self.oracle.feasible(trial.state, left)

    def may_sample_draft(self, base: Any, params: SamplingParams, left: int, k: int) -> bool:
        """Greedy drafts are always verified under the budget; sampled ones only far from its end
        (``left``: tokens left at the draft's first position, ``k``: the draft length)."""
        if params.greedy or self.oracle is None or base is None:
            return True
        u = self.oracle.upper_bound(base.state)
        return u is not None and u + k + self.SAMPLED_DRAFT_MARGIN <= left


def _argmax(_i: int, keys: torch.Tensor) -> int:
    t = int(torch.argmax(keys))
    return -1 if torch.isneginf(keys[t]) else t


def _ngram(matcher: Any, ids: list[int], k: int, table: NGramTable) -> list[int]:
    if matcher is None:
        from structgen.decoding.speculative.ngram import prompt_lookup

        return prompt_lookup(ids, k)
    return ngram_draft(matcher, ids, k, table)
