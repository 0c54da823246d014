"""The mask fast paths equal the plain computations they replace, on real dev schemas.

States come from JSONSchemaBench dev schemas (the first schemas of each split), compiled for
Llama-3 and fed their first valid instance token by token. At each state:

* first-byte filtering: a whole-vocabulary walk given the roots' bytes (dead roots skipped
  without visiting the trie) equals the walk over every root;
* the tokens whose first byte ends the open lexeme (``first_byte_complement``: every token minus
  the live roots' subtrees) equal the subtrees of the dead roots, the set the walk used to collect;
* crossing nodes come out ascending (grouping keeps that order instead of sorting);
* per-state "some terminal of A alive / accepted" flags from the lexer's 64-bit words equal the
  bitset arithmetic on Python ints;
* the checked engine's mask (replays memoized per completed value) clears exactly the candidate
  tokens that ``advance_token`` rejects.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import structgen
from structgen import assets
from structgen.errors import StructgenError
from structgen.runtime.bitmask import unpack_bitmask
from structgen.runtime.trie_walk import first_byte_complement, subtree_words, terminal_words, vocab_trie, walk

BENCH = Path(__file__).resolve().parents[3] / "shared" / "data" / "jsonschemabench"
if not BENCH.exists():
    BENCH = Path(__file__).resolve().parents[2] / "shared" / "data" / "jsonschemabench"

SPLITS = ("Glaiveai2K", "Github_easy", "Github_medium", "JsonSchemaStore")
PER_SPLIT = 4


def _schemas(split: str, needle: str = "") -> list[dict[str, Any]]:
    """The first schemas of ``split`` with a valid instance (and ``needle`` in their text)."""
    out = []
    with open(BENCH / f"{split}.jsonl") as fh:
        for line in fh:
            rec = json.loads(line)
            if any(t["valid"] for t in rec["tests"]) and needle in json.dumps(rec["schema"]):
                out.append(rec)
            if len(out) == PER_SPLIT:
                break
    return out


def _walks(split: str, needle: str = "") -> list[tuple[Any, Any, list[Any]]]:
    """(compiled, matcher states along the first valid instance) per schema that compiles."""
    from structgen.frontends.json_schema.formatting import dumps

    vocab = assets.load_vocabulary("llama3")
    tok = assets.load_tokenizer("llama3")
    out = []
    for rec in _schemas(split, needle):
        try:
            c = structgen.compile(vocab, json_schema=rec["schema"], cache=False)
        except StructgenError:
            continue
        value = next(t["data"] for t in rec["tests"] if t["valid"])
        m = c.matcher()
        states = []
        for t in tok.encode(dumps(value), add_special_tokens=False):
            states.append(m.fork())
            if not m.accept_token(t):
                break
        out.append((c, m, states))
    return out


@pytest.mark.parametrize("split", SPLITS)
def test_walk_fast_paths_equal_plain_walks(split: str) -> None:
    if not BENCH.exists():
        pytest.skip(f"JSONSchemaBench data not found at {BENCH}")
    vocab = assets.load_vocabulary("llama3")
    trie = vocab_trie(vocab)
    root_bytes = trie.cache["root_byte"]
    checked = 0
    for c, _, states in _walks(split):
        eng = getattr(c.engine, "inner", c.engine)
        seen = set()
        for m in states:
            for e, q in getattr(m.state, "inner", m.state):
                a_bits = e.accepts | eng.ignore_bits
                if (q, a_bits) in seen:
                    continue
                seen.add((q, a_bits))
                a = terminal_words([a_bits], eng._lex.words)[0]
                plain = walk(trie, trie.roots, q, eng._lex, a, eng.width)
                fast = walk(trie, trie.roots, q, eng._lex, a, eng.width, root_bytes=root_bytes)
                assert fast.n_inside == plain.n_inside
                for f in ("words", "ids", "whole", "cross_nodes", "cross_states"):
                    assert np.array_equal(getattr(fast, f), getattr(plain, f)), f
                assert np.array_equal(np.sort(fast.touched), np.flatnonzero(fast.words))
                assert np.all(np.diff(fast.cross_nodes) > 0)
                alive_a, accept_a = eng._bools(a_bits)  # per lexer state: some terminal of A alive / accepted
                assert np.array_equal(alive_a, np.array([(x & a_bits) != 0 for x in eng.alive]))
                assert np.array_equal(accept_a, np.array([(x & a_bits) != 0 for x in eng.accepts]))
                # tokens whose first byte cannot continue the lexeme: complement vs dead roots' subtrees
                live = alive_a[eng.trans[q]]
                got, n = first_byte_complement(trie, live)
                want, n_want = subtree_words(trie, trie.roots[~live[root_bytes]], eng.width)
                assert n == n_want
                assert np.array_equal(got, want)
                checked += 1
    assert checked > 20


@pytest.mark.parametrize(
    ("split", "needle"), [("JsonSchemaStore", '"uniqueItems": true'), ("Github_medium", '"oneOf"')]
)
def test_checked_masks_equal_token_replays(split: str, needle: str) -> None:
    """Every allowed-by-the-inner-engine token that may complete a checked value: its bit in the
    checked mask equals whether ``advance_token`` (no memo) accepts it."""
    if not BENCH.exists():
        pytest.skip(f"JSONSchemaBench data not found at {BENCH}")
    vocab = assets.load_vocabulary("llama3")
    replays = 0
    for c, _, states in _walks(split, needle):
        eng = c.engine
        if not hasattr(eng, "inner"):
            continue
        for m in states:
            state = m.state
            got = unpack_bitmask(eng.token_mask(state)[None, :], vocab.size)[0]
            base = unpack_bitmask(eng.inner.token_mask(state.inner)[None, :], vocab.size)[0]
            cand = eng._candidates(state.trk, eng.inner.token_mask(state.inner))
            if cand is None:
                assert np.array_equal(got, base)
                continue
            ids = np.flatnonzero(unpack_bitmask(cand.view(np.int32)[None, :], vocab.size)[0])
            for t in ids.tolist()[:400]:
                assert got[t] == (eng.advance_token(state, t) is not None), vocab.token_bytes[t]
                replays += 1
            assert np.array_equal(got & ~base, np.zeros_like(got))
    if replays == 0:
        pytest.skip(f"no checked values among the first {PER_SPLIT} {split} schemas with {needle}")
