"""Value checks: JSON Schema keywords enforced on completed values instead of by the grammar.

Two keywords have no exact token automaton in general: ``uniqueItems`` over unbounded item sets
and ``oneOf`` whose branches cannot be proven disjoint (nor negated). The lowering *relaxes* them
(the grammar drops ``uniqueItems`` and takes the union of the ``oneOf`` branches, a superset of the
valid documents) and records each relaxed fragment here. At decode time a checked engine
(:mod:`structgen.runtime.checked_engine`) follows the instance being written and, when a value
completes, validates it against the relaxed fragments that *necessarily* apply at its location;
the token completing an invalid value is rejected.

Which fragments apply at a location (a :class:`Ctx`): walk from the root schema along
``$ref``/``allOf`` (same location), ``properties``/``patternProperties``/``additionalProperties``/
``items``/``prefixItems``/``additionalItems`` (child locations, decided by the actual key or index),
and ``anyOf``/``oneOf`` branches when the value's JSON type leaves exactly one compatible branch.
Every fragment so reached must hold for the document to be valid, so each check is sound.

Exactness: a relaxed fragment is *covered* when every route to it is such a walk. When one is
reached another way (an ambiguous ``anyOf``, ``if``/``then``, ``not``, ``contains``,
``dependentSchemas``, ``propertyNames``...), the plan adds a *root check*: the whole document is
validated against the schema before EOS. Covered keywords are thus rejected at the token that
completes the offending value; the others at EOS at the latest. Either way the accepted language is
exactly the schema's.
"""

from __future__ import annotations

import json
import re
from collections import OrderedDict
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

TYPES = frozenset({"object", "array", "string", "number", "boolean", "null"})
_SCHEMA_KW_SINGLE = (
    "not",
    "if",
    "then",
    "else",
    "contains",
    "items",
    "additionalItems",
    "additionalProperties",
    "propertyNames",
    "unevaluatedItems",
    "unevaluatedProperties",
)
_SCHEMA_KW_LIST = ("allOf", "anyOf", "oneOf", "prefixItems", "items")
_SCHEMA_KW_MAP = ("properties", "patternProperties", "dependentSchemas", "dependencies")
_VALIDATION_MEMO = 4096
_KIDS_MEMO = 512


@dataclass(frozen=True)
class Relaxed:
    """One schema fragment whose keywords the grammar relaxed (checked on completed values)."""

    schema: Any
    resolver: Any
    pointer: str
    keywords: frozenset[str]


@dataclass(frozen=True, eq=False)
class CheckSource:
    """What the lowering hands over: the relaxed fragments and how to validate against the schema."""

    relaxed: dict[int, Relaxed]  # id(fragment schema) -> fragment
    schema: Any
    spec: Any  # the referencing specification of the dialect
    registry: Any
    root_resolver: Any
    validator_cls: Any
    format_checker: Any
    draft: int  # 2020, 2019, 7, 6 or 4


def json_type(first_byte: int) -> str:
    """The JSON type of a value starting with ``first_byte`` (a byte the grammar allowed)."""
    c = chr(first_byte)
    if c == "{":
        return "object"
    if c == "[":
        return "array"
    if c == '"':
        return "string"
    if c in "tf":
        return "boolean"
    if c == "n":
        return "null"
    return "number"


def canonical(v: Any) -> Any:
    """A hashable key equal for JSON-equal values (1 == 1.0, true != 1, objects unordered)."""
    if v is True or v is False:
        return ("b", v)
    if v is None:
        return ("z",)
    if isinstance(v, (int, float)):
        return ("n", v)
    if isinstance(v, str):
        return ("s", v)
    if isinstance(v, list):
        return ("l", tuple(canonical(x) for x in v))
    return ("o", frozenset((k, canonical(x)) for k, x in v.items()))


class Ctx:
    """The fragments that necessarily apply at one instance location, for one JSON type.

    Attributes:
        frags: ``(schema, resolver)`` pairs (``$ref``/``allOf`` expanded).
        checks: indices of :attr:`CheckPlan.validators` run on a completed value here.
        unique: an array whose completed items are checked against the earlier ones.
    """

    __slots__ = ("frags", "type", "checks", "unique", "kids")

    def __init__(self, frags: tuple[tuple[Any, Any], ...], type_: str, checks: tuple[int, ...], unique: bool) -> None:
        self.frags = frags
        self.type = type_
        self.checks = checks
        self.unique = unique
        self.kids: OrderedDict[Any, Ctx | None] = OrderedDict()


class CheckPlan:
    """The compiled check plan of one schema: contexts, validators, and the root check if needed."""

    def __init__(self, src: CheckSource) -> None:
        self.src = src
        self.draft = src.draft
        self.validators: list[Any] = []
        self._validator_of: dict[int, int] = {}
        self._ctx_memo: dict[tuple, Ctx | None] = {}
        self._types_memo: dict[int, frozenset[str]] = {}
        self._keep: list[Any] = []  # schemas whose ids key the memos
        self._memo: OrderedDict[tuple[int, str], bool] = OrderedDict()
        self._pattern_cache: dict[str, Any] = {}
        self.hot = self._reaching_relaxed()
        uncovered = self._uncovered()
        self.uncovered = sorted(src.relaxed[i].pointer for i in uncovered)
        self.root_check: int | None = None
        if uncovered:
            self.root_check = self._validator(src.schema, src.root_resolver)
        self._roots: dict[str, Ctx | None] = {}

    # ---- reports ------------------------------------------------------------------------------
    def describe(self) -> list[dict[str, str]]:
        """One entry per relaxed keyword: pointer, keyword, and when it is checked."""
        out = []
        for r in self.src.relaxed.values():
            when = (
                "before EOS (whole document)"
                if r.pointer in self.uncovered
                else "when the value completes"
                if r.keywords != {"uniqueItems"}
                else "when each item completes"
            )
            for kw in sorted(r.keywords):
                out.append({"pointer": r.pointer, "keyword": kw, "checked": when})
        return out

    # ---- validation ---------------------------------------------------------------------------
    def _validator(self, schema: Any, resolver: Any) -> int:
        hit = self._validator_of.get(id(schema))
        if hit is not None:
            return hit
        src = self.src
        root = src.validator_cls(src.schema, registry=src.registry, format_checker=src.format_checker)
        self.validators.append(root.evolve(schema=schema, _resolver=resolver))
        self._keep.append(schema)
        self._validator_of[id(schema)] = len(self.validators) - 1
        return len(self.validators) - 1

    def validate(self, check: int, text: str, value: Any) -> bool:
        """Whether ``value`` (parsed from ``text``) satisfies validator ``check`` (memoized)."""
        key = (check, text)
        hit = self._memo.get(key)
        if hit is not None:
            return hit
        try:
            ok = bool(self.validators[check].is_valid(value))
        except Exception:  # noqa: BLE001 - a validator error counts as invalid (decode time never raises)
            ok = False
        self._memo[key] = ok
        if len(self._memo) > _VALIDATION_MEMO:
            self._memo.popitem(last=False)
        return ok

    def document_ok(self, text: str) -> bool:
        """The root check (True when the plan has none)."""
        if self.root_check is None:
            return True
        try:
            value = json.loads(text)
        except ValueError:
            return False
        return self.validate(self.root_check, text, value)

    # ---- contexts -----------------------------------------------------------------------------
    def root(self, t: str) -> Ctx | None:
        """The context of the root value of type ``t`` (None: nothing to check there or below)."""
        if t not in self._roots:
            self._roots[t] = self._make_ctx([(self.src.schema, self.src.root_resolver)], t)
        return self._roots[t]

    def child(self, ctx: Ctx, step: str | int, t: str) -> Ctx | None:
        """The context of the member ``step`` (key or index) of ``ctx``'s value, of type ``t``."""
        key = (step, t)
        kids = ctx.kids
        hit = kids.get(key, kids)
        if hit is not kids:
            return hit  # type: ignore[return-value]
        subs: list[tuple[Any, Any]] = []
        for s, r in ctx.frags:
            if self.draft <= 7 and "$ref" in s:
                continue
            if ctx.type == "object" and isinstance(step, str):
                subs.extend(self._member_schemas(s, r, step))
            elif ctx.type == "array" and isinstance(step, int):
                subs.extend(self._item_schemas(s, r, step))
        out = self._make_ctx(subs, t)
        kids[key] = out
        if len(kids) > _KIDS_MEMO:
            kids.popitem(last=False)
        return out

    def _member_schemas(self, s: dict, r: Any, name: str) -> list[tuple[Any, Any]]:
        out = []
        matched = False
        props = s.get("properties")
        if isinstance(props, dict) and name in props:
            out.append(self._sub(props[name], r))
            matched = True
        pats = s.get("patternProperties")
        if isinstance(pats, dict):
            for p, sub in pats.items():
                if self._search(p, name):
                    out.append(self._sub(sub, r))
                    matched = True
        if not matched and "additionalProperties" in s:
            out.append(self._sub(s["additionalProperties"], r))
        return out

    def _item_schemas(self, s: dict, r: Any, i: int) -> list[tuple[Any, Any]]:
        items = s.get("items")
        if self.draft >= 2020:
            prefix = s.get("prefixItems")
            if isinstance(prefix, list) and i < len(prefix):
                return [self._sub(prefix[i], r)]
            return [self._sub(items, r)] if "items" in s and not isinstance(items, list) else []
        if isinstance(items, list):
            if i < len(items):
                return [self._sub(items[i], r)]
            return [self._sub(s["additionalItems"], r)] if "additionalItems" in s else []
        return [self._sub(items, r)] if "items" in s else []

    def _search(self, pattern: str, name: str) -> bool:
        rx: Any = self._pattern_cache.get(pattern)
        if rx is None:
            try:
                rx = re.compile(pattern)
            except re.error:
                rx = False
            self._pattern_cache[pattern] = rx
        return bool(rx and rx.search(name))

    def _sub(self, sub: Any, r: Any) -> tuple[Any, Any]:
        if isinstance(sub, dict):
            sid = sub.get("$id") if self.draft > 4 else sub.get("id")
            if isinstance(sid, str) and not sid.startswith("#"):
                try:
                    r = r.in_subresource(self.src.spec.create_resource(sub))
                except Exception:  # noqa: BLE001 - an odd $id keeps the enclosing base
                    pass
        return (sub, r)

    def _resolve(self, r: Any, ref: str) -> tuple[Any, Any] | None:
        try:
            got = r.lookup(ref)
        except Exception:  # noqa: BLE001 - the lowering already refused unresolvable refs
            return None
        return (got.contents, got.resolver)

    def _expand(self, items: list[tuple[Any, Any]], t: str) -> list[tuple[Any, Any]]:
        """``items`` plus the fragments they imply for a value of type ``t`` ($ref, allOf, one branch)."""
        out: list[tuple[Any, Any]] = []
        seen: set[int] = set()
        stack = list(reversed(items))
        while stack:
            s, r = stack.pop()
            if not isinstance(s, dict) or id(s) in seen:
                continue
            seen.add(id(s))
            out.append((s, r))
            if isinstance(s.get("$ref"), str):
                tgt = self._resolve(r, s["$ref"])
                if tgt is not None:
                    stack.append(tgt)
                if self.draft <= 7:
                    continue
            subs = s.get("allOf")
            if isinstance(subs, list):
                stack.extend(self._sub(b, r) for b in reversed(subs))
            for kw in ("anyOf", "oneOf"):
                branches = s.get(kw)
                if isinstance(branches, list):
                    fit = [b for b in branches if t in self.types_of(b, r)]
                    if len(fit) == 1:
                        stack.append(self._sub(fit[0], r))
        return out

    def _make_ctx(self, items: list[tuple[Any, Any]], t: str) -> Ctx | None:
        frags = self._expand(items, t)
        if not any(id(s) in self.hot for s, _ in frags):
            return None
        key = (tuple(id(s) for s, _ in frags), t)
        if key in self._ctx_memo:
            return self._ctx_memo[key]
        checks: list[int] = []
        unique = False
        for s, r in frags:
            rel = self.src.relaxed.get(id(s))
            if rel is None:
                continue
            if "uniqueItems" in rel.keywords and t == "array":
                unique = True
            if rel.keywords - {"uniqueItems"}:
                checks.append(self._validator(s, r))
        ctx = Ctx(tuple(frags), t, tuple(dict.fromkeys(checks)), unique)
        self._keep.append(frags)
        self._ctx_memo[key] = ctx
        return ctx

    # ---- types --------------------------------------------------------------------------------
    def types_of(self, s: Any, r: Any, depth: int = 0) -> frozenset[str]:
        """JSON types a value valid against ``s`` may have (an over-approximation)."""
        if s is True:
            return TYPES
        if not isinstance(s, dict):
            return frozenset()
        hit = self._types_memo.get(id(s))
        if hit is not None:
            return hit
        if depth > 32:
            return TYPES
        ts = set(TYPES)
        t = s.get("type")
        if t is not None:
            names = {t} if isinstance(t, str) else set(t) if isinstance(t, list) else set(TYPES)
            ts &= {"number" if n == "integer" else n for n in names}
        for kw in ("const", "enum"):
            if kw in s:
                vals = [s["const"]] if kw == "const" else s["enum"] if isinstance(s["enum"], list) else []
                ts &= {_value_type(v) for v in vals}
        if isinstance(s.get("$ref"), str):
            tgt = self._resolve(r, s["$ref"])
            if tgt is not None:
                ref_ts = self.types_of(tgt[0], tgt[1], depth + 1)
                ts = set(ref_ts) if self.draft <= 7 else ts & ref_ts
        if not (self.draft <= 7 and "$ref" in s):
            for b in s.get("allOf") or []:
                ts &= self.types_of(b, self._sub(b, r)[1], depth + 1)
            for kw in ("anyOf", "oneOf"):
                if isinstance(s.get(kw), list):
                    u: set[str] = set()
                    for b in s[kw]:
                        u |= self.types_of(b, self._sub(b, r)[1], depth + 1)
                    ts &= u
        out = frozenset(ts)
        self._types_memo[id(s)] = out
        self._keep.append(s)
        return out

    # ---- static analysis ----------------------------------------------------------------------
    def _subschemas(self, s: Any, r: Any) -> Iterator[tuple[Any, Any]]:
        """Every subschema ``s`` applies to values with (including $ref targets)."""
        if not isinstance(s, dict):
            return
        if isinstance(s.get("$ref"), str):
            tgt = self._resolve(r, s["$ref"])
            if tgt is not None:
                yield tgt
            if self.draft <= 7:
                return
        for kw in _SCHEMA_KW_SINGLE:
            if kw in s and isinstance(s[kw], (dict, bool)):
                yield self._sub(s[kw], r)
        for kw in _SCHEMA_KW_LIST:
            if isinstance(s.get(kw), list):
                for b in s[kw]:
                    yield self._sub(b, r)
        for kw in _SCHEMA_KW_MAP:
            if isinstance(s.get(kw), dict):
                for b in s[kw].values():
                    if isinstance(b, (dict, bool)):
                        yield self._sub(b, r)

    def _reaching_relaxed(self) -> set[int]:
        """Ids of the schemas from which a relaxed fragment is reachable (a context worth tracking)."""
        nodes: dict[int, tuple[Any, Any]] = {}
        preds: dict[int, set[int]] = {}
        stack = [(self.src.schema, self.src.root_resolver)]
        for rel in self.src.relaxed.values():
            stack.append((rel.schema, rel.resolver))
        while stack:
            s, r = stack.pop()
            if not isinstance(s, dict) or id(s) in nodes:
                continue
            nodes[id(s)] = (s, r)
            for sub in self._subschemas(s, r):
                if isinstance(sub[0], dict):
                    preds.setdefault(id(sub[0]), set()).add(id(s))
                    stack.append(sub)
        self._keep.append(nodes)
        hot = set(self.src.relaxed)
        todo = list(hot)
        while todo:
            n = todo.pop()
            for p in preds.get(n, ()):
                if p not in hot:
                    hot.add(p)
                    todo.append(p)
        return hot

    def _uncovered(self) -> set[int]:
        """Relaxed fragments some route reaches other than the walk contexts follow."""
        certain: set[tuple[int, frozenset[str]]] = set()
        reached: set[int] = set()
        uncertain: set[int] = set()
        stack: list[tuple[Any, Any, frozenset[str]]] = [(self.src.schema, self.src.root_resolver, TYPES)]

        def mark_uncertain(s: Any, r: Any) -> None:
            todo = [(s, r)]
            while todo:
                s, r = todo.pop()
                if not isinstance(s, dict) or id(s) in uncertain:
                    continue
                uncertain.add(id(s))
                todo.extend(self._subschemas(s, r))

        while stack:
            s, r, ts = stack.pop()
            if not isinstance(s, dict) or not ts or (id(s), ts) in certain:
                continue
            certain.add((id(s), ts))
            reached.add(id(s))
            if isinstance(s.get("$ref"), str):
                tgt = self._resolve(r, s["$ref"])
                if tgt is not None:
                    stack.append((tgt[0], tgt[1], ts))
                if self.draft <= 7:
                    continue
            for b in s.get("allOf") or []:
                sb, rb = self._sub(b, r)
                stack.append((sb, rb, ts))
            for kw in ("anyOf", "oneOf"):
                branches = s.get(kw)
                if not isinstance(branches, list):
                    continue
                bts = [self.types_of(*self._sub(b, r)) for b in branches]
                for i, b in enumerate(branches):
                    sb, rb = self._sub(b, r)
                    here = ts & bts[i]
                    sure = frozenset(t for t in here if sum(t in x for x in bts) == 1)
                    stack.append((sb, rb, sure))
                    if here - sure:
                        mark_uncertain(sb, rb)
            if "object" in ts:
                for kw in ("properties", "patternProperties"):
                    if isinstance(s.get(kw), dict):
                        for sub in s[kw].values():
                            sb, rb = self._sub(sub, r)
                            stack.append((sb, rb, TYPES))
                if "additionalProperties" in s:
                    sb, rb = self._sub(s["additionalProperties"], r)
                    stack.append((sb, rb, TYPES))
            if "array" in ts:
                kids: list[Any] = []
                if self.draft >= 2020:
                    kids = list(s.get("prefixItems") or [])
                    if "items" in s and not isinstance(s["items"], list):
                        kids.append(s["items"])
                else:
                    items = s.get("items")
                    kids = list(items) if isinstance(items, list) else ([items] if "items" in s else [])
                    if isinstance(items, list) and "additionalItems" in s:
                        kids.append(s["additionalItems"])
                for sub in kids:
                    sb, rb = self._sub(sub, r)
                    stack.append((sb, rb, TYPES))
            for kw in ("not", "if", "then", "else", "contains", "propertyNames", "unevaluatedItems"):
                if kw in s:
                    mark_uncertain(*self._sub(s[kw], r))
            if "unevaluatedProperties" in s:
                mark_uncertain(*self._sub(s["unevaluatedProperties"], r))
            for kw in ("dependentSchemas", "dependencies"):
                if isinstance(s.get(kw), dict):
                    for sub in s[kw].values():
                        if isinstance(sub, (dict, bool)):
                            mark_uncertain(*self._sub(sub, r))
        return {i for i in self.src.relaxed if i in uncertain or i not in reached}


def _value_type(v: Any) -> str:
    if v is None:
        return "null"
    if v is True or v is False:
        return "boolean"
    if isinstance(v, (int, float)):
        return "number"
    if isinstance(v, str):
        return "string"
    if isinstance(v, list):
        return "array"
    return "object"
