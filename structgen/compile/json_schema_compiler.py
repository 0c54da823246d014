"""JSON Schema × vocabulary -> token engine: lower the schema to the grammar IR, then compile it.

Called by ``structgen.compile(vocab, json_schema=...)``; options are the keyword arguments of
``compile`` other than the constraint and ``limits``.
"""

from __future__ import annotations

import threading
from typing import Any, cast

from structgen.errors import CompileError, LimitExceeded
from structgen.limits import DEFAULT_LIMITS, Limits
from structgen.runtime.engine import TokenEngine
from structgen.vocab.vocabulary import Vocabulary

OPTIONS = {
    "style": "output formatting: 'default' ({\"a\": 1, \"b\": [1, 2]}), 'compact', 'pretty', 'flexible'",
    "indent": "spaces per level for style='pretty' (default 2)",
    "max_ws": "most whitespace characters around each punctuation mark for style='flexible' (default 4)",
    "property_order": "'schema' (declared order, the default) or 'any' (any order, required enforced, no duplicates)",
    "lenient": "drop keywords that cannot be enforced exactly instead of raising UnsupportedSchema (listed in info['dropped'])",
    "formats": "'enforce' (the default: date-time, date, time, duration, email, hostname, ipv4, ipv6, uri, uri-reference, uuid, json-pointer) or 'ignore'",
    "registry": "{uri: schema} for remote $ref targets (nothing is ever fetched)",
    "draft": "dialect of schemas without $schema: '2020-12' (the default), '2019-09', '7', '6' or '4'",
}


_WARMED: set[Limits] = set()
_WARM_LOCK = threading.Lock()


def _warm_formats(limits: Limits) -> None:
    """Once per process and limits: the lexer DFAs of the enforced ``format`` terminals (date-time,
    email, ipv6, ...; schema-independent, ~50-100 ms in all), which the process-wide terminal cache
    then serves to every schema, as it serves the JSON string and number terminals."""
    from structgen.automaton.lexer import build_lexer_dfa
    from structgen.frontends.json_schema.formats import FORMATS
    from structgen.frontends.json_schema.lowering import lower_schema

    with _WARM_LOCK:
        if limits in _WARMED:
            return
        for name in FORMATS:
            try:
                build_lexer_dfa(lower_schema({"type": "string", "format": name}, {}, limits).grammar.terminals, limits)
            except CompileError:  # tight limits: a schema using this format raises it itself
                continue
        _WARMED.add(limits)


def compile_json_schema_engine(
    schema: Any, vocab: Vocabulary, limits: Limits | None, options: dict[str, Any]
) -> tuple[TokenEngine, dict[str, Any]]:
    """Compile a JSON Schema (dict or bool) into a token engine plus an info dict.

    Options (keyword arguments of ``structgen.compile``): see ``OPTIONS``. Raises
    ``InvalidSchema``, ``UnsatisfiableSchema``, ``UnsupportedSchema`` (naming keyword and JSON
    pointer) or ``LimitExceeded``. ``info`` holds ``draft``, ``style``, grammar sizes, ``dropped``
    (what ``lenient=True`` dropped), ``report`` (how each keyword is enforced, as ``explain``) and
    ``value_checks`` (keywords enforced by a check on completed values, and when each is checked).
    """
    from structgen.compile.grammar_compiler import compile_grammar_engine
    from structgen.frontends.json_schema.lowering import lower_schema, relower_for_lexer
    from structgen.runtime.checked_engine import event_flags

    unknown = sorted(set(options) - set(OPTIONS))
    if unknown:
        raise TypeError(f"unknown JSON Schema option(s) {unknown}; known: {sorted(OPTIONS)}")
    limits = limits or DEFAULT_LIMITS
    if limits not in _WARMED and options.get("formats", "enforce") == "enforce":
        _warm_formats(limits)
    # per-vocabulary token tables of the value checks (cached on the vocabulary, like its trie):
    # built with the first JSON Schema rather than with the first schema that has value checks
    event_flags(vocab)
    lowered = lower_schema(schema, options, limits)
    try:
        engine = cast(TokenEngine, compile_grammar_engine(lowered.grammar, vocab, limits))
    except LimitExceeded as err:
        # the lexer of all terminals together is too large: once more with every pattern/format/length
        # string checked on its completed value (a smaller lexer), or the original error
        lowered = relower_for_lexer(err, lowered, schema, options, limits)
        engine = cast(TokenEngine, compile_grammar_engine(lowered.grammar, vocab, limits))
    checks: list[dict[str, str]] = []
    if lowered.checks is not None:  # relaxed keywords: wrap the grammar with checks on completed values
        from structgen.frontends.json_schema.check_plan import CheckPlan
        from structgen.runtime.checked_engine import CheckedEngine

        plan = CheckPlan(lowered.checks)
        engine = CheckedEngine(engine, vocab, plan)
        checks = plan.describe()
    info = {
        "kind": "json_schema",
        "draft": lowered.draft,
        "style": options.get("style", "default"),
        "property_order": options.get("property_order", "schema"),
        "grammar_rules": lowered.num_rules,
        "grammar_terminals": lowered.num_terminals,
        "dropped": list(lowered.dropped),
        "report": list(lowered.report),
        "value_checks": checks,
    }
    return engine, info
