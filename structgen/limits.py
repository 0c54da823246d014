"""Documented compile-time limits: every bound structgen enforces lives here, with its unit."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Limits:
    """Bounds that stop adversarial or huge constraints with ``LimitExceeded`` instead of a hang.

    Attributes:
        max_dfa_states: states of one byte-level DFA (regex, or a grammar's lexer). A JSON Schema string
            or lexer over it is first retried with string keywords checked on completed strings.
        max_nfa_states: states of the NFA built from one regex before determinization.
        max_repeat: largest explicit repeat count in ``{m,n}`` (regex), ``minItems``/``maxItems`` chains and
            ``minLength``/``maxLength`` regexes (string length bounds above it are checked on the
            completed string instead of refused).
        max_grammar_rules: rules of one grammar after lowering (JSON Schema included). A JSON Schema
            over it with rewritten ``oneOf``s is first retried with those checked on completed values.
        max_schema_depth: nesting depth of a JSON Schema (``$ref`` expansions counted).
        max_schema_properties: properties of one JSON Schema object.
        max_cached_states: token-level states whose masks a compiled constraint keeps in memory.
        max_forced_bytes: length of one ``forced_text()`` answer.
        compile_timeout_s: wall-clock seconds one compile() may take.
    """

    max_dfa_states: int = 50_000
    max_nfa_states: int = 200_000
    max_repeat: int = 10_000
    max_grammar_rules: int = 50_000
    max_schema_depth: int = 64
    max_schema_properties: int = 2_000
    max_cached_states: int = 4_096
    max_forced_bytes: int = 4_096
    compile_timeout_s: float = 30.0


DEFAULT_LIMITS = Limits()
