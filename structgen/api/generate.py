"""``structgen.generate`` and ``structgen.stream``: constrained generation with transformers causal LMs.

    invoice = structgen.generate(model, "Extract the invoice: ...", schema=Invoice)    # -> Invoice
    data = structgen.generate(model, prompt, json_schema={"type": "object", ...})       # -> dict
    date = structgen.generate(model, prompt, regex=r"\\d{4}-\\d{2}-\\d{2}")                # -> str
    outs = structgen.generate(model, [p1, p2], schema=[A, B])                            # per-row constraints
    for chunk in structgen.stream(model, prompt, schema=Invoice): print(chunk, end="")

The decode loop is :mod:`structgen.decoding.autoregressive` (KV-cached, batched, one packed bitmask
per step). Outputs are always complete: ``max_new_tokens`` steers a constrained row to finish in time
(:mod:`structgen.decoding.budget`), and a budget below the shortest valid output raises
:class:`~structgen.errors.GenerationError` naming the minimum before the model runs.
"""

from __future__ import annotations

import codecs
import json
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from structgen.api.loading import LoadedModel, resolve_model
from structgen.api.prompts import encode, is_batch
from structgen.api.result import GenerationResult
from structgen.errors import GenerationError

DEFAULT_MAX_NEW_TOKENS = 512
SAMPLERS = ("mask", "awrs", "smc")
_KINDS = ("schema", "json_schema", "regex", "grammar", "choices")


# ---- constraints ---------------------------------------------------------------------------------
@dataclass(eq=False)
class Constraint:
    """A compiled constraint plus how to turn its text into the returned value."""

    kind: str  # "pydantic" | "type" | "json_schema" | "regex" | "grammar" | "choices"
    compiled: Any
    target: Any = None  # the pydantic model / type, or the JSON Schema dict

    def parse(self, text: str) -> Any:
        """The validated value of a complete output (raises GenerationError if it does not validate)."""
        try:
            if self.kind == "pydantic":
                return self.target.model_validate_json(text)
            if self.kind == "type":
                from pydantic import TypeAdapter

                return TypeAdapter(self.target).validate_json(text)
            if self.kind == "json_schema":
                import jsonschema

                value = json.loads(text)
                cls = jsonschema.validators.validator_for(self.target)
                cls(self.target).validate(value)
                return value
        except Exception as exc:  # noqa: BLE001 - any validation failure is reported the same way
            raise GenerationError(
                f"the generated output does not validate against the {self.kind} constraint "
                f"({type(exc).__name__}: {str(exc)[:300]}); output was {text[:500]!r}"
            ) from exc
        return text


def _is_pydantic_model(obj: Any) -> bool:
    try:
        from pydantic import BaseModel
    except ImportError:  # pragma: no cover
        return False
    return isinstance(obj, type) and issubclass(obj, BaseModel)


def _schema_kind(schema: Any) -> tuple[str, Any]:
    """(kind, target) of a ``schema=`` value: pydantic model, dict JSON Schema, JSON text or a type."""
    if _is_pydantic_model(schema):
        return "pydantic", schema
    if isinstance(schema, (Mapping, bool)):
        return "json_schema", schema
    if isinstance(schema, str):
        try:
            return "json_schema", json.loads(schema)
        except json.JSONDecodeError as exc:
            raise TypeError(f"schema= got a str that is not JSON Schema text: {exc}") from exc
    return "type", schema


def compile_constraint(
    vocab: Any, kind: str, value: Any, *, limits: Any = None, progress: bool | None = None, **options: Any
) -> Constraint:
    """Compile one ``schema=``/``json_schema=``/``regex=``/``grammar=``/``choices=`` value against ``vocab``."""
    from structgen.api.generator import compile_with_progress

    if kind in ("schema", "json_schema"):
        k, target = _schema_kind(value)
        if kind == "json_schema" and k == "pydantic":
            k = "pydantic"
        if k == "json_schema":
            compiled = compile_with_progress(
                vocab,
                progress=progress,
                limits=limits,
                json_schema=dict(target) if isinstance(target, Mapping) else target,
                **options,
            )
        elif k == "pydantic":
            compiled = compile_with_progress(vocab, progress=progress, limits=limits, json_schema=target, **options)
        else:
            from pydantic import TypeAdapter

            compiled = compile_with_progress(
                vocab, progress=progress, limits=limits, json_schema=TypeAdapter(target).json_schema(), **options
            )
        return Constraint(k, compiled, target)
    if kind == "regex":
        return Constraint("regex", compile_with_progress(vocab, progress=progress, limits=limits, regex=value))
    if kind == "grammar":
        return Constraint("grammar", compile_with_progress(vocab, progress=progress, limits=limits, grammar=value))
    if kind == "choices":
        return Constraint(
            "choices", compile_with_progress(vocab, progress=progress, limits=limits, choices=list(value))
        )
    raise TypeError(f"unknown constraint kind {kind!r}")


def _per_row(kind: str, value: Any, n: int, batch: bool) -> list[Any]:
    """Spread one constraint value over ``n`` rows; a list of length ``n`` gives one per row."""
    if not batch:
        return [value]
    per_row_list = isinstance(value, (list, tuple)) and len(value) == n
    if kind == "choices":
        per_row_list = per_row_list and all(v is None or (isinstance(v, (list, tuple))) for v in value)
    elif kind in ("schema", "json_schema"):
        per_row_list = per_row_list and not isinstance(value, Mapping)
    if per_row_list:
        return list(value)
    return [value] * n


def _constraints_for(
    loaded: LoadedModel,
    kwargs: dict[str, Any],
    n: int,
    batch: bool,
    *,
    limits: Any,
    progress: bool | None,
    options: dict[str, Any],
) -> list[Constraint | None]:
    given = {k: v for k, v in kwargs.items() if v is not None}
    if len(given) > 1:
        raise TypeError(f"pass at most one of schema=, json_schema=, regex=, grammar=, choices= (got {sorted(given)})")
    if not given:
        return [None] * n
    ((kind, value),) = given.items()
    compiled: dict[int, Constraint] = {}
    out: list[Constraint | None] = []
    for v in _per_row(kind, value, n, batch):
        if v is None:
            out.append(None)
            continue
        key = id(v)
        if key not in compiled:
            compiled[key] = compile_constraint(loaded.vocab, kind, v, limits=limits, progress=progress, **options)
        out.append(compiled[key])
    return out


# ---- the request -----------------------------------------------------------------------------------
def _check_sampling(temperature: float, top_p: float | None, top_k: int | None, sampler: str) -> Any:
    from structgen.decoding.sampling import SamplingParams

    if sampler not in SAMPLERS:
        raise ValueError(
            f"sampler={sampler!r} is not available; choose one of {SAMPLERS} "
            '("mask": token masking, the model\'s distribution renormalized over allowed tokens)'
        )
    return SamplingParams(temperature=float(temperature), top_k=top_k, top_p=top_p)


def _prepare_rows(
    loaded: LoadedModel,
    prompts: list[Any],
    constraints: list[Constraint | None],
    *,
    max_new_tokens: int,
    stop: Any,
    seed: int | None,
    constraint_start_after: str | None,
    chat: bool | None,
    system: str | None,
) -> list[Any]:
    from structgen.decoding.autoregressive import Row
    from structgen.decoding.budget import oracle_for
    from structgen.decoding.sampling import make_generators

    if max_new_tokens is None or int(max_new_tokens) < 1:
        raise ValueError(f"max_new_tokens must be a positive integer, got {max_new_tokens!r}")
    max_new_tokens = int(max_new_tokens)
    stops = (stop,) if isinstance(stop, str) else tuple(stop or ())
    if any(not s for s in stops):
        raise ValueError("stop strings must be non-empty")
    delim_ids: tuple[int, ...] = ()
    if constraint_start_after is not None:
        if not constraint_start_after:
            raise ValueError("constraint_start_after must be a non-empty string")
        delim_ids = tuple(
            int(i) for i in loaded.tokenizer(constraint_start_after, add_special_tokens=False)["input_ids"]
        )
    gens = make_generators(seed, len(prompts))
    rows = []
    for i, (p, c) in enumerate(zip(prompts, constraints)):
        ids = encode(loaded.tokenizer, p, chat=chat, system=system)
        matcher = None
        min_tokens = 0
        if c is not None:
            matcher = c.compiled.matcher()
            oracle = oracle_for(c.compiled.engine, loaded.vocab)
            room = max_new_tokens - len(delim_ids)
            u = oracle.upper_bound(matcher.state)
            min_tokens = u if u is not None else 1 << 30
            if u is None or u > room:
                d, exact = oracle.min_tokens(matcher.state)
                min_tokens = d
                if d > room:
                    need = d + len(delim_ids)
                    what = "at least " if exact else "about (search capped) "
                    raise GenerationError(
                        f"max_new_tokens={max_new_tokens} is below the shortest valid output for this constraint: "
                        f"{what}{need} tokens"
                        + (f" ({len(delim_ids)} of them for {constraint_start_after!r})" if delim_ids else "")
                        + f". Raise max_new_tokens to at least {need}."
                    )
        rows.append(
            Row(
                prompt_ids=ids,
                matcher=matcher,
                max_new_tokens=max_new_tokens,
                stop=stops if c is None else (),
                start_after=constraint_start_after if c is not None else None,
                start_after_ids=delim_ids if c is not None else (),
                generator=gens[i],
                min_constrained_tokens=min_tokens,
            )
        )
    return rows


def _finish_row(row: Any, constraint: Constraint | None, stats: Any, compile_s: float, t0: float) -> GenerationResult:
    text = row.text
    if row.stop_reason == "error":
        raise GenerationError(f"generation failed: {row.error}; output so far {text[:300]!r}")
    if constraint is not None:
        if (
            row.matcher is None
            or not row.constrained
            or not row.matcher.is_accepting()
            and not row.matcher.is_terminated()
        ):
            raise GenerationError(
                f"the output ended before the constraint was complete (stop reason {row.stop_reason!r}): {text[:300]!r}"
            )
        ctext = row.constrained_text
        value = constraint.parse(ctext)
    else:
        ctext = text
        value = text
    return GenerationResult(
        value=value,
        text=text,
        constrained_text=ctext,
        reasoning=row.prefix_text,
        token_ids=list(row.token_ids),
        stop_reason=str(row.stop_reason),
        prompt_tokens=len(row.prompt_ids),
        completion_tokens=len(row.token_ids),
        budget_rejections=row.steered,
        compile_seconds=compile_s,
        prefill_seconds=stats.prefill_seconds,
        decode_seconds=stats.decode_seconds,
        total_seconds=time.perf_counter() - t0,
    )


class _Request:
    """Everything between the arguments and the decoder (shared by generate, stream and Generator)."""

    def __init__(
        self,
        model: Any,
        prompt: Any,
        *,
        tokenizer: Any,
        constraint_kwargs: dict[str, Any],
        constraints: list[Constraint | None] | None,
        max_new_tokens: int,
        temperature: float,
        top_p: float | None,
        top_k: int | None,
        seed: int | None,
        stop: Any,
        constraint_start_after: str | None,
        chat: bool | None,
        system: str | None,
        sampler: str,
        limits: Any,
        progress: bool | None,
        options: dict[str, Any],
    ) -> None:
        from structgen.decoding.autoregressive import BatchDecoder, greedy_tokenizer

        self.t0 = time.perf_counter()
        params = _check_sampling(temperature, top_p, top_k, sampler)
        self.loaded = resolve_model(model, tokenizer)
        self.batch = is_batch(prompt)
        prompts = list(prompt) if self.batch else [prompt]
        if self.batch and not prompts:
            raise ValueError("an empty list of prompts")
        t = time.perf_counter()
        if constraints is None:
            constraints = _constraints_for(
                self.loaded,
                constraint_kwargs,
                len(prompts),
                self.batch,
                limits=limits,
                progress=progress,
                options=options,
            )
        elif len(constraints) == 1 and len(prompts) > 1:
            constraints = constraints * len(prompts)
        self.constraints = constraints
        self.compile_seconds = time.perf_counter() - t
        self.rows = _prepare_rows(
            self.loaded,
            prompts,
            constraints,
            max_new_tokens=max_new_tokens,
            stop=stop,
            seed=seed,
            constraint_start_after=constraint_start_after,
            chat=chat,
            system=system,
        )
        self.decoder = BatchDecoder(
            self.loaded.model,
            self.loaded.vocab,
            self.rows,
            params,
            pad_id=self.loaded.pad_id,
            tokenize_bytes=greedy_tokenizer(self.loaded.vocab),
        )

    def results(self) -> list[GenerationResult]:
        return [
            _finish_row(r, c, self.decoder.stats, self.compile_seconds, self.t0)
            for r, c in zip(self.rows, self.constraints)
        ]


_REQUEST_ARGS = (
    *_KINDS,
    "max_new_tokens",
    "temperature",
    "top_p",
    "top_k",
    "seed",
    "stop",
    "constraint_start_after",
    "chat",
    "system",
    "sampler",
    "limits",
    "progress",
)


def _request_kwargs(args: dict[str, Any]) -> dict[str, Any]:
    """The keyword arguments of generate()/stream() that a _Request takes (from their ``locals()``)."""
    return {**{k: args[k] for k in _REQUEST_ARGS}, "options": args["compile_options"]}


def _request(model: Any, prompt: Any, tokenizer: Any, kw: dict[str, Any]) -> _Request:
    constraint_kwargs = {k: kw.pop(k, None) for k in _KINDS}
    return _Request(
        model,
        prompt,
        tokenizer=tokenizer,
        constraint_kwargs=constraint_kwargs,
        constraints=kw.pop("constraints", None),
        **kw,
    )


# ---- public API -------------------------------------------------------------------------------------
def generate(
    model: Any,
    prompt: Any,
    *,
    schema: Any = None,
    json_schema: Any = None,
    regex: Any = None,
    grammar: Any = None,
    choices: Any = None,
    tokenizer: Any = None,
    max_new_tokens: int = DEFAULT_MAX_NEW_TOKENS,
    temperature: float = 0.0,
    top_p: float | None = None,
    top_k: int | None = None,
    seed: int | None = None,
    stop: str | Sequence[str] | None = None,
    return_result: bool = False,
    constraint_start_after: str | None = None,
    chat: bool | None = None,
    system: str | None = None,
    sampler: str = "mask",
    speculation: str | Sequence[str] | bool | None = "auto",
    draft_model: Any = None,
    limits: Any = None,
    progress: bool | None = None,
    **compile_options: Any,
) -> Any:
    """Generate text with ``model`` under at most one constraint and return the parsed value.

    Args:
        model: what :func:`structgen.load` returns, a checkpoint path / ``.gguf`` file / ``"smollm2"``,
            or a transformers causal LM (then pass ``tokenizer=``).
        prompt: a string, a list of chat messages (``[{"role": "user", "content": ...}]``), or a list
            of those for a batch. A string is wrapped as a user message when the tokenizer has a
            chat template (``chat=False`` to send it verbatim).
        schema: a pydantic model (returns a validated instance), a JSON Schema dict (returns a
            validated dict/list) or any type pydantic can describe. ``json_schema``: the same, for
            dicts. ``regex``: a Python-``re``-subset pattern (returns str). ``grammar``: Lark text
            (returns str). ``choices``: a list of strings (returns one of them). None of them: free
            text. For a batch, a list with one value per prompt gives per-row constraints.
        max_new_tokens: the token budget. A constrained output always completes within it (the
            budget steers the last tokens); a budget below the shortest valid output raises
            :class:`GenerationError` naming the minimum before the model runs.
        temperature: 0 (default) is greedy; top_p / top_k filter the masked distribution.
        seed: seeds row ``i`` of the batch with ``seed + i`` (reproducible, batch-independent draws).
        stop: strings that end *unconstrained* output (cut before the stop string).
        return_result: return :class:`GenerationResult` (text, token ids, stop reason, counts,
            timings) instead of the value.
        constraint_start_after: free text until this delimiter (e.g. ``"</think>"``), then the
            constraint; the delimiter is forced when the budget could not otherwise fit the value.
        system: a system message for string prompts under a chat template.
        sampler: ``"mask"`` (token masking, the default), ``"awrs"`` (one sequence with AWRS
            proposals) or ``"smc"`` (AWRS-SMC with ``particles=16``, sampling the model's
            distribution over complete valid outputs; see :mod:`structgen.decoding.smc`).
        speculation: ``"auto"`` (default): the lossless modes where they are safe, i.e. for a single
            constrained prompt with ``sampler="mask"`` and no ``constraint_start_after``: verified
            jump-forward (forced text tokenized canonically, checked as a free draft in the same
            forward pass) plus verified n-gram drafts. Each draft token is accepted only if it is
            the token plain decoding would choose there, so the output is token-identical to
            ``speculation=None`` (greedy, and sampling with the same ``seed``) with fewer model
            calls. A batch of up to 4 such prompts on the CPU runs row by row this way (faster than
            one batched plain decode there); larger or GPU batches and everything else decode
            plainly. ``None`` / ``False`` turn it off.
            Explicit modes (one or several; batches run row by row): ``"jump_forward"`` (forced
            text appended unverified, canonically tokenized: the tokenization can differ from plain
            decoding), ``"jump_forward_verified"``, ``"ngram"`` (prompt-lookup and adaptive n-gram
            drafts) and ``"draft"`` (a smaller ``draft_model`` sharing the tokenizer; lossless
            acceptance). All modes keep the ``max_new_tokens`` guarantee; see
            :mod:`structgen.decoding.speculative`.
        limits / progress / compile_options: passed to :func:`structgen.compile` (a progress bar is
            shown when a compile takes more than a second, unless ``progress=False``).

    Returns:
        The value (or a list of values for a batch), or :class:`GenerationResult` objects.
    """
    particles = int(compile_options.pop("particles", 16))
    if _is_diffusion_model(model):
        return _generate_with_diffusion(
            model,
            prompt,
            tokenizer=tokenizer,
            schema=schema,
            json_schema=json_schema,
            regex=regex,
            grammar=grammar,
            choices=choices,
            max_new_tokens=max_new_tokens,
            temperature=temperature,
            seed=seed,
            return_result=return_result,
        )
    req = _request(
        model,
        prompt,
        tokenizer,
        _request_kwargs(locals()),
    )
    modes = _speculation_modes(speculation)
    if modes == AUTO and sampler == "mask" and _auto_eligible(req):
        results = _run_auto(req, temperature=temperature, top_p=top_p, top_k=top_k, max_new_tokens=max_new_tokens)
    elif modes and modes != AUTO:
        if sampler != "mask":
            raise ValueError(f"speculation={speculation!r} decodes with sampler='mask' only (got {sampler!r})")
        results = _run_speculative(
            req,
            modes,
            draft_model,
            temperature=temperature,
            top_p=top_p,
            top_k=top_k,
            max_new_tokens=max_new_tokens,
        )
    elif sampler != "mask":
        results = _run_sampler(
            req, sampler, temperature=temperature, seed=seed, particles=particles, max_new_tokens=max_new_tokens
        )
    else:
        req.decoder.run()
        results = req.results()
    out: list[Any] = results if return_result else [r.value for r in results]
    return out if req.batch else out[0]


AUTO = frozenset({"auto"})
# what "auto" runs: the lossless modes (verified jump-forward + verified n-gram drafts)
AUTO_MODES = ("jump_forward_verified", "ngram")
AUTO_MAX_BATCH = 4  # "auto" decodes batches up to this size row by row with speculation (CPU only)
_OFF = ("off", "none", "")


def _speculation_modes(speculation: Any) -> frozenset[str]:
    """``speculation=`` as a set of modes: empty (off), :data:`AUTO`, or checked explicit modes."""
    from structgen.decoding.speculative import MODES

    if speculation is None or speculation is False:
        return frozenset()
    if speculation is True:
        return AUTO
    if isinstance(speculation, str):
        if speculation.lower() in _OFF:
            return frozenset()
        if speculation == "auto":
            return AUTO
        speculation = [speculation]
    modes = frozenset(speculation)
    unknown = modes - set(MODES) - {"jump_forward_verified"}
    if unknown:
        raise ValueError(
            f"unknown speculation mode(s) {sorted(unknown)}; choose from {sorted(MODES)}, "
            "'jump_forward_verified', 'auto' or None"
        )
    if "jump_forward" in modes and "jump_forward_verified" in modes:
        raise ValueError("pass one of 'jump_forward' and 'jump_forward_verified', not both")
    return modes


def _auto_eligible(req: _Request) -> bool:
    """Where ``speculation="auto"`` is on: constrained rows without start_after or dead-end-prone value
    checks, and either one prompt or a small batch on the CPU (there, rows one after another with speculation beat one batched
    plain decode; see docs/generate.md, Speculation)."""
    n = len(req.rows)
    small_cpu_batch = n <= AUTO_MAX_BATCH and str(getattr(req.loaded, "device", "cpu")).startswith("cpu")
    return (
        (n == 1 or small_cpu_batch)
        and all(c is not None for c in req.constraints)
        and all(r.matcher is not None and not r.start_after for r in req.rows)
        # value checks that can dead-end (uniqueItems, ...) need the batched loop's backtracking
        and not any(getattr(r.matcher.engine, "may_dead_end", False) for r in req.rows)
    )


def _run_auto(
    req: _Request, *, temperature: float, top_p: float | None, top_k: int | None, max_new_tokens: int
) -> list[GenerationResult]:
    """:data:`AUTO_MODES` row by row; a row the speculative loop cannot finish is decoded plainly."""
    from structgen.decoding.autoregressive import BatchDecoder
    from structgen.decoding.speculative import speculative_generate

    out = []
    for row, constraint in zip(req.rows, req.constraints):
        assert constraint is not None  # checked by _auto_eligible; narrows the type
        state = row.generator.get_state() if row.generator is not None else None
        res = speculative_generate(
            req.loaded,
            list(row.prompt_ids),
            row.matcher,
            mode=("jump_forward", "ngram"),
            jump_verify=True,
            max_new_tokens=max_new_tokens,
            temperature=temperature,
            top_p=top_p,
            top_k=top_k,
            generator=row.generator,
        )
        if res.stop_reason != "error" and (res.matcher.is_accepting() or res.matcher.is_terminated()):
            try:
                out.append(_speculative_result(req, row, constraint, res, list(AUTO_MODES)))
                continue
            except GenerationError:
                pass
        # a dead end, an unsupported cache or an output that does not validate: decode this row again
        # plainly (fresh matcher, same random stream), so "auto" never fails where plain would not
        row.matcher = constraint.compiled.matcher()
        if state is not None:
            row.generator.set_state(state)
        dec = req.decoder
        plain = BatchDecoder(
            dec.model, dec.vocab, [row], dec.params, pad_id=dec.pad_id, tokenize_bytes=dec._tokenize_bytes
        )
        plain.run()
        out.append(_finish_row(row, constraint, plain.stats, req.compile_seconds, req.t0))
    return out


def _speculative_result(
    req: _Request, row: Any, constraint: Constraint | None, res: Any, modes: list[str]
) -> GenerationResult:
    value = constraint.parse(res.text) if constraint is not None else res.text
    return GenerationResult(
        value=value,
        text=res.text,
        constrained_text=res.text,
        reasoning="",
        token_ids=list(res.token_ids),
        stop_reason=res.stop_reason,
        prompt_tokens=len(row.prompt_ids),
        completion_tokens=len(res.token_ids),
        budget_rejections=res.steered,
        compile_seconds=req.compile_seconds,
        prefill_seconds=res.prefill_seconds,
        decode_seconds=res.seconds - res.prefill_seconds,
        total_seconds=time.perf_counter() - req.t0,
        extra={
            "speculation": modes,
            "forward_passes": res.forward_passes,
            "drafted": res.drafted,
            "accepted": res.accepted,
            "jumped": res.jumped,
        },
    )


def _run_speculative(
    req: _Request,
    modes: frozenset[str],
    draft_model: Any,
    *,
    temperature: float,
    top_p: float | None,
    top_k: int | None,
    max_new_tokens: int,
) -> list[GenerationResult]:
    """Explicit ``speculation=...``: each row through :func:`structgen.decoding.speculative.speculative_generate`."""
    from structgen.decoding.speculative import speculative_generate

    verify = "jump_forward_verified" in modes
    loop_modes = (set(modes) - {"jump_forward_verified"}) | ({"jump_forward"} if verify else set())
    if "draft" in loop_modes and draft_model is None:
        raise ValueError("speculation='draft' needs draft_model= (a smaller model sharing the tokenizer)")
    if any(r.start_after for r in req.rows):
        raise ValueError("speculation= does not support constraint_start_after")
    if any(r.stop for r in req.rows):
        raise ValueError("speculation= does not support stop= strings")
    out = []
    for row, constraint in zip(req.rows, req.constraints):
        res = speculative_generate(
            req.loaded,
            list(row.prompt_ids),
            row.matcher,
            mode=tuple(sorted(loop_modes)),
            draft_model=draft_model,
            max_new_tokens=max_new_tokens,
            temperature=temperature,
            top_p=top_p,
            top_k=top_k,
            generator=row.generator,
            jump_verify=verify,
        )
        if res.error:
            raise GenerationError(f"speculative decoding failed: {res.error}; output so far {res.text[:300]!r}")
        if constraint is not None and not (res.matcher.is_accepting() or res.matcher.is_terminated()):
            raise GenerationError(
                f"the output did not complete within max_new_tokens={max_new_tokens} "
                f"(stop reason {res.stop_reason!r}): {res.text[:300]!r}"
            )
        out.append(_speculative_result(req, row, constraint, res, sorted(modes)))
    return out


def _is_diffusion_model(model: Any) -> bool:
    """A masked diffusion LM (structgen.decoding.diffusion.protocol.DiffusionModel), not a causal LM."""
    return hasattr(model, "mask_token_id") and callable(getattr(model, "logits", None)) and hasattr(model, "vocab_size")


def _generate_with_diffusion(
    model: Any,
    prompt: Any,
    *,
    tokenizer: Any,
    schema: Any,
    json_schema: Any,
    regex: Any,
    grammar: Any,
    choices: Any,
    max_new_tokens: int,
    temperature: float,
    seed: int | None,
    return_result: bool,
) -> Any:
    """Route ``generate`` to the diffusion loop (DINGO for regular constraints, CFG infilling for grammars).

    ``max_new_tokens`` is the answer length (rounded up to whole 32-token blocks); the output is
    parsed like the autoregressive path's and an output the constraint rejects raises.
    """
    import re

    from structgen.decoding.diffusion.loop import generate_diffusion

    if tokenizer is None:
        raise TypeError("a diffusion model needs tokenizer= (a transformers tokenizer or a structgen.Vocabulary)")
    if is_batch(prompt):
        raise TypeError("diffusion decoding takes one prompt per call")
    target = schema if schema is not None else json_schema
    target_dict = None
    if target is not None:
        from structgen.frontends.json_schema.pydantic_source import schema_from_any

        target_dict = schema_from_any(target)
    if choices is not None:
        regex = "|".join(re.escape(str(c)) for c in choices)
    block = 32 if max_new_tokens >= 32 else max_new_tokens
    gen_length = -(-max_new_tokens // block) * block
    result = generate_diffusion(
        model,
        tokenizer,
        prompt,
        regex=regex,
        json_schema=target_dict,
        grammar=grammar,
        gen_length=gen_length,
        block_length=block,
        temperature=temperature,
        seed=seed or 0,
    )
    constrained = any(v is not None for v in (regex, target_dict, grammar))
    if constrained and not result.valid:
        raise GenerationError(f"diffusion decoding could not complete the constraint: {result.text[:300]!r}")
    value: Any = result.text
    if target is not None:
        kind = "pydantic" if _is_pydantic_model(target) else ("json_schema" if isinstance(target, Mapping) else "type")
        value = Constraint(kind, None, target if kind != "json_schema" else target_dict).parse(result.text)
    if not return_result:
        return value
    return GenerationResult(
        value=value,
        text=result.text,
        constrained_text=result.text,
        reasoning="",
        token_ids=list(result.token_ids),
        stop_reason="complete",
        prompt_tokens=0,
        completion_tokens=len(result.token_ids),
        decode_seconds=result.forward_seconds + result.dp_seconds,
        extra={"diffusion": result},
    )


def _run_sampler(
    req: _Request, sampler: str, *, temperature: float, seed: int | None, particles: int, max_new_tokens: int
) -> list[GenerationResult]:
    """``sampler="awrs"`` (one sequence, AWRS proposals) or ``"smc"`` (AWRS-SMC over ``particles``,
    then one output drawn from the weighted particles): :mod:`structgen.decoding.smc`.

    These target the model's distribution over *complete valid outputs*; ``max_new_tokens`` counts
    EOS there, and a run whose particles all die raises GenerationError (no budget steering).
    """
    import numpy as np

    from structgen.decoding.lm import TransformersLM
    from structgen.decoding.smc import awrs_generate, smc_generate

    if any(c is None for c in req.constraints):
        raise ValueError(f"sampler={sampler!r} needs a constraint on every row")
    if req.rows and any(r.start_after for r in req.rows):
        raise ValueError(f"sampler={sampler!r} does not support constraint_start_after")
    lm = TransformersLM(req.loaded.model, temperature=float(temperature) if temperature > 0 else 1.0)
    out = []
    for i, (row, c) in enumerate(zip(req.rows, req.constraints)):
        if c is None:  # checked above; narrows the type
            continue
        rng = np.random.default_rng(None if seed is None else seed + i)
        t0 = time.perf_counter()
        if sampler == "awrs":
            res = awrs_generate(lm, list(row.prompt_ids), c.compiled, max_new_tokens=max_new_tokens, rng=rng)
            text = res.texts[0] if res.finished[0] else None
        else:
            res = smc_generate(
                lm, list(row.prompt_ids), c.compiled, particles=particles, max_new_tokens=max_new_tokens, rng=rng
            )
            text = res.sample(rng)
        if text is None:
            raise GenerationError(f"sampler={sampler!r}: no particle finished within max_new_tokens={max_new_tokens}")
        dt = time.perf_counter() - t0
        assert c is not None
        k = res.texts.index(text)
        ids = list(res.samples[k])
        out.append(
            GenerationResult(
                value=c.parse(text),
                text=text,
                constrained_text=text,
                reasoning="",
                token_ids=ids,
                stop_reason="eos",
                prompt_tokens=len(row.prompt_ids),
                completion_tokens=len(ids),
                compile_seconds=req.compile_seconds,
                decode_seconds=dt,
                total_seconds=time.perf_counter() - req.t0,
                extra={
                    "sampler": sampler,
                    "particles": particles if sampler == "smc" else 1,
                    "log_marginal_likelihood": float(getattr(res, "log_marginal_likelihood", float("nan"))),
                },
            )
        )
    return out


@dataclass
class StreamEvent:
    """One step of ``stream(..., partial=True)``: ``text`` is the new chunk, ``partial`` the object so far."""

    text: str
    partial: Any = None
    done: bool = False


class TextStream:
    """Iterator of text chunks (UTF-8 safe: never half a character); ``.result`` is set at the end."""

    def __init__(self, req: _Request, partial: bool) -> None:
        self._req = req
        self._partial = partial
        self.result: GenerationResult | None = None
        self._it = self._run()

    def __iter__(self) -> TextStream:
        return self

    def __next__(self) -> Any:
        return next(self._it)

    def _run(self) -> Iterator[Any]:
        req = self._req
        row = req.rows[0]
        constraint = req.constraints[0]
        decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        hold = max((len(s) for s in row.stop), default=1) - 1
        emitted = 0  # characters of the final text already yielded
        text = ""
        tracker = (
            _PartialTracker(constraint)
            if (self._partial and constraint is not None and constraint.kind == "pydantic")
            else None
        )
        last_partial: Any = None
        for events in req.decoder.steps():
            for ev in events:
                text += decoder.decode(ev.data)
            if row.done:
                break
            safe = len(text) - hold if hold > 0 else len(text)
            if safe > emitted:
                chunk = text[emitted:safe]
                emitted = safe
                if self._partial:
                    p = tracker.update(row.constrained_text) if (tracker is not None and row.constrained) else None
                    if p is not None:
                        last_partial = p
                    yield StreamEvent(chunk, last_partial)
                else:
                    yield chunk
        self.result = req.results()[0]
        final = self.result.text
        tail = final[emitted:]
        if self._partial:
            yield StreamEvent(tail, self.result.value if constraint is not None else None, done=True)
        elif tail:
            yield tail


def stream(
    model: Any,
    prompt: Any,
    *,
    partial: bool = False,
    tokenizer: Any = None,
    max_new_tokens: int = DEFAULT_MAX_NEW_TOKENS,
    temperature: float = 0.0,
    top_p: float | None = None,
    top_k: int | None = None,
    seed: int | None = None,
    stop: str | Sequence[str] | None = None,
    constraint_start_after: str | None = None,
    chat: bool | None = None,
    system: str | None = None,
    sampler: str = "mask",
    limits: Any = None,
    progress: bool | None = None,
    schema: Any = None,
    json_schema: Any = None,
    regex: Any = None,
    grammar: Any = None,
    choices: Any = None,
    **compile_options: Any,
) -> TextStream:
    """Like :func:`generate` for one prompt, but yields text chunks as they are decoded.

    The chunks concatenate to the final text (characters are never split; with ``stop`` strings a
    short tail is held back until it cannot be the start of one). With ``partial=True`` each item is
    a :class:`StreamEvent` whose ``partial`` is, for a pydantic schema, an instance built with
    ``model_construct`` holding exactly the top-level fields that are complete and valid so far; the
    last event has ``done=True`` and the validated object. The stream's ``.result`` is the
    :class:`GenerationResult` once it is exhausted. The schema compiles (and errors surface) when
    ``stream`` is called, before any token is generated.
    """
    if is_batch(prompt):
        raise TypeError("stream() takes one prompt; use generate() for a batch")
    if sampler != "mask":
        raise ValueError(f"stream() decodes with sampler='mask' only (got {sampler!r}); use generate()")
    req = _request(
        model,
        prompt,
        tokenizer,
        _request_kwargs(locals()),
    )
    return TextStream(req, partial)


# ---- partial objects ----------------------------------------------------------------------------------
class _PartialTracker:
    """Top-level fields of a JSON object prefix that are complete (closed by ``,`` or ``}``) and valid."""

    def __init__(self, constraint: Constraint) -> None:
        self.model = constraint.target
        self.fields: dict[str, Any] = {}
        self._by_alias: dict[str, str] = {}
        for name, info in self.model.model_fields.items():
            self._by_alias[info.alias or name] = name
        self._scanned = 0

    def update(self, text: str) -> Any:
        """A ``model_construct`` instance of the complete fields, or None when nothing new completed."""
        pairs = _complete_top_level_pairs(text)
        grew = False
        for key, raw in pairs:
            name = self._by_alias.get(key)
            if name is None or name in self.fields:
                continue
            try:
                value = json.loads(raw)
                probe = self.model.model_construct()
                self.model.__pydantic_validator__.validate_assignment(probe, name, value)
                self.fields[name] = getattr(probe, name)
            except Exception:  # noqa: BLE001 - not valid yet: the field stays out
                continue
            grew = True
        if not grew:
            return None
        return self.model.model_construct(_fields_set=set(self.fields), **self.fields)


def _complete_top_level_pairs(text: str) -> list[tuple[str, str]]:
    """``(key, raw JSON value)`` for each top-level member of an object prefix that is followed by , or }."""
    out: list[tuple[str, str]] = []
    i = text.find("{")
    if i < 0:
        return out
    depth = 0
    in_str = False
    esc = False
    key: str | None = None
    key_start = -1
    value_start = -1
    expecting_key = True
    for j in range(i, len(text)):
        ch = text[j]
        if in_str:
            if esc:
                esc = False
            elif ch == "\\":
                esc = True
            elif ch == '"':
                in_str = False
                if depth == 1 and expecting_key and key_start >= 0:
                    try:
                        key = json.loads(text[key_start : j + 1])
                    except json.JSONDecodeError:
                        key = None
                    key_start = -1
            continue
        if ch == '"':
            in_str = True
            if depth == 1 and expecting_key:
                key_start = j
            continue
        if ch in "{[":
            depth += 1
        elif ch in "}]":
            if depth == 1 and key is not None and value_start >= 0:
                out.append((key, text[value_start:j].strip()))
            depth -= 1
            if depth == 0:
                break
        elif depth == 1 and ch == ":":
            expecting_key = False
            value_start = j + 1
        elif depth == 1 and ch == ",":
            if key is not None and value_start >= 0:
                out.append((key, text[value_start:j].strip()))
            key, value_start, expecting_key = None, -1, True
    return out
