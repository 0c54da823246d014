"""``structgen.explain``: the JSON Schema report of :mod:`structgen.frontends.json_schema.explain`
with the automaton layer loaded, so that it reports what ``compile`` does: string regexes whose
DFA would exceed a limit are reported as checks, and empty regions are found as ``compile`` finds them."""

from __future__ import annotations

from typing import Any

from structgen.automaton.lexer import build_lexer_dfa  # (importing it registers the lowering's DFA hooks)
from structgen.frontends.json_schema import regexes as _rx
from structgen.frontends.json_schema.explain import ExplainReport, explain
from structgen.frontends.lark_frontend import prune_grammar
from structgen.limits import Limits


def _build_lexer(grammar: Any, limits: Limits | None) -> None:
    """The lexer ``compile_grammar_engine`` builds for ``grammar`` (pruned the same way)."""
    build_lexer_dfa(prune_grammar(grammar).terminals, limits)


_rx.register_lexer_check(_build_lexer)

__all__ = ["ExplainReport", "explain"]
