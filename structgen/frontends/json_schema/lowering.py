"""JSON Schema -> grammar IR, every keyword enforced exactly or refused by name.

How a schema is lowered:

1. A node to lower is a *conjunction* of schema fragments (``Frag``: a subschema, the resolver
   that knows its base URI, its JSON pointer). ``$ref`` and ``allOf`` add fragments, so ``allOf``
   is a real intersection (keyword by keyword), never a concatenation.
2. ``anyOf``/``oneOf``/``if``/``dependentRequired``/``dependentSchemas`` are distributed: the
   conjunction becomes a union of conjunctions, one per case. ``oneOf`` is accepted when its
   branches are proven disjoint (types, finite value sets checked against the other branches,
   discriminator constants, closed objects), else rewritten as ``B_i and not B_j`` when every
   ``not`` is expressible, else relaxed to the union and checked on completed values (5.).
   if/then/else becomes ``(if and then) or (not if and else)``.
3. A conjunction without applicators is lowered per JSON type: one grammar alternative per
   allowed type; strings and numbers become single terminals (regexes over JSON text), objects
   and arrays become rules (properties in schema order, counters for min/max, states for
   contains and uniqueItems). Finite value sets (enum/const) are filtered by validating every
   candidate against all fragments with ``jsonschema``, which is exact for every keyword.
4. Rules are shared through a memo keyed by the conjunction, so ``$ref`` recursion becomes
   grammar recursion.
5. ``uniqueItems`` beyond small finite item sets and non-disjoint ``oneOf`` are *relaxed*: the
   grammar drops them and ``Lowered.checks`` lists the fragments, which the compiled engine
   validates as values complete (:mod:`structgen.frontends.json_schema.check_plan`).

The keyword families live in their own modules, mixed into :class:`Lowerer`: ``lower_core``
(fragments, rule building, the report, ``$ref``/``allOf``, value validation), ``lower_combinators``
(applicators and ``not``), ``lower_strings``, ``lower_numbers``, ``lower_arrays``, ``lower_objects``.
This module holds the entry points and the per-type dispatch.

Refusals raise ``UnsupportedSchema`` naming keyword and pointer; with ``lenient=True`` the keyword
is dropped (the constraint gets looser, never stricter) and listed in ``Lowered.dropped``.
"""

from __future__ import annotations

import sys
from typing import Any

from structgen.errors import LimitExceeded, UnsatisfiableSchema
from structgen.frontends.json_schema import regexes as rx
from structgen.frontends.json_schema.check_plan import CheckSource
from structgen.frontends.json_schema.lower_arrays import ArrayLowering
from structgen.frontends.json_schema.lower_combinators import ONEOF_TOO_LARGE
from structgen.frontends.json_schema.lower_core import (
    ALL_TYPES,
    ANNOTATIONS,
    APPLICATORS,
    KNOWN,
    Frag,
    Lowered,
    _is_number,
    _json_filter,
    _json_in,
    _JsonSet,
)
from structgen.frontends.json_schema.lower_numbers import NumberLowering
from structgen.frontends.json_schema.lower_objects import ObjectLowering
from structgen.frontends.json_schema.lower_strings import LEXER_TOO_LARGE
from structgen.ir.grammar import Grammar, Rule, Sym, Terminal
from structgen.limits import Limits

MERGE_LITERALS = 64  # enum/const scalars past this many become one regex terminal (see _lower_finite)
_MAX_RECURSION = 20_000  # Python frames lower_root allows itself (a few per nested subschema)


class Lowerer(ObjectLowering, ArrayLowering, NumberLowering):
    """Lowers one JSON Schema into a :class:`Grammar` (see the module docstring)."""

    def lower_root(self) -> Lowered:
        root = Frag(self.schema, self.root_resolver, "#", self.inactive)
        # lower() recurses a few frames per nested subschema and counts the nesting against
        # max_schema_depth * 4: make room for that many, so the documented limit is what stops it
        old_limit = sys.getrecursionlimit()
        want = min(_MAX_RECURSION, 10 * 4 * self.limits.max_schema_depth + 500)
        if want > old_limit:
            sys.setrecursionlimit(want)
        try:
            top = self.lower((root,), 0)
        except RecursionError:  # a caller already deep in the stack, or another thread reset the limit
            raise LimitExceeded(
                "max_schema_depth",
                self.deepest // 4,
                self.limits.max_schema_depth,
                f"nesting subschemas ({self.deepest} nested, and Python's recursion limit reached first)",
            ) from None
        finally:
            if want > old_limit and sys.getrecursionlimit() == want:
                sys.setrecursionlimit(old_limit)
        start = "start"
        self.rules[start] = [(Sym(top, False),)]
        rules, terms = self._prune(start)
        if start not in rules:
            ptr, msg = self.reasons[0] if self.reasons else ("#", "no JSON value satisfies the schema")
            raise UnsatisfiableSchema(msg, ptr)
        grammar = Grammar(
            rules=tuple(Rule(lhs, rhs) for lhs, alts in rules.items() for rhs in alts),
            terminals=tuple(terms),
            start=start,
            source=f"json_schema:{self.draft_name}",
        )
        return Lowered(
            grammar=grammar,
            report=sorted(self.report.values(), key=lambda e: (e["pointer"], e["keyword"])),
            dropped=self.dropped,
            draft=self.draft_name,
            num_rules=len(grammar.rules),
            num_terminals=len(terms),
            checks=self.check_source() if self.relaxed else None,
        )

    def check_source(self) -> CheckSource:
        """The relaxed fragments plus what validating against the schema needs."""
        return CheckSource(
            relaxed=dict(self.relaxed),
            schema=self.schema,
            spec=self.spec,
            registry=self.registry,
            root_resolver=self.root_resolver,
            validator_cls=self.validator_cls,
            format_checker=self._format_checker,
            draft=self.draft,
        )

    def _prune(self, start: str) -> tuple[dict[str, list[tuple[Sym, ...]]], list[Terminal]]:
        productive = self._productive()
        kept: dict[str, list[tuple[Sym, ...]]] = {}
        stack = [start] if start in productive else []
        seen = set(stack)
        used_terms: set[str] = set()
        while stack:
            lhs = stack.pop()
            alts = [rhs for rhs in self.rules[lhs] if all(s.is_terminal or s.name in productive for s in rhs)]
            uniq = list(dict.fromkeys(alts))
            kept[lhs] = uniq
            for rhs in uniq:
                for s in rhs:
                    if s.is_terminal:
                        used_terms.add(s.name)
                    elif s.name not in seen:
                        seen.add(s.name)
                        stack.append(s.name)
        terms = [t for t in self.terminals.values() if t.name in used_terms]
        return kept, terms

    def _productive(self) -> set[str]:
        """Rules that derive some terminal string: a worklist over "nonterminals still unproven"
        counts per alternative, linear in the grammar size."""
        productive: set[str] = set()
        waiting: dict[str, list[tuple[str, int]]] = {}  # rule -> (lhs, alternative) that use it
        missing: list[int] = []  # per alternative: distinct rules in it not yet productive
        ready: list[str] = []
        for lhs, alts in self.rules.items():
            for rhs in alts:
                need = {s.name for s in rhs if not s.is_terminal}
                if not need:
                    ready.append(lhs)
                    continue
                alt = len(missing)
                missing.append(len(need))
                for name in need:
                    waiting.setdefault(name, []).append((lhs, alt))
        while ready:
            name = ready.pop()
            if name in productive:
                continue
            productive.add(name)
            for lhs, alt in waiting.pop(name, ()):
                missing[alt] -= 1
                if missing[alt] == 0 and lhs not in productive:
                    ready.append(lhs)
        return productive

    def lower(self, conj: tuple[Frag, ...], depth: int) -> str:
        if self.style.depth_dependent and depth > self.limits.max_schema_depth:
            name = self.new_rule()  # no productions: pretty output nests at most max_schema_depth levels
            return name
        key = (tuple(f.key() for f in conj), depth if self.style.depth_dependent else 0)
        hit = self.memo.get(key)
        if hit is not None:
            return hit
        self._tick()
        name = self.new_rule()
        self.memo[key] = name
        self.keep.append(conj)
        self.nest += 1
        self.deepest = max(self.deepest, self.nest)
        if self.nest > self.limits.max_schema_depth * 4:
            raise LimitExceeded(
                "max_schema_depth", -(-self.nest // 4), self.limits.max_schema_depth, "nesting subschemas"
            )
        try:
            for rhs in self._lower_conj(conj, depth):
                self.add(name, rhs)
        finally:
            self.nest -= 1
        return name

    def _lower_conj(self, conj: tuple[Frag, ...], depth: int) -> list[tuple[Sym, ...]]:
        flat = self.flatten(conj)
        if flat is None:
            return []
        why = self.quick_empty(flat)
        if why is not None:
            # before distributing any applicator: every case would be empty, and distributing a
            # conjunction of several anyOf/oneOf first multiplies their branches
            self.unsat(flat[0].pointer, why)
            return []
        for f in flat:
            for kw in APPLICATORS:
                if f.has(kw):
                    return self._distribute(flat, f, kw, depth)
        # not: rewrite into other keywords, then lower again
        if any(f.has("not") for f in flat):
            new: list[Frag] = []
            for f in flat:
                if f.has("not"):
                    new.append(f.without("not"))
                    repl = self._apply_not(f, f.schema["not"], "not")
                    if repl is None:
                        continue
                    new.extend(repl)
                else:
                    new.append(f)
            return [(self.rule_sym(self.lower(tuple(new), depth)),)]
        if not flat:
            return [(self.rule_sym(self.any_value(depth)),)]
        return self._lower_flat(flat, depth)

    def _lower_flat(self, flat: list[Frag], depth: int) -> list[tuple[Sym, ...]]:
        types = set(ALL_TYPES)
        finite: list[Any] | None = None
        excluded: list[Any] = []
        not_integer = False
        for f in flat:
            s = f.schema
            for kw in s:
                if kw in f.skip:
                    if kw in self.inactive:
                        self.note(f.pointer, kw, f"not a keyword of {self.draft_name} (ignored)")
                    continue
                if kw in ANNOTATIONS:
                    if kw in ("title", "description", "default", "examples", "$comment", "deprecated"):
                        self.note(f.pointer, kw, "annotation (ignored)")
                    continue
                if kw not in KNOWN:
                    self.note(f.pointer, kw, "unknown keyword (ignored, as JSON Schema requires)")
            t = f.get("type")
            if t is not None:
                ts = {t} if isinstance(t, str) else set(t)
                if "number" in ts:
                    ts.add("integer")
                types &= ts
                self.note(f.pointer, "type", "grammar alternatives per type")
            if f.has("const"):
                vals = [s["const"]]
                finite = vals if finite is None else _json_filter(finite, vals)
                self.note(f.pointer, "const", "literal (canonical serialization)")
            if f.has("enum"):
                vals = list(s["enum"])
                finite = vals if finite is None else _json_filter(finite, vals)
                self.note(f.pointer, "enum", "literals (canonical serialization), each checked against every keyword")
            if f.has("$$exclude"):
                excluded.extend(s["$$exclude"])
            if f.has("$$not_integer"):
                not_integer = True
        if not types:
            self.unsat(flat[0].pointer if flat else "#", "the types allowed by 'type' keywords do not intersect")
            return []
        if finite is not None:
            return self._lower_finite(flat, finite, types, depth)
        alts: list[tuple[Sym, ...]] = []
        if "null" in types and not _json_in(None, excluded):
            alts.append((self.lit("null"),))
        if "boolean" in types:
            for b in (True, False):
                if not _json_in(b, excluded):
                    alts.append((self.lit("true" if b else "false"),))
        if "string" in types:
            alts.extend(self._string(flat, [v for v in excluded if isinstance(v, str)]))
        if "number" in types or "integer" in types:
            nums = [v for v in excluded if _is_number(v)]
            alts.extend(self._number(flat, integer_only="number" not in types, not_integer=not_integer, excluded=nums))
        if "array" in types:
            self._relax_exclusions(flat, list, "excluding single arrays")
            alts.extend(self._array(flat, depth))
        if "object" in types:
            self._relax_exclusions(flat, dict, "excluding single objects")
            alts.extend(self._object(flat, depth))
        return alts

    def _relax_exclusions(self, flat: list[Frag], kind: type, what: str) -> None:
        """Excluded single arrays/objects (``not: {const: [...]}``) are not in the grammar: their
        fragments are checked on the completed value instead (the grammar without them is a superset)."""
        for f in flat:
            if f.has("$$exclude") and any(isinstance(v, kind) for v in f.schema["$$exclude"]):
                self.refuse("not", f.pointer, f"{what} is not expressible in the grammar", f)

    def _lower_finite(self, flat: list[Frag], finite: list[Any], types: set[str], depth: int) -> list[tuple[Sym, ...]]:
        alts: list[tuple[Sym, ...]] = []
        seen = _JsonSet()
        values: list[Any] = []
        for v in finite:
            if v in seen or not all(self.valid(f, v) for f in flat):
                continue
            seen.add(v)
            values.append(v)
        spelled = [self.scalar_literal(v) for v in values]
        texts = tuple(t for t in spelled if t is not None)
        if len(texts) > MERGE_LITERALS:
            # one trie-shaped regex terminal for the scalar literals instead of one terminal each:
            # the same language, and the lexer and mask tables grow with terminals (an enum of
            # thousands of strings would make thousands)
            union = self._unions.get(texts)
            if union is None:
                union = self._unions[texts] = rx.literal_union_regex(list(texts))
            alts.append((self.term(union, False),))
            values = [v for v, t in zip(values, spelled) if t is None]
        for v in values:
            alts.append(self.value_rhs(v, depth))
        if not alts:
            self.unsat(flat[0].pointer, "no value of enum/const satisfies the other keywords")
        return alts


def lower_schema(schema: Any, options: dict[str, Any] | None = None, limits: Limits | None = None) -> Lowered:
    """Lower a JSON Schema (dict or bool) to a grammar; raises SchemaError / LimitExceeded.

    A lowering that exceeds ``Limits.max_grammar_rules`` is retried once with overlapping ``oneOf``
    branches taken as a union whose exclusivity is checked on the completed value (the exact
    rewrite into "this branch and not the others" is what multiplies rules); when the retry checks
    no oneOf, or exceeds the limit too, the first error is raised."""
    opts = dict(options or {})
    first = Lowerer(schema, opts, limits)
    try:
        return first.lower_root()
    except LimitExceeded as err:
        if err.limit != "max_grammar_rules" or opts.get("_oneof_union") or not first.oneof_rewrites:
            raise
        try:
            retry = Lowerer(schema, dict(opts, _oneof_union=True), limits).lower_root()
        except LimitExceeded:
            raise err from None
        if not any(r["how"].endswith(f"({ONEOF_TOO_LARGE})") for r in retry.report):
            raise err from None
        return retry


def relower_for_lexer(
    err: LimitExceeded, lowered: Lowered, schema: Any, options: dict[str, Any] | None, limits: Limits | None
) -> Lowered:
    """The lowering to retry with when ``lowered``'s lexer (the product of all its terminals) exceeded
    ``Limits.max_dfa_states``: every pattern/format/length string becomes any string checked on its completed
    value, which takes those regexes out of the lexer. Raises ``err`` itself when it is another limit
    or the retry would relax nothing (no such strings, or ``lowered`` was this retry already)."""
    opts = dict(options or {})
    if err.limit != "max_dfa_states" or "lexer" not in err.what or opts.get("_checked_strings"):
        raise err
    retry = lower_schema(schema, dict(opts, _checked_strings=True), limits)
    if not any(r["how"].endswith(f"({LEXER_TOO_LARGE})") for r in retry.report):
        raise err
    return retry
