"""Lowering of array keywords: items/prefixItems, min/maxItems chains, contains counts,
uniqueItems over small finite item sets."""

from __future__ import annotations

from collections.abc import Generator
from typing import Any

from structgen.errors import LimitExceeded
from structgen.frontends.json_schema.lower_combinators import CombinatorLowering
from structgen.frontends.json_schema.lower_core import (
    ALL_TYPES,
    APPLICATORS,
    Frag,
    _json_in,
    _Refused,
)
from structgen.ir.grammar import Sym


class ArrayLowering(CombinatorLowering):
    """Lowering of array keywords: items/prefixItems, min/maxItems chains, contains counts, uniqueItems."""

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
                self.refuse("contains", f.pointer, "several 'contains' keywords in one intersection", f)
                continue
            c_frag = self.child(f, sub, "contains")
            c_min = lo
            if binding_max:
                try:
                    c_neg = self._negate(c_frag, 0)
                    c_max = hi
                    self.note(f.pointer, "maxContains", "grammar (elements matching / not matching 'contains' counted)")
                except _Refused as e:
                    self.refuse("maxContains", f.pointer, f"maxContains needs the negation of 'contains' ({e})", f)
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

        def state_steps(j: int, c: int) -> Generator[tuple[int, int], str, str]:
            """The chain state (j, c); yields the successor states it needs (a trampoline: a
            maxItems of thousands would overflow Python's stack as plain recursion)."""
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
                it = item(jj, False)
                self.add(name, (sep, self.rule_sym(it), self.rule_sym((yield (nxt, c)))))
                if c_frag is not None and (c_max is None or c + 1 <= c_max):
                    it = item(jj, True)
                    self.add(name, (sep, self.rule_sym(it), self.rule_sym((yield (nxt, bump(c))))))
            return name

        def state(j: int, c: int) -> str:
            stack = [state_steps(j, c)]
            sent: str | None = None
            while True:
                try:
                    need = stack[-1].send(sent)  # type: ignore[arg-type]
                except StopIteration as done:
                    stack.pop()
                    if not stack:
                        return str(done.value)
                    sent = done.value
                    continue
                stack.append(state_steps(*need))
                sent = None

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
