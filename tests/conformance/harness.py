"""The JSON Schema conformance ratchet: run the JSON Schema Test Suite and JSONSchemaBench through
structgen and compare per-case results with a checked-in baseline.

How an instance is checked. A valid instance must be *accepted as text*: it is written in the
default formatting (``structgen.frontends.json_schema.formatting.dumps``: ", " and ": ",
numbers in positional notation, strings as ``json.dumps(ensure_ascii=False)``) and fed to a fresh
matcher with ``accept_text``, object keys in whatever order the grammar takes (the emitter tries
the instance's keys in turn, so schema-order output is found without guessing), then
``is_accepting()`` must hold. An invalid instance must be rejected in every key order. The key-order
search (``feed_value``) is exact: a greedy pass, then backtracking over every order, where a branch is
cut only when it provably cannot succeed: a failure memo keyed on (object, state, remaining key set)
with grammar states compared structurally (``state_key``: equal Earley sets merge), and a dead-key
prune (``_Reach``: a remaining key that no terminal still reachable at member level of the object
can read is never placeable). When the search of an invalid instance runs out of budget, a proof that
no key order is accepted is tried (``decide.proves_rejected``: an over-approximation of the states
reachable in any order); without one the instance is reported ``undecided``. Checked states (value
checks) merge by a structural key of their tracker (``checked_key``). For a sample
of valid instances the accepted text is also tokenized with the real Llama-3 tokenizer and fed
token by token with ``accept_token``.

Per case the result is ``compiled`` (with valid/invalid counts) or ``refused:<Error>[:keyword]``.
A case *passes* when it compiled and every instance came out right, or when it was refused with a
named error. Regressions against the baseline fail the test: a case that passed and now fails, or a
schema that compiled and is now refused.

Regenerate the baseline after an improvement (and the support page):

    python tests/conformance/run_conformance.py --update
"""

from __future__ import annotations

import json
import multiprocessing
import time
from collections.abc import Iterator
from itertools import islice
from pathlib import Path
from typing import Any

DATA = Path(__file__).resolve().parents[2].parent / "shared" / "data"
if not DATA.exists():  # a clone elsewhere: look for shared/ next to the repository root
    DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
SUITE = DATA / "json-schema-test-suite"
BENCH = DATA / "jsonschemabench"
HERE = Path(__file__).resolve().parent
BASELINE = HERE / "baseline.json"
BASELINE_SLOW = HERE / "baseline_full.json"
SPLITS = ("Glaiveai2K", "Github_trivial", "Github_easy", "Github_medium", "JsonSchemaStore")
DRAFTS = ("draft2020-12", "draft7")
# default tier: the whole Test Suite (top-level files) and the first N schemas of each dev split
BENCH_DEFAULT_N = 15
MAX_INSTANCE_STEPS = 20_000
# the key-order search for an invalid instance: the same budget by default (a screening run may lower
# it); an invalid instance whose search runs out is counted rejected and reported as ``undecided``
MAX_INVALID_STEPS = MAX_INSTANCE_STEPS
# the full-split tier (6,000 schemas) searches invalid instances with this smaller budget: with the
# default one its large any-order objects take hours; budget-outs show up as ``undecided``
FULL_INVALID_STEPS = 2_000
# format.json checks that 'format' is only an annotation by default; structgen asserts the formats
# it knows (documented in docs/json-schema.md), as JSONSchemaBench's harness also leaves these out.
SKIPPED_FILES = {"format.json"}


def data_available() -> bool:
    return SUITE.exists() and BENCH.exists()


def remote_registry() -> dict[str, Any]:
    """The Test Suite's remotes, served from memory at http://localhost:1234/ (never fetched)."""
    reg: dict[str, Any] = {}
    root = SUITE / "remotes"
    for p in sorted(root.rglob("*.json")):
        rel = p.relative_to(root).as_posix()
        try:
            reg["http://localhost:1234/" + rel] = json.loads(p.read_text())
        except json.JSONDecodeError:
            continue
    return reg


def suite_cases(draft: str) -> list[dict[str, Any]]:
    out = []
    for p in sorted((SUITE / draft).glob("*.json")):
        if p.name in SKIPPED_FILES:
            continue
        for i, case in enumerate(json.loads(p.read_text())):
            out.append(
                {
                    "id": f"{draft}/{p.name}#{i}",
                    "schema": case["schema"],
                    "tests": case["tests"],
                    "description": case["description"],
                    "draft": draft,
                }
            )
    return out


def bench_cases(split: str, limit: int | None) -> list[dict[str, Any]]:
    out = []
    with open(BENCH / f"{split}.jsonl") as fh:
        for line in fh:
            rec = json.loads(line)
            out.append({"id": rec["id"], "schema": rec["schema"], "tests": rec["tests"]})
            if limit is not None and len(out) >= limit:
                break
    return out


# ---- emitting an instance through a matcher --------------------------------------------------------
class _Budget(Exception):
    pass


_WS = frozenset(b" \t\r\n")


class _Reach:
    """Which keys can still be placed in an open object: a sound prune for the key-order search.

    Works on the grammar engine's Earley states (a :class:`CheckedState` is looked through: its
    language is a subset of the inner grammar's). At a member boundary, after the separator is fed,
    the terminals that can still occur at *member level* of the object are the rests of the chart
    items that belong to the object (origin after its ``{``), followed up the completion chain until
    the object's own rule, closed over the grammar while skipping every nonterminal that directly
    follows a *key terminal* (one whose strings end in ``:`` and whitespace: what follows is a member
    value, whose keys belong to another object). A remaining key is dead when no such terminal
    matches a prefix of its head (``"key": `` or ``, "key": ``): no order that places the rest of the
    keys first can accept it, so the branch fails. Unknown engines and states never prune.
    """

    def __init__(self, engine: Any) -> None:
        t = engine.tables
        self.tables = t
        self.nt = len(t.terminal_names)
        self.nsym = t.next_sym
        self.lhs = t.lhs
        tflat = getattr(engine, "_tflat", None)
        self.tflat: list[int] = tflat if isinstance(tflat, list) else engine.trans.reshape(-1).tolist()
        self.alive = engine.alive
        self.accepts = engine.accepts
        self.nolex = engine.nolex
        self.starts: dict[int, list[int]] = {}
        rd = 0
        while rd < len(self.nsym):
            self.starts.setdefault(t.lhs[rd], []).append(rd)
            while self.nsym[rd] >= 0:
                rd += 1
            rd += 1
        self.keyish = self._key_terminals(engine)
        self._reach: dict[int, int] = {}
        self._heads: dict[tuple[bytes, int], int] = {}  # (head, previous byte) -> terminal bits

    def _key_terminals(self, engine: Any) -> int:
        """Bitset of terminals accepting some string whose last non-space byte is ``:``."""
        import numpy as np

        trans = np.asarray(engine.trans)
        alive = np.array([a != 0 for a in self.alive], dtype=bool)
        self._trans = trans
        self._alive_np = alive
        seen = np.zeros(len(trans), dtype=bool)
        seen[self.nolex] = True
        frontier = np.array([self.nolex])
        while frontier.size:  # lexer states reachable from the lexeme start
            nxt = np.unique(trans[frontier].ravel())
            nxt = nxt[alive[nxt] & ~seen[nxt]]
            seen[nxt] = True
            frontier = nxt
        self._lexable = np.flatnonzero(seen)
        colon = np.zeros(len(trans), dtype=bool)
        colon[trans[seen, 58]] = True
        ws = np.array(sorted(_WS))
        frontier = np.flatnonzero(colon)
        while frontier.size:
            nxt = np.unique(trans[np.ix_(frontier, ws)].ravel())
            nxt = nxt[~colon[nxt]]
            colon[nxt] = True
            frontier = nxt
        bits = 0
        for q in np.flatnonzero(colon).tolist():
            bits |= self.accepts[q]
        return bits

    def head_bits(self, head: bytes, prev: int) -> int:
        """Terminals whose lexeme can run through the bytes of ``head`` when byte ``prev`` came just
        before it: lexemes starting at the head, and lexemes started earlier (a const object's
        literal spans several members), ending inside the head or after it."""
        import numpy as np

        r = self._heads.get((head, prev))
        if r is None:
            r = 0
            states = np.unique(self._trans[self._lexable, prev])
            states = np.union1d(states[self._alive_np[states]], [self.nolex])
            for b in head:
                states = np.unique(self._trans[states, b])
                states = states[self._alive_np[states]]
                if not states.size:
                    break
                for q in states.tolist():
                    r |= self.accepts[q]
            else:
                for q in states.tolist():
                    r |= self.alive[q]
            self._heads[(head, prev)] = r
        return r

    def _rest(self, rd: int) -> int:
        """Member-level terminals of the rest of a rule from dot position ``rd``."""
        nsym, nt = self.nsym, self.nt
        bits = 0
        prev_key = rd > 0 and 0 <= nsym[rd - 1] < nt and (self.keyish >> nsym[rd - 1]) & 1
        while nsym[rd] >= 0:
            s = nsym[rd]
            if s < nt:
                bits |= 1 << s
                prev_key = (self.keyish >> s) & 1
            else:
                if not prev_key:
                    bits |= self.reach(s)
                prev_key = False
            rd += 1
        return bits

    def reach(self, sym: int) -> int:
        """Member-level terminals derivable from nonterminal ``sym`` (values skipped)."""
        r = self._reach.get(sym)
        if r is not None:
            return r
        nsym, nt = self.nsym, self.nt
        bits = 0
        seen = {sym}
        stack = [sym]
        while stack:
            x = stack.pop()
            for rd in self.starts.get(x, ()):
                prev_key = False
                while nsym[rd] >= 0:
                    s = nsym[rd]
                    if s < nt:
                        bits |= 1 << s
                        prev_key = (self.keyish >> s) & 1
                    else:
                        if not prev_key and s not in seen:
                            seen.add(s)
                            stack.append(s)
                        prev_key = False
                    rd += 1
        self._reach[sym] = bits
        return bits

    def future(self, threads: Any, base: int, after_head: bool = False) -> int | None:
        """Member-level terminals of the object opened after chart depth ``base`` (None: unknown).

        Items started at ``base`` (the rule that read the ``{``: a const object's literal members sit
        in it) contribute their rest; only items started inside the object are completed upwards.
        ``after_head``: the threads have just read a member's key terminal; the member's value (the
        symbol after the key, and the items predicted for it) is skipped, so only what can follow
        the member counts."""
        bits = 0
        seen: set[tuple[int, int]] = set()
        stack: list[tuple[int, Any]] = []
        nt = self.nt
        for e, _q in threads:
            if e.depth <= base:
                return None
            for items in e.waiting.values():
                for rd, o in items:
                    if after_head:
                        if o is None:
                            continue  # started inside the value
                        s = self.nsym[rd]
                        if (
                            0 <= s < nt
                            and rd > 0
                            and 0 <= self.nsym[rd - 1] < nt
                            and (self.keyish >> self.nsym[rd - 1]) & 1
                        ):
                            rd += 1  # a value read as one terminal right after the key
                    o = e if o is None else o
                    if o.depth >= base:
                        stack.append((rd, o))
        lhs, nsym = self.lhs, self.nsym
        while stack:
            rd, o = stack.pop()
            key = (rd, o.id)
            if key in seen:
                continue
            seen.add(key)
            bits |= self._rest(rd)
            if o.depth <= base:
                continue
            end = rd
            while nsym[end] >= 0:
                end += 1
            for rd2, o2 in o.waiting.get(lhs[end], ()):
                o2 = o if o2 is None else o2
                if o2.depth >= base:
                    stack.append((rd2 + 1, o2))
        return bits


_REACH: dict[int, tuple[Any, _Reach | None]] = {}


def _reach_for(m: Any) -> _Reach | None:
    eng = m.engine
    eng = getattr(eng, "inner", eng)
    hit = _REACH.get(id(eng))
    if hit is not None and hit[0] is eng:
        return hit[1]
    r = _Reach(eng) if hasattr(eng, "tables") and hasattr(eng, "trans") else None
    if len(_REACH) > 8:
        _REACH.clear()
    _REACH[id(eng)] = (eng, r)
    return r


def _threads(m: Any) -> Any:
    st = m.state
    st = getattr(st, "inner", st)
    if isinstance(st, tuple) and all(isinstance(t, tuple) and len(t) == 2 and hasattr(t[0], "waiting") for t in st):
        return st
    return None


def _base(m: Any) -> int | None:
    """Chart depth just before the ``{`` that ``m`` has just read (None: not a grammar state)."""
    th = _threads(m)
    if th is None or _reach_for(m) is None:
        return None
    return min(e.depth for e, _q in th)


def _committed(m: Any) -> list[Any] | None:
    """The threads of ``m`` with their open lexeme read as each terminal it can end as (the parser
    states right after the ``{`` just fed); None when the lexeme may run on into the members."""
    th, r = _threads(m), _reach_for(m)
    return None if th is None or r is None else _commit(th, r, settled=False)


def _settled(m: Any) -> list[Any] | None:
    """The threads of ``m`` with their open lexeme committed, when no byte can extend it (right after
    a key head ``"k": ``, say); None when a lexeme may go on or ``m`` is no grammar state."""
    th, r = _threads(m), _reach_for(m)
    return None if th is None or r is None else _commit(th, r, settled=True)


def _commit(th: Any, r: _Reach, settled: bool) -> list[Any] | None:
    """``th`` with each open lexeme read as the terminals it can end as (see the two callers)."""
    out = []
    for e, q in th:
        if settled and q == r.nolex:
            out.append((e, q))  # no lexeme open
            continue
        if settled:
            if r._alive_np[r._trans[q]].any():
                return None  # the lexeme may go on: its terminal is not settled yet
        elif r.alive[r.tflat[q * 256 + 34]] & e.accepts:
            return None  # the lexeme may run on into the members (a const object read as one literal)
        acc = r.accepts[q] & e.accepts
        for term in range(acc.bit_length()):
            if acc >> term & 1:
                e2 = e.advance(term)
                if e2 is not None:
                    out.append((e2, r.nolex))
    return out


def _dead_key(m: Any, obj_keys: list[str], base: int | None, sep: str, colon: str, first: bool, opener: str) -> bool:
    """True when some key of ``obj_keys`` can no longer be placed in the object ``m`` is inside
    (``m`` is right after its ``{``, or at a member boundary)."""
    if base is None or not obj_keys:
        return False
    r = _reach_for(m)
    if r is None:
        return False
    # the byte before a key's head, wherever the key goes: the opener's last or the separator's last
    prevs = {opener.encode()[-1], sep.encode()[-1]}
    if first:
        th = _committed(m)
    else:
        m2 = m.fork()
        if not m2.accept_text(sep):
            return True
        th = _threads(m2)
    return _some_key_dead(r, th, base, obj_keys, colon, prevs)


def _some_key_dead(
    r: _Reach, th: Any, base: int, obj_keys: list[str], colon: str, prevs: set[int], after_head: bool = False
) -> bool:
    """True when a key of ``obj_keys`` matches no member-level terminal of the object's future from
    the parser threads ``th`` (None: unknown, never dead)."""
    return _dead_keys(r, th, base, obj_keys, colon, prevs, after_head, first_only=True) != 0


def _dead_keys(
    r: _Reach,
    th: Any,
    base: int,
    obj_keys: list[str],
    colon: str,
    prevs: set[int],
    after_head: bool = False,
    first_only: bool = False,
) -> int:
    """Bitset over ``obj_keys`` of the keys that match no member-level terminal of the object's
    future from the parser threads ``th`` (0 when unknown); ``first_only`` stops at the first."""
    if th is None:
        return 0
    fut = r.future(th, base, after_head)
    if fut is None:
        return 0
    dead = 0
    for i, k in enumerate(obj_keys):
        head = (json.dumps(k, ensure_ascii=False) + colon).encode()
        if not any(r.head_bits(head, p) & fut for p in prevs):
            dead |= 1 << i
            if first_only:
                break
    return dead


def _dead_after_head(m: Any, rest: list[str], base: int | None, sep: str, colon: str) -> bool:
    """True when, right after a member's key head (``m``, before its value), some key of ``rest``
    (which must all come after this member) can no longer be placed: the member's value cannot
    change that, so the branch fails without reading it."""
    return dead_after_head(m, rest, base, sep, colon, first_only=True) != 0


def dead_after_head(m: Any, keys: list[str], base: int | None, sep: str, colon: str, first_only: bool = False) -> int:
    """Bitset over ``keys`` of those that cannot be placed after the member whose key head ``m`` has
    just read (see :func:`_dead_after_head`); 0 when unknown (no grammar state, a lexeme open)."""
    if base is None or not keys:
        return 0
    r = _reach_for(m)
    if r is None:
        return 0
    return _dead_keys(r, _settled(m), base, keys, colon, {sep.encode()[-1]}, True, first_only)


def feed_value(m: Any, value: Any, style: Any, depth: int, steps: list[int]) -> Iterator[tuple[Any, str]]:
    """Every way (a fork of) ``m`` reads ``value``: (matcher after it, text fed), one per distinct state.

    Objects are tried in every key order the matcher takes (schema order first), and the caller
    backtracks into these alternatives when a later part of the instance fails, so an early key
    order that a nested value happens to allow never hides the one the rest of the grammar needs.
    """
    from structgen.frontends.json_schema.formatting import dumps

    steps[0] += 1
    if steps[0] > steps[1]:
        raise _Budget()

    def punct(what: str) -> str:
        return _punct(style, what, depth)

    if isinstance(value, dict) and value:
        m = m.fork()
        opener = punct("{")
        if not m.accept_text(opener):
            return
        keys = key_order(value)
        base = _base(m) if PRUNE[0] else None
        for m2, text in _feed_members(m, value, keys, True, style, depth, steps, base):
            yield m2, opener + text
        return
    if isinstance(value, list) and value:
        m = m.fork()
        text = punct("[")
        if not m.accept_text(text):
            return
        yield from _feed_items(m, value, 0, text, style, depth, steps)
        return
    text = dumps(value, style if style.name != "flexible" else "default", depth)
    m = m.fork()
    if m.accept_text(text):
        yield m, text


def _punct(style: Any, what: str, depth: int) -> str:
    if style.name == "flexible":
        return {",": ", ", ":": ": "}.get(what, what)
    return str(style.punct(what, depth)[0])


_CANON: dict[Any, int] = {}  # structural Earley-set signature -> small int (cleared per instance)
_SET_SIG: dict[int, int] = {}  # EarleySet.id -> its canonical int


def _set_sig(e: Any) -> int:
    """Canonical int of an Earley set: equal for sets with the same items whose origins are, recursively,
    equal sets (so the same future), whatever history built them.

    A *tail* item ``A -> α . B`` (``B`` last) with an origin in an older set only passes ``B``'s
    completion on: it completes ``A`` at its origin, and so on up. It is keyed by where that cascade
    ends (the items that then wait on something else, or acceptance), as Leo's right-recursion items
    are, so a right-recursive list (``members -> member "," members``) gives equal sets after any
    number of elements instead of ones that differ by the length of their origin chain."""
    hit = _SET_SIG.get(e.id)
    if hit is not None:
        return hit
    t = e.tables
    nsym = t.next_sym
    items = []
    for sym, its in e.waiting.items():
        for rd, o in its:
            if o is not None and nsym[rd + 1] < 0:
                items.append(("tail", sym, _cascade(rd + 1, o)))
            else:
                items.append((rd, -1 if o is None else _set_sig(o)))
    sig = _CANON.setdefault((e.complete, frozenset(items)), len(_CANON))
    _SET_SIG[e.id] = sig
    return sig


_CASCADE: dict[tuple[int, int], frozenset[Any]] = {}  # (rule end, origin set id) -> cascade (per instance)


def _cascade(end: int, o: Any) -> frozenset[Any]:
    """What completing the rule that ends at ``end`` with origin ``o`` leads to: the items of older sets
    that are advanced and then wait on a symbol (keyed by their origin's signature), or acceptance."""
    hit = _CASCADE.get((end, o.id))
    if hit is not None:
        return hit
    t = o.tables
    nsym = t.next_sym
    out: set[Any] = set()
    if end == t.accept_rd:
        out.add("accept")
    else:
        for rd2, o2 in o.waiting.get(t.lhs[end], ()):
            origin = o if o2 is None else o2
            if nsym[rd2 + 1] < 0:
                out |= _cascade(rd2 + 1, origin)
            else:
                out.add((rd2 + 1, _set_sig(origin)))
    got = frozenset(out)
    _CASCADE[(end, o.id)] = got
    return got


def _grammar_key(st: Any, r: _Reach | None = None) -> Any:
    """Structural key of a grammar state (its threads). A lexeme that no byte can extend (``]`` after
    a right-recursive item list, say) is keyed as committed: the engine must end it as the terminals
    it accepts before the next byte or at the end, so the state's future is that of the threads
    after them, and the Earley sets inside the finished value (which differ with its length) drop out."""
    if not (
        isinstance(st, tuple) and all(isinstance(t, tuple) and len(t) == 2 and hasattr(t[0], "waiting") for t in st)
    ):
        return None
    if r is not None:
        committed = _commit(st, r, settled=True)
        if committed is not None:
            st = tuple(committed)
    return frozenset((q, _set_sig(e)) for e, q in st)


def state_key(m: Any) -> Any:
    """A hashable key of ``m``'s state that merges states with equal futures: grammar states by
    their Earley sets compared structurally (not by identity), checked states by that and their
    tracker's structural key (:func:`checked_key.checked_key`). Other states are keyed by identity."""
    st = m.state
    if not MERGE[0]:
        return st
    r = _reach_for(m)
    key = _grammar_key(st, r)
    if key is not None:
        return key
    inner = getattr(st, "inner", None)
    plan = getattr(m.engine, "plan", None)
    if inner is not None and plan is not None and hasattr(st, "trk"):
        from checked_key import checked_key

        ik = _grammar_key(inner, r)
        key = checked_key(st, m.engine, inner if ik is None else ("grammar", ik))
        if key is not None:  # None: the plan is tainted (a validator raised, or ran unwatched)
            return key
    return st


def _distinct(results: Iterator[tuple[Any, str]]) -> Iterator[tuple[Any, str]]:
    seen: set[Any] = set()
    for m, text in results:
        k = state_key(m)
        if k not in seen:
            seen.add(k)
            yield m, text


def _feed_items(
    m: Any, items: list, i: int, text: str, style: Any, depth: int, steps: list[int]
) -> Iterator[tuple[Any, str]]:
    if i == len(items):
        close = _punct(style, "]", depth)
        m2 = m.fork()
        if m2.accept_text(close):
            yield m2, text + close
        return
    sep = ""
    if i:
        sep = _punct(style, ",", depth)
        m = m.fork()
        if not m.accept_text(sep):
            return
    for m2, t in islice(_distinct(feed_value(m, items[i], style, depth + 1, steps)), ALTS[0]):
        yield from _feed_items(m2, items, i + 1, text + sep + t, style, depth, steps)


def _feed_members(
    m: Any,
    obj: dict,
    remaining: list[str],
    first: bool,
    style: Any,
    depth: int,
    steps: list[int],
    base: int | None = None,
) -> Iterator[tuple[Any, str]]:
    memo_key = (id(obj), state_key(m), frozenset(remaining), first)
    if memo_key in FAILED:
        return
    if _dead_key(
        m, remaining, base, _punct(style, ",", depth), _punct(style, ":", depth), first, _punct(style, "{", depth)
    ):
        FAILED.add(memo_key)
        return
    found = False
    for res in _feed_members_uncached(m, obj, remaining, first, style, depth, steps, base):
        found = True
        yield res
    if not found:
        FAILED.add(memo_key)


def _feed_members_uncached(
    m: Any,
    obj: dict,
    remaining: list[str],
    first: bool,
    style: Any,
    depth: int,
    steps: list[int],
    base: int | None,
) -> Iterator[tuple[Any, str]]:
    if not remaining:
        close = _punct(style, "}", depth)
        m2 = m.fork()
        if m2.accept_text(close):
            yield m2, close
        return
    for k in remaining:
        m2 = m.fork()
        head = (
            ("" if first else _punct(style, ",", depth)) + json.dumps(k, ensure_ascii=False) + _punct(style, ":", depth)
        )
        if not m2.accept_text(head):
            continue
        rest = [r for r in remaining if r != k]
        if _dead_after_head(m2, rest, base, _punct(style, ",", depth), _punct(style, ":", depth)):
            continue
        for m3, vtext in islice(_distinct(feed_value(m2, obj[k], style, depth + 1, steps)), ALTS[0]):
            for m4, rtext in _feed_members(m3, obj, rest, False, style, depth, steps, base):
                yield m4, head + vtext + rtext


RANK: dict[str, int] = {}
ORDERS: list[dict[str, int]] = []
FAILED: set[tuple] = set()
UNDECIDED = [False]
MERGE = [True]  # merge structurally equal grammar (and checked) states in the memo and among a value's readings
PRUNE = [True]  # the dead-key prune (_Reach); off only to cross-check it against the plain search
ALTS: list[int | None] = [None]  # how many ways of reading a nested value to backtrack into (None: all)
GREEDY_STEPS = 2_000
DECIDE = [True]  # after a search that ran out, try decide.proves_rejected (off: report it undecided)
DECIDE_STEPS = 20_000  # matcher steps of that proof


def property_rank(schema: Any) -> dict[str, int]:
    """Property names in the order a walk of the schema document meets them (a key-order hint)."""
    rank: dict[str, int] = {}
    for order in property_orders(schema):
        for k in order:
            rank.setdefault(k, len(rank))
    return rank


def property_orders(schema: Any) -> list[dict[str, int]]:
    """Every ``properties`` block of the schema document as {name: position}, in walk order."""
    orders: list[dict[str, int]] = []

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            props = node.get("properties")
            if isinstance(props, dict) and props:
                orders.append({k: i for i, k in enumerate(props)})
            for v in node.values():
                walk(v)
        elif isinstance(node, list):
            for v in node:
                walk(v)

    walk(schema)
    return orders


def key_order(obj: dict) -> list[str]:
    """The order to try ``obj``'s keys in: that of the ``properties`` block naming most of them (and
    fewest others; a schema-order grammar then goes straight through), then the document-wide rank, then the
    instance's own order. Only a search hint: every order is still tried."""
    best: dict[str, int] = {}
    fit = (0, 0)
    for order in ORDERS:
        n = sum(1 for k in obj if k in order)
        if n and (n, n - len(order)) > fit:  # most keys named, then fewest names besides
            best, fit = order, (n, n - len(order))
    own = list(obj)
    return sorted(obj, key=lambda k: (best.get(k, len(best)), RANK.get(k, len(RANK)), own.index(k)))


def check_instance(
    compiled: Any, value: Any, style: Any, schema: Any = None, budget: int | None = None
) -> tuple[bool, str | None]:
    """(accepted, accepted text) for ``value`` under ``compiled`` (some key order, as text).

    ``budget`` caps the key-order search (MAX_INSTANCE_STEPS); ``UNDECIDED[0]`` tells afterwards
    whether a rejection came from the search running out rather than from trying every order.

    Checked states merge by :func:`checked_key.checked_key` only while no validator of the plan has
    raised (see :func:`checked_key.watch`): a rejection found while the plan became tainted may rest
    on merges made before, so it is searched again with checked states keyed by identity."""
    from checked_key import tainted, watch

    watch(compiled)
    before = tainted(compiled)
    got = _check_instance(compiled, value, style, schema, budget)
    if not got[0] and not before and tainted(compiled):
        got = _check_instance(compiled, value, style, schema, budget)
    return got


def _check_instance(
    compiled: Any, value: Any, style: Any, schema: Any = None, budget: int | None = None
) -> tuple[bool, str | None]:
    global RANK, ORDERS
    UNDECIDED[0] = False
    ORDERS = property_orders(schema) if schema is not None else []
    RANK = property_rank(schema) if schema is not None else {}
    from structgen.frontends.json_schema.formatting import dumps

    own = dumps(value, style if style.name != "flexible" else "default", 0)  # the instance's own key order
    m0 = compiled.matcher()
    if m0.accept_text(own) and m0.is_accepting():
        return True, own
    limit = MAX_INSTANCE_STEPS if budget is None else budget
    # a greedy pass first (each nested value read its first way only: a value that reads in many key
    # orders cannot then hide a different key choice around it), then the full backtracking search
    _CANON.clear()
    _SET_SIG.clear()
    _CASCADE.clear()
    for alts, cap in ((1, min(GREEDY_STEPS, limit)), (None, limit)):
        FAILED.clear()
        ALTS[0] = alts
        steps = [0, cap]
        try:
            for m, text in feed_value(compiled.matcher(), value, style, 0, steps):
                if m.is_accepting():
                    return True, text
            if alts is None:
                return False, None
        except (_Budget, RecursionError):
            if alts is None:
                # the search ran out: try to prove the rejection for every key order at once
                import decide

                UNDECIDED[0] = not (DECIDE[0] and decide.proves_rejected(compiled, value, style, DECIDE_STEPS))
        finally:
            ALTS[0] = None
    return False, None


def check_tokens(compiled: Any, tokenizer: Any, text: str) -> bool:
    ids = tokenizer.encode(text, add_special_tokens=False)
    m = compiled.matcher()
    for t in ids:
        if not m.accept_token(t):
            return False
    return bool(m.is_accepting())


# ---- running cases -------------------------------------------------------------------------------
def run_case(
    case: dict[str, Any], vocab: Any, options: dict[str, Any], tokenizer: Any = None, token_sample: int = 0
) -> dict[str, Any]:
    import structgen
    from structgen.errors import StructgenError, UnsupportedSchema
    from structgen.frontends.json_schema.formatting import Style

    style = Style.of(options)
    t0 = time.perf_counter()
    try:
        compiled = structgen.compile(vocab, json_schema=case["schema"], cache=False, **options)
    except StructgenError as e:
        kw = getattr(e, "keyword", "") if isinstance(e, UnsupportedSchema) else getattr(e, "limit", "")
        n_valid = sum(1 for t in case["tests"] if t["valid"])
        return {
            "status": f"refused:{type(e).__name__}" + (f":{kw}" if kw else ""),
            "valid": [0, n_valid],
            "invalid": [0, len(case["tests"]) - n_valid],
            "compile_ms": round(1000 * (time.perf_counter() - t0), 1),
            "message": str(e)[:200],
        }
    except RecursionError:
        n_valid = sum(1 for t in case["tests"] if t["valid"])
        return {"status": "crash:RecursionError", "valid": [0, n_valid], "invalid": [0, len(case["tests"]) - n_valid]}
    compile_ms = round(1000 * (time.perf_counter() - t0), 1)
    v_ok = v_n = i_ok = i_n = undecided = 0
    failures = []
    sampled = 0
    for idx, t in enumerate(case["tests"]):
        ok, text = check_instance(compiled, t["data"], style, case["schema"], None if t["valid"] else MAX_INVALID_STEPS)
        if t["valid"]:
            v_n += 1
            if ok and tokenizer is not None and sampled < token_sample and text is not None:
                sampled += 1
                if not check_tokens(compiled, tokenizer, text):
                    ok = False
                    failures.append(f"valid #{idx} accepted as text but rejected as Llama-3 tokens")
            if ok:
                v_ok += 1
            else:
                failures.append(f"valid #{idx} rejected")
        else:
            i_n += 1
            if not ok:
                i_ok += 1
                undecided += UNDECIDED[0]
            else:
                failures.append(f"invalid #{idx} accepted as {text!r}"[:200])
    out: dict[str, Any] = {"status": "compiled", "valid": [v_ok, v_n], "invalid": [i_ok, i_n], "compile_ms": compile_ms}
    if compiled.info.get("dropped"):
        out["dropped"] = [d["keyword"] for d in compiled.info["dropped"]]
    if failures:
        out["failures"] = failures[:5]
    if undecided:
        out["undecided"] = undecided
    return out


def passed(res: dict[str, Any]) -> bool:
    if res["status"] == "compiled":
        return res["valid"][0] == res["valid"][1] and res["invalid"][0] == res["invalid"][1]
    return res["status"].startswith("refused:")


def run_all(
    vocab: Any,
    bench_n: int | None = BENCH_DEFAULT_N,
    tokenizer: Any = None,
    token_sample: int = 1,
    suite: bool = True,
    bench: bool = True,
    progress: bool = False,
    workers: int = 1,
) -> dict[str, dict[str, Any]]:
    """Run every case; ``workers > 1`` runs them in that many forked processes (same results: each
    case is independent, and the workers inherit this process's settings and loaded vocabulary)."""
    jobs: list[tuple[dict[str, Any], dict[str, Any]]] = []
    registry = remote_registry() if suite else {}
    if suite:
        for draft in DRAFTS:
            for case in suite_cases(draft):
                uses_remote = "localhost:1234" in json.dumps(case["schema"])
                opts: dict[str, Any] = {"draft": "7" if draft == "draft7" else "2020-12"}
                if uses_remote:
                    opts["registry"] = registry
                jobs.append((case, opts))
    if bench:
        for split in SPLITS:
            for case in bench_cases(split, bench_n):
                if case["tests"]:
                    jobs.append((case, {}))
    results: dict[str, dict[str, Any]] = {}
    for cid, res in run_jobs(jobs, vocab, tokenizer, token_sample, workers):
        results[cid] = res
        if progress:
            print(cid, res["status"], flush=True)
    return results


_JOBS: list[Any] = []  # (jobs, vocab, tokenizer, token_sample) for forked workers


def _run_job(i: int) -> tuple[str, dict[str, Any]]:
    jobs, vocab, tokenizer, token_sample = _JOBS
    case, opts = jobs[i]
    return case["id"], run_case(case, vocab, opts, tokenizer, token_sample)


def run_jobs(
    jobs: list[tuple[dict[str, Any], dict[str, Any]]], vocab: Any, tokenizer: Any, token_sample: int, workers: int
) -> Iterator[tuple[str, dict[str, Any]]]:
    """(case id, result) per job, in job order."""
    _JOBS[:] = [jobs, vocab, tokenizer, token_sample]
    try:
        if workers <= 1 or len(jobs) < 2 or "fork" not in multiprocessing.get_all_start_methods():
            for i in range(len(jobs)):
                yield _run_job(i)
            return
        with multiprocessing.get_context("fork").Pool(workers) as pool:
            yield from pool.imap(_run_job, range(len(jobs)), chunksize=4)
    finally:
        _JOBS.clear()


def summarize(results: dict[str, dict[str, Any]]) -> dict[str, dict[str, int]]:
    """Per group (draft or split): cases, compiled, passed, valid accepted/total, invalid rejected/total."""
    groups: dict[str, dict[str, int]] = {}
    for cid, r in results.items():
        g = cid.split("/")[0]
        s = groups.setdefault(
            g,
            {
                "cases": 0,
                "compiled": 0,
                "passed": 0,
                "valid_ok": 0,
                "valid": 0,
                "invalid_ok": 0,
                "invalid": 0,
                "valid_rejected": 0,
                "invalid_accepted": 0,
                "undecided": 0,
            },
        )
        s["cases"] += 1
        s["passed"] += passed(r)
        if r["status"] == "compiled":
            s["compiled"] += 1
            s["valid_ok"] += r["valid"][0]
            s["valid"] += r["valid"][1]
            s["invalid_ok"] += r["invalid"][0]
            s["invalid"] += r["invalid"][1]
            s["valid_rejected"] += r["valid"][1] - r["valid"][0]
            s["invalid_accepted"] += r["invalid"][1] - r["invalid"][0]
            s["undecided"] += r.get("undecided", 0)
    return groups


def compare(baseline: dict[str, dict[str, Any]], results: dict[str, dict[str, Any]]) -> tuple[list[str], list[str]]:
    """(regressions, improvements) of ``results`` against ``baseline``."""
    regressions, improvements = [], []
    for cid, old in baseline.items():
        new = results.get(cid)
        if new is None:
            continue
        if passed(old) and not passed(new):
            regressions.append(f"{cid}: passed before ({old['status']}), now {new['status']} {new.get('failures', '')}")
        elif old["status"] == "compiled" and new["status"] != "compiled":
            regressions.append(f"{cid}: compiled before, now {new['status']} ({new.get('message', '')})")
        elif not passed(old) and passed(new):
            improvements.append(f"{cid}: now passes ({new['status']})")
        elif old["status"] != "compiled" and new["status"] == "compiled":
            improvements.append(f"{cid}: now compiles")
    return regressions, improvements


def strip(results: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """What the baseline keeps per case (no timings)."""
    keep = ("status", "valid", "invalid", "dropped", "undecided")
    return {cid: {k: r[k] for k in keep if k in r} for cid, r in sorted(results.items())}
