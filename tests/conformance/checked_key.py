"""A structural key for :class:`structgen.runtime.checked_engine.CheckedState`: equal keys, equal
futures, so the key-order search and :mod:`decide` can merge checked states the way they merge
grammar states.

A checked state is a grammar state × a tracker. What the tracker does with the bytes still to come
depends only on: its lexical mode (and, inside a scalar or key, the text of it so far, kept raw);
its container stack, frame by frame (object or array, check context, the ``seen`` set of a unique
array, the current key or index), but not the byte offsets; and the *values* of the open containers
whose completed text will be checked (a context with checks, an item of a unique array, or the
whole document under a root check). Those checks see ``json.loads`` of the container's text, so the
text enters the key as a canonical *partial value* (:func:`partial_value`): for an open object the
dict of its complete members (``json.loads`` keeps the last of duplicate keys) without the open
member's key, that key, and the open member's value, recursively; for an open array its complete
items and the open one. Continuing two texts with equal partial values by the same bytes gives
equal documents (an object's members are applied in order, the last duplicate wins; an array's
items are appended), and a check depends only on the value it is given (validators read values,
and JSON Schema ignores member order), so the checks give the same outcome. Numbers keep their
Python type (draft 4 tells ``1`` from ``1.0``), and booleans are not integers. Whenever the text
is not at a value boundary or does not parse this way, the raw bytes are used instead (exact; bytes,
not decoded text: a string cut inside a UTF-8 sequence must not merge with another cut one).

Two limits of "a check depends only on the value", both handled here:

* floats are keyed by ``repr`` (``-0.0`` and ``0.0`` compare equal but are distinct values);
* a validator that *raises* counts as failing (``CheckPlan.validate``), and validators short-circuit
  over an object's members in their text order (``patternProperties``, ``additionalProperties``,
  jsonschema's own keyword functions): with a raising member, the outcome can depend on member
  order, which the partial value forgets. Only a raising evaluation can disagree with another
  order's: two that complete agree, and one order raising where another completes makes the first
  fail. So a merged state whose checks ran without a raise fails only where every merged order
  fails (and where it passes, it was really accepted). :func:`watch` observes every validation of
  the plan from the start, and once any validator has raised (or validations happened before
  watching began) the plan is *tainted*: :func:`checked_key` then returns None and callers key its
  states by identity; a search whose verdict may rest on keys made before the taint must be redone
  (``harness.check_instance`` and ``decide.proves_rejected`` do).
"""

from __future__ import annotations

import json
from typing import Any

from structgen.runtime.checked_engine import slice_bytes

_DEC = json.JSONDecoder()
_WS = " \t\r\n"


def canon(v: Any) -> Any:
    """A hashable key of a parsed JSON value: member order ignored, types kept exactly."""
    if isinstance(v, dict):
        return ("o", frozenset((k, canon(x)) for k, x in v.items()))
    if isinstance(v, list):
        return ("l", tuple(canon(x) for x in v))
    if isinstance(v, float):
        return ("float", repr(v))
    return (type(v).__name__, v)


# the marker of a place a value (or a key) still has to fill: after "key": or after a separator
_PENDING = ("pending",)


def _ws(s: str, i: int) -> int:
    while i < len(s) and s[i] in _WS:
        i += 1
    return i


def partial_value(s: str) -> Any:
    """Canonical partial value of ``s``, the text of a container opened at its first byte and still
    open at its end (see the module docstring); raises ValueError when ``s`` is not of that shape."""
    out, i = _container(s, 0)
    if i != len(s):
        raise ValueError("trailing text")
    return out


def _container(s: str, i: int) -> tuple[Any, int]:
    """(partial value, end) of the open container starting at ``s[i]``; it must run to the end."""
    opener = s[i]
    i = _ws(s, i + 1)
    if opener == "{":
        members: dict[str, Any] = {}
        while True:
            if i == len(s):
                return ("O", frozenset(members.items()), None, None), i
            key, i = _DEC.raw_decode(s, i)
            if not isinstance(key, str):
                raise ValueError("key")
            i = _ws(s, i)
            if i == len(s) or s[i] != ":":
                raise ValueError("colon")
            i = _ws(s, i + 1)
            if i == len(s):  # "key": with the value still to come (a scalar being read follows)
                members.pop(key, None)
                return ("O", frozenset(members.items()), key, _PENDING), i
            value, i, done = _value(s, i)
            if not done:
                members.pop(key, None)
                return ("O", frozenset(members.items()), key, value), i
            members[key] = value
            i = _ws(s, i)
            if i == len(s):
                return ("O", frozenset(members.items()), None, None), i
            if s[i] != ",":
                raise ValueError("comma")
            i = _ws(s, i + 1)
            if i == len(s):  # after a separator, the next key still to come
                return ("O", frozenset(members.items()), _PENDING, None), i
    if opener == "[":
        items: list[Any] = []
        while True:
            if i == len(s):
                return ("A", tuple(items), None), i
            value, i, done = _value(s, i)
            if not done:
                return ("A", tuple(items), value), i
            items.append(value)
            i = _ws(s, i)
            if i == len(s):
                return ("A", tuple(items), None), i
            if s[i] != ",":
                raise ValueError("comma")
            i = _ws(s, i + 1)
            if i == len(s):  # after a separator, the next item still to come
                return ("A", tuple(items), _PENDING), i
    raise ValueError("not a container")


def _value(s: str, i: int) -> tuple[Any, int, bool]:
    """(canonical value, end, complete) of the value at ``s[i]``: a complete value, or the open
    container running to the end of ``s``."""
    try:
        v, j = _DEC.raw_decode(s, i)
    except ValueError:
        if s[i] in "{[":
            out, j = _container(s, i)
            return out, j, False
        raise
    if j == len(s) and not isinstance(v, (dict, list)) and s[i] not in '"tfn':
        raise ValueError("a number may go on")
    return canon(v), j, True


def _raw(trk: Any, a: int) -> bytes:
    """The tracker's bytes ``[a, pos)`` (its chunk chain read back, undecoded)."""
    return slice_bytes(trk.text, b"", trk.pos, a, trk.pos)


class _Watch:
    """Validator wrappers that record whether any validation of a plan raised."""

    def __init__(self, tainted: bool) -> None:
        self.tainted = tainted

    def fast(self, fn: Any) -> Any:
        if fn is None:
            return None

        def watched(value: Any) -> Any:
            try:
                return fn(value)
            except BaseException:
                self.tainted = True
                raise

        return watched


class _WatchedFast(list):
    """``CheckPlan._fast`` whose items come out wrapped (appended-to lazily as checks are made)."""

    def __init__(self, items: Any, watch: _Watch) -> None:
        super().__init__(items)
        self.watch = watch

    def __getitem__(self, i: Any) -> Any:
        return self.watch.fast(super().__getitem__(i))


class _WatchedValidator:
    def __init__(self, v: Any, watch: _Watch) -> None:
        self._v = v
        self._watch = watch

    def is_valid(self, value: Any) -> bool:
        try:
            return bool(self._v.is_valid(value))
        except BaseException:
            self._watch.tainted = True
            raise

    def __getattr__(self, name: str) -> Any:
        return getattr(self._v, name)


class _WatchedValidators(list):
    def __init__(self, items: Any, watch: _Watch) -> None:
        super().__init__(items)
        self.watch = watch

    def __getitem__(self, i: Any) -> Any:
        return _WatchedValidator(super().__getitem__(i), self.watch)


def _engine_of(obj: Any) -> Any:
    """The CheckedEngine of a compiled schema, a matcher or an engine (None: not a checked one)."""
    if hasattr(obj, "matcher") and not hasattr(obj, "plan"):
        obj = obj.matcher()
    obj = getattr(obj, "engine", obj)
    return obj if hasattr(obj, "plan") and hasattr(obj, "feed") else None


def watch(obj: Any) -> None:
    """Start observing the validations of ``obj``'s check plan (a compiled schema, matcher or engine;
    idempotent). Validations that ran before (memoized results) could have raised unseen: the plan
    is then tainted at once."""
    eng = _engine_of(obj)
    if eng is None:
        return
    plan = eng.plan
    if isinstance(plan.__dict__.get("_fast"), _WatchedFast):
        return
    w = _Watch(bool(plan._memo) or bool(eng._values))
    plan._fast = _WatchedFast(plan._fast, w)
    plan.validators = _WatchedValidators(plan.validators, w)


def tainted(obj: Any) -> bool:
    """Whether a validator of ``obj``'s plan raised (or ran unwatched): structural keys are off.
    False for an engine without checks."""
    eng = _engine_of(obj)
    if eng is None:
        return False
    fast = eng.plan.__dict__.get("_fast")
    return not isinstance(fast, _WatchedFast) or fast.watch.tainted


def checked_key(st: Any, engine: Any, inner_key: Any) -> Any:
    """Key of the checked state ``st`` of ``engine`` (a CheckedEngine) whose inner state has key
    ``inner_key``; None when the plan is tainted (see the module docstring: key by identity)."""
    from structgen.runtime.checked_engine import LIT, OUT

    if tainted(engine):
        return None
    trk = st.trk
    frames = []
    need = -1  # start offset of the outermost open value whose text a check will read
    f = trk.stack
    while f is not None:
        frames.append((f.is_obj, f.ctx, f.seen, f.key, f.index))
        if (f.ctx is not None and f.ctx.checks) or (f.parent is not None and f.parent.seen is not None):
            need = f.start
        f = f.parent
    if engine.plan.root_check is not None:
        need = 0
    text: Any = None
    if trk.mode != OUT:
        # inside a scalar or key: its bytes so far, and, if a check reads an open container, that
        # container's partial value up to the scalar (raw when it does not parse that way)
        text = ("raw", _raw(trk, trk.vstart if need < 0 else min(need, trk.vstart)))
        if 0 <= need < trk.vstart:
            raw = text[1]
            cut = trk.vstart - need
            try:
                text = ("scalar", partial_value(raw[:cut].decode("utf-8", "replace")), raw[cut:])
            except (ValueError, IndexError, RecursionError):
                pass
    elif need >= 0:
        raw = _raw(trk, need)
        try:
            # decoded as the tracker decodes a completed value's bytes (OUT: the text ends on an
            # ASCII byte, so the prefix decodes as it will within the whole value)
            text = ("value", partial_value(raw.decode("utf-8", "replace")))
        except (ValueError, IndexError, RecursionError):
            text = ("raw", raw)
    lit = trk.litend - trk.pos if trk.mode == LIT else 0
    return ("checked", inner_key, trk.mode, trk.vctx, lit, tuple(frames), text)
