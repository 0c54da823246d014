"""The LLaDA/Dream-style denoising loop with pluggable commit rules.

Semi-autoregressive: the answer of ``gen_length`` masked positions is cut into blocks of
``block_length``; ``steps`` forward passes are split evenly over the blocks; each step commits the
``k`` most confident still-masked positions of the current block (``remasking="low_confidence"``:
softmax probability of the argmax token; ``"random"``: uniform random order). What gets written is
decided by the ``method``:

- ``"none"``: the model's argmax (unconstrained baseline);
- ``"greedy"``: per-position token masking, left to right (valid-prefix check only);
- ``"dingo"``: the optimal DP of :mod:`structgen.decoding.diffusion.dingo` (regex / bounded JSON Schema);
- ``grammar=``: CFG infilling (:mod:`structgen.decoding.diffusion.cfg_infill`): candidates are proposed in
  score order and kept only when the partial output can still be completed to a word of the grammar.

``temperature > 0`` perturbs the log-probabilities with Gumbel noise before the commit rule
(``mode="perturbed"`` in the design note: a perturbed-MAP decoder, not an exact constrained sampler).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from structgen.decoding.diffusion.dingo import DEAD, MASKED, Dingo, Fixed, Free, Row, TokenDFA, greedy_block
from structgen.decoding.diffusion.protocol import DiffusionModel

_DINGO_CACHE: dict[str, Dingo] = {}


@dataclass
class DiffusionResult:
    """One decoded answer.

    ``token_ids`` are the answer tokens before the first EOS; ``answer_ids`` all ``gen_length`` positions;
    ``logprob`` the summed model log-probability of the committed tokens at the step each was committed
    (EOS padding included); ``valid`` whether the constraint engine accepts the output (None when
    unconstrained and no checker was given).
    """

    text: str
    token_ids: list[int]
    answer_ids: list[int]
    logprob: float
    valid: bool | None
    steps: int
    dp_seconds: float = 0.0
    forward_seconds: float = 0.0
    dp_calls: int = 0
    failures: int = 0
    resamples: int = 0
    info: dict[str, Any] = field(default_factory=dict)


def num_transfer_tokens(masked: int, steps: int) -> list[int]:
    """LLaDA's schedule: ``masked // steps`` per step plus one for the first ``masked % steps`` steps."""
    steps = max(1, steps)
    base, rem = divmod(masked, steps)
    return [base + (1 if i < rem else 0) for i in range(steps)]


def _vocab_of(tokenizer_or_vocab: Any, model: DiffusionModel) -> tuple[Any, Any]:
    from structgen.vocab.vocabulary import Vocabulary

    if isinstance(tokenizer_or_vocab, Vocabulary):
        vocab, tok = tokenizer_or_vocab, None
    else:
        tok = tokenizer_or_vocab
        vocab = Vocabulary.from_tokenizer(tok, size=max(int(model.vocab_size), len(tok)))
    mask = int(model.mask_token_id)
    if mask < vocab.num_tokens and mask not in vocab.special_ids:  # the mask id is never text
        vocab = Vocabulary(
            token_bytes=vocab.token_bytes,
            special_ids=vocab.special_ids | {mask},
            eos_ids=vocab.eos_ids,
            size=vocab.size,
            kind=vocab.kind,
            name=vocab.name,
        )
    return vocab, tok


def build_dingo(vocab: Any, *, regex: str | None = None, json_schema: Any = None) -> tuple[Dingo, str]:
    """Compile a regex (or a bounded JSON Schema through :func:`schema_to_regex`) into DINGO tables (cached)."""
    from structgen.compile.compiler import compile as compile_constraint

    if json_schema is not None:
        from structgen.decoding.diffusion.schema_regex import schema_to_regex
        from structgen.spec.specs import JsonSchemaSpec

        regex = schema_to_regex(JsonSchemaSpec.of(json_schema).schema)
    assert regex is not None
    key = f"{vocab.fingerprint}|{regex}"
    d = _DINGO_CACHE.get(key)
    if d is None:
        compiled = compile_constraint(vocab, regex=regex)
        d = Dingo(TokenDFA.from_engine(compiled.engine, vocab))
        _DINGO_CACHE[key] = d
        while len(_DINGO_CACHE) > 16:
            _DINGO_CACHE.pop(next(iter(_DINGO_CACHE)))
    return d, regex


def generate_diffusion(
    model: DiffusionModel,
    tokenizer_or_vocab: Any,
    prompt: Any,
    *,
    regex: str | None = None,
    json_schema: Any = None,
    grammar: Any = None,
    gen_length: int = 64,
    block_length: int = 32,
    steps: int | None = None,
    remasking: str = "low_confidence",
    temperature: float = 0.0,
    method: str | None = None,
    seed: int = 0,
    max_resamples: int = 100,
    dingo: Dingo | None = None,
    checker: Any = None,
) -> DiffusionResult:
    """Decode one answer with a masked diffusion LM under an optional constraint.

    Args:
        model: any :class:`DiffusionModel` (see :mod:`structgen.decoding.diffusion.adapters`).
        tokenizer_or_vocab: a transformers tokenizer or a :class:`structgen.Vocabulary`.
        prompt: text (needs a tokenizer) or a list of token ids.
        regex / json_schema / grammar: at most one constraint; grammar is Lark text (CFG infilling).
        gen_length, block_length, steps: LLaDA's schedule (``gen_length % block_length == 0``).
        remasking: ``"low_confidence"`` or ``"random"``.
        method: ``"dingo"`` (default with regex/json_schema), ``"greedy"``, ``"none"`` (default without a
            constraint), ``"cfg"`` (default with grammar).
    """
    if gen_length % block_length:
        raise ValueError(f"gen_length {gen_length} is not a multiple of block_length {block_length}")
    if remasking not in ("low_confidence", "random"):
        raise ValueError(f"remasking must be 'low_confidence' or 'random', got {remasking!r}")
    n_blocks = gen_length // block_length
    steps = gen_length if steps is None else steps
    if steps % n_blocks:
        raise ValueError(f"steps {steps} is not a multiple of the {n_blocks} blocks")
    steps_per_block = steps // n_blocks
    vocab, tok = _vocab_of(tokenizer_or_vocab, model)
    given = [k for k, v in (("regex", regex), ("json_schema", json_schema), ("grammar", grammar)) if v is not None]
    if len(given) > 1:
        raise TypeError(f"pass at most one of regex=, json_schema=, grammar= (got {given})")
    if method is None:
        method = (
            "cfg"
            if grammar is not None
            else ("dingo" if (regex is not None or json_schema is not None or dingo) else "none")
        )
    if method not in ("dingo", "greedy", "none", "cfg"):
        raise ValueError(f"unknown method {method!r}")
    info: dict[str, Any] = {"method": method}
    if dingo is None and (regex is not None or json_schema is not None):
        dingo, info["regex"] = build_dingo(vocab, regex=regex, json_schema=json_schema)
    if grammar is not None and checker is None:
        from structgen.decoding.diffusion.cfg_infill import InfillChecker

        checker = InfillChecker.from_lark(grammar, vocab)
    if method in ("dingo", "greedy") and dingo is None:
        raise TypeError(f"method {method!r} needs regex= or json_schema=")
    if method == "cfg" and checker is None:
        raise TypeError("method 'cfg' needs grammar=")

    if isinstance(prompt, str):
        if tok is None:
            raise TypeError("a text prompt needs a tokenizer; pass token ids with a Vocabulary")
        prompt_ids = list(tok(prompt, add_special_tokens=False)["input_ids"])
    else:
        prompt_ids = [int(t) for t in prompt]
    mask_id = int(model.mask_token_id)
    p_len = len(prompt_ids)
    x = torch.tensor([prompt_ids + [mask_id] * gen_length], dtype=torch.long)  # (1, P+L)
    gen = torch.Generator().manual_seed(seed)
    width = vocab.size
    forbid = np.zeros(width, dtype=bool)  # never commit the mask id or padding ids
    if mask_id < width:
        forbid[mask_id] = True
    forbid_t = torch.from_numpy(forbid)

    logprob = 0.0
    dp_s = fw_s = 0.0
    dp_calls = failures = resamples = 0
    state = dingo.start if dingo is not None else DEAD
    n_steps = 0
    for b in range(n_blocks):
        lo, hi = b * block_length, (b + 1) * block_length
        sched = num_transfer_tokens(block_length, steps_per_block)
        step_i = 0
        while True:
            ans = x[0, p_len:]
            masked_now = [lo + i for i in (ans[lo:hi] == mask_id).nonzero().flatten().tolist()]
            if not masked_now:
                break
            if step_i >= steps_per_block + 2 * block_length:  # stuck (every candidate rejected)
                info["stuck"] = True
                break
            k = sched[step_i] if step_i < len(sched) else len(masked_now)
            step_i += 1
            if k == 0:
                continue
            k = min(k, len(masked_now))
            t0 = time.perf_counter()
            logits = model.logits(x)[0, p_len:, :width].float().cpu()  # (L, V)
            fw_s += time.perf_counter() - t0
            n_steps += 1
            logits[:, forbid_t] = float("-inf")
            logp = torch.log_softmax(logits, dim=-1)  # (L, V)
            scores = logp
            if temperature > 0:
                u = torch.rand(logp.shape, generator=gen).clamp_(1e-20, 1.0)
                scores = logp / temperature - torch.log(-torch.log(u))
            x0 = scores.argmax(dim=-1)  # (L,)
            if remasking == "low_confidence":
                conf = torch.gather(logp, 1, x0[:, None])[:, 0]
            else:
                conf = torch.rand(gen_length, generator=gen)
            conf_block = torch.full((gen_length,), float("-inf"))
            idx = torch.tensor(masked_now)
            conf_block[idx] = conf[idx]
            sel = torch.topk(conf_block, k).indices.tolist()
            sel_set = set(sel)
            if method == "none":
                for p in sel:
                    x[0, p_len + p] = int(x0[p])
                    logprob += float(logp[p, x0[p]])
                continue
            if method == "cfg":
                for p in sorted(sel, key=lambda q: -float(conf_block[q])):
                    cur = [None if c == mask_id else c for c in x[0, p_len:].tolist()]
                    # candidates in score order: the first max_resamples by rejection, then (never stuck:
                    # the exact check keeps the answer completable, so some token fits) the whole row
                    order = torch.argsort(scores[p], descending=True).tolist()
                    chosen = None
                    for n_try, t in enumerate(order):
                        if not scores[p, t] > float("-inf"):
                            break
                        cur[p] = t
                        if checker.check(cur):
                            chosen = t
                            break
                        if n_try < max_resamples:
                            resamples += 1
                    if chosen is None:
                        failures += 1
                        continue
                    x[0, p_len + p] = chosen
                    logprob += float(logp[p, chosen])
                    if chosen in vocab.eos_ids:  # EOS pads the rest of the answer
                        for q in range(p + 1, gen_length):
                            if int(x[0, p_len + q]) == mask_id:
                                x[0, p_len + q] = chosen
                continue
            rows: list[Row] = []
            for i in range(lo, hi):
                cur_tok = int(ans[i])
                if i in sel_set:
                    rows.append(Free(scores[i].numpy()))
                elif cur_tok == mask_id:
                    rows.append(MASKED)
                else:
                    rows.append(Fixed(cur_tok))
            t0 = time.perf_counter()
            if method == "dingo":
                res = dingo.decode_block(state, rows, remaining=gen_length - hi)  # type: ignore[union-attr]
            else:
                res = greedy_block(dingo, state, rows, remaining=gen_length - hi)  # type: ignore[arg-type]
            dp_s += time.perf_counter() - t0
            dp_calls += 1
            if not res.ok:
                failures += 1
                if method == "dingo":
                    continue  # leave the selected positions masked; retried at the next step
                res_tokens: list[int | None] = [int(x0[lo + j]) if lo + j in sel_set else None for j in range(hi - lo)]
            else:
                res_tokens = list(res.tokens)
            for j, tk in enumerate(res_tokens):
                p = lo + j
                if p in sel_set and tk is not None:
                    x[0, p_len + p] = int(tk)
                    logprob += float(logp[p, int(tk)])
        if dingo is not None and method in ("dingo", "greedy"):
            state = dingo.run(state, x[0, p_len + lo : p_len + hi].tolist()) if state != DEAD else DEAD

    answer = x[0, p_len:].tolist()
    out: list[int] = []
    for t in answer:
        if t in vocab.eos_ids:
            break
        out.append(int(t))
    data = b"".join(vocab.token_bytes[t] if 0 <= t < vocab.num_tokens else b"" for t in out)
    text = data.decode("utf-8", errors="replace")
    valid: bool | None = None
    if dingo is not None:
        valid = dingo.run(dingo.start, answer) != DEAD and bool(dingo.good(0)[dingo.run(dingo.start, answer)])
    elif checker is not None:
        valid = mask_id not in answer and checker.check(answer, complete=True)
    return DiffusionResult(
        text=text,
        token_ids=out,
        answer_ids=answer,
        logprob=logprob,
        valid=valid,
        steps=n_steps,
        dp_seconds=dp_s,
        forward_seconds=fw_s,
        dp_calls=dp_calls,
        failures=failures,
        resamples=resamples,
        info=info,
    )
