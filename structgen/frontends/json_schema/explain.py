"""``structgen.explain(schema)``: how every keyword of a schema is enforced, per JSON pointer."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass
class ExplainReport:
    """Per-pointer, per-keyword enforcement of one schema.

    Attributes:
        entries: dicts ``{"pointer", "keyword", "how"}``; ``how`` is one of "grammar ...",
            "regex ...", "literal ...", "union ...", "enforced by a check on completed values ..."
            (``uniqueItems`` and ``oneOf`` the grammar cannot express: the token completing an
            invalid value is rejected), "annotation (ignored)", "refused: ..." (``compile`` raises
            UnsupportedSchema) or "dropped (lenient): ..." (``lenient=True``).
        refused: the entries ``compile`` would refuse (empty: the schema compiles as is).
        error: a schema-level error other than a refusal (invalid, unsatisfiable, limit), or None.
        grammar_rules: size of the lowered grammar (0 when ``error``).
    """

    entries: list[dict[str, str]] = field(default_factory=list)
    refused: list[dict[str, str]] = field(default_factory=list)
    error: str | None = None
    grammar_rules: int = 0

    @property
    def compiles(self) -> bool:
        return self.error is None and not self.refused

    @property
    def checked(self) -> list[dict[str, str]]:
        """The entries enforced by a check on completed values instead of by the grammar."""
        return [e for e in self.entries if e["how"].startswith("enforced by a check on completed values")]

    def to_dict(self) -> dict[str, Any]:
        return {
            "entries": self.entries,
            "refused": self.refused,
            "error": self.error,
            "grammar_rules": self.grammar_rules,
        }

    def __str__(self) -> str:
        rows = [(e["pointer"], e["keyword"], e["how"]) for e in self.entries]
        w1 = max([len(r[0]) for r in rows] + [7])
        w2 = max([len(r[1]) for r in rows] + [7])
        lines = [f"{'pointer':<{w1}}  {'keyword':<{w2}}  how", f"{'-' * w1}  {'-' * w2}  ---"]
        lines += [f"{a:<{w1}}  {b:<{w2}}  {c}" for a, b, c in rows]
        if self.error:
            lines.append(f"error: {self.error}")
        elif self.refused:
            lines.append(
                f"{len(self.refused)} keyword(s) refused: compile raises UnsupportedSchema (lenient=True drops them)"
            )
        else:
            checked = f", {len(self.checked)} by a check on completed values" if self.checked else ""
            lines.append(f"compiles: every keyword enforced ({self.grammar_rules} grammar rules{checked})")
        return "\n".join(lines)


def _as_compiled(low: Any, schema: Any, opts: dict[str, Any], limits: Any) -> Any:
    """The lowering ``compile`` ends up with: when the automaton layer is loaded and the lexer of all
    terminals would exceed ``Limits.max_dfa_states``, the retry with strings checked on completion."""
    from structgen.errors import LimitExceeded
    from structgen.frontends.json_schema import regexes as rx
    from structgen.frontends.json_schema.lowering import relower_for_lexer

    try:
        rx.check_lexer_fits(low.grammar, limits)
    except LimitExceeded as err:
        return relower_for_lexer(err, low, schema, opts, limits)
    return low


def explain(schema: Any, **options: Any) -> ExplainReport:
    """Report how each keyword of ``schema`` (a dict, or a pydantic type) is enforced.

    Takes the options of ``compile`` (``style``, ``property_order``, ``lenient``, ...). Without
    ``lenient=True``, keywords that ``compile`` would refuse are listed as "refused" (the lowering
    continues past them to report everything).
    """
    from structgen.errors import CompileError
    from structgen.frontends.json_schema.lowering import lower_schema
    from structgen.frontends.json_schema.pydantic_source import schema_from_any

    lenient = bool(options.get("lenient", False))
    schema = schema_from_any(schema)
    report = ExplainReport()
    try:
        opts = {k: v for k, v in options.items() if k != "limits"}
        low = lower_schema(schema, dict(opts, lenient=True, _explain=True), options.get("limits"))
        low = _as_compiled(low, schema, dict(opts, lenient=True, _explain=True), options.get("limits"))
    except CompileError as err:
        report.error = f"{type(err).__name__}: {err}"
        return report
    when: dict[tuple[str, str], str] = {}
    if low.checks is not None:
        from structgen.frontends.json_schema.check_plan import CheckPlan

        when = {(c["pointer"], c["keyword"]): c["checked"] for c in CheckPlan(low.checks).describe()}
    for item in low.report:
        entry: dict[str, str] = dict(item)
        if (entry["pointer"], entry["keyword"]) in when:
            entry["how"] += f"; checked {when[(entry['pointer'], entry['keyword'])]}"
        if not lenient and entry["how"].startswith("dropped (lenient): "):
            entry["how"] = "refused: " + entry["how"][len("dropped (lenient): ") :]
            report.refused.append(entry)
        report.entries.append(entry)
    report.grammar_rules = low.num_rules
    return report
