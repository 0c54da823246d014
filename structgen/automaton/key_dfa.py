"""The code-point DFA of a JSON object key that is none of a set of names, built from their trie.

The JSON Schema lowering spells "an extra key" as one terminal: ``"`` + the canonical JSON body of
any string not in ``excluded`` + ``"`` + a literal suffix (the key separator, e.g. ``": "``); see
:class:`structgen.frontends.json_schema.regexes.ExclusionTerminal`. As a regex that is a ~2 KB group of
nested ``(?:..)?`` (trie prefixes, divergences, non-name trie paths), which costs milliseconds to
parse, turn into an NFA and determinize for every schema. Its DFA is direct: the product of the
canonical-spelling automaton (a boundary state and six escape states) with the trie of the names'
canonical spellings, where leaving the trie goes to one "off" copy of the spelling automaton; a
closing quote is refused exactly at trie nodes that end a name. Every code point a name uses is a
class of its own, so each row is the "off" row of its spelling state plus the trie's children.

The result has the shape :func:`structgen.automaton.determinize.subset_construction_cp` returns
(state 0 dead, state 1 the start), so it goes through the same minimization and UTF-8 expansion.
"""

from __future__ import annotations

import json
from collections.abc import Sequence

import numpy as np

from structgen.errors import LimitExceeded
from structgen.limits import Limits

__all__ = ["key_exclusion_dfa"]

# spelling states of one canonical JSON string character (json.dumps(..., ensure_ascii=False))
_B, _E, _U1, _U2, _U3, _U4A, _U4B = range(7)  # boundary, after \, \u, \u0, \u00, \u000, \u001
_NEXT: dict[int, dict[str, int]] = {
    _E: {**dict.fromkeys('"\\bfnrt', _B), "u": _U1},
    _U1: {"0": _U2},
    _U2: {"0": _U3},
    _U3: {"0": _U4A, "1": _U4B},
    _U4A: dict.fromkeys("01234567bef", _B),
    _U4B: dict.fromkeys("0123456789abcdef", _B),
}
_ALPHABET = {c for m in _NEXT.values() for c in m} | {'"', "\\"}


def _spell_state(state: int, ch: str) -> int:
    """The spelling state after ``ch`` (the text is canonical, so the move exists)."""
    if state == _B:
        return _E if ch == "\\" else _B
    return _NEXT[state][ch]


def key_exclusion_dfa(
    excluded: Sequence[str], suffix: str, limits: Limits, what: str = ""
) -> tuple[np.ndarray, np.ndarray, list[int]]:
    """DFA over code-point classes of ``"`` + canonical body of a string not in ``excluded`` + ``"`` + ``suffix``.

    Returns (``(S, C)`` int32 transitions, ``(C,)`` class starts, tag per state): state 0 dead,
    state 1 the start, tag 1 on the one accepting state; not minimized.
    """
    spelled = [json.dumps(name, ensure_ascii=False)[1:-1] for name in dict.fromkeys(excluded)]
    # trie over the canonical spellings: node -> {char: node}, its spelling state, whether a name ends
    kids: list[dict[str, int]] = [{}]
    spell: list[int] = [_B]
    ends: list[bool] = [False]
    for text in spelled:
        node = 0
        for ch in text:
            nxt = kids[node].get(ch)
            if nxt is None:
                nxt = len(kids)
                kids[node][ch] = nxt
                kids.append({})
                spell.append(_spell_state(spell[node], ch))
                ends.append(False)
            node = nxt
        ends[node] = True
    # state numbers: 0 dead, 1 start, 2.. trie nodes, then the 7 off states, the suffix chain, accept
    trie0 = 2
    off0 = trie0 + len(kids)
    quote = off0 + 7  # after the closing quote
    accept = quote + len(suffix)
    n = accept + 1
    if n > limits.max_dfa_states:
        raise LimitExceeded("max_dfa_states", n, limits.max_dfa_states, what)
    chars = {ch for text in spelled for ch in text} | _ALPHABET | set(suffix)
    cuts = {0, 0x20, 0xD800, 0xE000}
    for ch in chars:
        cuts.update((ord(ch), ord(ch) + 1))
    starts = np.array(sorted(c for c in cuts if c <= 0x10FFFF), dtype=np.int64)  # (C,)
    cls = {ch: int(np.searchsorted(starts, ord(ch), side="right")) - 1 for ch in chars}
    trans = np.zeros((n, len(starts)), dtype=np.int32)  # (S, C)
    raw = (starts >= 0x20) & (starts != 0x22) & (starts != 0x5C) & ((starts < 0xD800) | (starts >= 0xE000))
    off = trans[off0 : off0 + 7]  # a view: the off rows, filled in place
    off[_B, raw] = off0 + _B
    off[_B, cls["\\"]] = off0 + _E
    off[_B, cls['"']] = quote
    for state, moves in _NEXT.items():
        for ch, to in moves.items():
            off[state, cls[ch]] = off0 + to
    trans[1, cls['"']] = trie0
    rows = off[spell]  # (nodes, C): each trie node starts from its spelling state's off row
    for node, children in enumerate(kids):
        row = rows[node]
        if ends[node]:
            row[cls['"']] = 0  # the closing quote would spell an excluded name
        for ch, child in children.items():
            row[cls[ch]] = trie0 + child
    trans[trie0:off0] = rows
    for i, ch in enumerate(suffix):
        trans[quote + i, cls[ch]] = quote + i + 1
    tags = [0] * n
    tags[accept] = 1
    return trans, starts, tags
