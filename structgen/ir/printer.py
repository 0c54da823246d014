"""Grammar IR -> Lark text: for debugging, and for using Lark's Earley parser as a reference in tests.

``to_lark(grammar)`` writes rules as ``name: sym sym | ...`` and terminals as ``NAME: "literal"`` or
``NAME: /regex/flags``; rule and terminal names are rewritten to Lark's conventions (lowercase
rules, uppercase terminals) when they do not already follow them. An empty alternative is written
as an empty expansion, which Lark reads as epsilon.
"""

from __future__ import annotations

import json
import re

from structgen.ir.grammar import Grammar

_RULE_OK = re.compile(r"^[a-z_][a-z_0-9]*$")
_TERM_OK = re.compile(r"^[A-Z_][A-Z_0-9]*$")


def _lark_literal(text: str) -> str:
    # Lark string literals use Python escapes; json.dumps yields a compatible double-quoted form
    return json.dumps(text, ensure_ascii=False)


def _lark_regex(pattern: str, flags: str = "") -> str:
    out = []
    i = 0
    while i < len(pattern):
        c = pattern[i]
        if c == "\\" and i + 1 < len(pattern):
            out.append(pattern[i : i + 2])
            i += 2
            continue
        if c == "/":
            out.append("\\/")
        elif c == "\n":
            out.append("\\n")
        else:
            out.append(c)
        i += 1
    return "/" + "".join(out) + "/" + flags


def to_lark(grammar: Grammar) -> str:
    """Lark grammar text equivalent to ``grammar`` (start rule named ``start``)."""
    rule_names: dict[str, str] = {}
    term_names: dict[str, str] = {}

    def rn(name: str) -> str:
        if name not in rule_names:
            cand = name if _RULE_OK.match(name) and name != "start" else f"r_{len(rule_names)}"
            rule_names[name] = "start" if name == grammar.start else cand
        return rule_names[name]

    def tn(name: str) -> str:
        if name not in term_names:
            term_names[name] = name if _TERM_OK.match(name) else f"T_{len(term_names)}"
        return term_names[name]

    by_lhs: dict[str, list[str]] = {}
    order: list[str] = []
    for rule in grammar.rules:
        lhs = rn(rule.lhs)
        if lhs not in by_lhs:
            by_lhs[lhs] = []
            order.append(lhs)
        by_lhs[lhs].append(" ".join(tn(s.name) if s.is_terminal else rn(s.name) for s in rule.rhs))
    lines = []
    for lhs in sorted(order, key=lambda n: (n != "start", order.index(n))):
        alts = by_lhs[lhs]
        lines.append(f"{lhs}: " + "\n    | ".join(a for a in alts))
    for t in grammar.terminals:
        prio = f".{t.priority}" if t.priority else ""
        body = _lark_literal(t.pattern) if t.is_literal else _lark_regex(t.pattern, t.flags)
        lines.append(f"{tn(t.name)}{prio}: {body}")
    for name in grammar.ignore:
        lines.append(f"%ignore {tn(name)}")
    return "\n".join(lines) + "\n"
