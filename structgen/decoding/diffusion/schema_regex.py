"""JSON Schema -> regex for *bounded* schemas, so DINGO (a regular-language DP) can enforce them.

Covers the shapes DINGO's JSON-Mode-Eval setting needs: objects with fixed, ordered properties (all
emitted, compact separators), strings (``enum``, ``const``, ``pattern``, ``minLength``/``maxLength``,
``format: date``), integers, numbers, booleans, null, ``enum``/``const`` of scalars, arrays with
``maxItems`` and nested objects. Unbounded recursion (``$ref`` cycles) is not regular: it raises
:class:`structgen.errors.UnsupportedSchema` naming the JSON pointer; use ``grammar=`` (CFG infilling).
"""

from __future__ import annotations

import json
import re
from typing import Any

from structgen.errors import UnsupportedSchema

# a JSON string character: anything but quote, backslash and controls, or a simple escape
_CHAR = r'(?:[^"\\\x00-\x1f]|\\["\\/bfnrt])'
_INT = r"-?(?:0|[1-9][0-9]{0,15})"
_NUM = _INT + r"(?:\.[0-9]{1,15})?(?:[eE][+-]?[0-9]{1,3})?"


def _lit(value: Any) -> str:
    return re.escape(json.dumps(value, separators=(",", ":"), ensure_ascii=False))


def schema_to_regex(schema: Any, pointer: str = "#", *, max_string: int = 64, max_items: int = 8) -> str:
    """A regex whose language is the compact JSON serializations accepted by ``schema`` (bounded part)."""
    if schema is True or schema == {}:
        raise UnsupportedSchema(f"an unconstrained value at {pointer} is not a bounded regular language", pointer)
    if not isinstance(schema, dict):
        raise UnsupportedSchema(f"schema {schema!r} at {pointer} is not an object", pointer)
    if "const" in schema:
        return _lit(schema["const"])
    if "enum" in schema:
        return "(?:" + "|".join(_lit(v) for v in schema["enum"]) + ")"
    for key in ("anyOf", "oneOf"):
        if key in schema:
            alts = [
                schema_to_regex(s, f"{pointer}/{key}/{i}", max_string=max_string, max_items=max_items)
                for i, s in enumerate(schema[key])
            ]
            return "(?:" + "|".join(alts) + ")"
    if "$ref" in schema:
        raise UnsupportedSchema(f"$ref at {pointer} is not supported by the regex path", pointer, "$ref")
    typ = schema.get("type")
    if isinstance(typ, list):
        alts = [
            schema_to_regex({**schema, "type": t}, pointer, max_string=max_string, max_items=max_items) for t in typ
        ]
        return "(?:" + "|".join(alts) + ")"
    if typ == "string":
        if "pattern" in schema:
            pat = schema["pattern"].removeprefix("^").removesuffix("$")
            return '"(?:' + pat + ')"'
        if schema.get("format") == "date":
            return r'"[0-9]{4}-(?:0[1-9]|1[0-2])-(?:0[1-9]|[12][0-9]|3[01])"'
        lo = int(schema.get("minLength", 0))
        hi = int(schema.get("maxLength", max_string))
        return f'"{_CHAR}{{{lo},{hi}}}"'
    if typ == "integer":
        return _INT
    if typ == "number":
        return _NUM
    if typ == "boolean":
        return "(?:true|false)"
    if typ == "null":
        return "null"
    if typ == "array":
        items = schema.get("items", {})
        item = schema_to_regex(items, f"{pointer}/items", max_string=max_string, max_items=max_items)
        lo = int(schema.get("minItems", 0))
        hi = int(schema.get("maxItems", max_items))
        if hi == 0:
            return r"\[\]"
        if lo == 0:
            return rf"\[(?:{item}(?:,{item}){{0,{hi - 1}}})?\]"
        return rf"\[{item}(?:,{item}){{{lo - 1},{hi - 1}}}\]"
    if typ == "object" or "properties" in schema:
        props = schema.get("properties", {})
        parts = []
        for name, sub in props.items():
            val = schema_to_regex(sub, f"{pointer}/properties/{name}", max_string=max_string, max_items=max_items)
            parts.append(_lit(name) + ":" + val)
        return r"\{" + ",".join(parts) + r"\}"
    raise UnsupportedSchema(
        f"schema at {pointer} has no supported type for the regex path: {schema!r}", pointer, "type"
    )
