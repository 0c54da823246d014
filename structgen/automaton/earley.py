"""An Earley recognizer over terminals with an immutable, persistent chart.

Any context-free grammar works: ambiguous, left-recursive, with empty rules (handled by the
Aycock–Horspool nullable skip: predicting a nullable nonterminal also moves the dot over it).

An :class:`EarleySet` is one column of the chart. It is immutable once built and refers to earlier
columns only through the origins of its items, so "advancing" a parser state by a terminal creates a
new set that shares every earlier set: forks, rollbacks and speculative look-ahead cost nothing, and
the results of ``advance`` are memoized on the set (weakly: a parser state reached twice while it is
still in use is the same object).

Items are ``(dotted rule, origin set)``; a dotted rule is an index into the flattened right-hand
sides. A set only stores its items grouped by the symbol after the dot (``waiting``), which is all
that scanning and completion need; completed items are consumed as they are found.
"""

from __future__ import annotations

import itertools
import weakref
from dataclasses import dataclass, field

from structgen.errors import InvalidGrammar, LimitExceeded
from structgen.ir.grammar import Grammar
from structgen.limits import DEFAULT_LIMITS, Limits

_ids = itertools.count(1)
_sigs = itertools.count(0)  # signatures are never reused, also across cleared tables
_MAX_SIGNATURES = 1 << 16  # entries of EarleyTables.canon (memory bound per grammar)


@dataclass(frozen=True, eq=False)
class EarleyTables:
    """A grammar compiled for the recognizer.

    Symbols are ints: terminal ``i`` (``0 <= i < num_terminals``, the lexer's bit ``i``) or
    nonterminal ``num_terminals + j``. ``next_sym[rd]`` is the symbol after the dot of dotted rule
    ``rd`` (-1 at the end), ``lhs[rd]`` the rule's left-hand side (a nonterminal symbol).
    """

    terminal_names: tuple[str, ...]
    nonterminal_names: tuple[str, ...]
    next_sym: tuple[int, ...]
    lhs: tuple[int, ...]
    nullable: frozenset[int]  # nonterminal symbols
    # nonterminal symbol -> the nonterminals its prediction closure predicts, and per nonterminal
    # the dotted rules it contributes (rule starts plus nullable skips).
    closure_nts: dict[int, tuple[int, ...]]
    own_items: dict[int, tuple[int, ...]]
    accept_rd: int  # end of the augmented rule S' -> start
    start_sym: int  # S'
    num_rules: int
    # structural signatures of chart columns (see EarleySet.signature): (complete, kernel) -> int
    canon: dict[tuple[bool, frozenset[tuple[int, int]]], int] = field(default_factory=dict, repr=False)

    @property
    def num_terminals(self) -> int:
        return len(self.terminal_names)


def build_tables(grammar: Grammar, terminal_names: tuple[str, ...], limits: Limits = DEFAULT_LIMITS) -> EarleyTables:
    """Compile ``grammar`` (already checked and pruned) with terminals numbered as in ``terminal_names``."""
    if len(grammar.rules) > limits.max_grammar_rules:
        raise LimitExceeded("max_grammar_rules", len(grammar.rules), limits.max_grammar_rules, "compiling a grammar")
    tindex = {n: i for i, n in enumerate(terminal_names)}
    nts: list[str] = []
    nindex: dict[str, int] = {}
    for r in grammar.rules:
        if r.lhs not in nindex:
            nindex[r.lhs] = len(nts)
            nts.append(r.lhs)
    if grammar.start not in nindex:
        raise InvalidGrammar(f"start rule {grammar.start!r} has no alternatives", grammar.source)
    aug = "$start"
    while aug in nindex:
        aug += "'"
    nindex[aug] = len(nts)
    nts.append(aug)
    nt = len(terminal_names)

    def sym(name: str, is_terminal: bool) -> int:
        if is_terminal:
            if name not in tindex:
                raise InvalidGrammar(f"terminal {name} is used by a rule but not defined", grammar.source)
            return tindex[name]
        if name not in nindex:
            raise InvalidGrammar(f"rule {name} is used but not defined", grammar.source)
        return nt + nindex[name]

    rules: list[tuple[int, tuple[int, ...]]] = [
        (nt + nindex[r.lhs], tuple(sym(s.name, s.is_terminal) for s in r.rhs)) for r in grammar.rules
    ]
    start_sym = nt + nindex[aug]
    rules.append((start_sym, (nt + nindex[grammar.start],)))

    next_sym: list[int] = []
    lhs: list[int] = []
    starts: dict[int, list[int]] = {}
    for lh, rhs in rules:
        starts.setdefault(lh, []).append(len(next_sym))
        for s in rhs:
            next_sym.append(s)
            lhs.append(lh)
        next_sym.append(-1)
        lhs.append(lh)
    accept_rd = len(next_sym) - 1

    nullable: set[int] = set()
    changed = True
    while changed:
        changed = False
        for lh, rhs in rules:
            if lh not in nullable and all(s in nullable for s in rhs):
                nullable.add(lh)
                changed = True

    own_items: dict[int, tuple[int, ...]] = {}
    direct: dict[int, set[int]] = {}
    for x, rds in starts.items():
        items: list[int] = []
        preds: set[int] = set()
        for rd in rds:
            while True:
                items.append(rd)
                s = next_sym[rd]
                if s >= nt:
                    preds.add(s)
                if s >= nt and s in nullable:
                    rd += 1
                    continue
                break
        own_items[x] = tuple(items)
        direct[x] = preds
    closure_nts: dict[int, tuple[int, ...]] = {}
    for x in starts:
        seen = {x}
        stack = [x]
        while stack:
            y = stack.pop()
            for z in direct.get(y, ()):
                if z not in seen:
                    seen.add(z)
                    stack.append(z)
        closure_nts[x] = tuple(sorted(seen))
    return EarleyTables(
        terminal_names=tuple(terminal_names),
        nonterminal_names=tuple(nts),
        next_sym=tuple(next_sym),
        lhs=tuple(lhs),
        nullable=frozenset(nullable),
        closure_nts=closure_nts,
        own_items=own_items,
        accept_rd=accept_rd,
        start_sym=start_sym,
        num_rules=len(rules),
    )


class EarleySet:
    """One immutable Earley chart column (a parser state after some terminals).

    Attributes:
        id: a process-unique int (cache keys).
        accepts: bitset of terminals that may come next (bit i = terminal i).
        complete: the terminals read so far form a sentence of the grammar.
        depth: number of terminals read.
    """

    __slots__ = ("id", "waiting", "accepts", "complete", "depth", "tables", "_children", "_sig", "__weakref__")

    def __init__(self, tables: EarleyTables, depth: int) -> None:
        self.id = next(_ids)
        self.tables = tables
        # symbol after the dot -> items (dotted rule, origin); origin None = this set itself, so a set
        # never refers to itself and is freed by reference counting alone (no cyclic GC pauses)
        self.waiting: dict[int, list[tuple[int, EarleySet | None]]] = {}
        self.accepts = 0
        self.complete = False
        self.depth = depth
        self._children: dict[int, weakref.ref[EarleySet]] = {}
        self._sig = -1

    def __repr__(self) -> str:
        names = self.tables.terminal_names
        acc = [names[i] for i in range(len(names)) if self.accepts >> i & 1]
        return f"EarleySet(id={self.id}, depth={self.depth}, complete={self.complete}, accepts={acc})"

    @staticmethod
    def initial(tables: EarleyTables) -> EarleySet:
        root = EarleySet(tables, 0)
        root._predict_into(tables.start_sym, set())
        root.complete = tables.start_sym in tables.nullable
        root._finish()
        return root

    def _predict_into(self, x: int, predicted: set[int]) -> None:
        t = self.tables
        nsym = t.next_sym
        waiting = self.waiting
        for y in t.closure_nts[x]:
            if y in predicted:
                continue
            predicted.add(y)
            for rd in t.own_items[y]:
                s = nsym[rd]
                if s >= 0:
                    lst = waiting.get(s)
                    if lst is None:
                        waiting[s] = [(rd, None)]
                    else:
                        lst.append((rd, None))

    def _finish(self) -> None:
        nt = self.tables.num_terminals
        acc = 0
        for s in self.waiting:
            if s < nt:
                acc |= 1 << s
        self.accepts = acc

    def advance(self, terminal: int) -> EarleySet | None:
        """The state after reading ``terminal``; None when the grammar cannot continue with it.

        Results are memoized through weak references: a state reached twice while someone still
        holds it is the same object (so per-state caches hit), and a long-lived initial state does
        not keep every state ever explored from it alive.
        """
        ref = self._children.get(terminal)
        if ref is not None:
            hit = ref()
            if hit is not None:
                return hit
        items = self.waiting.get(terminal) if terminal < self.tables.num_terminals else None
        if not items:
            return None
        res = self._scan(items)
        self._children[terminal] = weakref.ref(res)
        return res

    def _scan(self, items: list[tuple[int, EarleySet | None]]) -> EarleySet:
        t = self.tables
        nsym = t.next_sym
        lhs = t.lhs
        nullable = t.nullable
        nt = t.num_terminals
        accept_rd = t.accept_rd
        k = EarleySet(t, self.depth + 1)
        waiting = k.waiting
        predicted: set[int] = set()
        seen: set[tuple[int, int]] = set()
        work = [(rd + 1, self if o is None else o) for rd, o in items]
        pop = work.pop
        push = work.append
        while work:
            rd, o = pop()
            key = (rd, o.id)
            if key in seen:
                continue
            seen.add(key)
            s = nsym[rd]
            if s < 0:
                if rd == accept_rd:
                    k.complete = True
                    continue
                for rd2, o2 in o.waiting.get(lhs[rd], ()):
                    push((rd2 + 1, o if o2 is None else o2))
                continue
            lst = waiting.get(s)
            if lst is None:
                waiting[s] = [(rd, o)]
            else:
                lst.append((rd, o))
            if s >= nt:
                if s not in predicted:
                    k._predict_into(s, predicted)
                if s in nullable:
                    push((rd + 1, o))
        k._finish()
        return k

    def signature(self) -> int:
        """A small int equal for sets with the same future, whatever history built them.

        Two sets whose *kernel* items (those with an origin in an earlier set; the predicted items
        follow from them, and the initial set, with no kernel, predicts the start symbol) are equal,
        with origins of equal signature, recursively, and that agree on ``complete``, accept the
        same continuations and reach equal sets on every terminal; so per-state results (token
        masks) can be shared between them. Computed on first use and memoized on the set (origins
        are older sets, so the recursion is a post-order walk). Equal numbers always mean equal
        structure: numbers are never reused, also after the bounded table is cleared.
        """
        if self._sig >= 0:
            return self._sig
        canon = self.tables.canon
        todo: list[EarleySet] = [self]
        while todo:
            x = todo[-1]
            if x._sig >= 0:
                todo.pop()
                continue
            pending = [o for items in x.waiting.values() for _rd, o in items if o is not None and o._sig < 0]
            if pending:
                todo.extend(pending)
                continue
            todo.pop()
            kernel = frozenset([(rd, o._sig) for items in x.waiting.values() for rd, o in items if o is not None])
            key = (x.complete, kernel if x.depth else frozenset([(-1, -1)]))  # the initial set predicts the start
            sig = canon.get(key)
            if sig is None:
                if len(canon) >= _MAX_SIGNATURES:  # bounded: later sets get fresh numbers (cache misses only)
                    canon.clear()
                sig = canon[key] = next(_sigs)
            x._sig = sig
        return self._sig

    def advance_seq(self, terminals: list[int]) -> EarleySet | None:
        """Advance by several terminals; None as soon as one is rejected."""
        cur: EarleySet | None = self
        for term in terminals:
            if cur is None:
                return None
            cur = cur.advance(term)
        return cur
