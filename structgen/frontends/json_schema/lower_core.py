"""The shared machinery of the JSON Schema lowering: fragments, rule building, the
report, ``$ref``/``allOf`` flattening, validation of candidate values, literal values."""

from __future__ import annotations

import json
import math
import time
from abc import abstractmethod
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from typing import Any

from structgen.errors import InvalidSchema, LimitExceeded, UnsupportedSchema
from structgen.frontends.json_schema import regexes as rx
from structgen.frontends.json_schema.check_plan import CheckSource, Relaxed
from structgen.frontends.json_schema.formats import CHECKED_FORMATS, FORMATS, check_format
from structgen.frontends.json_schema.formatting import Style, dumps
from structgen.ir.grammar import Grammar, Sym, Terminal
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


KEYWORD_DRAFTS: dict[str, tuple[int, int]] = {  # keyword -> (first draft, last draft)
    "const": (6, 2020),
    "contains": (6, 2020),
    "propertyNames": (6, 2020),
    "if": (7, 2020),
    "dependentRequired": (2019, 2020),
    "dependentSchemas": (2019, 2020),
    "minContains": (2019, 2020),
    "maxContains": (2019, 2020),
    "unevaluatedProperties": (2019, 2020),
    "unevaluatedItems": (2019, 2020),
    "$recursiveRef": (2019, 2019),
    "prefixItems": (2020, 2020),
    "$dynamicRef": (2020, 2020),
}


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
    _key: tuple = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:  # the memo key, computed once (conjunctions are keyed often)
        object.__setattr__(self, "_key", (id(self.schema), getattr(self.resolver, "_base_uri", ""), self.skip))

    def key(self) -> tuple:
        return self._key

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


def _json_key(v: Any) -> Any:
    """A hashable key with ``_json_key(a) == _json_key(b)`` exactly when ``_json_eq(a, b)``;
    raises TypeError or InvalidOperation for values it cannot key (callers then compare pairwise)."""
    if isinstance(v, bool):
        return ("b", v)
    if _is_number(v):
        d = Decimal(repr(v) if isinstance(v, float) else v)
        if not d.is_finite():
            raise InvalidOperation(repr(v))
        return ("n", d)  # equal Decimals hash equal: 1, 1.0 and 10e-1 are one key
    if isinstance(v, list):
        return ("l", tuple(_json_key(x) for x in v))
    if isinstance(v, dict):
        return ("d", frozenset((k, _json_key(x)) for k, x in v.items()))
    return ("o", type(v), v) if isinstance(v, str) or v is None else ("o", type(v), hash(v), v)


def _json_filter(values: list[Any], allowed: list[Any]) -> list[Any]:
    """``[v for v in values if _json_in(v, allowed)]``, by hashing when every value has a key."""
    try:
        keys = {_json_key(w) for w in allowed}
        return [v for v in values if _json_key(v) in keys]
    except (TypeError, InvalidOperation):
        return [v for v in values if _json_in(v, allowed)]


class _JsonSet:
    """A set of JSON values under ``_json_eq``: hashed by ``_json_key``, pairwise for the rest."""

    def __init__(self) -> None:
        self.keys: set[Any] = set()
        self.rest: list[Any] = []

    def __contains__(self, v: Any) -> bool:
        try:
            if _json_key(v) in self.keys:
                return True
        except (TypeError, InvalidOperation):
            pass
        return _json_in(v, self.rest)

    def add(self, v: Any) -> None:
        try:
            self.keys.add(_json_key(v))
        except (TypeError, InvalidOperation):
            self.rest.append(v)


class LowererCore:
    """Lowers one JSON Schema into a :class:`Grammar`: the state and helpers every keyword family uses
    (see :mod:`structgen.frontends.json_schema.lowering`)."""

    def __init__(self, schema: Any, options: dict[str, Any] | None = None, limits: Limits | None = None) -> None:
        import referencing
        import referencing.jsonschema as rj

        self.options = dict(options or {})
        self.limits = limits or DEFAULT_LIMITS
        self.style = Style.of(self.options)
        self.lenient = bool(self.options.get("lenient", False))
        self.explaining = bool(self.options.get("_explain", False))
        # internal: every pattern/format/length string is checked on its completed value instead of being
        # a grammar regex (the retry when the lexer of all string regexes together is too large)
        self.checked_strings = bool(self.options.get("_checked_strings", False))
        # internal: overlapping oneOf branches are a union checked on completion, not rewritten into
        # (branch and not the others) (the retry when those rewrites exceed max_grammar_rules)
        self.oneof_union = bool(self.options.get("_oneof_union", False))
        self.oneof_rewrites = 0  # oneOfs rewritten so far (a retry with unions only helps if any)
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
        self.deepest = 0
        self.t0 = time.perf_counter()
        self._any_memo: dict[int, str] = {}
        self._validators: dict[tuple, Any] = {}
        self._valid_memo: dict[tuple, bool] = {}
        self._resolved: dict[tuple[str, str], Frag] = {}
        self._shapes: dict[tuple, dict[str, Any]] = {}
        self._enum_index: dict[int, dict[Any, list[Any]]] = {}
        self._unions: dict[tuple[str, ...], str] = {}
        self._value_sets: dict[int, _JsonSet] = {}
        self._plain: dict[tuple, bool] = {}  # (id(schema), skip) -> flatten passes it through as is
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
        self.inactive = frozenset(k for k, (lo, hi) in KEYWORD_DRAFTS.items() if not lo <= self.draft <= hi)
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

        from structgen.frontends.json_schema.metaschema import is_valid_schema

        cls = self.validator_cls
        if is_valid_schema(cls, schema):  # the common case, without jsonschema's reference lookups
            return
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

    def note(self, pointer: str, keyword: str, how: str) -> None:
        self.report.setdefault((pointer, keyword), {"pointer": pointer, "keyword": keyword, "how": how})

    def refuse(self, keyword: str, pointer: str, message: str, frag: Frag | None = None) -> None:
        """Refuse a keyword the grammar cannot express: with ``frag`` (the fragment holding it, when
        dropping the keyword leaves a superset at that location) it is relaxed instead, i.e. checked on
        completed values (exact); otherwise raise, or (lenient) record it as dropped and return."""
        if frag is not None:
            self.relax(frag, keyword, message)
            return
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
        how = f"enforced by a check on completed values ({why})"  # replaces an earlier note of the keyword
        self.report[(f.pointer, keyword)] = {"pointer": f.pointer, "keyword": keyword, "how": how}

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
        if len(self.rules) >= self.limits.max_grammar_rules or not len(self.rules) & 255:
            self._tick()  # counted as rules are made (object/array state chains make many per lower())
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

    def child(self, f: Frag, sub: Any, *path: str | int) -> Frag:
        ptr = f.pointer + "".join("/" + _esc(str(p)) for p in path)
        resolver = f.resolver
        if isinstance(sub, dict):
            sid = sub.get("$id") if self.draft > 4 else sub.get("id")
            if isinstance(sid, str) and not sid.startswith("#"):
                resolver = resolver.in_subresource(self.spec.create_resource(sub))
        return Frag(sub, resolver, ptr, self.inactive)

    def synth(self, f: Frag, schema: Any, suffix: str = "") -> Frag:
        self.keep.append(schema)
        return Frag(schema, f.resolver, f.pointer + suffix, self.inactive)

    def resolve(self, f: Frag, ref: str, kw: str) -> Frag:
        from referencing.exceptions import Unresolvable

        ck = (getattr(f.resolver, "_base_uri", ""), ref)
        hit = self._resolved.get(ck)
        if hit is not None:  # a $ref used N times is looked up once (referencing's lookup is slow)
            return hit
        try:
            resolved = f.resolver.lookup(ref)
        except Unresolvable as e:
            if ref.startswith("#"):
                raise InvalidSchema(f"$ref {ref!r} does not resolve ({e})", f"{f.pointer}/{kw}") from None
            raise UnsupportedSchema(
                f"remote $ref {ref!r} is not in the registry option (structgen never fetches)", f"{f.pointer}/{kw}", kw
            ) from None
        out = Frag(resolved.contents, resolved.resolver, ref, self.inactive)
        self._resolved[ck] = out
        return out

    def flatten(self, conj: tuple[Frag, ...] | list[Frag], quiet: bool = False) -> list[Frag] | None:
        """Expand ``$ref`` and ``allOf``; None when a ``false`` schema makes the conjunction empty."""
        out: list[Frag] = []
        seen: set[tuple] = set()
        pending = list(reversed(conj))  # a stack: the next fragment is pending[-1]
        plain = self._plain
        while pending:
            f = pending.pop()
            k = f.key()
            if k in seen:
                continue
            seen.add(k)
            pk = (k[0], k[2])
            if plain.get(pk):  # no $ref, allOf or refused keyword: the fragment is already flat
                out.append(f)
                continue
            s = f.schema
            if s is True:
                continue
            if s is False:
                if not quiet:
                    self.unsat(f.pointer, "the schema is false")
                return None
            if not isinstance(s, dict):
                raise InvalidSchema(f"a schema must be an object or a boolean, got {type(s).__name__}", f.pointer)
            if not f.has("$ref") and not f.has("allOf") and not any(f.has(kw) for kw in REFUSED_ALWAYS):
                plain[pk] = True
                out.append(f)
                continue
            if f.has("$ref"):
                target = self.resolve(f, s["$ref"], "$ref")
                if not quiet:
                    self.note(f.pointer, "$ref", "grammar rule (shared; recursion becomes grammar recursion)")
                if self.draft <= 7:
                    pending.append(target)
                    continue
                pending.append(f.without("$ref"))
                pending.append(target)
                continue
            for kw in REFUSED_ALWAYS:
                if f.has(kw) and not quiet:
                    if kw == "unevaluatedProperties" and s[kw] is True or kw == "unevaluatedItems" and s[kw] is True:
                        self.note(f.pointer, kw, "no constraint (true)")
                    else:  # the grammar drops it (a superset); a check on the completed value keeps it exact
                        self.relax(f, kw, f"{kw} depends on what the other keywords evaluated")
                    f = f.without(kw)
            if f.has("allOf"):
                if not quiet:
                    self.note(f.pointer, "allOf", "intersection (fragments merged keyword by keyword)")
                kids = [self.child(f, sub, "allOf", i) for i, sub in enumerate(s["allOf"])]
                pending.extend(reversed(kids))
                f = f.without("allOf")
            out.append(f)
        return out

    @staticmethod
    def quick_empty(flat: list[Frag]) -> str | None:
        """Why a flattened conjunction is empty, when its own keywords show it cheaply (before any
        applicator is distributed): ``type`` keywords that do not intersect, or an object-only
        conjunction that requires a property another fragment forbids (``properties: {p: false}``,
        as negated ``required`` writes it). None when not shown empty this way."""
        types = set(ALL_TYPES)
        for f in flat:
            t = f.get("type")
            if t is not None:
                ts = {t} if isinstance(t, str) else set(t)
                if "number" in ts:
                    ts.add("integer")
                types &= ts
        if not types:
            return "the types allowed by 'type' keywords do not intersect"
        if types == {"object"}:
            required: set[str] = set()
            forbidden: set[str] = set()
            for f in flat:
                req = f.get("required")
                if isinstance(req, list):
                    required.update(r for r in req if isinstance(r, str))
                props = f.get("properties")
                if isinstance(props, dict):
                    forbidden.update(k for k, v in props.items() if v is False)
            both = required & forbidden
            if both:
                return f"property {min(both)!r} is both required and forbidden (properties: false)"
        return None

    def _valid_conj(self, conj: list[Frag], value: Any) -> bool:
        return all(self.valid(f, value) for f in conj)

    def valid(self, f: Frag, value: Any) -> bool:
        """Exact membership of a value in one fragment (jsonschema, our format regexes)."""
        s = f.schema
        if isinstance(s, dict) and any(k.startswith("$$") for k in s):
            if "$$anyOf" in s and not any(all(self.valid(h, value) for h in case) for case in s["$$anyOf"]):
                return False
            if "$$exclude" in s and value in self._value_set(s["$$exclude"]):
                return False
            if s.get("$$not_integer") and _is_number(value) and float(value) == math.floor(float(value)):
                return False
            if isinstance(value, str) and any(self._string_in(k, v, value) for k, v in s.get("$$not_string", ())):
                return False
            s = {k: v for k, v in s.items() if not k.startswith("$$")}
        key = (id(f.schema), getattr(f.resolver, "_base_uri", ""))
        try:  # the same (fragment, value) pair recurs once per conjunction context
            vkey: tuple | None = (*key, json.dumps(value, sort_keys=True))
        except (TypeError, ValueError):
            vkey = None
        if vkey is not None:
            got = self._valid_memo.get(vkey)
            if got is None:
                got = self._valid_memo[vkey] = self._valid_uncached(f, s, key, value)
            return got
        return self._valid_uncached(f, s, key, value)

    def _valid_uncached(self, f: Frag, s: Any, key: tuple, value: Any) -> bool:
        if isinstance(s, dict) and isinstance(s.get("enum"), list) and len(s["enum"]) > 32 and "$ref" not in s:
            # jsonschema's enum is a linear scan, so filtering an enum of n values through it is
            # O(n^2): test membership through a hash index (same equality), the rest as usual
            if not self._enum_member(s["enum"], value):
                return False
            s = {k: v for k, v in s.items() if k != "enum"}
            key = (*key, "-enum")
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

    def _value_set(self, values: list[Any]) -> _JsonSet:
        """``values`` as a :class:`_JsonSet` (built once per list: excluded values are tested once
        per candidate value and conjunction context)."""
        got = self._value_sets.get(id(values))
        if got is None:
            got = self._value_sets[id(values)] = _JsonSet()
            for v in values:
                got.add(v)
            self.keep.append(values)
        return got

    def _enum_member(self, enum: list[Any], value: Any) -> bool:
        """``value`` equals a member of ``enum`` under jsonschema's equality (bool is not a number,
        1 == 1.0): candidates by ``_json_key``, then jsonschema's ``equal``; a scan when that misses."""
        from jsonschema._utils import equal

        index = self._enum_index.get(id(enum))
        if index is None:
            index = {}
            for e in enum:
                try:
                    index.setdefault(_json_key(e), []).append(e)
                except (TypeError, InvalidOperation):
                    continue
            self._enum_index[id(enum)] = index
            self.keep.append(enum)
        try:
            if any(equal(e, value) for e in index.get(_json_key(value), ())):
                return True
        except (TypeError, InvalidOperation):
            pass
        return any(equal(e, value) for e in enum)

    def _string_in(self, kind: str, val: str, value: str) -> bool:
        """Whether ``value`` matches pattern (ECMA search) or format ``val``: Python ``re`` runs the
        same translated regex the grammar uses (``re.search`` only for untranslatable patterns)."""
        if kind == "format":
            return bool(check_format(val, value))
        return rx.pattern_matches(val, value)

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

    @staticmethod
    def scalar_literal(v: Any) -> str | None:
        """The text of ``v`` when ``value_rhs`` spells it as one literal terminal, else None."""
        if isinstance(v, (dict, list)):
            return None
        text = dumps(v)
        if _is_number(v) and (text.endswith(".0") or "." not in text):
            return None
        return text

    def key_syms(self, key_json: str, depth: int) -> tuple[Sym, ...]:
        text, is_rx = self.style.punct(":", depth)
        if is_rx:
            return (self.lit(key_json), self.term(text, False))
        return (self.lit(key_json + text),)

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
            return (self.term(rx.quoted_terminal_regex(body, ""), False), self.term(text, False))
        return (self.term(rx.quoted_terminal_regex(body, text), False),)

    def lower_value(self, conj: list[Frag], depth: int) -> str:
        """Rule for a value at ``depth`` constrained by ``conj`` (empty: any JSON value)."""
        live = [f for f in conj if f.schema is not True and f.schema != {}]
        if not live:
            return self.any_value(depth)
        return self.lower(tuple(live), depth)

    @abstractmethod
    def lower(self, conj: tuple[Frag, ...], depth: int) -> str:
        """The grammar rule for a conjunction (the memoized entry of the whole lowering)."""

    @abstractmethod
    def _lower_flat(self, flat: list[Frag], depth: int) -> list[tuple[Sym, ...]]:
        """Alternatives for a flattened conjunction without applicators, one per JSON type."""
