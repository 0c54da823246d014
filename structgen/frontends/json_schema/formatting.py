"""Output formatting of JSON Schema constraints: the default style, the presets and canonical text.

Styles (``compile(vocab, json_schema=..., style=...)``):

* ``"default"``: ``{"a": 1, "b": [1, 2]}``, the separators ``", "`` and ``": "`` of Python's
  ``json.dumps`` and of most model outputs, on one line.
* ``"compact"``: ``{"a":1,"b":[1,2]}``.
* ``"pretty"``: newlines and ``indent`` spaces per level, like ``json.dumps(value, indent=2)``;
  nesting is limited to ``Limits.max_schema_depth`` levels.
* ``"flexible"``: any whitespace (space, tab, newline, CR) up to ``max_ws`` characters around each
  punctuation mark; always bounded.

Canonical text (``dumps``) is the serialization the default style accepts for a value: numbers in
positional notation (no exponent; an integral float keeps ``.0``), strings as
``json.dumps(s, ensure_ascii=False)``, object keys in the value's order.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from structgen.frontends.json_schema.regexes import literal_regex

STYLES = ("default", "compact", "pretty", "flexible")


@dataclass(frozen=True, slots=True)
class Style:
    """One output formatting. Punctuation is ``(text, is_regex)``; ``depth`` matters only for pretty."""

    name: str = "default"
    indent: int = 2
    max_ws: int = 4

    @staticmethod
    def of(options: dict[str, Any]) -> Style:
        name = options.get("style", "default")
        if name not in STYLES:
            raise ValueError(f"style must be one of {STYLES}, got {name!r}")
        indent = int(options.get("indent", 2))
        max_ws = int(options.get("max_ws", 4))
        if indent < 0 or max_ws < 0:
            raise ValueError(f"indent and max_ws must be >= 0 (got {indent}, {max_ws})")
        return Style(name, indent, max_ws)

    @property
    def depth_dependent(self) -> bool:
        return self.name == "pretty"

    def _ws(self) -> str:
        return "[ \\t\\n\\r]{0," + str(self.max_ws) + "}"

    def punct(self, what: str, depth: int) -> tuple[str, bool]:
        """``what`` in {"{", "}", "[", "]", ",", ":", "{}", "[]"} at nesting ``depth``."""
        n = self.name
        if n == "flexible":
            ws = self._ws()
            table = {
                "{": "\\{" + ws,
                "}": ws + "\\}",
                "[": "\\[" + ws,
                "]": ws + "\\]",
                ",": ws + "," + ws,
                ":": ws + ":" + ws,
                "{}": "\\{" + ws + "\\}",
                "[]": "\\[" + ws + "\\]",
            }
            return table[what], True
        if n == "compact":
            return what, False
        if n == "pretty":
            inner = "\n" + " " * (self.indent * (depth + 1))
            outer = "\n" + " " * (self.indent * depth)
            table = {
                "{": "{" + inner,
                "[": "[" + inner,
                "}": outer + "}",
                "]": outer + "]",
                ",": "," + inner,
                ":": ": ",
            }
            return table.get(what, what), False
        return {",": ", ", ":": ": "}.get(what, what), False

    def key_sep_regex(self) -> str:
        text, is_rx = self.punct(":", 0)
        return text if is_rx else literal_regex(text)


def number_text(value: int | float | Decimal) -> str:
    """Canonical positional spelling of a JSON number (integral values without a fraction)."""
    if isinstance(value, bool):
        raise TypeError("bool is not a number")
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if math.isnan(value) or math.isinf(value):
            raise ValueError(f"{value} is not a JSON number")
        d = Decimal(repr(value))
    else:
        d = value
    if d == d.to_integral_value():
        # an integral float keeps its ".0": draft 4 tells 1.0 from 1 (later drafts accept both)
        return str(int(d)) + (".0" if isinstance(value, float) else "")
    return format(d.normalize(), "f")


def dumps(value: Any, style: Style | str = "default", depth: int = 0) -> str:
    """Canonical text of ``value`` in ``style`` (flexible: as the default style)."""
    if isinstance(style, str):
        style = Style(style)

    def p(what: str, d: int) -> str:
        if style.name == "flexible":
            return {",": ", ", ":": ": "}.get(what, what)
        return style.punct(what, d)[0]

    def go(v: Any, d: int) -> str:
        if v is None:
            return "null"
        if v is True:
            return "true"
        if v is False:
            return "false"
        if isinstance(v, (int, float, Decimal)):
            return number_text(v)
        if isinstance(v, str):
            return json.dumps(v, ensure_ascii=False)
        if isinstance(v, (list, tuple)):
            if not v:
                return "[]"
            return p("[", d) + p(",", d).join(go(x, d + 1) for x in v) + p("]", d)
        if isinstance(v, dict):
            if not v:
                return "{}"
            items = [json.dumps(str(k), ensure_ascii=False) + p(":", d) + go(x, d + 1) for k, x in v.items()]
            return p("{", d) + p(",", d).join(items) + p("}", d)
        raise TypeError(f"not a JSON value: {type(v).__name__}")

    return go(value, depth)
