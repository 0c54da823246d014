"""compile(vocab, regex=|grammar=|json_schema=|choices=) -> CompiledConstraint, with a fingerprint cache."""

from __future__ import annotations

import hashlib
import re
import threading
import time
from collections import OrderedDict
from typing import Any

from structgen.compile.compiled import CompiledConstraint
from structgen.ir.grammar import Grammar
from structgen.limits import DEFAULT_LIMITS, Limits
from structgen.runtime.engine import TokenEngine
from structgen.spec.specs import ChoiceSpec, GrammarSpec, JsonSchemaSpec, RegexSpec, Spec, spec_fingerprint
from structgen.version import __version__
from structgen.vocab.vocabulary import Vocabulary

_CACHE_SIZE = 64
_cache: OrderedDict[str, CompiledConstraint] = OrderedDict()
_cache_lock = threading.Lock()


def make_spec(
    *,
    regex: str | None = None,
    grammar: str | Grammar | None = None,
    json_schema: Any = None,
    choices: Any = None,
    start: str = "start",
    **options: Any,
) -> Spec:
    """Turn compile()'s keyword arguments into exactly one spec."""
    given = [
        n
        for n, v in (("regex", regex), ("grammar", grammar), ("json_schema", json_schema), ("choices", choices))
        if v is not None
    ]
    if len(given) != 1:
        raise TypeError(f"pass exactly one of regex=, grammar=, json_schema=, choices= (got {given or 'none'})")
    if options and json_schema is None:
        raise TypeError(f"unexpected options {sorted(options)} for a {given[0]} constraint")
    if regex is not None:
        if not isinstance(regex, str):
            raise TypeError(f"regex must be a str, got {type(regex).__name__}")
        return RegexSpec(regex)
    if grammar is not None:
        if isinstance(grammar, Grammar):
            return GrammarSpec(ir=grammar, start=grammar.start)
        if not isinstance(grammar, str):
            raise TypeError(f"grammar must be Lark text or a structgen Grammar, got {type(grammar).__name__}")
        return GrammarSpec(text=grammar, start=start)
    if choices is not None:
        opts = tuple(str(c) for c in choices)
        if not opts:
            raise TypeError("choices must not be empty")
        return ChoiceSpec(opts)
    from structgen.frontends.json_schema.pydantic_source import schema_from_any

    return JsonSchemaSpec.of(schema_from_any(json_schema), **options)


def build_engine(spec: Spec, vocab: Vocabulary, limits: Limits) -> tuple[TokenEngine, dict[str, Any]]:
    """Dispatch a spec to its compiler."""
    if isinstance(spec, RegexSpec):
        from structgen.compile.regex_compiler import compile_regex_engine

        return compile_regex_engine(spec.pattern, vocab, limits), {"kind": "regex"}
    if isinstance(spec, ChoiceSpec):
        from structgen.compile.regex_compiler import compile_regex_engine

        pattern = "|".join(re.escape(c) for c in spec.options)
        return compile_regex_engine(pattern, vocab, limits), {"kind": "choices"}
    if isinstance(spec, GrammarSpec):
        from structgen.compile.grammar_compiler import compile_grammar_engine
        from structgen.frontends.lark_frontend import grammar_from_lark

        ir = spec.ir if spec.ir is not None else grammar_from_lark(spec.text, start=spec.start)
        return compile_grammar_engine(ir, vocab, limits), {"kind": "grammar"}
    if isinstance(spec, JsonSchemaSpec):
        from structgen.compile.json_schema_compiler import compile_json_schema_engine

        return compile_json_schema_engine(spec.schema, vocab, limits, spec.options)
    raise TypeError(f"unknown spec {spec!r}")


def compile(  # noqa: A001 - the public name is fixed by the API contract
    vocab: Vocabulary,
    *,
    regex: str | None = None,
    grammar: str | Grammar | None = None,
    json_schema: Any = None,
    choices: Any = None,
    start: str = "start",
    limits: Limits | None = None,
    cache: bool = True,
    **options: Any,
) -> CompiledConstraint:
    """Compile one constraint against a vocabulary.

    Exactly one of ``regex`` (Python ``re`` subset, whole-output match), ``grammar`` (Lark text or a
    :class:`structgen.ir.grammar.Grammar`), ``json_schema`` (a dict, a pydantic model or a type) or
    ``choices`` (a list of strings). JSON Schema ``options`` are documented in
    :func:`structgen.compile.json_schema_compiler.compile_json_schema_engine`.
    Raises a :class:`structgen.errors.CompileError` subclass; results are cached by fingerprint.
    """
    if not isinstance(vocab, Vocabulary):
        raise TypeError(f"vocab must be a structgen.Vocabulary, got {type(vocab).__name__}")
    limits = limits or DEFAULT_LIMITS
    spec = make_spec(regex=regex, grammar=grammar, json_schema=json_schema, choices=choices, start=start, **options)
    key = hashlib.sha256(f"{spec_fingerprint(spec)}|{vocab.fingerprint}|{limits!r}|{__version__}".encode()).hexdigest()[
        :32
    ]
    if cache:
        with _cache_lock:
            hit = _cache.get(key)
            if hit is not None:
                _cache.move_to_end(key)
                return hit
    t0 = time.perf_counter()
    engine, info = build_engine(spec, vocab, limits)
    compiled = CompiledConstraint(
        spec=spec,
        vocab=vocab,
        engine=engine,
        fingerprint=key,
        limits=limits,
        compile_seconds=time.perf_counter() - t0,
        info=info,
    )
    if cache:
        with _cache_lock:
            _cache[key] = compiled
            while len(_cache) > _CACHE_SIZE:
                _cache.popitem(last=False)
    return compiled
