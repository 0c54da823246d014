"""Lowering of the applicators: anyOf/oneOf/if/dependencies distributed into unions,
``not`` rewritten into other keywords (negation), branch shapes for oneOf disjointness."""

from __future__ import annotations

from typing import Any

from structgen.errors import LimitExceeded
from structgen.frontends.json_schema.formats import FORMATS
from structgen.frontends.json_schema.lower_core import (
    ALL_TYPES,
    ANNOTATIONS,
    Frag,
    LowererCore,
    _esc,
    _json_filter,
    _Refused,
)
from structgen.ir.grammar import Sym

# why a oneOf is checked on completed values in the retry of a lowering that hit max_grammar_rules
ONEOF_TOO_LARGE = (
    "the rewrite of overlapping oneOf branches would exceed Limits.max_grammar_rules: the grammar takes their union"
)


class CombinatorLowering(LowererCore):
    """Lowering of the applicators (anyOf, oneOf, if, dependencies) and of ``not``."""

    def _distribute(self, flat: list[Frag], f: Frag, kw: str, depth: int) -> list[tuple[Sym, ...]]:
        rest0 = [g if g is not f else f.without(kw) for g in flat]
        at = flat.index(f) + 1

        class _Rest(list):  # rest + extra keeps the new frags right after f (property order)
            def __add__(self, extra: list) -> list:  # type: ignore[override]
                return list(self[:at]) + list(extra) + list(self[at:])

        rest = _Rest(rest0)
        s = f.schema
        branches: list[list[Frag]] = []
        if kw == "$$anyOf":
            branches = [rest + list(b) for b in s[kw]]
        elif kw == "anyOf":
            self.note(f.pointer, kw, "union of grammar alternatives")
            branches = [rest + [self.child(f, b, kw, i)] for i, b in enumerate(s[kw])]
        elif kw == "oneOf":
            kids = [self.child(f, b, kw, i) for i, b in enumerate(s[kw])]
            branches = self._one_of(rest, kids, f)
        elif kw == "if":
            cond = self.child(f, s["if"], "if")
            then = self.child(f, s["then"], "then") if "then" in s else None
            other = self.child(f, s["else"], "else") if "else" in s else None
            if then is None and other is None:
                self.note(f.pointer, "if", "no effect (no then/else)")
                return [(self.rule_sym(self.lower(tuple(rest), depth)),)]
            neg = self._apply_not(f, s["if"], "if", base=cond)
            if neg is None and not self.lenient:
                pass
            if neg is None:  # refused and dropped: if/then/else is ignored entirely
                return [(self.rule_sym(self.lower(tuple(rest), depth)),)]
            self.note(f.pointer, "if", "rewritten as (if and then) or (not if and else)")
            branches = [rest + ([cond] + ([then] if then else [])), rest + (neg + ([other] if other else []))]
        else:  # dependentRequired / dependentSchemas / dependencies
            entries = list(s[kw].items())
            if len(entries) > 8:
                raise LimitExceeded("max_grammar_rules", 2 ** len(entries), 256, f"expanding {kw} at {f.pointer}")
            self.note(f.pointer, kw, "expanded into a union of cases (property absent / present)")
            branches = [list(rest0)]
            for prop, dep in entries:
                nxt = []
                for b in branches:
                    absent = self.synth(f, {"properties": {prop: False}}, f"/{kw}/{_esc(prop)}")
                    nxt.append(b + [absent])
                    if isinstance(dep, list):
                        present = self.synth(f, {"required": [prop, *dep]}, f"/{kw}/{_esc(prop)}")
                        nxt.append(b + [present])
                    else:
                        present = self.synth(f, {"required": [prop]}, f"/{kw}/{_esc(prop)}")
                        nxt.append(b + [present, self.child(f, dep, kw, prop)])
                branches = nxt
        return [(self.rule_sym(self.lower(tuple(b), depth)),) for b in branches]

    def _one_of(self, rest: list[Frag], kids: list[Frag], f: Frag) -> list[list[Frag]]:
        branches = [rest + [k] for k in kids]
        if len(kids) <= 1:
            self.note(f.pointer, "oneOf", "single branch")
            return branches
        shapes = [self._shape(b) for b in branches]
        ok = True
        for i in range(len(branches)):
            for j in range(i + 1, len(branches)):
                if not self._disjoint(shapes[i], shapes[j], branches[i], branches[j]):
                    ok = False
                    break
            if not ok:
                break
        if ok:
            self.note(f.pointer, "oneOf", "union; exclusivity proven (branches are disjoint)")
            return branches
        if self.oneof_union:  # the retry after the rewrites below made the grammar too large
            self.relax(f, "oneOf", ONEOF_TOO_LARGE)
            return branches
        # exact rewrite: B_i and not B_j for j != i, when every negation is expressible
        self.oneof_rewrites += 1
        out = []
        try:
            for i, b in enumerate(branches):
                extra: list[Frag] = []
                for j, k in enumerate(kids):
                    if j != i:
                        neg = self._apply_not(k, k.schema, "oneOf", base=k, probe=True)
                        extra.extend(neg or [])
                out.append(b + extra)
        except _Refused:
            self.relax(f, "oneOf", "branches not provably disjoint: the grammar takes their union")
            return branches
        self.note(f.pointer, "oneOf", "union of (branch and not other branches)")
        return out

    def _apply_not(
        self, f: Frag, ns: Any, origin: str, base: Frag | None = None, probe: bool = False
    ) -> list[Frag] | None:
        """Frags equivalent to ``not ns``; None if refused (lenient). ``probe`` raises _Refused instead."""
        try:
            return self._negate(base or self.child(f, ns, "not"), 0)
        except _Refused as e:
            if probe:
                raise
            self.refuse(origin, f.pointer, f"cannot express 'not' of this subschema exactly ({e})", f)
            return None

    def _negate(self, g: Frag, level: int) -> list[Frag]:
        """A conjunction of frags equivalent to ``not g`` (disjunctions become ``$$anyOf``)."""
        if level > 12:
            raise _Refused("negation nested too deep")
        s = g.schema
        if s is True:
            return [self.synth(g, False)]
        if s is False:
            return []
        if not isinstance(s, dict):
            raise _Refused("not a schema")
        keys = [
            k
            for k in s
            if k not in ANNOTATIONS
            and k not in g.skip
            and not (k == "format" and (not self.enforce_formats or s[k] not in FORMATS))
        ]
        if self.draft <= 7 and "$ref" in keys:
            keys = ["$ref"]
        if not keys:
            return [self.synth(g, False)]
        groups: list[tuple[str, ...]] = []
        grouped = {
            "properties": ("properties", "patternProperties", "additionalProperties"),
            "patternProperties": ("properties", "patternProperties", "additionalProperties"),
            "additionalProperties": ("properties", "patternProperties", "additionalProperties"),
            "items": ("items", "prefixItems", "additionalItems"),
            "prefixItems": ("items", "prefixItems", "additionalItems"),
            "additionalItems": ("items", "prefixItems", "additionalItems"),
            "contains": ("contains", "minContains", "maxContains"),
            "minContains": ("contains", "minContains", "maxContains"),
            "maxContains": ("contains", "minContains", "maxContains"),
            "if": ("if", "then", "else"),
            "minimum": ("minimum", "exclusiveMinimum") if self.draft <= 4 else ("minimum",),
            "exclusiveMinimum": ("minimum", "exclusiveMinimum") if self.draft <= 4 else ("exclusiveMinimum",),
            "maximum": ("maximum", "exclusiveMaximum") if self.draft <= 4 else ("maximum",),
            "exclusiveMaximum": ("maximum", "exclusiveMaximum") if self.draft <= 4 else ("exclusiveMaximum",),
        }
        for k in keys:
            grp = tuple(x for x in grouped.get(k, (k,)) if x in keys)
            if grp and grp not in groups:
                groups.append(grp)
        cases: list[list[Frag]] = []
        for grp in groups:
            neg = self._negate_group(g, grp, level)
            if neg is None:  # this part is always true: its negation is empty
                continue
            cases.append(neg)
        if not cases:
            return [self.synth(g, False)]
        if len(cases) == 1:
            return cases[0]
        return [self.synth(g, {"$$anyOf": cases})]

    def _negate_group(self, g: Frag, grp: tuple[str, ...], level: int) -> list[Frag] | None:
        s = g.schema
        kw = grp[0]

        if kw == "$ref":
            return self._negate(self.resolve(g, s["$ref"], "$ref"), level + 1)
        if kw == "not":
            return [self.child(g, s["not"], "not")]
        if kw == "anyOf":
            out: list[Frag] = []
            for i, b in enumerate(s["anyOf"]):
                out.extend(self._negate(self.child(g, b, "anyOf", i), level + 1))
            return out
        if kw == "allOf":
            cases = [self._negate(self.child(g, b, "allOf", i), level + 1) for i, b in enumerate(s["allOf"])]
            if not cases:
                return [self.synth(g, False)]
            return cases[0] if len(cases) == 1 else [self.synth(g, {"$$anyOf": cases})]
        if kw == "type":
            ts = {s["type"]} if isinstance(s["type"], str) else set(s["type"])
            if "integer" in ts and "number" not in ts:
                return [self.synth(g, {"type": sorted(ALL_TYPES - ts - {"integer"}), "$$not_integer": True})]
            if "number" in ts:
                ts.add("integer")
            return [self.synth(g, {"type": sorted(ALL_TYPES - ts)})]
        if kw in ("enum", "const"):
            vals = [s["const"]] if kw == "const" else list(s["enum"])
            return [self.synth(g, {"$$exclude": vals})]
        if kw == "required":
            req = list(dict.fromkeys(s["required"]))
            if not req:
                return [self.synth(g, False)]
            cases = [[self.synth(g, {"type": "object", "properties": {r: False}})] for r in req]
            return cases[0] if len(cases) == 1 else [self.synth(g, {"$$anyOf": cases})]
        if grp == ("properties",):
            props = s["properties"]
            if not props:
                return None
            cases = [
                [
                    self.synth(g, {"type": "object", "required": [k]}),
                    self.synth(self.child(g, v, "properties", k), {"properties": {k: {"not": v}}}),
                ]
                for k, v in props.items()
            ]
            for c in cases:  # the inner 'not' is checked now, so refusals surface here
                inner = c[1].schema["properties"]
                ((k, v),) = inner.items()
                self._negate(self.child(g, v["not"], "properties", k), level + 1)
            return cases[0] if len(cases) == 1 else [self.synth(g, {"$$anyOf": cases})]
        bound_neg = {
            "minimum": ("exclusiveMaximum", "number"),
            "exclusiveMinimum": ("maximum", "number"),
            "maximum": ("exclusiveMinimum", "number"),
            "exclusiveMaximum": ("minimum", "number"),
        }
        if len(grp) == 1 and kw in bound_neg and not isinstance(s[kw], bool):
            # the keyword holds for every non-number, so its negation is a number out of bounds
            opp, t = bound_neg[kw]
            return [self.synth(g, {"type": "number", opp: s[kw]})]
        counts = {
            "minLength": ("maxLength", "string", -1),
            "maxLength": ("minLength", "string", 1),
            "minItems": ("maxItems", "array", -1),
            "maxItems": ("minItems", "array", 1),
            "minProperties": ("maxProperties", "object", -1),
            "maxProperties": ("minProperties", "object", 1),
        }
        if kw in counts:
            opp, t, delta = counts[kw]
            n = int(s[kw]) + delta
            if n < 0:  # minX: 0 always holds
                return [self.synth(g, False)]
            return [self.synth(g, {"type": t, opp: n})]  # other types satisfy the keyword
        if kw in ("pattern", "format") and isinstance(s[kw], str):
            if kw == "format" and not (self.enforce_formats and s[kw] in FORMATS):
                return None  # an annotation: always true
            return [self.synth(g, {"type": "string", "$$not_string": [[kw, s[kw]]]})]
        if kw == "uniqueItems" and s[kw] is False:
            return None
        if kw in ("dependentRequired", "dependentSchemas", "dependencies") and not s[kw]:
            return None
        raise _Refused(f"keyword {kw!r} has no exact negation")

    def _shape(self, conj: list[Frag]) -> dict[str, Any]:
        """What the oneOf disjointness test reads of a conjunction (memoized: the same branch
        recurs in every conjunction context of its oneOf). Callers do not mutate the result."""
        key = tuple(f.key() for f in conj)
        hit = self._shapes.get(key)
        if hit is None:
            hit = self._shapes[key] = self._shape_uncached(conj)
            self.keep.append(conj)
        return hit

    def _shape_uncached(self, conj: list[Frag]) -> dict[str, Any]:
        flat = self.flatten(conj, quiet=True)
        shape: dict[str, Any] = {
            "types": set(ALL_TYPES),
            "finite": None,
            "consts": {},
            "required": set(),
            "closed": None,
        }
        if flat is None:
            shape["types"] = set()
            return shape
        for f in flat:
            t = f.get("type")
            if t is not None:
                ts = {t} if isinstance(t, str) else set(t)
                if "number" in ts:
                    ts.add("integer")
                shape["types"] &= ts
            vals = None
            if f.has("const"):
                vals = [f.schema["const"]]
            elif f.has("enum"):
                vals = list(f.schema["enum"])
            if vals is not None:
                shape["finite"] = vals if shape["finite"] is None else _json_filter(shape["finite"], vals)
            for r in f.get("required", []) or []:
                shape["required"].add(r)
            props = f.get("properties")
            if isinstance(props, dict):
                for name, sub in props.items():
                    if isinstance(sub, dict):
                        if "const" in sub:
                            shape["consts"][name] = [sub["const"]]
                        elif "enum" in sub:
                            shape["consts"][name] = list(sub["enum"])
                if f.get("additionalProperties") is False and not f.get("patternProperties"):
                    shape["closed"] = set(props)
            for kw in ("anyOf", "oneOf"):
                if f.has(kw):
                    sub_types: set[str] = set()
                    for i, b in enumerate(f.schema[kw]):
                        sub_types |= self._shape([self.child(f, b, kw, i)])["types"]
                    shape["types"] &= sub_types
        if shape["finite"] is not None:
            shape["finite"] = [v for v in shape["finite"] if all(self.valid(g, v) for g in flat)]
        return shape

    def _disjoint(self, a: dict, b: dict, ca: list[Frag], cb: list[Frag]) -> bool:
        ta, tb = set(a["types"]), set(b["types"])
        if "number" in ta:
            ta.add("integer")
        if "number" in tb:
            tb.add("integer")
        if not (ta & tb):
            return True
        if a["finite"] is not None:
            return not any(self._valid_conj(cb, v) for v in a["finite"])
        if b["finite"] is not None:
            return not any(self._valid_conj(ca, v) for v in b["finite"])
        if (ta & tb) <= {"object"}:
            for name in a["required"] & b["required"]:
                va, vb = a["consts"].get(name), b["consts"].get(name)
                if va is not None and vb is not None and not _json_filter(va, vb):
                    return True
            if a["closed"] is not None and (b["required"] - a["closed"]):
                return True
            if b["closed"] is not None and (a["required"] - b["closed"]):
                return True
        return False
