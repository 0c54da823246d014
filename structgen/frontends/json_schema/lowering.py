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

Refusals raise ``UnsupportedSchema`` naming keyword and pointer; with ``lenient=True`` the keyword
is dropped (the constraint gets looser, never stricter) and listed in ``Lowered.dropped``.
"""

from __future__ import annotations

import json
import math
import time
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from typing import Any

from structgen.errors import InvalidSchema, LimitExceeded, UnsatisfiableSchema, UnsupportedSchema
from structgen.frontends.json_schema import regexes as rx
from structgen.frontends.json_schema.check_plan import CheckSource, Relaxed
from structgen.frontends.json_schema.formats import CHECKED_FORMATS, FORMAT_LENGTHS, FORMATS, check_format
from structgen.frontends.json_schema.formatting import Style, dumps
from structgen.ir.grammar import Grammar, Rule, Sym, Terminal
from structgen.limits import DEFAULT_LIMITS, Limits

MAX_KEY_PATTERNS = 8  # patternProperties patterns per object: 2^k key regions are enumerated
ALL_TYPES = frozenset({"null", "boolean", "object", "array", "number", "integer", "string"})
ANNOTATIONS = frozenset(
    {
        "title",
        "description",
        "default",
        "examples",
        "$comment",
        "deprecated",
        "readOnly",
        "writeOnly",
        "contentMediaType",
        "contentEncoding",
        "contentSchema",
        "$schema",
        "$id",
        "id",
        "$anchor",
        "$dynamicAnchor",
        "$recursiveAnchor",
        "$vocabulary",
        "$defs",
        "definitions",
        "then",
        "else",
        "discriminator",
        "example",
        "nullable",
        "markdownDescription",
        "x-intellij-html-description",
    }
)
APPLICATORS = ("$$anyOf", "anyOf", "oneOf", "if", "dependentRequired", "dependentSchemas", "dependencies")
REFUSED_ALWAYS = ("unevaluatedProperties", "unevaluatedItems", "$dynamicRef", "$recursiveRef")
KNOWN = frozenset(
    {
        "type",
        "enum",
        "const",
        "not",
        "$ref",
        "allOf",
        "anyOf",
        "oneOf",
        "if",
        "then",
        "else",
        "dependentRequired",
        "dependentSchemas",
        "dependencies",
        "minimum",
        "maximum",
        "exclusiveMinimum",
        "exclusiveMaximum",
        "multipleOf",
        "minLength",
        "maxLength",
        "pattern",
        "format",
        "items",
        "prefixItems",
        "additionalItems",
        "minItems",
        "maxItems",
        "uniqueItems",
        "contains",
        "minContains",
        "maxContains",
        "properties",
        "required",
        "additionalProperties",
        "patternProperties",
        "propertyNames",
        "minProperties",
        "maxProperties",
        "$$exclude",
        "$$not_integer",
        "$$not_string",
        "$$anyOf",
    }
)


def _esc(token: str) -> str:
    return str(token).replace("~", "~0").replace("/", "~1")


@dataclass(frozen=True, eq=False)
class Frag:
    """One schema fragment of a conjunction; ``skip`` lists keywords already handled."""

    schema: Any
    resolver: Any
    pointer: str
    skip: frozenset[str] = frozenset()

    def key(self) -> tuple:
        return (id(self.schema), getattr(self.resolver, "_base_uri", ""), self.skip)

    def without(self, *kws: str) -> Frag:
        return Frag(self.schema, self.resolver, self.pointer, self.skip | frozenset(kws))

    def get(self, kw: str, default: Any = None) -> Any:
        if kw in self.skip or not isinstance(self.schema, dict):
            return default
        return self.schema.get(kw, default)

    def has(self, kw: str) -> bool:
        return isinstance(self.schema, dict) and kw in self.schema and kw not in self.skip


@dataclass
class Lowered:
    """The result of lowering: a grammar plus the per-keyword report and what lenient mode dropped."""

    grammar: Grammar
    report: list[dict[str, str]]
    dropped: list[dict[str, str]]
    draft: str
    num_rules: int = 0
    num_terminals: int = 0
    checks: CheckSource | None = None  # keywords relaxed in the grammar, enforced on completed values


class _Refused(Exception):
    pass


@dataclass
class _ObjSpec:
    declared: list[tuple[str, list[Frag], bool]] = field(default_factory=list)
    extras: list[tuple[str, list[Frag]]] = field(default_factory=list)  # (key body regex, value conj)
    min_props: int = 0
    max_props: int | None = None


class Lowerer:
    """Lowers one JSON Schema into a :class:`Grammar` (see the module docstring)."""

    def __init__(self, schema: Any, options: dict[str, Any] | None = None, limits: Limits | None = None) -> None:
        import referencing
        import referencing.jsonschema as rj

        self.options = dict(options or {})
        self.limits = limits or DEFAULT_LIMITS
        self.style = Style.of(self.options)
        self.lenient = bool(self.options.get("lenient", False))
        self.explaining = bool(self.options.get("_explain", False))
        self.order = self.options.get("property_order", "schema")
        if self.order not in ("schema", "any"):
            raise ValueError(f"property_order must be 'schema' or 'any', got {self.order!r}")
        fmt_mode = self.options.get("formats", "enforce")
        if fmt_mode not in ("enforce", "ignore"):
            raise ValueError(f"formats must be 'enforce' or 'ignore', got {fmt_mode!r}")
        self.enforce_formats = fmt_mode == "enforce"
        self.report: dict[tuple[str, str], dict[str, str]] = {}
        self.dropped: list[dict[str, str]] = []
        self.rules: dict[str, list[tuple[Sym, ...]]] = {}
        self.terminals: dict[tuple[str, bool], Terminal] = {}
        self.memo: dict[tuple, str] = {}
        self.keep: list[Any] = []
        self.reasons: list[tuple[str, str]] = []
        self.nest = 0
        self.t0 = time.perf_counter()
        self._any_memo: dict[int, str] = {}
        self._validators: dict[tuple, Any] = {}
        self.relaxed: dict[int, Relaxed] = {}  # id(schema) -> fragment checked on completed values

        if not isinstance(schema, (dict, bool)):
            raise InvalidSchema(f"a schema must be an object or a boolean, got {type(schema).__name__}", "#")
        import jsonschema

        uri = schema.get("$schema") if isinstance(schema, dict) else None
        drafts = {
            "2020-12": (rj.DRAFT202012, jsonschema.Draft202012Validator, 2020),
            "2019-09": (rj.DRAFT201909, jsonschema.Draft201909Validator, 2019),
            "7": (rj.DRAFT7, jsonschema.Draft7Validator, 7),
            "6": (rj.DRAFT6, jsonschema.Draft6Validator, 6),
            "4": (rj.DRAFT4, jsonschema.Draft4Validator, 4),
        }
        chosen = str(self.options.get("draft", "2020-12")).replace("draft", "").replace("draft-0", "")
        if chosen not in drafts:
            raise ValueError(f"draft must be one of {sorted(drafts)}, got {self.options.get('draft')!r}")
        if isinstance(uri, str):
            match = [d for d in drafts.values() if d[0] is _spec_or_none(rj, uri)]
            if not match:
                raise UnsupportedSchema(
                    f"$schema {uri!r} is not a JSON Schema draft structgen knows (2020-12, 2019-09, 7, 6, 4); "
                    "custom vocabularies are not supported",
                    "#/$schema",
                    "$schema",
                )
            self.spec, self.validator_cls, self.draft = match[0]
        else:
            self.spec, self.validator_cls, self.draft = drafts[chosen]
        self.draft_name = self.spec.name
        self._prescan(schema)
        self._check_schema(schema)
        base = schema.get("$id", "") if isinstance(schema, dict) and isinstance(schema.get("$id", ""), str) else ""
        if self.draft <= 4 and isinstance(schema, dict) and isinstance(schema.get("id"), str):
            base = schema["id"]
        registry: Any = referencing.Registry()
        for r_uri, r_schema in (self.options.get("registry") or {}).items():
            r_spec = (
                rj.specification_with(str(r_schema.get("$schema")), default=self.spec)
                if isinstance(r_schema, dict) and r_schema.get("$schema")
                else self.spec
            )
            registry = registry.with_resource(r_uri, r_spec.create_resource(r_schema))
        registry = registry.with_resource(base, self.spec.create_resource(schema))
        try:
            self.registry = registry.crawl()
        except (TypeError, AttributeError):
            # referencing reads subschemas by their own $schema: a draft-4 subschema embedded in a
            # newer document breaks its crawl on boolean subschemas. Uncrawled, $ref still resolves
            # by JSON pointer; an $id-only target then fails as a named InvalidSchema.
            self.registry = registry
        self.root_resolver = self.registry.resolver(base_uri=base)
        self.schema = schema
        self._format_checker = self._make_format_checker()

    # ---- validation of the schema itself ----------------------------------------------------
    def _prescan(self, schema: Any) -> None:
        """Cheap bounds before anything recursive: JSON nesting depth and properties per object."""
        max_json_depth = 2 * self.limits.max_schema_depth + 8
        stack = [(schema, 0, "#")]
        while stack:
            node, d, ptr = stack.pop()
            if d > max_json_depth:
                raise LimitExceeded(
                    "max_schema_depth", d // 2, self.limits.max_schema_depth, f"reading the schema at {ptr[:80]}"
                )
            if isinstance(node, dict):
                props = node.get("properties")
                if isinstance(props, dict) and len(props) > self.limits.max_schema_properties:
                    raise LimitExceeded(
                        "max_schema_properties",
                        len(props),
                        self.limits.max_schema_properties,
                        f"reading {ptr}/properties",
                    )
                for k, v in node.items():
                    if isinstance(v, (dict, list)):
                        stack.append((v, d + 1, ptr if d > 40 else f"{ptr}/{_esc(k)}"))
            elif isinstance(node, list):
                for i, v in enumerate(node):
                    if isinstance(v, (dict, list)):
                        stack.append((v, d + 1, ptr if d > 40 else f"{ptr}/{i}"))

    def _check_schema(self, schema: Any) -> None:
        import jsonschema

        cls = self.validator_cls
        try:
            cls.check_schema(schema)
        except jsonschema.exceptions.SchemaError as e:
            pointer = "#" + "".join("/" + _esc(str(p)) for p in e.absolute_path)
            if e.validator == "format" and "regex" in str(e.message):
                raise UnsupportedSchema(
                    f"pattern {e.instance!r} is not readable: {e.message}", pointer, "pattern"
                ) from None
            raise InvalidSchema(e.message, pointer) from None

    def _make_format_checker(self) -> Any:
        import jsonschema

        checker = jsonschema.FormatChecker(formats=())
        if self.enforce_formats:
            for name in (*FORMATS, *CHECKED_FORMATS):
                checker.checks(name)(lambda v, _n=name: check_format(_n, v))
        return checker

    # ---- bookkeeping ------------------------------------------------------------------------
    def note(self, pointer: str, keyword: str, how: str) -> None:
        self.report.setdefault((pointer, keyword), {"pointer": pointer, "keyword": keyword, "how": how})

    def refuse(self, keyword: str, pointer: str, message: str) -> None:
        """Refuse a keyword: raise, or (lenient) record it as dropped and return."""
        ptr = pointer if pointer.endswith("/" + _esc(keyword)) else f"{pointer}/{_esc(keyword)}"
        if not self.lenient:
            raise UnsupportedSchema(message, ptr, keyword)
        entry = {"pointer": ptr, "keyword": keyword, "how": f"dropped (lenient): {message}"}
        if (ptr, keyword) not in self.report or not self.report[(ptr, keyword)]["how"].startswith("dropped"):
            self.dropped.append({"pointer": ptr, "keyword": keyword, "reason": message})
        self.report[(ptr, keyword)] = entry

    def relax(self, f: Frag, keyword: str, why: str) -> None:
        """Drop ``keyword`` of ``f`` from the grammar; it is enforced by a check on completed values."""
        old = self.relaxed.get(id(f.schema))
        kws = frozenset({keyword}) | (old.keywords if old else frozenset())
        self.relaxed[id(f.schema)] = Relaxed(f.schema, f.resolver, f.pointer, kws)
        self.keep.append(f.schema)
        self.note(f.pointer, keyword, f"enforced by a check on completed values ({why})")

    def unsat(self, pointer: str, message: str) -> None:
        self.reasons.append((pointer, message))

    def _tick(self) -> None:
        elapsed = time.perf_counter() - self.t0
        if elapsed > self.limits.compile_timeout_s:
            raise LimitExceeded(
                "compile_timeout_s", round(elapsed, 2), self.limits.compile_timeout_s, "lowering a JSON Schema"
            )
        if len(self.rules) > self.limits.max_grammar_rules:
            raise LimitExceeded(
                "max_grammar_rules", len(self.rules), self.limits.max_grammar_rules, "lowering a JSON Schema"
            )

    def new_rule(self) -> str:
        name = f"r{len(self.rules)}"
        self.rules[name] = []
        return name

    def add(self, lhs: str, rhs: tuple[Sym, ...]) -> None:
        self.rules[lhs].append(rhs)

    def term(self, pattern: str, literal: bool) -> Sym:
        key = (pattern, literal)
        t = self.terminals.get(key)
        if t is None:
            if literal and pattern == "":
                raise ValueError("empty literal terminal")
            t = Terminal(f"{'L' if literal else 'R'}{len(self.terminals)}", pattern, is_literal=literal)
            self.terminals[key] = t
        return Sym(t.name, True)

    def lit(self, text: str) -> Sym:
        return self.term(text, True)

    def punct(self, what: str, depth: int) -> Sym:
        text, is_rx = self.style.punct(what, depth)
        return self.term(text, not is_rx)

    def rule_sym(self, name: str) -> Sym:
        return Sym(name, False)

    # ---- frags -------------------------------------------------------------------------------
    def child(self, f: Frag, sub: Any, *path: str | int) -> Frag:
        ptr = f.pointer + "".join("/" + _esc(str(p)) for p in path)
        resolver = f.resolver
        if isinstance(sub, dict):
            sid = sub.get("$id") if self.draft > 4 else sub.get("id")
            if isinstance(sid, str) and not sid.startswith("#"):
                resolver = resolver.in_subresource(self.spec.create_resource(sub))
        return Frag(sub, resolver, ptr)

    def synth(self, f: Frag, schema: Any, suffix: str = "") -> Frag:
        self.keep.append(schema)
        return Frag(schema, f.resolver, f.pointer + suffix)

    def resolve(self, f: Frag, ref: str, kw: str) -> Frag:
        from referencing.exceptions import Unresolvable

        try:
            resolved = f.resolver.lookup(ref)
        except Unresolvable as e:
            if ref.startswith("#"):
                raise InvalidSchema(f"$ref {ref!r} does not resolve ({e})", f"{f.pointer}/{kw}") from None
            raise UnsupportedSchema(
                f"remote $ref {ref!r} is not in the registry option (structgen never fetches)", f"{f.pointer}/{kw}", kw
            ) from None
        ptr = ref if ref.startswith("#") else ref
        return Frag(resolved.contents, resolved.resolver, ptr)

    # ---- entry --------------------------------------------------------------------------------
    def lower_root(self) -> Lowered:
        root = Frag(self.schema, self.root_resolver, "#")
        top = self.lower((root,), 0)
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
        productive: set[str] = set()
        changed = True
        while changed:
            changed = False
            for lhs, alts in self.rules.items():
                if lhs in productive:
                    continue
                for rhs in alts:
                    if all(s.is_terminal or s.name in productive for s in rhs):
                        productive.add(lhs)
                        changed = True
                        break
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

    # ---- conjunctions ---------------------------------------------------------------------------
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
        if self.nest > self.limits.max_schema_depth * 4:
            raise LimitExceeded("max_schema_depth", self.nest // 4, self.limits.max_schema_depth, "nesting subschemas")
        try:
            for rhs in self._lower_conj(conj, depth):
                self.add(name, rhs)
        finally:
            self.nest -= 1
        return name

    def flatten(self, conj: tuple[Frag, ...] | list[Frag], quiet: bool = False) -> list[Frag] | None:
        """Expand ``$ref`` and ``allOf``; None when a ``false`` schema makes the conjunction empty."""
        out: list[Frag] = []
        seen: set[tuple] = set()
        pending = list(conj)
        while pending:
            f = pending.pop(0)
            k = f.key()
            if k in seen:
                continue
            seen.add(k)
            s = f.schema
            if s is True:
                continue
            if s is False:
                if not quiet:
                    self.unsat(f.pointer, "the schema is false")
                return None
            if not isinstance(s, dict):
                raise InvalidSchema(f"a schema must be an object or a boolean, got {type(s).__name__}", f.pointer)
            if f.has("$ref"):
                target = self.resolve(f, s["$ref"], "$ref")
                if not quiet:
                    self.note(f.pointer, "$ref", "grammar rule (shared; recursion becomes grammar recursion)")
                if self.draft <= 7:
                    pending.insert(0, target)
                    continue
                pending[0:0] = [target, f.without("$ref")]
                continue
            for kw in REFUSED_ALWAYS:
                if f.has(kw) and not quiet:
                    if kw == "unevaluatedProperties" and s[kw] is True or kw == "unevaluatedItems" and s[kw] is True:
                        self.note(f.pointer, kw, "no constraint (true)")
                    else:
                        self.refuse(
                            kw, f.pointer, f"{kw} is not supported (it depends on what other keywords evaluated)"
                        )
                    f = f.without(kw)
            if f.has("allOf"):
                if not quiet:
                    self.note(f.pointer, "allOf", "intersection (fragments merged keyword by keyword)")
                kids = [self.child(f, sub, "allOf", i) for i, sub in enumerate(s["allOf"])]
                pending[0:0] = kids
                f = f.without("allOf")
            out.append(f)
        return out

    def _lower_conj(self, conj: tuple[Frag, ...], depth: int) -> list[tuple[Sym, ...]]:
        flat = self.flatten(conj)
        if flat is None:
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

    # ---- applicators --------------------------------------------------------------------------
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
        # exact rewrite: B_i and not B_j for j != i, when every negation is expressible
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

    # ---- not ------------------------------------------------------------------------------------
    def _apply_not(
        self, f: Frag, ns: Any, origin: str, base: Frag | None = None, probe: bool = False
    ) -> list[Frag] | None:
        """Frags equivalent to ``not ns``; None if refused (lenient). ``probe`` raises _Refused instead."""
        try:
            return self._negate(base or self.child(f, ns, "not"), 0)
        except _Refused as e:
            if probe:
                raise
            self.refuse(origin, f.pointer, f"cannot express 'not' of this subschema exactly ({e})")
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

    # ---- oneOf disjointness -----------------------------------------------------------------------
    def _shape(self, conj: list[Frag]) -> dict[str, Any]:
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
                shape["finite"] = vals if shape["finite"] is None else [v for v in shape["finite"] if _json_in(v, vals)]
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
                if va is not None and vb is not None and not any(_json_in(x, vb) for x in va):
                    return True
            if a["closed"] is not None and (b["required"] - a["closed"]):
                return True
            if b["closed"] is not None and (a["required"] - b["closed"]):
                return True
        return False

    def _valid_conj(self, conj: list[Frag], value: Any) -> bool:
        return all(self.valid(f, value) for f in conj)

    def valid(self, f: Frag, value: Any) -> bool:
        """Exact membership of a value in one fragment (jsonschema, our format regexes)."""
        s = f.schema
        if isinstance(s, dict) and any(k.startswith("$$") for k in s):
            if "$$anyOf" in s and not any(all(self.valid(h, value) for h in case) for case in s["$$anyOf"]):
                return False
            if "$$exclude" in s and _json_in(value, s["$$exclude"]):
                return False
            if s.get("$$not_integer") and _is_number(value) and float(value) == math.floor(float(value)):
                return False
            if isinstance(value, str) and any(self._string_in(k, v, value) for k, v in s.get("$$not_string", ())):
                return False
            s = {k: v for k, v in s.items() if not k.startswith("$$")}
        key = (id(f.schema), getattr(f.resolver, "_base_uri", ""))
        v = self._validators.get(key)
        if v is None:
            cls = self.validator_cls
            root = cls(self.schema, registry=self.registry, format_checker=self._format_checker)
            v = root.evolve(schema=s, _resolver=f.resolver)
            self._validators[key] = v
            self.keep.append(f.schema)
        try:
            return bool(v.is_valid(value))
        except Exception:
            return False

    # ---- flat conjunctions: one alternative per JSON type ------------------------------------------
    def _lower_flat(self, flat: list[Frag], depth: int) -> list[tuple[Sym, ...]]:
        types = set(ALL_TYPES)
        finite: list[Any] | None = None
        excluded: list[Any] = []
        not_integer = False
        for f in flat:
            s = f.schema
            for kw in s:
                if kw in f.skip:
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
                finite = vals if finite is None else [v for v in finite if _json_in(v, vals)]
                self.note(f.pointer, "const", "literal (canonical serialization)")
            if f.has("enum"):
                vals = list(s["enum"])
                finite = vals if finite is None else [v for v in finite if _json_in(v, vals)]
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
            if any(isinstance(v, list) for v in excluded):
                self.refuse("not", flat[0].pointer, "excluding single arrays is not supported")
            alts.extend(self._array(flat, depth))
        if "object" in types:
            if any(isinstance(v, dict) for v in excluded):
                self.refuse("not", flat[0].pointer, "excluding single objects is not supported")
            alts.extend(self._object(flat, depth))
        return alts

    def _lower_finite(self, flat: list[Frag], finite: list[Any], types: set[str], depth: int) -> list[tuple[Sym, ...]]:
        alts: list[tuple[Sym, ...]] = []
        seen: list[Any] = []
        for v in finite:
            if _json_in(v, seen):
                continue
            if not all(self.valid(f, v) for f in flat):
                continue
            seen.append(v)
            alts.append(self.value_rhs(v, depth))
        if not alts:
            self.unsat(flat[0].pointer, "no value of enum/const satisfies the other keywords")
        return alts

    def value_rhs(self, v: Any, depth: int) -> tuple[Sym, ...]:
        """Symbols spelling one JSON value in the current style."""
        if isinstance(v, dict):
            if not v:
                return (self.punct("{}", depth),)
            out: list[Sym] = [self.punct("{", depth)]
            for i, (k, x) in enumerate(v.items()):
                if i:
                    out.append(self.punct(",", depth))
                out.extend(self.key_syms(json.dumps(k, ensure_ascii=False), depth))
                out.extend(self.value_rhs(x, depth + 1))
            out.append(self.punct("}", depth))
            return tuple(out)
        if isinstance(v, list):
            if not v:
                return (self.punct("[]", depth),)
            out = [self.punct("[", depth)]
            for i, x in enumerate(v):
                if i:
                    out.append(self.punct(",", depth))
                out.extend(self.value_rhs(x, depth + 1))
            out.append(self.punct("]", depth))
            return tuple(out)
        if _is_number(v):
            text = dumps(v)
            if text.endswith(".0") or "." not in text:
                whole = text[:-2] if text.endswith(".0") else text
                return (self.term(rx.literal_regex(whole) + r"(?:\.0+)?", False),)
        return (self.lit(dumps(v)),)

    def key_syms(self, key_json: str, depth: int) -> tuple[Sym, ...]:
        text, is_rx = self.style.punct(":", depth)
        if is_rx:
            return (self.lit(key_json), self.term(text, False))
        return (self.lit(key_json + text),)

    # ---- strings ----------------------------------------------------------------------------
    def _string(self, flat: list[Frag], excluded: list[str]) -> list[tuple[Sym, ...]]:
        body = self.string_body(flat, excluded)
        if body is None:
            return []
        return [(self.term('"' + body + '"', False),)]

    def string_body(self, flat: list[Frag], excluded: list[str], ptr_hint: str = "") -> str | None:
        """Regex for the text between the quotes, or None when no string qualifies."""
        min_len, max_len = 0, None
        min_ptr = max_ptr = flat[0].pointer if flat else "#"
        cons: list[tuple[str, str, Frag]] = []
        for f in flat:
            if f.has("minLength"):
                if f.schema["minLength"] > min_len:
                    min_len, min_ptr = int(f.schema["minLength"]), f.pointer
            if f.has("maxLength"):
                if max_len is None or f.schema["maxLength"] < max_len:
                    max_len, max_ptr = int(f.schema["maxLength"]), f.pointer
            if f.has("pattern"):
                cons.append(("pattern", f.schema["pattern"], f))
            if f.has("format"):
                fmt = f.schema["format"]
                if self.enforce_formats and fmt in FORMATS:
                    cons.append(("format", fmt, f))
                elif self.enforce_formats and fmt in CHECKED_FORMATS:
                    self.relax(f, "format", f"format {fmt!r} is not a regular language")
                else:
                    self.note(f.pointer, "format", f"annotation (format {fmt!r} is not enforced)")
        for kw, ptr in (("minLength", min_ptr), ("maxLength", max_ptr)):
            if any(f.has(kw) for f in flat):
                self.note(ptr, kw, "regex (bounded repeat of one JSON string character)")
        if max_len is not None and min_len > max_len:
            self.unsat(max_ptr, f"minLength {min_len} > maxLength {max_len}")
            return None
        for bound, kw, ptr in ((max_len, "maxLength", max_ptr), (min_len, "minLength", min_ptr)):
            if bound is not None and bound > self.limits.max_repeat:
                raise LimitExceeded("max_repeat", bound, self.limits.max_repeat, f"{kw} at {ptr}")
        uniq: list[tuple[str, str, Frag]] = []
        for c in cons:
            if not any(c[0] == u[0] and c[1] == u[1] for u in uniq):
                uniq.append(c)
        negs = [(kind, val, f) for f in flat if f.has("$$not_string") for kind, val in f.schema["$$not_string"]]
        if excluded and not (uniq or negs or min_len or max_len is not None):
            return rx.exclusion_body(excluded)
        if not uniq and not negs and not excluded:
            return rx.repeat(rx.CHAR, min_len, max_len)
        # pattern/format languages are intersected (and complemented) through lookaheads over the
        # string text: each lookahead body ends at the closing quote, the only raw '"' there
        bodies: list[tuple[str, tuple[int, int | None] | None, Any]] = []  # (body, width, simple)
        for kw, val, f in uniq:
            got = self._constraint_body(kw, val, f)
            if got is None:
                continue
            bodies.append(got)
        looks: list[str] = []
        for kind, val, f in negs:
            got = self._constraint_body(kind, val, f, negated=True)
            if got is not None:
                looks.append("(?!(?:" + got[0] + ')")')
        if excluded:
            names = "|".join(rx.json_string_literal_regex(v)[1:-1] for v in dict.fromkeys(excluded))
            looks.append("(?!(?:" + names + ')")')
        if not bodies:
            return "".join(looks) + rx.repeat("(?:" + rx.CANONICAL_CHAR + ")", min_len, max_len)
        main, width, simple = bodies[0]
        looks.extend("(?=(?:" + b + ')")' for b, _, _ in bodies[1:])
        if min_len or max_len is not None:
            fits = (
                width is not None
                and width[0] >= min_len
                and (max_len is None or (width[1] is not None and width[1] <= max_len))
            )
            if simple is not None and len(bodies) == 1:
                ranges, lo, hi = simple
                lo2 = max(lo, min_len)
                hi2 = max_len if hi is None else (hi if max_len is None else min(hi, max_len))
                if hi2 is not None and lo2 > hi2:
                    self.unsat(flat[0].pointer, f"pattern admits no string with length in [{min_len}, {max_len}]")
                    return None
                char = rx.canonical_char_regex(ranges)
                if char is None:
                    return None
                main = rx.repeat("(?:" + char + ")", lo2, hi2)
            elif not fits:
                looks.append("(?=" + rx.repeat("(?:" + rx.CANONICAL_CHAR + ")", min_len, max_len) + '")')
                for kw in ("minLength", "maxLength"):
                    if any(f.has(kw) for f in flat):
                        self.note(min_ptr if kw == "minLength" else max_ptr, kw, "regex (intersected with the pattern)")
        body = "".join(looks) + ("(?:" + main + ")" if looks else main)
        if looks and rx.language_is_empty('"' + body + '"', self.limits):
            self.unsat(flat[0].pointer, "no string satisfies the pattern/format/length constraints together")
            return None
        return body

    def _string_in(self, kind: str, val: str, value: str) -> bool:
        """Whether ``value`` matches pattern (ECMA search) or format ``val``: Python ``re`` runs the
        same translated regex the grammar uses (``re.search`` only for untranslatable patterns)."""
        if kind == "format":
            return bool(check_format(val, value))
        return rx.pattern_matches(val, value)

    def _constraint_body(
        self, kw: str, val: str, f: Frag, negated: bool = False
    ) -> tuple[str, tuple[int, int | None] | None, Any] | None:
        """(body regex, (min, max) length or None, simple class repeat or None) of one pattern or
        format; None when the pattern is refused (lenient)."""
        how = "regex (complement, by lookahead)" if negated else "regex (translated to JSON string text)"
        if kw == "pattern":
            try:
                body = rx.pattern_body_regex(val)
                width = rx.pattern_length_bounds(val)
                simple = rx.simple_class_repeat(val)
            except rx.PatternError as e:
                self.refuse("pattern" if not negated else "not", f.pointer, f"pattern {val!r} uses {e.construct}")
                return None
            self.note(f.pointer, "pattern" if not negated else "not", how)
            return body, width, simple
        self.note(f.pointer, "format" if not negated else "not", f"{how} (format {val!r})")
        return FORMATS[val], FORMAT_LENGTHS[val], None

    # ---- numbers ----------------------------------------------------------------------------
    def _number(
        self, flat: list[Frag], integer_only: bool, not_integer: bool, excluded: list[Any] | None = None
    ) -> list[tuple[Sym, ...]]:
        lo: Decimal | None = None
        lo_strict = False
        hi: Decimal | None = None
        hi_strict = False
        mults: list[tuple[Decimal, Frag]] = []
        ptr = flat[0].pointer

        def dec(x: Any) -> Decimal:
            return Decimal(repr(x)) if isinstance(x, float) else Decimal(x)

        for f in flat:
            s = f.schema
            cands: list[tuple[str, Decimal, bool]] = []
            if f.has("minimum"):
                strict = self.draft <= 4 and s.get("exclusiveMinimum") is True
                cands.append(("lo", dec(s["minimum"]), strict))
            if f.has("exclusiveMinimum") and not isinstance(s["exclusiveMinimum"], bool):
                cands.append(("lo", dec(s["exclusiveMinimum"]), True))
            if f.has("maximum"):
                strict = self.draft <= 4 and s.get("exclusiveMaximum") is True
                cands.append(("hi", dec(s["maximum"]), strict))
            if f.has("exclusiveMaximum") and not isinstance(s["exclusiveMaximum"], bool):
                cands.append(("hi", dec(s["exclusiveMaximum"]), True))
            for side, v, strict in cands:
                if side == "lo" and (lo is None or v > lo or (v == lo and strict)):
                    lo, lo_strict = v, strict
                if side == "hi" and (hi is None or v < hi or (v == hi and strict)):
                    hi, hi_strict = v, strict
            for kw in ("minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum"):
                if f.has(kw):
                    self.note(f.pointer, kw, "regex (exact decimal range)")
            if f.has("multipleOf"):
                mults.append((dec(s["multipleOf"]), f))
        for bound in (lo, hi):
            if bound is not None and abs(bound) >= Decimal(10) ** 400:
                self.refuse("maximum" if bound is hi else "minimum", ptr, f"bound {bound} is too large")
                return []
        if integer_only:
            ilo = (
                None
                if lo is None
                else (math.floor(lo) + 1 if lo_strict and lo == lo.to_integral_value() else math.ceil(lo))
            )
            ihi = (
                None
                if hi is None
                else (math.ceil(hi) - 1 if hi_strict and hi == hi.to_integral_value() else math.floor(hi))
            )
            if ilo is not None and ihi is not None and ilo > ihi:
                self.unsat(ptr, f"no integer lies between the bounds {lo} and {hi}")
                return []
            modulus = 1
            for m, _f in mults:
                p = m.as_integer_ratio()[0]
                modulus = modulus * abs(p) // math.gcd(modulus, abs(p))
            points = sorted(
                {
                    int(d)
                    for d in (dec(v) for v in excluded or [])
                    if d == d.to_integral_value() and (ilo is None or d >= ilo) and (ihi is None or d <= ihi)
                }
            )
            if modulus > 1:
                if points:
                    self.refuse("not", ptr, "excluding single values next to multipleOf is not supported")
                return self._int_multiple(ilo, ihi, modulus, mults[0][1], frac_zeros=self.draft >= 6)
            if points:
                pieces = []
                cur = ilo
                for p_ in points + [None]:
                    top = ihi if p_ is None else p_ - 1
                    if cur is None or top is None or cur <= top:
                        r_ = rx.int_range(cur, top)
                        if r_:
                            pieces.append(r_)
                    if p_ is not None:
                        cur = p_ + 1
                if not pieces:
                    self.unsat(ptr, "every integer in range is excluded")
                    return []
                self.note(ptr, "not", "regex (integer range split around excluded values)")
                joined = rx.alt(pieces)
                return [(self.term(rx._group(joined) + r"(?:\.0+)?" if self.draft >= 6 else joined, False),)]
            for _m, f in mults:
                self.note(f.pointer, "multipleOf", "no constraint on integers")
            r = rx.int_range(ilo, ihi)
            if r is None:
                self.unsat(ptr, "empty integer range")
                return []
            # draft 6+: 1.0 is an integer
            return [(self.term(rx._group(r) + r"(?:\.0+)?" if self.draft >= 6 else r, False),)]
        # numbers
        maxd: int | None = None
        int_modulus = 1
        for m, f in mults:
            if m <= 0:
                raise InvalidSchema(f"multipleOf must be > 0, got {m}", f.pointer + "/multipleOf")
            exp = m.normalize().as_tuple().exponent
            n = -exp if isinstance(exp, int) and exp < 0 else 0
            if m == Decimal(1).scaleb(-n) and n > 0:
                maxd = n if maxd is None else min(maxd, n)
                self.note(f.pointer, "multipleOf", f"regex (at most {n} significant fraction digits)")
            elif m == m.to_integral_value():
                p = int(m)
                int_modulus = int_modulus * p // math.gcd(int_modulus, p)
                maxd = 0
                self.note(f.pointer, "multipleOf", "regex/grammar (integral multiples)")
            else:
                self.refuse("multipleOf", f.pointer, f"multipleOf {m} on numbers (only 10^-n and integers are exact)")
        if int_modulus > 1:
            ilo = (
                None
                if lo is None
                else (math.floor(lo) + 1 if lo_strict and lo == lo.to_integral_value() else math.ceil(lo))
            )
            ihi = (
                None
                if hi is None
                else (math.ceil(hi) - 1 if hi_strict and hi == hi.to_integral_value() else math.floor(hi))
            )
            return self._int_multiple(ilo, ihi, int_modulus, mults[0][1], frac_zeros=True)
        if not_integer:
            if lo is not None or hi is not None or maxd is not None:
                self.refuse("not", ptr, "'not integer' next to numeric bounds is not supported")
            else:
                return [(self.term(r"-?(?:0|[1-9][0-9]*)\.[0-9]*[1-9][0-9]*", False),)]
        points_d = sorted({dec(v) for v in excluded or []})
        points_d = [
            p_
            for p_ in points_d
            if (lo is None or p_ > lo or (p_ == lo and not lo_strict))
            and (hi is None or p_ < hi or (p_ == hi and not hi_strict))
        ]
        if points_d:
            pieces_d: list[str] = []
            cur_d: Decimal | None = lo
            cur_strict = lo_strict
            for q_ in [*points_d, None]:
                top_d, top_strict = (hi, hi_strict) if q_ is None else (q_, True)
                r_ = rx.decimal_range(cur_d, cur_strict, top_d, top_strict, maxd)
                if r_:
                    pieces_d.append(r_)
                if q_ is not None:
                    cur_d, cur_strict = q_, True
            if not pieces_d:
                self.unsat(ptr, "every number in range is excluded")
                return []
            self.note(ptr, "not", "regex (number range split around excluded values)")
            return [(self.term(rx.alt(pieces_d), False),)]
        if lo is None and hi is None and maxd is None:
            return [(self.term(rx.JSON_NUMBER, False),)]
        r = rx.decimal_range(lo, lo_strict, hi, hi_strict, maxd)
        if r is None:
            self.unsat(ptr, f"no number lies between the bounds {lo} and {hi}")
            return []
        return [(self.term(r, False),)]

    def _int_multiple(
        self, ilo: int | None, ihi: int | None, modulus: int, f: Frag, frac_zeros: bool = False
    ) -> list[tuple[Sym, ...]]:
        suffix = r"(?:\.0+)?" if frac_zeros else ""
        if ilo is not None and ihi is not None:
            first = -((-ilo) // modulus) * modulus
            count = (ihi - first) // modulus + 1 if ihi >= first else 0
            if count <= 0:
                self.unsat(f.pointer, f"no multiple of {modulus} in [{ilo}, {ihi}]")
                return []
            if count <= 256:
                self.note(f.pointer, "multipleOf", "regex (the finite set of multiples)")
                vals = [str(first + i * modulus) for i in range(count)]
                return [(self.term(rx.alt([rx.literal_regex(v) for v in vals]) + suffix, False),)]
        if ilo is None and ihi is None and modulus <= 1000:
            self.note(f.pointer, "multipleOf", f"grammar (digit automaton modulo {modulus})")
            return [(self.rule_sym(self._mod_rules(modulus, frac_zeros=frac_zeros)),)]
        if ilo is not None and ilo >= 0 and ihi is None and modulus <= 1000:
            # x >= ilo and x % m == 0: non-negative multiples, minus the finitely many below ilo
            if ilo <= modulus * 64:
                self.note(f.pointer, "multipleOf", f"grammar (digit automaton modulo {modulus})")
                return [(self.rule_sym(self._mod_rules(modulus, min_value=ilo, frac_zeros=frac_zeros)),)]
        self.refuse("multipleOf", f.pointer, f"multipleOf {modulus} with these bounds is not supported")
        r = rx.int_range(ilo, ihi)
        return [(self.term(r + suffix, False),)] if r else []

    def _mod_rules(self, m: int, min_value: int | None = None, frac_zeros: bool = False) -> str:
        """Right-linear grammar for decimal integers divisible by m (sign allowed unless min_value)."""
        digit = [self.lit(str(d)) for d in range(10)]
        states = [self.new_rule() for _ in range(m)]
        for r in range(m):
            if r == 0:
                self.add(states[r], ())
                if frac_zeros:
                    self.add(states[r], (self.term(r"\.0+", False),))
            for d in range(10):
                self.add(states[r], (digit[d], self.rule_sym(states[(10 * r + d) % m])))
        top = self.new_rule()
        nz = self.new_rule()
        for d in range(1, 10):
            self.add(nz, (digit[d], self.rule_sym(states[d % m])))
        if min_value is None:
            self.add(top, (self.term("-?0" + (r"(?:\.0+)?" if frac_zeros else ""), False),))
            self.add(top, (self.rule_sym(nz),))
            self.add(top, (self.lit("-"), self.rule_sym(nz)))
            return top
        # non-negative multiples >= min_value: all multiples with more digits than min_value, plus
        # the finitely many of equal or fewer digits enumerated as literals
        small = [v for v in range(0, 10 ** len(str(min_value)), m) if v >= min_value]
        for v in small:
            self.add(top, (self.term(str(v) + (r"(?:\.0+)?" if frac_zeros else ""), False),))
        big = self.new_rule()  # numbers with > len(str(min_value)) digits
        n = len(str(min_value))
        prev = nz
        # build chains: nz followed by at least n more digits then the mod states
        chain = [self.new_rule() for _ in range(n)]
        # chain[k](r) would need states per residue; do it per residue
        rs = [[self.new_rule() for _ in range(m)] for _ in range(n + 1)]
        for k in range(n + 1):
            for r in range(m):
                if k == n:
                    self.add(rs[k][r], (self.rule_sym(states[r]),))
                else:
                    for d in range(10):
                        self.add(rs[k][r], (digit[d], self.rule_sym(rs[k + 1][(10 * r + d) % m])))
        for d in range(1, 10):
            self.add(big, (digit[d], self.rule_sym(rs[0][d % m])))
        del prev, chain
        self.add(top, (self.rule_sym(big),))
        return top

    # ---- any JSON value ---------------------------------------------------------------------------
    def any_value(self, depth: int) -> str:
        d = depth if self.style.depth_dependent else 0
        hit = self._any_memo.get(d)
        if hit is not None:
            return hit
        value = self.new_rule()
        self._any_memo[d] = value
        for lit in ("null", "true", "false"):
            self.add(value, (self.lit(lit),))
        self.add(value, (self.term(rx.JSON_STRING, False),))
        self.add(value, (self.term(rx.JSON_NUMBER, False),))
        if self.style.depth_dependent and d >= self.limits.max_schema_depth:
            return value
        inner = self.any_value(d + 1)
        # objects
        obj, members = self.new_rule(), self.new_rule()
        key = self._free_key(d)
        self.add(obj, (self.punct("{}", d),))
        self.add(obj, (self.punct("{", d), self.rule_sym(members), self.punct("}", d)))
        self.add(members, (*key, self.rule_sym(inner)))
        self.add(members, (self.rule_sym(members), self.punct(",", d), *key, self.rule_sym(inner)))
        # arrays
        arr, elems = self.new_rule(), self.new_rule()
        self.add(arr, (self.punct("[]", d),))
        self.add(arr, (self.punct("[", d), self.rule_sym(elems), self.punct("]", d)))
        self.add(elems, (self.rule_sym(inner),))
        self.add(elems, (self.rule_sym(elems), self.punct(",", d), self.rule_sym(inner)))
        self.add(value, (self.rule_sym(obj),))
        self.add(value, (self.rule_sym(arr),))
        return value

    def _free_key(self, depth: int, body: str = rx.CHAR + "*") -> tuple[Sym, ...]:
        text, is_rx = self.style.punct(":", depth)
        if is_rx:
            return (self.term('"' + body + '"', False), self.term(text, False))
        return (self.term('"' + body + '"' + rx.literal_regex(text), False),)

    def lower_value(self, conj: list[Frag], depth: int) -> str:
        """Rule for a value at ``depth`` constrained by ``conj`` (empty: any JSON value)."""
        live = [f for f in conj if f.schema is not True and f.schema != {}]
        if not live:
            return self.any_value(depth)
        return self.lower(tuple(live), depth)

    # ---- arrays -------------------------------------------------------------------------------
    def _array(self, flat: list[Frag], depth: int) -> list[tuple[Sym, ...]]:
        prefixes: list[tuple[Frag, list[Any]]] = []
        rests: list[tuple[Frag, Any]] = []
        min_items, max_items = 0, None
        contains: list[tuple[Frag, Any, int, int | None]] = []
        unique = False
        for f in flat:
            s = f.schema
            prefix: list[Any] = []
            rest: Any = None
            if self.draft >= 2020:
                if f.has("prefixItems"):
                    prefix = list(s["prefixItems"])
                    self.note(f.pointer, "prefixItems", "grammar (one rule per position)")
                if f.has("items"):
                    rest = ("items", s["items"])
                    self.note(f.pointer, "items", "grammar (element rule)")
            else:
                if f.has("items"):
                    if isinstance(s["items"], list):
                        prefix = list(s["items"])
                        if f.has("additionalItems"):
                            rest = ("additionalItems", s["additionalItems"])
                            self.note(f.pointer, "additionalItems", "grammar (element rule)")
                    else:
                        rest = ("items", s["items"])
                    self.note(f.pointer, "items", "grammar (element rule)")
            prefixes.append((f, prefix))
            if rest is not None:
                rests.append((f, rest))
            if f.has("minItems"):
                min_items = max(min_items, int(s["minItems"]))
                self.note(f.pointer, "minItems", "grammar (counted repetition)")
            if f.has("maxItems"):
                max_items = int(s["maxItems"]) if max_items is None else min(max_items, int(s["maxItems"]))
                self.note(f.pointer, "maxItems", "grammar (counted repetition)")
            if f.has("contains") and self.draft >= 6:
                lo = int(s.get("minContains", 1)) if self.draft >= 2019 else 1
                hi = s.get("maxContains") if self.draft >= 2019 else None
                contains.append((f, s["contains"], lo, None if hi is None else int(hi)))
            if f.has("uniqueItems") and s["uniqueItems"] is True:
                unique = True
        if max_items is not None and min_items > max_items:
            self.unsat(flat[0].pointer, f"minItems {min_items} > maxItems {max_items}")
            return []
        plen = max((len(p) for _, p in prefixes), default=0)

        def conj_at(i: int) -> list[Frag]:
            out: list[Frag] = []
            for f, p in prefixes:
                if i < len(p):
                    key = "prefixItems" if self.draft >= 2020 else "items"
                    out.append(self.child(f, p[i], key, i))
                else:
                    for g, (kw, sub) in rests:
                        if g is f:
                            out.append(self.child(f, sub, kw))
            return out

        rest_conj = conj_at(plen)
        # contains
        c_frag: Frag | None = None
        c_min = 0
        c_max: int | None = None
        c_neg: list[Frag] | None = None
        for f, sub, lo, hi in contains:
            if hi is not None and hi < lo:
                self.unsat(f.pointer, f"minContains {lo} > maxContains {hi}")
                return []
            binding_max = hi is not None and (max_items is None or hi < max_items)
            if lo == 0 and not binding_max:
                self.note(f.pointer, "contains", "no constraint (minContains 0)")
                continue
            if c_frag is not None:
                self.refuse("contains", f.pointer, "several 'contains' keywords in one intersection")
                continue
            c_frag = self.child(f, sub, "contains")
            c_min = lo
            if binding_max:
                try:
                    c_neg = self._negate(c_frag, 0)
                    c_max = hi
                    self.note(f.pointer, "maxContains", "grammar (elements matching / not matching 'contains' counted)")
                except _Refused as e:
                    self.refuse("maxContains", f.pointer, f"maxContains needs the negation of 'contains' ({e})")
            self.note(f.pointer, "contains", "grammar (counting matching elements)")
        if c_frag is not None and max_items is not None and c_min > max_items:
            self.unsat(c_frag.pointer, f"minContains {c_min} > maxItems {max_items}")
            return []
        if unique and (max_items is None or max_items > 1):
            fin = self._finite_items(rest_conj) if plen == 0 and c_frag is None else None
            if fin is None or len(fin) > 8:
                for g in flat:
                    if g.has("uniqueItems") and g.schema["uniqueItems"] is True:
                        self.relax(g, "uniqueItems", "items not a finite set of at most 8 values")
            else:
                self.note(flat[0].pointer, "uniqueItems", "grammar (states over the set of used values)")
                return self._unique_array(fin, min_items, max_items, depth)
        elif unique:
            self.note(flat[0].pointer, "uniqueItems", "no constraint (at most one item)")
        # chain states: positions 0..F-1 distinct; beyond F identical unless max bounds the chain
        F = max(plen, min_items)
        if max_items is not None:
            F = min(F, max_items)
            chain_end = max_items
        else:
            chain_end = None
        if chain_end is not None and chain_end - plen > self.limits.max_repeat:
            raise LimitExceeded("max_repeat", chain_end, self.limits.max_repeat, f"maxItems at {flat[0].pointer}")
        if F > self.limits.max_repeat:
            raise LimitExceeded("max_repeat", F, self.limits.max_repeat, f"minItems/prefixItems at {flat[0].pointer}")
        item_cache: dict[tuple[int, bool], str] = {}

        def item(i: int, matching: bool) -> str:
            j = min(i, plen)
            k = (j, matching)
            if k not in item_cache:
                base = conj_at(j)
                if matching and c_frag is not None:
                    base = base + [c_frag]
                elif not matching and c_neg is not None:
                    base = base + c_neg
                item_cache[k] = self.lower_value(base, depth + 1)
            return item_cache[k]

        states: dict[tuple[int, int], str] = {}
        sep = self.punct(",", depth)

        def bump(c: int) -> int:
            return c + 1 if c_max is not None else min(c + 1, c_min)

        def state(j: int, c: int) -> str:
            jj = j if chain_end is not None else min(j, F)
            key = (jj, c)
            if key in states:
                return states[key]
            name = self.new_rule()
            states[key] = name
            if jj >= min_items and c >= c_min:
                self.add(name, ())
            if chain_end is None or jj < chain_end:
                nxt = jj + 1
                self.add(name, (sep, self.rule_sym(item(jj, False)), self.rule_sym(state(nxt, c))))
                if c_frag is not None and (c_max is None or c + 1 <= c_max):
                    self.add(name, (sep, self.rule_sym(item(jj, True)), self.rule_sym(state(nxt, bump(c)))))
            return name

        alts: list[tuple[Sym, ...]] = []
        if min_items == 0 and c_min == 0:
            alts.append((self.punct("[]", depth),))
        if max_items is None or max_items >= 1:
            first = [(item(0, False), 0)]
            if c_frag is not None and (c_max is None or c_max >= 1):
                first.append((item(0, True), bump(0)))
            for sym, c in first:
                alts.append(
                    (self.punct("[", depth), self.rule_sym(sym), self.rule_sym(state(1, c)), self.punct("]", depth))
                )
        return alts

    def _finite_items(self, conj: list[Frag]) -> list[Any] | None:
        flat = self.flatten(conj, quiet=True)
        if flat is None:
            return []
        if any(f.has(kw) for f in flat for kw in APPLICATORS + ("not",)):
            return None
        finite = None
        types = set(ALL_TYPES)
        for f in flat:
            t = f.get("type")
            if t is not None:
                types &= {t} if isinstance(t, str) else set(t)
            if f.has("const"):
                finite = (
                    [f.schema["const"]] if finite is None else [v for v in finite if _json_in(v, [f.schema["const"]])]
                )
            if f.has("enum"):
                finite = (
                    list(f.schema["enum"]) if finite is None else [v for v in finite if _json_in(v, f.schema["enum"])]
                )
        if finite is None:
            if types <= {"boolean", "null"}:
                finite = ([True, False] if "boolean" in types else []) + ([None] if "null" in types else [])
            else:
                return None
        out: list[Any] = []
        for v in finite:
            if not _json_in(v, out) and all(self.valid(f, v) for f in flat):
                out.append(v)
        return out

    def _unique_array(
        self, values: list[Any], min_items: int, max_items: int | None, depth: int
    ) -> list[tuple[Sym, ...]]:
        n = len(values)
        cap = n if max_items is None else min(n, max_items)
        if min_items > cap:
            self.unsat("#", f"uniqueItems with {n} possible values cannot reach minItems {min_items}")
            return []
        memo: dict[int, str] = {}
        sep = self.punct(",", depth)

        def st(used: int) -> str:
            if used in memo:
                return memo[used]
            name = self.new_rule()
            memo[used] = name
            cnt = bin(used).count("1")
            if cnt >= min_items:
                self.add(name, ())
            if cnt < cap:
                for i, v in enumerate(values):
                    if not used >> i & 1:
                        self.add(name, (sep, *self.value_rhs(v, depth + 1), self.rule_sym(st(used | 1 << i))))
            return name

        alts: list[tuple[Sym, ...]] = []
        if min_items == 0:
            alts.append((self.punct("[]", depth),))
        if cap >= 1:
            for i, v in enumerate(values):
                alts.append(
                    (
                        self.punct("[", depth),
                        *self.value_rhs(v, depth + 1),
                        self.rule_sym(st(1 << i)),
                        self.punct("]", depth),
                    )
                )
        return alts

    # ---- objects ------------------------------------------------------------------------------
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
                        f"{f.pointer}/patternProperties/{_esc(p)}",
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
            self.refuse("propertyNames", g.pointer, f"propertyNames with keywords {sorted(keys)}")
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


# ---- JSON value helpers ----------------------------------------------------------------------
def _spec_or_none(rj: Any, uri: str) -> Any:
    try:
        return rj.specification_with(uri)
    except Exception:
        return None


def _is_number(v: Any) -> bool:
    return isinstance(v, (int, float, Decimal)) and not isinstance(v, bool)


def _json_type(v: Any) -> str:
    if v is None:
        return "null"
    if isinstance(v, bool):
        return "boolean"
    if isinstance(v, int):
        return "integer"
    if isinstance(v, float):
        return "integer" if v.is_integer() else "number"
    if isinstance(v, str):
        return "string"
    if isinstance(v, list):
        return "array"
    if isinstance(v, dict):
        return "object"
    return "unknown"


def _json_eq(a: Any, b: Any) -> bool:
    if isinstance(a, bool) or isinstance(b, bool):
        return type(a) is type(b) and a == b
    if _is_number(a) and _is_number(b):
        try:
            return Decimal(repr(a) if isinstance(a, float) else a) == Decimal(repr(b) if isinstance(b, float) else b)
        except InvalidOperation:
            return False
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(_json_eq(x, y) for x, y in zip(a, b))
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_json_eq(a[k], b[k]) for k in a)
    return type(a) is type(b) and a == b


def _json_in(v: Any, vals: list[Any]) -> bool:
    return any(_json_eq(v, w) for w in vals)


def lower_schema(schema: Any, options: dict[str, Any] | None = None, limits: Limits | None = None) -> Lowered:
    """Lower a JSON Schema (dict or bool) to a grammar; raises SchemaError / LimitExceeded."""
    return Lowerer(schema, options, limits).lower_root()
