"""``structgen.explain``: the JSON Schema report of :mod:`structgen.frontends.json_schema.explain`
with the automaton layer loaded, so that it reports what ``compile`` does: string regexes whose
DFA would exceed a limit are reported as checks, and empty regions are found as ``compile`` finds them."""

from __future__ import annotations

from structgen.automaton import lexer as _lexer  # noqa: F401  (registers the lowering's DFA hooks)
from structgen.frontends.json_schema.explain import ExplainReport, explain

__all__ = ["ExplainReport", "explain"]
