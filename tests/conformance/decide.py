"""Deciding an invalid instance that the key-order search could not: an over-approximation of the
states a matcher can be in after reading a value in *any* key order.

``reachable(m, value)`` returns a set of matcher states (keyed by :func:`harness.state_key`, which
merges states with equal futures) that contains every state that some key order of ``value``'s
objects leads ``m`` to. So when no state of ``reachable(root, instance)`` is accepting, no key
order is accepted: the instance is *proven* rejected, however many orders there are. (The converse
does not hold: an accepting state in the set may come from the approximation, and the instance is
then left undecided.)

How an object ``{k1: v1, ..., kn: vn}`` is approximated. The states after its ``{`` are closed
under "read one member ``, "ki": vi``" for every key, *reusing keys* (a real order uses each key
once, so every state a real order passes through is in this closure: by induction on the members
placed, each prefix of the order ends in a closure state). Two facts then hold for every real order:

* each key ``ki`` is read from some closure state, so a key that no closure state can read (its
  head or its value fails from all of them) means the object is never read: the result is empty;
* the order ends in a closure state reached along a path of ``n`` members whose keys are exactly
  all of the object's keys. The closure is built level by level (level ``j``: the states after
  ``j`` members); ``may(s)`` at level ``j`` is the union of the key sets of *all* ``j``-member
  paths reaching ``s``, so it contains the ``j`` distinct keys of a real prefix (states whose
  ``may`` has fewer are dropped), and only states of level ``n`` whose ``may`` holds every key
  are closed with ``}``; the others cannot end a real order.

Member values are approximated the same way, recursively (arrays item by item), and memoized by
(state key, value identity, depth); so are an object's member edges (state key, key, first or
not) across its levels: equal state keys have equal futures, so equal answers. Each matcher step
counts against a budget; running out leaves the instance undecided.
"""

from __future__ import annotations

import json
from typing import Any

import harness


class OutOfBudget(Exception):
    """The approximation needed more steps (or states) than it was given."""


class Reacher:
    """Over-approximate sets of states after values (see the module docstring)."""

    def __init__(self, style: Any, budget: int) -> None:
        self.style = style
        self.budget = budget
        self.steps = 0
        self.lookups = 0
        self.memo: dict[tuple[Any, int, int], dict[Any, Any]] = {}

    def _tick(self, n: int = 1) -> None:
        self.steps += n
        if self.steps > self.budget:
            raise OutOfBudget()

    def _tick_lookups(self, n: int) -> None:
        """Memoized member edges cost no matcher step, but bound their number too (64 per step)."""
        self.lookups += n
        if self.lookups > 64 * self.budget:
            raise OutOfBudget()

    def _punct(self, what: str, depth: int) -> str:
        return harness._punct(self.style, what, depth)

    def _feed(self, ms: dict[Any, Any], text: str) -> dict[Any, Any]:
        out: dict[Any, Any] = {}
        for m in ms.values():
            self._tick()
            m2 = m.fork()
            if m2.accept_text(text):
                out.setdefault(harness.state_key(m2), m2)
        return out

    def reach(self, ms: dict[Any, Any], value: Any, depth: int) -> dict[Any, Any]:
        """States (by key) after reading ``value`` from any state of ``ms``: a superset of every
        state some key order of ``value`` leads to."""
        out: dict[Any, Any] = {}
        for k, m in ms.items():
            mk = (k, id(value), depth)
            hit = self.memo.get(mk)
            if hit is None:
                hit = self.memo[mk] = self._reach1(m, value, depth)
            for k2, m2 in hit.items():
                out.setdefault(k2, m2)
        return out

    def _reach1(self, m: Any, value: Any, depth: int) -> dict[Any, Any]:
        start = {harness.state_key(m): m}
        if isinstance(value, dict) and value:
            return self._object(self._feed(start, self._punct("{", depth)), value, depth)
        if isinstance(value, list) and value:
            cur = self._feed(start, self._punct("[", depth))
            for i, item in enumerate(value):
                if i:
                    cur = self._feed(cur, self._punct(",", depth))
                if not cur:
                    return {}
                cur = self.reach(cur, item, depth + 1)
            return self._feed(cur, self._punct("]", depth))
        from structgen.frontends.json_schema.formatting import dumps

        text = dumps(value, self.style if self.style.name != "flexible" else "default", depth)
        return self._feed(start, text)

    def _object(self, first: dict[Any, Any], obj: dict[str, Any], depth: int) -> dict[Any, Any]:
        if not first:
            return {}
        keys = list(obj)
        n = len(keys)
        full = (1 << n) - 1
        colon, sep = self._punct(":", depth), self._punct(",", depth)
        heads = [json.dumps(k, ensure_ascii=False) + colon for k in keys]
        # level j: the states after j members (any keys, reused or not), each with may = the union of
        # the key sets of the paths to it; a real order's first j keys are j distinct keys among them
        level: dict[Any, tuple[Any, int]] = {k: (m, 0) for k, m in first.items()}
        placed = 0
        # the object's chart depth, for the dead-key test after a head (one opening state only)
        base = harness._base(next(iter(first.values()))) if len(first) == 1 and harness.PRUNE[0] else None
        # per member ``i`` read from state ``k`` (``j > 0``: after the separator), the same at every
        # level, computed once (equal keys, equal futures): the states after its head, the keys that
        # can no longer follow it (a bitset), and, once needed, the states after its value
        edges: dict[tuple[Any, int, bool], list[Any]] = {}
        for j in range(n):
            nxt: dict[Any, tuple[Any, int]] = {}
            for k, (m, may) in level.items():
                self._tick_lookups(n)
                for i, head in enumerate(heads):
                    ek = (k, i, j > 0)
                    edge = edges.get(ek)
                    if edge is None:
                        after = self._feed({0: m}, sep + head if j else head)
                        dead = 0
                        if after and base is not None:
                            dead = harness.dead_after_head(next(iter(after.values())), keys, base, sep, colon)
                        edge = edges[ek] = [after, dead, None]
                    # a real order through this edge places every key outside may | i after it
                    if edge[1] & ~(may | 1 << i):
                        continue
                    if edge[2] is None:
                        edge[2] = self.reach(edge[0], obj[keys[i]], depth + 1) if edge[0] else {}
                    got = edge[2]
                    if got:
                        placed |= 1 << i
                    for k2, m2 in got.items():
                        old = nxt.get(k2)
                        nxt[k2] = (m2, may | 1 << i) if old is None else (old[0], old[1] | may | 1 << i)
            # a real order's first j+1 keys are distinct: fewer keys in may cannot be one
            level = {k: v for k, v in nxt.items() if v[1].bit_count() >= j + 1}
            if len(level) > self.budget:
                raise OutOfBudget()
            if not level:
                return {}
        if placed != full:
            return {}  # some key is read from no reachable state: no order reads the object
        ends = {k: m for k, (m, may) in level.items() if may == full}
        return self._feed(ends, self._punct("}", depth))


def proves_rejected(compiled: Any, value: Any, style: Any, budget: int) -> bool:
    """True when no key order of ``value`` is accepted (proven by the over-approximation); False
    when the approximation allows an accepting state or runs out of ``budget`` steps."""
    from checked_key import tainted, watch

    watch(compiled)
    before = tainted(compiled)  # a validator raised already: checked states are keyed by identity
    r = Reacher(style, budget)
    m0 = compiled.matcher()
    try:
        ends = r.reach({harness.state_key(m0): m0}, value, 0)
        proven = not any(m.is_accepting() for m in ends.values())
    except (OutOfBudget, RecursionError):
        return False
    # a validator that raised during the proof: states merged before may differ in future
    return proven and (before or not tainted(compiled))
