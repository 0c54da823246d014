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

from jsonschema import _keywords as _kw  # keyword functions, compared by identity only
from jsonschema import _legacy_keywords as _lkw
from jsonschema.validators import validator_for

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
        self._fast: list[Any] = []  # per check: a compiled boolean validator, or None (use jsonschema)
        self._compilers: list[CheckCompiler | None] = []
        self._precompiled: dict[tuple[int, Any], tuple[CheckCompiler, Any]] = {}
        self._every: dict[tuple[int, str], bool] = {}
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
        self._precompile()

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
        v = root.evolve(schema=schema, _resolver=resolver)
        self.validators.append(v)
        pre = self._precompiled.pop((id(schema), getattr(resolver, "_base_uri", None)), None)
        comp, fast = pre if pre is not None else self._compile(v, schema, resolver)
        self._fast.append(fast)
        self._compilers.append(comp if fast is not None else None)
        self._keep.append(schema)
        self._validator_of[id(schema)] = len(self.validators) - 1
        return len(self.validators) - 1

    def _compile(self, v: Any, schema: Any, resolver: Any) -> tuple[CheckCompiler, Any]:
        comp = CheckCompiler(v, self.src.spec)
        return comp, comp.compile(schema, resolver)

    def _precompile(self) -> None:
        """Compile the validators of the relaxed fragments now (compile time), not when decoding
        first meets them; reused for the same fragment at the same base URI."""
        src = self.src
        for rel in src.relaxed.values():
            if not rel.keywords - {"uniqueItems"}:
                continue
            key = (id(rel.schema), getattr(rel.resolver, "_base_uri", None))
            if key in self._precompiled:
                continue
            root = src.validator_cls(src.schema, registry=src.registry, format_checker=src.format_checker)
            v = root.evolve(schema=rel.schema, _resolver=rel.resolver)
            self._precompiled[key] = self._compile(v, rel.schema, rel.resolver)

    def validate(self, check: int, text: str, value: Any) -> bool:
        """Whether ``value`` (parsed from ``text``) satisfies validator ``check`` (memoized)."""
        key = (check, text)
        hit = self._memo.get(key)
        if hit is not None:
            return hit
        fast = self._fast[check]
        try:
            ok = bool(fast(value)) if fast is not None else bool(self.validators[check].is_valid(value))
        except Exception:  # noqa: BLE001 - a validator error counts as invalid (decode time never raises)
            ok = False
        self._memo[key] = ok
        if len(self._memo) > _VALIDATION_MEMO:
            self._memo.popitem(last=False)
        return ok

    def _passes_every(self, check: int, t: str) -> bool:
        """Whether every value of JSON type ``t`` satisfies ``check`` (then it need not run: e.g. a
        ``oneOf`` whose only string branch is ``{"type": "string"}``, at a string)."""
        hit = self._every.get((check, t))
        if hit is None:
            hit = self._every[(check, t)] = self._passes_every_now(check, t)
        return hit

    def _passes_every_now(self, check: int, t: str) -> bool:
        comp = self._compilers[check]
        if comp is None:
            return False
        if t in ("boolean", "null"):  # two values, or one: ask the validator itself
            fast = self._fast[check]
            try:
                return all(bool(fast(x)) for x in ((True, False) if t == "boolean" else (None,)))
            except Exception:  # noqa: BLE001 - an error is a failed check
                return False
        v = self.validators[check]
        return comp.always(v.schema, v._resolver, t) is True

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
                c = self._validator(s, r)
                if not self._passes_every(c, t):
                    checks.append(c)
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


# ---- compiled boolean validators -----------------------------------------------------------------
#
# jsonschema's ``is_valid`` costs tens of microseconds per value even for small fragments: a new
# validator object per subschema visited, ``$ref`` looked up on every visit, regexes fetched from
# ``re``'s bounded cache, and every error of every failing ``anyOf``/``oneOf`` branch built in full.
# A check runs on every candidate token that completes a value, so a mask pays that many times.
# ``CheckCompiler.compile`` builds, once per check, a tree of closures that gives the same verdict:
# structural keywords (``$ref``, properties, items, allOf/anyOf/oneOf/not, type, pattern) are
# compiled (refs resolved, regexes compiled once, branches short-circuited), every other keyword
# calls jsonschema's own keyword function with a validator evolved exactly as jsonschema's
# ``descend`` would have it. Anything this cannot mirror exactly (``$schema`` inside a fragment,
# dynamic references, a regex ``re`` rejects, an unknown type, an unresolvable ``$ref``, a
# non-schema where a schema is expected) makes the whole check use jsonschema instead.

_DYNAMIC = ("$dynamicRef", "$recursiveRef", "$dynamicAnchor", "$recursiveAnchor")


class _Unsure(Exception):
    """The fragment holds something the compiled validator does not mirror exactly."""


class _Cell:
    """A compiled node; ``fn`` is filled after the node's children (cycles go through cells)."""

    __slots__ = ("fn",)

    def __init__(self) -> None:
        self.fn: Any = None


def _yes(inst: Any) -> bool:
    return True


def _no(inst: Any) -> bool:
    return False


# keywords that pass every value not of one JSON type (whatever the draft)
_ONLY_FOR = {
    **dict.fromkeys(
        (
            "properties",
            "patternProperties",
            "additionalProperties",
            "required",
            "minProperties",
            "maxProperties",
            "propertyNames",
            "dependencies",
            "dependentRequired",
            "dependentSchemas",
            "unevaluatedProperties",
        ),
        "object",
    ),
    **dict.fromkeys(
        (
            "items",
            "additionalItems",
            "prefixItems",
            "contains",
            "minItems",
            "maxItems",
            "uniqueItems",
            "unevaluatedItems",
            "minContains",
            "maxContains",
        ),
        "array",
    ),
    **dict.fromkeys(("minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum", "multipleOf"), "number"),
    **dict.fromkeys(("minLength", "maxLength", "pattern"), "string"),
}
_ALWAYS_BUDGET = 4000  # node visits per question; past it the answer is "depends"


def _scan_unsure(v: Any, cls: Any, depth: int = 0) -> None:
    """Raise ``_Unsure`` if a subtree handed to jsonschema as is could raise where it is evaluated
    (jsonschema evaluates whole ``anyOf``/``oneOf`` branches, the compiled nodes short-circuit)."""
    if depth > 200:
        raise _Unsure()
    if isinstance(v, dict):
        for k, x in v.items():
            if k in _DYNAMIC or (k == "$schema" and validator_for(v, default=cls) is not cls):
                raise _Unsure()
            if k == "pattern" and isinstance(x, str):
                _regex(x)
            elif k == "patternProperties" and isinstance(x, dict):
                for p in x:
                    _regex(p)
            if k not in ("enum", "const", "default", "examples"):
                _scan_unsure(x, cls, depth + 1)
    elif isinstance(v, list):
        for x in v:
            _scan_unsure(x, cls, depth + 1)


def _regex(p: Any) -> Any:
    if not isinstance(p, str):
        raise _Unsure()
    try:
        return re.compile(p)
    except (re.error, RecursionError, OverflowError, ValueError) as e:
        raise _Unsure() from e


class CheckCompiler:
    """Compiles fragments for one validator (``root``: a jsonschema validator with the schema's
    registry and format checker; ``spec``: the dialect's referencing specification)."""

    def __init__(self, root: Any, spec: Any) -> None:
        self.root = root
        self.cls = type(root)
        self.spec = spec
        self.checker = root.TYPE_CHECKER
        self.applicable = self.cls._APPLICABLE_VALIDATORS
        self.cells: dict[tuple[int, Any], _Cell] = {}
        self.keep: list[Any] = []

    def compile(self, schema: Any, resolver: Any) -> Any:
        """The compiled ``value -> bool`` of ``schema`` (entered as ``evolve`` enters it), or None."""
        if getattr(self.root, "_ref_resolver", None) is not None:
            return None
        try:
            return self.node(schema, resolver).fn
        except (_Unsure, RecursionError):
            return None
        except Exception:  # noqa: BLE001 - anything unexpected: jsonschema decides
            return None

    def always(self, s: Any, r: Any, t: str) -> bool | None:
        """The verdict of ``s`` on *every* value of JSON type ``t`` (object, array, string, number),
        or None when it depends on the value. Only called on fragments :meth:`compile` accepted."""
        budget = [_ALWAYS_BUDGET]
        try:
            return self._always(s, r, t, frozenset(), budget)
        except Exception:  # noqa: BLE001 - unsure: depends
            return None

    def _always(self, s: Any, r: Any, t: str, seen: frozenset, budget: list[int]) -> bool | None:
        if s is True or s is False:
            return s
        budget[0] -= 1
        key = (id(s), getattr(r, "_base_uri", None))
        if not isinstance(s, dict) or key in seen or budget[0] < 0:
            return None
        seen = seen | {key}
        out: bool | None = True
        validators = self.cls.VALIDATORS
        for k, val in self.applicable(s):
            fn = validators.get(k)
            if fn is None:
                continue
            got = self._kw_always(fn, k, val, r, t, seen, budget)
            if got is False:
                return False
            if got is None:
                out = None
        return out

    def _kw_always(self, fn: Any, k: str, val: Any, r: Any, t: str, seen: frozenset, budget: list[int]) -> bool | None:
        only = _ONLY_FOR.get(k)
        if only is not None:
            return True if only != t else None
        if fn is _kw.ref:
            got = r.lookup(val)
            return self._always(got.contents, got.resolver, t, seen, budget)
        if fn is _kw.type:
            types = [val] if isinstance(val, str) else val
            verdicts = {True if x == t else None if (t == "number" and x == "integer") else False for x in types}
            return True if True in verdicts else None if None in verdicts else False
        if fn is _kw.allOf or fn is _kw.anyOf or fn is _kw.oneOf:
            subs = []
            for b in val:
                rb = r.in_subresource(self.spec.create_resource(b)) if isinstance(b, dict) else r
                if fn is _kw.oneOf and rb is not r:
                    return None  # the branch moves the base URI: jsonschema tests it two ways
                subs.append(self._always(b, rb, t, seen, budget))
            if fn is _kw.allOf:
                return False if False in subs else None if None in subs else True
            if fn is _kw.anyOf:
                return True if True in subs else None if None in subs else False
            return None if None in subs else subs.count(True) == 1
        if fn is _kw.not_:
            got = self._always(val, r, t, seen, budget)
            return None if got is None else not got
        return None

    def child(self, s: Any, r: Any) -> _Cell:
        """A subschema entered the way ``descend`` enters it (its ``$id`` moves the base URI)."""
        if isinstance(s, dict):
            r = r.in_subresource(self.spec.create_resource(s))
        return self.node(s, r)

    def node(self, s: Any, r: Any) -> _Cell:
        key = (id(s), getattr(r, "_base_uri", None))
        cell = self.cells.get(key)
        if cell is not None:
            return cell
        cell = self.cells[key] = _Cell()
        self.keep.append(s)
        if s is True:
            cell.fn = _yes
            return cell
        if s is False:
            cell.fn = _no
            return cell
        if not isinstance(s, dict) or any(k in s for k in _DYNAMIC):
            raise _Unsure()
        if "$schema" in s and validator_for(s, default=self.cls) is not self.cls:
            raise _Unsure()  # another dialect's validator class from here on
        validators = self.cls.VALIDATORS
        node_v: list[Any] = []  # the validator jsonschema would use here, made on demand

        def here() -> Any:
            if not node_v:
                node_v.append(self.root.evolve(schema=s, _resolver=r))
            return node_v[0]

        checks = []
        for k, val in self.applicable(s):
            fn = validators.get(k)
            if fn is None:
                continue
            checks.append(self.keyword(fn, k, val, s, r, here))
        if not checks:
            cell.fn = _yes
        elif len(checks) == 1:
            cell.fn = checks[0]
        else:
            tup = tuple(checks)

            def all_of_checks(inst: Any) -> bool:
                for c in tup:
                    if not c(inst):
                        return False
                return True

            cell.fn = all_of_checks
        return cell

    def keyword(self, fn: Any, k: str, val: Any, s: dict, r: Any, here: Any) -> Any:
        """One keyword of node ``s`` as ``value -> bool``."""
        if fn is _kw.ref:
            try:
                got = r.lookup(val)
            except Exception as e:  # noqa: BLE001 - unresolvable: jsonschema raises at decode time
                raise _Unsure() from e
            tgt = self.node(got.contents, got.resolver)
            return lambda inst: tgt.fn(inst)
        if fn is _kw.properties:
            if not isinstance(val, dict):
                raise _Unsure()
            props = tuple((name, self.child(sub, r)) for name, sub in val.items())

            def properties(inst: Any) -> bool:
                if type(inst) is not dict:
                    return True
                for name, c in props:
                    if name in inst and not c.fn(inst[name]):
                        return False
                return True

            return properties
        if fn is _kw.patternProperties:
            if not isinstance(val, dict):
                raise _Unsure()
            pats = tuple((_regex(p), self.child(sub, r)) for p, sub in val.items())

            def pattern_properties(inst: Any) -> bool:
                if type(inst) is not dict:
                    return True
                for rx, c in pats:
                    for name, x in inst.items():
                        if rx.search(name) and not c.fn(x):
                            return False
                return True

            return pattern_properties
        if fn is _kw.additionalProperties:
            props_d = s.get("properties", {})
            pp = s.get("patternProperties", {})
            if not isinstance(props_d, dict) or not isinstance(pp, dict):
                raise _Unsure()
            joined = _regex("|".join(pp)) if pp else None
            extra_c = self.child(val, r) if isinstance(val, dict) else None
            forbid = extra_c is None and not val

            def additional_properties(inst: Any) -> bool:
                if type(inst) is not dict:
                    return True
                for name in inst:
                    if name in props_d or (joined is not None and joined.search(name)):
                        continue
                    if extra_c is not None:
                        if not extra_c.fn(inst[name]):
                            return False
                    elif forbid:
                        return False
                return True

            return additional_properties
        if fn is _kw.items:  # 2020-12
            prefix = len(s.get("prefixItems", []))
            if val is False:
                return lambda inst: type(inst) is not list or len(inst) <= prefix
            ic = self.child(val, r)

            def items(inst: Any) -> bool:
                if type(inst) is not list:
                    return True
                for x in inst[prefix:]:
                    if not ic.fn(x):
                        return False
                return True

            return items
        if fn is _lkw.items_draft6_draft7_draft201909 or fn is _lkw.items_draft3_draft4:
            if isinstance(val, list):
                tup_c = tuple(self.child(sub, r) for sub in val)

                def items_tuple(inst: Any) -> bool:
                    if type(inst) is not list:
                        return True
                    for c, x in zip(tup_c, inst):
                        if not c.fn(x):
                            return False
                    return True

                return items_tuple
            if fn is _lkw.items_draft3_draft4 and not isinstance(val, dict):
                raise _Unsure()
            ic2 = self.child(val, r)

            def items_each(inst: Any) -> bool:
                if type(inst) is not list:
                    return True
                for x in inst:
                    if not ic2.fn(x):
                        return False
                return True

            return items_each
        if fn is _kw.allOf or fn is _kw.anyOf or fn is _kw.oneOf:
            if not isinstance(val, list):
                raise _Unsure()
            subs = tuple(self.child(b, r) for b in val)
            if fn is _kw.allOf:

                def all_of(inst: Any) -> bool:
                    for c in subs:
                        if not c.fn(inst):
                            return False
                    return True

                return all_of
            if fn is _kw.anyOf:

                def any_of(inst: Any) -> bool:
                    for c in subs:
                        if c.fn(inst):
                            return True
                    return False

                return any_of
            # jsonschema finds the first valid branch with ``descend`` and tests the rest with
            # ``evolve(schema=...)``, which keeps the enclosing base URI: mirrored exactly
            rest = tuple(self.node(b, r) for b in val)
            n = len(subs)

            def one_of(inst: Any) -> bool:
                for i in range(n):
                    if subs[i].fn(inst):
                        for j in range(i + 1, n):
                            if rest[j].fn(inst):
                                return False
                        return True
                return False

            return one_of
        if fn is _kw.not_:
            nc = self.node(val, r)  # ``evolve(schema=...)``: same resolver
            return lambda inst: not nc.fn(inst)
        if fn is _kw.type:
            types = [val] if isinstance(val, str) else val
            if not isinstance(types, list):
                raise _Unsure()
            checker = self.checker
            for t in types:
                try:
                    checker.is_type(None, t)
                except Exception as e:  # noqa: BLE001 - unknown type: jsonschema raises UnknownType
                    raise _Unsure() from e
            ts = tuple(types)
            if len(ts) == 1:
                t0 = ts[0]
                return lambda inst: checker.is_type(inst, t0)
            return lambda inst: any(checker.is_type(inst, t) for t in ts)
        if fn is _kw.pattern:
            rx = _regex(val)
            return lambda inst: type(inst) is not str or rx.search(inst) is not None
        # any other keyword: jsonschema's own function, with the validator ``descend`` would use
        _scan_unsure(val, self.cls)

        def generic(inst: Any) -> bool:
            errors = fn(here(), val, inst, s)
            return errors is None or next(iter(errors), None) is None

        return generic
