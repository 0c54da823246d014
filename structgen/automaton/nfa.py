"""Thompson NFA over bytes, built from the regex AST.

States are integers; each has byte-range edges ``(lo, hi, target)`` and epsilon edges. Character
sets become small byte automata through their UTF-8 sequences, with shared suffixes (the usual
continuation-byte tails) so that large Unicode classes stay a few hundred states. The size is
estimated before anything is built, so ``a{1000}{1000}``-style patterns fail fast with
``LimitExceeded("max_nfa_states")`` instead of exhausting memory.

Intersection and complement nodes (``And``/``Not``) are determinized on their own
(:mod:`structgen.automaton.regex_algebra`) and the minimal product DFA is embedded as a fragment.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import lru_cache

import numpy as np

from structgen.automaton.utf8 import ByteSeq, Ranges, ranges_to_sequences
from structgen.errors import LimitExceeded
from structgen.frontends.regex_ast import Alt, And, CharSet, Concat, Node, Not, Repeat
from structgen.limits import DEFAULT_LIMITS, Limits


@lru_cache(maxsize=4096)
def _charset_plan(
    ranges: Ranges,
) -> tuple[tuple[tuple[int, int, int], ...], tuple[tuple[int, int, int, int], ...], int]:
    """A small byte automaton for one character set, independent of where it is placed.

    Returns ``(start_edges, inner_edges, count)``: local id 0 is the fragment's end, ids ``1..count``
    are inner states; start edges are ``(lo, hi, dst)`` from the fragment start and inner edges
    ``(src, lo, hi, dst)``. Suffixes of the UTF-8 sequences are shared.
    """
    memo: dict[ByteSeq, int] = {(): 0}
    inner: list[tuple[int, int, int, int]] = []
    count = 0

    def state_for(suffix: ByteSeq) -> int:
        nonlocal count
        got = memo.get(suffix)
        if got is not None:
            return got
        nxt = state_for(suffix[1:])
        count += 1
        memo[suffix] = count
        inner.append((count, suffix[0][0], suffix[0][1], nxt))
        return count

    raw: list[tuple[int, int, int]] = []
    for seq in ranges_to_sequences(ranges):
        raw.append((seq[0][0], seq[0][1], state_for(seq[1:])))
    # merge adjacent first-byte ranges going to the same target (e.g. ASCII pieces)
    merged: list[tuple[int, int, int]] = []
    for lo, hi, t in sorted(raw, key=lambda e: (e[2], e[0])):
        if merged and merged[-1][2] == t and merged[-1][1] + 1 == lo:
            merged[-1] = (merged[-1][0], hi, t)
        else:
            merged.append((lo, hi, t))
    return tuple(merged), tuple(inner), count


@dataclass
class NFA:
    """A byte NFA under construction. ``edges[s]``: byte ranges; ``eps[s]``: epsilon targets."""

    limit: int
    what: str = ""
    limits: Limits | None = None  # for And/Not fragments (their sub-automata); default limits if None
    codepoints: bool = False  # edges over code points (one edge per range) instead of UTF-8 bytes
    edges: list[list[tuple[int, int, int]]] = field(default_factory=list)
    eps: list[list[int]] = field(default_factory=list)

    @property
    def num_states(self) -> int:
        return len(self.edges)

    def new_state(self) -> int:
        n = len(self.edges)
        if n >= self.limit:
            raise LimitExceeded("max_nfa_states", n + 1, self.limit, self.what)
        self.edges.append([])
        self.eps.append([])
        return n

    def add(self, node: Node, start: int) -> int:
        """Build ``node`` from state ``start``; returns its end state."""
        if isinstance(node, CharSet):
            return self._charset(node.ranges, start)
        if isinstance(node, Concat):
            cur = start
            for item in node.items:
                cur = self.add(item, cur)
            return cur
        if isinstance(node, Alt):
            end = self.new_state()
            for item in node.items:
                s = self.new_state()
                self.eps[start].append(s)
                e = self.add(item, s)
                self.eps[e].append(end)
            return end
        if isinstance(node, Repeat):
            cur = start
            for _ in range(node.min):
                cur = self.add(node.item, cur)
            if node.max is None:
                loop = self.new_state()
                self.eps[cur].append(loop)
                body = self.new_state()
                self.eps[loop].append(body)
                e = self.add(node.item, body)
                self.eps[e].append(loop)
                end = self.new_state()
                self.eps[loop].append(end)
                return end
            if node.max == node.min:
                return cur
            exits = [cur]
            for _ in range(node.max - node.min):
                cur = self.add(node.item, cur)
                exits.append(cur)
            end = self.new_state()
            for x in exits:
                self.eps[x].append(end)
            return end
        if isinstance(node, And | Not):
            if self.codepoints:
                raise TypeError("intersection/complement nodes need a byte NFA")
            return self._boolean(node, start)
        raise TypeError(f"unknown regex node {node!r}")

    def _boolean(self, node: And | Not, start: int) -> int:
        """Embed the minimal DFA of an intersection/complement: one NFA state per live DFA state."""
        from structgen.automaton.regex_algebra import bool_dfa  # the algebra builds NFAs itself

        trans, accepting, dstart = bool_dfa(node, self.limits or DEFAULT_LIMITS, self.what)
        end = self.new_state()
        if dstart == 0:
            return end  # empty language: unreachable end
        n = trans.shape[0]
        base = self.num_states - 1  # DFA state s (s >= 1) -> NFA state base + s
        for _ in range(n - 1):
            self.new_state()
        # byte runs with one target per row: change points along each row
        change = np.ones((n, 257), dtype=bool)
        change[:, 1:256] = trans[:, 1:] != trans[:, :-1]
        for s in range(1, n):
            row = trans[s]
            cuts = np.flatnonzero(change[s]).tolist()
            edges = self.edges[base + s]
            for lo, nxt in zip(cuts[:-1], cuts[1:], strict=True):
                t = int(row[lo])
                if t:
                    edges.append((lo, nxt - 1, base + t))
            if accepting[s]:
                self.eps[base + s].append(end)
        self.eps[start].append(base + dstart)
        return end

    def _charset(self, ranges: Ranges, start: int) -> int:
        end = self.new_state()
        if not ranges:
            return end  # unreachable end: matches nothing
        if self.codepoints:
            self.edges[start].extend((lo, hi, end) for lo, hi in ranges)
            return end
        start_edges, inner, count = _charset_plan(ranges)
        base = self.num_states - 1  # local id k (k>=1) -> base + k
        for _ in range(count):
            self.new_state()
        for src, lo, hi, dst in inner:
            self.edges[base + src].append((lo, hi, end if dst == 0 else base + dst))
        for lo, hi, t in start_edges:
            self.edges[start].append((lo, hi, end if t == 0 else base + t))
        return end


def estimate_states(node: Node) -> int:
    """An upper bound on the NFA states ``NFA.add`` creates for ``node`` (computed without building)."""
    if isinstance(node, CharSet):
        return 1 + (_charset_plan(node.ranges)[2] if node.ranges else 0)
    if isinstance(node, Concat):
        return sum(estimate_states(i) for i in node.items)
    if isinstance(node, Alt):
        return 1 + sum(1 + estimate_states(i) for i in node.items)
    if isinstance(node, Repeat):
        inner = estimate_states(node.item)
        copies = node.min + (1 if node.max is None else node.max - node.min)
        return inner * copies + 3
    if isinstance(node, And):  # a proxy: the embedded product is bounded by new_state's check
        return 1 + sum(estimate_states(i) for i in node.items)
    if isinstance(node, Not):
        return 1 + estimate_states(node.item)
    raise TypeError(f"unknown regex node {node!r}")


def build_nfa(
    nodes: list[Node], limit: int, what: str = "", limits: Limits | None = None, codepoints: bool = False
) -> tuple[NFA, int, list[int]]:
    """One NFA for several ASTs sharing a start state; returns (nfa, start, end state per node).

    ``limits`` bounds the sub-automata of intersection/complement nodes (default limits if None).
    ``codepoints``: edges over code-point ranges (no And/Not nodes); the size check still uses the
    byte NFA's estimate, so both kinds refuse the same patterns.
    """
    est = 1 + sum(estimate_states(n) for n in nodes)
    if est > limit:
        raise LimitExceeded("max_nfa_states", est, limit, what)
    nfa = NFA(limit=limit, what=what, limits=limits, codepoints=codepoints)
    start = nfa.new_state()
    ends = []
    for node in nodes:
        s = nfa.new_state()
        nfa.eps[start].append(s)
        ends.append(nfa.add(node, s))
    return nfa, start, ends
