"""Lowering of numeric keywords: bounds, multipleOf, integer/number digit regexes."""

from __future__ import annotations

import math
from decimal import Decimal
from typing import Any

from structgen.errors import InvalidSchema
from structgen.frontends.json_schema import regexes as rx
from structgen.frontends.json_schema.lower_core import (
    Frag,
    LowererCore,
)
from structgen.ir.grammar import Sym


class NumberLowering(LowererCore):
    """Lowering of numeric keywords: bounds, multipleOf, integer/number digit regexes."""

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
                self.refuse(
                    "multipleOf", f.pointer, f"multipleOf {m} on numbers (only 10^-n and integers are exact)", f
                )
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
        self.refuse("multipleOf", f.pointer, f"multipleOf {modulus} with these bounds is not supported", f)
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
