"""A fast yes/no check of a schema against its draft's metaschema (the errors stay jsonschema's).

``jsonschema``'s ``check_schema`` is about a quarter of a small schema's compile time: every
subschema descends through ``$ref``/``$dynamicRef`` lookups of the ``referencing`` library. The
metaschemas use a handful of keywords, so each one is compiled once per process into Python
closures (references resolved at build time, ``$dynamicRef``/``$recursiveRef`` to the metaschema
root, where the dynamic scope of a metaschema check sends them), keeping jsonschema's own type
checker and format checker, so the answer is jsonschema's for every schema. ``is_valid_schema``
returns True only when the schema is valid; the caller then skips ``check_schema``. A schema it
rejects goes through ``check_schema``, which raises the error exactly as before. A metaschema
using a keyword this module does not know gets no fast path (``is_valid_schema`` returns False).
"""

from __future__ import annotations

import re
import threading
from collections.abc import Callable
from typing import Any

__all__ = ["is_valid_schema"]

Check = Callable[[Any], bool]

# keywords that never fail (annotations, identifiers, vocabularies) in a metaschema
_IGNORED = frozenset(
    (
        "$schema",
        "$id",
        "id",
        "$comment",
        "$vocabulary",
        "$dynamicAnchor",
        "$recursiveAnchor",
        "$anchor",
        "$defs",
        "definitions",
        "title",
        "description",
        "default",
        "deprecated",
        "examples",
        "readOnly",
        "writeOnly",
    )
)


class _Unsupported(Exception):
    """A metaschema keyword (or keyword form) this compiler does not implement."""


class _Compiler:
    """Compiles one draft's metaschema into a predicate ``instance -> valid``."""

    def __init__(self, cls: Any) -> None:
        import jsonschema
        from jsonschema.validators import validator_for
        from jsonschema_specifications import REGISTRY
        from referencing.jsonschema import specification_with

        meta_cls = validator_for(cls.META_SCHEMA, default=cls)  # what check_schema validates with
        self.types = meta_cls.TYPE_CHECKER
        self.formats = meta_cls.FORMAT_CHECKER
        legacy = (jsonschema.Draft3Validator, jsonschema.Draft4Validator, jsonschema.Draft6Validator)
        self.legacy_ref = meta_cls in (*legacy, jsonschema.Draft7Validator)  # $ref hides its siblings
        self.draft4 = meta_cls in legacy[:2]  # a boolean exclusiveMinimum makes minimum exclusive
        self.memo: dict[int, list[Check]] = {}
        self.keep: list[Any] = []  # the memo is keyed by id(): keep the subschemas alive
        self.root = cls.META_SCHEMA
        uri = self.root.get("$id") or self.root.get("id") or ""
        self.spec = specification_with(self.root.get("$schema", uri))
        self.root_resolver = REGISTRY.resolver(base_uri=uri.rstrip("#"))
        self.check = self.node(self.root, self.root_resolver)

    def node(self, schema: Any, resolver: Any) -> Check:
        """The predicate of one (sub)schema, memoized by identity (references make cycles)."""
        hit = self.memo.get(id(schema))
        if hit is not None:
            if hit[0] is not _pending:
                return hit[0]
            cycle = hit  # still being built (a reference back into it): look it up when called

            def deferred(x: Any) -> bool:
                return cycle[0](x)

            return deferred
        cell: list[Check] = [_pending]
        self.memo[id(schema)] = cell
        self.keep.append(schema)
        cell[0] = self._build(schema, resolver)
        return cell[0]

    def _build(self, schema: Any, resolver: Any) -> Check:
        if schema is True:
            return _always
        if schema is False:
            return _never
        if not isinstance(schema, dict):
            raise _Unsupported(repr(schema)[:40])
        sub_id = schema.get("$id") if "$id" in schema else schema.get("id")
        if isinstance(sub_id, str) and schema is not self.root and not sub_id.startswith("#"):
            resolver = resolver.in_subresource(self.spec.create_resource(schema))
        if self.legacy_ref and "$ref" in schema:  # draft <= 7: $ref hides its siblings
            return self._ref(schema["$ref"], resolver)
        checks: list[Check] = []
        for kw, val in schema.items():
            if kw in _IGNORED:
                continue
            make = getattr(self, "_kw_" + kw.lstrip("$"), None)
            if make is None:
                raise _Unsupported(kw)
            got = make(val, schema, resolver)
            if got is not None:
                checks.append(got)
        if not checks:
            return _always
        if len(checks) == 1:
            return checks[0]
        if len(checks) == 2:
            a, b = checks
            return lambda x: a(x) and b(x)
        return lambda x: all(c(x) for c in checks)

    def _ref(self, ref: str, resolver: Any) -> Check:
        resolved = resolver.lookup(ref)
        return self.node(resolved.contents, resolved.resolver)

    # ---- keywords --------------------------------------------------------------------------------
    def _kw_ref(self, val: str, schema: dict[str, Any], resolver: Any) -> Check:
        return self._ref(val, resolver)

    def _kw_dynamicRef(self, val: str, schema: dict[str, Any], resolver: Any) -> Check:
        if val != "#meta" or self.root.get("$dynamicAnchor") != "meta":
            raise _Unsupported(f"$dynamicRef {val}")
        return self.node(self.root, self.root_resolver)

    def _kw_recursiveRef(self, val: str, schema: dict[str, Any], resolver: Any) -> Check:
        if val != "#" or self.root.get("$recursiveAnchor") is not True:
            raise _Unsupported(f"$recursiveRef {val}")
        return self.node(self.root, self.root_resolver)

    def _kw_type(self, val: Any, schema: dict[str, Any], resolver: Any) -> Check:
        is_type = self.types.is_type
        names = [val] if isinstance(val, str) else list(val)
        if len(names) == 1:
            t = names[0]
            return lambda x: is_type(x, t)
        return lambda x: any(is_type(x, t) for t in names)

    def _kw_enum(self, val: Any, schema: dict[str, Any], resolver: Any) -> Check:
        if not all(isinstance(v, str) for v in val):
            raise _Unsupported("enum of non-strings")
        allowed = frozenset(val)
        return lambda x: isinstance(x, str) and x in allowed

    def _kw_properties(self, val: dict[str, Any], schema: dict[str, Any], resolver: Any) -> Check:
        props = {k: self.node(v, resolver) for k, v in val.items()}

        def check(x: Any) -> bool:
            if not isinstance(x, dict):
                return True
            for k, v in x.items():
                c = props.get(k)
                if c is not None and not c(v):
                    return False
            return True

        return check

    def _kw_additionalProperties(self, val: Any, schema: dict[str, Any], resolver: Any) -> Check:
        if "patternProperties" in schema:
            raise _Unsupported("additionalProperties with patternProperties")
        declared = frozenset(schema.get("properties", {}))
        sub = self.node(val, resolver)
        return lambda x: not isinstance(x, dict) or all(sub(v) for k, v in x.items() if k not in declared)

    def _kw_propertyNames(self, val: Any, schema: dict[str, Any], resolver: Any) -> Check:
        sub = self.node(val, resolver)
        return lambda x: not isinstance(x, dict) or all(sub(k) for k in x)

    def _kw_items(self, val: Any, schema: dict[str, Any], resolver: Any) -> Check:
        if isinstance(val, list):
            raise _Unsupported("items as an array")
        sub = self.node(val, resolver)
        return lambda x: not isinstance(x, list) or all(sub(v) for v in x)

    def _kw_minItems(self, val: int, schema: dict[str, Any], resolver: Any) -> Check:
        return lambda x: not isinstance(x, list) or len(x) >= val

    def _kw_uniqueItems(self, val: bool, schema: dict[str, Any], resolver: Any) -> Check | None:
        if not val:
            return None

        def check(x: Any) -> bool:
            if not isinstance(x, list):
                return True
            keys = set()
            for v in x:
                if isinstance(v, (dict, list)):
                    return False  # not decided here: check_schema decides (and names the error)
                keys.add((isinstance(v, bool), v))  # jsonschema's equality: True is not 1
            return len(keys) == len(x)

        return check

    def _kw_minimum(self, val: Any, schema: dict[str, Any], resolver: Any) -> Check:
        exclusive = self.draft4 and schema.get("exclusiveMinimum") is True

        def check(x: Any) -> bool:
            if isinstance(x, bool) or not isinstance(x, (int, float)):
                return True
            return x > val if exclusive else x >= val

        return check

    def _kw_exclusiveMinimum(self, val: Any, schema: dict[str, Any], resolver: Any) -> Check | None:
        if isinstance(val, bool):
            if not self.draft4:
                raise _Unsupported("boolean exclusiveMinimum")
            return None  # read by minimum
        return lambda x: isinstance(x, bool) or not isinstance(x, (int, float)) or x > val

    def _kw_format(self, val: str, schema: dict[str, Any], resolver: Any) -> Check:
        conforms = self.formats.conforms
        return lambda x: conforms(x, val)

    def _kw_pattern(self, val: str, schema: dict[str, Any], resolver: Any) -> Check:
        rx = re.compile(val)
        return lambda x: not isinstance(x, str) or rx.search(x) is not None

    def _kw_anyOf(self, val: list[Any], schema: dict[str, Any], resolver: Any) -> Check:
        subs = [self.node(v, resolver) for v in val]
        return lambda x: any(c(x) for c in subs)

    def _kw_allOf(self, val: list[Any], schema: dict[str, Any], resolver: Any) -> Check:
        subs = [self.node(v, resolver) for v in val]
        return lambda x: all(c(x) for c in subs)

    def _kw_dependencies(self, val: dict[str, Any], schema: dict[str, Any], resolver: Any) -> Check:
        needs: dict[str, tuple[str, ...]] = {}
        subs: dict[str, Check] = {}
        for k, v in val.items():
            if isinstance(v, list):
                needs[k] = tuple(v)
            else:
                subs[k] = self.node(v, resolver)

        def check(x: Any) -> bool:
            if not isinstance(x, dict):
                return True
            for k, req in needs.items():
                if k in x and not all(r in x for r in req):
                    return False
            return all(c(x) for k, c in subs.items() if k in x)

        return check


def _always(x: Any) -> bool:
    return True


def _never(x: Any) -> bool:
    return False


def _pending(x: Any) -> bool:  # pragma: no cover - replaced before any check runs
    return False


_CHECKS: dict[Any, Check | None] = {}
_LOCK = threading.Lock()


def _checker(cls: Any) -> Check | None:
    with _LOCK:
        if not _CHECKS:  # once per process: every draft's metaschema (~10 ms in all)
            import jsonschema

            for known in (
                jsonschema.Draft202012Validator,
                jsonschema.Draft201909Validator,
                jsonschema.Draft7Validator,
                jsonschema.Draft6Validator,
                jsonschema.Draft4Validator,
            ):
                _CHECKS[known] = _compile(known)
        if cls not in _CHECKS:
            _CHECKS[cls] = _compile(cls)
        return _CHECKS[cls]


def _compile(cls: Any) -> Check | None:
    try:
        return _Compiler(cls).check
    except (_Unsupported, LookupError, re.error, TypeError, AttributeError):
        return None


def is_valid_schema(cls: Any, schema: Any) -> bool:
    """True when ``schema`` is valid against the metaschema of the jsonschema validator class
    ``cls`` (what ``cls.check_schema`` accepts); False when it is not, or when undecided."""
    check = _checker(cls)
    if check is None:
        return False
    try:
        return bool(check(schema))
    except RecursionError:
        return False
