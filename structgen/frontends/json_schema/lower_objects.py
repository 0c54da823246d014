"""Lowering of object keywords: properties/required, patternProperties key regions,
additionalProperties, propertyNames, min/maxProperties, schema-order and any-order members."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from structgen.errors import LimitExceeded
from structgen.frontends.json_schema import regexes as rx
from structgen.frontends.json_schema.lower_core import (
    ANNOTATIONS,
    MAX_KEY_PATTERNS,
    Frag,
)
from structgen.frontends.json_schema.lower_strings import StringLowering
from structgen.ir.grammar import Sym


@dataclass
class _ObjSpec:
    declared: list[tuple[str, list[Frag], bool]] = field(default_factory=list)
    extras: list[tuple[str, list[Frag]]] = field(default_factory=list)  # (key body regex, value conj)
    min_props: int = 0
    max_props: int | None = None


class ObjectLowering(StringLowering):
    """Lowering of object keywords: properties, required, patternProperties, additionalProperties,
    propertyNames, min/maxProperties."""

    def _object(self, flat: list[Frag], depth: int) -> list[tuple[Sym, ...]]:
        spec = self._object_spec(flat)
        if spec is None:
            return []
        if len(spec.declared) > self.limits.max_schema_properties:
            raise LimitExceeded(
                "max_schema_properties",
                len(spec.declared),
                self.limits.max_schema_properties,
                f"object at {flat[0].pointer}",
            )
        if self.order == "any":
            return self._object_any_order(spec, depth)
        return self._object_schema_order(spec, depth)

    def _object_spec(self, flat: list[Frag]) -> _ObjSpec | None:
        spec = _ObjSpec()
        names: list[str] = []
        required: list[str] = []
        pn_frags: list[Frag] = []
        closed_sides: list[tuple[Frag, dict[str, Any], Any]] = []  # (frag, patternProperties, additionalProperties)
        for f in flat:
            s = f.schema
            props = f.get("properties")
            if isinstance(props, dict):
                self.note(
                    f.pointer, "properties", f"grammar (keys in {'schema' if self.order == 'schema' else 'any'} order)"
                )
                for name in props:
                    if name not in names:
                        names.append(name)
            for r in f.get("required", []) or []:
                if r not in required:
                    required.append(r)
            if f.has("required"):
                self.note(f.pointer, "required", "grammar (key is not optional)")
            pats = f.get("patternProperties") or {}
            add = f.get("additionalProperties", None) if f.has("additionalProperties") else None
            if pats:
                self.note(f.pointer, "patternProperties", "grammar (key regex per pattern)")
            if f.has("additionalProperties"):
                self.note(f.pointer, "additionalProperties", "grammar (extra keys exclude declared names)")
            closed_sides.append((f, pats, add))
            if f.has("propertyNames"):
                pn_frags.append(self.child(f, s["propertyNames"], "propertyNames"))
                self.note(f.pointer, "propertyNames", "checked on declared names; regex on extra keys")
            if f.has("minProperties"):
                spec.min_props = max(spec.min_props, int(s["minProperties"]))
                self.note(f.pointer, "minProperties", "grammar (counted)")
            if f.has("maxProperties"):
                mp = int(s["maxProperties"])
                spec.max_props = mp if spec.max_props is None else min(spec.max_props, mp)
                self.note(f.pointer, "maxProperties", "grammar (counted)")
        if spec.max_props is not None and spec.min_props > spec.max_props:
            self.unsat(flat[0].pointer, f"minProperties {spec.min_props} > maxProperties {spec.max_props}")
            return None
        for r in required:
            if r not in names:
                names.append(r)
        if len(names) > self.limits.max_schema_properties:
            raise LimitExceeded(
                "max_schema_properties", len(names), self.limits.max_schema_properties, f"object at {flat[0].pointer}"
            )

        def value_conj_for(name: str) -> list[Frag] | None:
            out: list[Frag] = []
            for f, pats, add in closed_sides:
                props = f.get("properties")
                matched = False
                if isinstance(props, dict) and name in props:
                    out.append(self.child(f, props[name], "properties", name))
                    matched = True  # patternProperties apply too; additionalProperties does not
                for p, sub in pats.items():
                    if rx.pattern_matches(p, name):
                        out.append(self.child(f, sub, "patternProperties", p))
                        matched = True
                if not matched and add is not None:
                    out.append(self.child(f, add, "additionalProperties"))
            return out

        for name in names:
            conj = value_conj_for(name)
            if conj is None:
                continue
            if pn_frags and not all(self.valid(g, name) for g in pn_frags):
                if name in required:
                    self.unsat(flat[0].pointer, f"required property {name!r} violates propertyNames")
                    return None
                continue
            spec.declared.append((name, conj, name in required))
        # extra keys
        pat_sides = [(f, pats, add) for f, pats, add in closed_sides if pats]
        add_sides = [(f, add) for f, pats, add in closed_sides if add is not None and not pats]
        declared_names = [n for n, _, _ in spec.declared] + [n for n in names if n not in [d[0] for d in spec.declared]]
        if any(add is False for _, add in add_sides):
            return self._with_property_names(spec, [], pn_frags, declared_names, flat)
        if not pat_sides:
            conj = [self.child(f, add, "additionalProperties") for f, add in add_sides]
            body = rx.exclusion_body(declared_names) if declared_names else rx.CHAR + "*"
            spec.extras.append((body, conj))
            return self._with_property_names(spec, spec.extras, pn_frags, declared_names, flat)
        regions = self._key_regions(pat_sides, add_sides, declared_names)
        if regions is None:  # lenient: extra keys unconstrained (looser, never stricter)
            spec.extras.append((rx.exclusion_body(declared_names) if declared_names else rx.CHAR + "*", []))
            return spec
        spec.extras.extend(regions)
        return self._with_property_names(spec, spec.extras, pn_frags, declared_names, flat)

    def _key_regions(
        self, pat_sides: list[tuple[Frag, dict[str, Any], Any]], add_sides: list[tuple[Frag, Any]], declared: list[str]
    ) -> list[tuple[str, list[Frag]]] | None:
        """Extra keys (not declared) split into regions by which patterns they match: a key in
        region ``S`` matches exactly the patterns in ``S`` and its value satisfies all their
        schemas, plus ``additionalProperties`` of every schema none of whose patterns it matches.
        Each region is a key regex of lookaheads (``(?=P")`` inside, ``(?!P")`` outside, names
        excluded), so regions are disjoint and exact. Regions with equal value schemas merge."""
        pats: list[tuple[int, Frag, str, Any, str]] = []  # (side, frag, pattern, subschema, body)
        same: dict[tuple[int, str], int] = {}  # patterns of one side with equal schemas: one union
        for si, (f, pp, _add) in enumerate(pat_sides):
            for p, sub in pp.items():
                try:
                    body = rx.pattern_body_regex(p)
                except rx.PatternError as e:
                    self.refuse(
                        "patternProperties",
                        f"{f.pointer}/patternProperties",
                        f"pattern {p!r} uses {e.construct}",
                    )
                    return None
                key = (si, json.dumps(sub, sort_keys=True, default=str))
                if key in same:
                    j = same[key]
                    pats[j] = (*pats[j][:4], pats[j][4] + "|" + body)
                else:
                    same[key] = len(pats)
                    pats.append((si, f, p, sub, body))
        k = len(pats)
        if k > MAX_KEY_PATTERNS:
            self.refuse(
                "patternProperties",
                pat_sides[0][0].pointer,
                f"{k} patterns on one object (at most {MAX_KEY_PATTERNS}: the key space splits into 2^{k} regions)",
            )
            return None
        base = [self.child(g, a, "additionalProperties") for g, a in add_sides]
        excl = ""
        if declared:
            names = "|".join(rx.json_string_literal_regex(n)[1:-1] for n in declared)
            excl = "(?!(?:" + names + ')")'
        any_body = "(?:" + rx.CANONICAL_CHAR + ")*"
        disjoint = [
            (i, j)
            for i in range(k)
            for j in range(i + 1, k)
            if rx.language_is_empty('"(?=(?:' + pats[i][4] + ')")(?:' + pats[j][4] + ')"', self.limits)
        ]
        groups: dict[tuple, tuple[list[str], list[Frag]]] = {}
        for mask in range(1 << k):
            if any(mask >> i & 1 and mask >> j & 1 for i, j in disjoint):
                continue  # no key matches two disjoint patterns
            inside = [i for i in range(k) if mask >> i & 1]
            conj = list(base)
            closed = False
            for si, (f, _pp, add) in enumerate(pat_sides):
                hits = [i for i in inside if pats[i][0] == si]
                if hits:
                    conj.extend(self.child(f, pats[i][3], "patternProperties", pats[i][2]) for i in hits)
                elif add is False:
                    closed = True
                elif add is not None:
                    conj.append(self.child(f, add, "additionalProperties"))
            if closed:
                continue
            looks = "".join("(?!(?:" + pats[i][4] + ')")' for i in range(k) if i not in inside)
            looks += "".join("(?=(?:" + pats[i][4] + ')")' for i in inside[1:])
            main = pats[inside[0]][4] if inside else any_body
            conj_key = tuple(g.key() for g in conj if g.schema is not True and g.schema != {})
            bodies, _ = groups.setdefault(conj_key, ([], conj))
            bodies.append(looks + "(?:" + main + ")")
        out = []
        for bodies, conj in groups.values():
            if len(bodies) == 1 << k:
                body = any_body
            else:
                bodies = [b for b in bodies if not rx.language_is_empty('"' + excl + "(?:" + b + ')"', self.limits)]
                if not bodies:
                    continue  # e.g. keys matching ^x-id$ but not ^x-
                body = "|".join(bodies)
            out.append((excl + "(?:" + body + ")" if excl or len(bodies) > 1 else body, conj))
        return out

    def _with_property_names(
        self, spec: _ObjSpec, extras: list, pn_frags: list[Frag], declared: list[str], flat: list[Frag]
    ) -> _ObjSpec:
        spec.extras = extras
        if not pn_frags or not extras:
            return spec
        for g in pn_frags:
            gf = self.flatten([g], quiet=True)
            if gf is None:
                spec.extras = []
                return spec
            keys = {k for f in gf for k in f.schema if k not in ANNOTATIONS and k not in f.skip}
            fin = None
            for f in gf:
                if f.has("enum"):
                    fin = list(f.schema["enum"])
                if f.has("const"):
                    fin = [f.schema["const"]]
            if fin is not None:
                # a finite key set: extra keys become optional declared properties
                new = []
                for k in fin:
                    if isinstance(k, str) and k not in declared and all(self.valid(h, k) for h in pn_frags):
                        new.append(k)
                if len(spec.extras) == 1 and spec.extras[0][0].startswith(("(?:", '"', "[")) is not None:
                    conj = spec.extras[0][1]
                    for k in new:
                        spec.declared.append((k, conj, False))
                    spec.extras = []
                    return spec
            if keys <= {"type", "pattern", "minLength", "maxLength", "format", "$$not_string"}:
                types = [f.schema["type"] for f in gf if f.has("type")]
                if any("string" not in ([t] if isinstance(t, str) else t) for t in types):
                    spec.extras = []  # no key is a string of these types (declared names were checked)
                    return spec
                body_pn = self.string_body(gf, [])
                if body_pn is None:
                    spec.extras = []
                    return spec
                # extra keys: each key region intersected with the propertyNames language
                both = [("(?=(?:" + body_pn + ')")(?:' + body + ")", conj) for body, conj in spec.extras]
                spec.extras = [(b, c) for b, c in both if not rx.language_is_empty('"' + b + '"', self.limits)]
                self.note(g.pointer, "propertyNames", "regex (intersected with every extra-key regex)")
                continue
            self.refuse("propertyNames", g.pointer, f"propertyNames with keywords {sorted(keys)}", g)
        return spec

    def _object_schema_order(self, spec: _ObjSpec, depth: int) -> list[tuple[Sym, ...]]:
        n = len(spec.declared)
        max_p = spec.max_props
        cap = max(1, spec.min_props, max_p if max_p is not None else 0)
        if cap > self.limits.max_repeat:
            raise LimitExceeded("max_repeat", cap, self.limits.max_repeat, "minProperties/maxProperties")
        counted = spec.min_props > 1 or max_p is not None
        sep = self.punct(",", depth)
        vals = [self.lower_value(conj, depth + 1) for _, conj, _ in spec.declared]
        extra_syms = [(self._free_key(depth, body), self.lower_value(conj, depth + 1)) for body, conj in spec.extras]
        memo: dict[tuple[int, int], str] = {}

        def bump(c: int) -> int | None:
            if max_p is not None and c + 1 > max_p:
                return None
            return min(c + 1, cap) if counted else 1

        def state_at(i: int, c: int) -> str:
            key = (i, c)
            if key in memo:
                return memo[key]
            name = self.new_rule()
            memo[key] = name
            lead = (sep,) if c > 0 else ()
            if i < n:
                pname, _, req = spec.declared[i]
                nc = bump(c)
                if nc is not None:
                    self.add(
                        name,
                        (
                            *lead,
                            *self.key_syms(json.dumps(pname, ensure_ascii=False), depth),
                            self.rule_sym(vals[i]),
                            self.rule_sym(state_at(i + 1, nc)),
                        ),
                    )
                if not req:
                    self.add(name, (self.rule_sym(state_at(i + 1, c)),))
            else:
                if c > 0 and c >= spec.min_props:
                    self.add(name, ())
                nc = bump(c)
                if nc is not None:
                    for key_syms, vsym in extra_syms:
                        self.add(name, (*lead, *key_syms, self.rule_sym(vsym), self.rule_sym(state_at(n, nc))))
            return name

        alts: list[tuple[Sym, ...]] = []
        if spec.min_props == 0 and not any(req for _, _, req in spec.declared):
            alts.append((self.punct("{}", depth),))
        alts.append((self.punct("{", depth), self.rule_sym(state_at(0, 0)), self.punct("}", depth)))
        return alts

    def _object_any_order(self, spec: _ObjSpec, depth: int) -> list[tuple[Sym, ...]]:
        n = len(spec.declared)
        max_p = spec.max_props
        cap = max(1, spec.min_props, max_p if max_p is not None else 0)
        counted = spec.min_props > 1 or max_p is not None
        budget = (2**n) * (cap + 1 if counted else 2)
        if n > 16 or budget > self.limits.max_grammar_rules // 4:
            raise LimitExceeded(
                "max_grammar_rules",
                budget,
                self.limits.max_grammar_rules // 4,
                f"property_order='any' over {n} properties",
            )
        sep = self.punct(",", depth)
        vals = [self.lower_value(conj, depth + 1) for _, conj, _ in spec.declared]
        extra_syms = [(self._free_key(depth, body), self.lower_value(conj, depth + 1)) for body, conj in spec.extras]
        req_mask = sum(1 << i for i, (_, _, r) in enumerate(spec.declared) if r)
        memo: dict[tuple[int, int], str] = {}

        def bump(c: int) -> int | None:
            if max_p is not None and c + 1 > max_p:
                return None
            return min(c + 1, cap) if counted else 1

        def S(used: int, c: int) -> str:
            key = (used, c)
            if key in memo:
                return memo[key]
            name = self.new_rule()
            memo[key] = name
            lead = (sep,) if c > 0 else ()
            if c > 0 and c >= spec.min_props and used & req_mask == req_mask:
                self.add(name, ())
            nc = bump(c)
            if nc is not None:
                for i, (pname, _, _) in enumerate(spec.declared):
                    if not used >> i & 1:
                        self.add(
                            name,
                            (
                                *lead,
                                *self.key_syms(json.dumps(pname, ensure_ascii=False), depth),
                                self.rule_sym(vals[i]),
                                self.rule_sym(S(used | 1 << i, nc)),
                            ),
                        )
                for key_syms, vsym in extra_syms:
                    self.add(name, (*lead, *key_syms, self.rule_sym(vsym), self.rule_sym(S(used, nc))))
            return name

        alts: list[tuple[Sym, ...]] = []
        if spec.min_props == 0 and req_mask == 0:
            alts.append((self.punct("{}", depth),))
        alts.append((self.punct("{", depth), self.rule_sym(S(0, 0)), self.punct("}", depth)))
        return alts
