"""Trie-walk mask tables of the grammar engine: the preorder trie, slice subtrees, the compiled and
pure-Python kernels, and JSON-Schema masks on Llama-3 against a brute force over the vocabulary.

The brute force advances the engine's own byte-level automaton by every text token
(``advance_bytes``), which is the definition the masks implement; the grammar-level reference
(Lark) is compared in ``test_grammar_engine.py`` and ``test_grammar_real_tokenizers.py``.
"""

from __future__ import annotations

import numpy as np
import pytest

import structgen
from structgen import assets
from structgen.runtime.bitmask import unpack_bitmask
from structgen.runtime.trie_walk import (
    SLICE_MAX_CHARS,
    WalkTrie,
    is_slice_token,
    numba_enabled,
    subtree_words,
    terminal_words,
    vocab_trie,
    walk,
)

TOKENS = [
    b"a",
    b"ab",
    b"abc",
    b"abd",
    b"b",
    b"ba",
    b"ab",
    b"c",
    "\u00e9".encode(),
    "\u00e9a".encode(),
    b'a"',
    b"\xc3",
    b"a-b",
]


def _paths(trie: WalkTrie) -> list[bytes]:
    out: list[bytes] = []
    path: list[int] = []
    for i in range(trie.num_nodes):
        del path[int(trie.depth[i]) :]
        path.append(int(trie.byte[i]))
        out.append(bytes(path))
    return out


def test_preorder_trie_structure() -> None:
    trie = WalkTrie.build(TOKENS, np.arange(len(TOKENS)))
    paths = _paths(trie)
    assert paths == sorted(set(paths))  # preorder = sorted distinct prefixes
    assert set(paths) == {t[:k] for t in TOKENS for k in range(1, len(t) + 1)}
    for i, p in enumerate(paths):
        sub = [j for j, q in enumerate(paths) if q.startswith(p)]
        assert int(trie.end[i]) == sub[-1] + 1 and sub == list(range(i, sub[-1] + 1))
        own = trie.ids[trie.tok_start[i] : trie.tok_start[i + 1]].tolist()
        assert sorted(TOKENS[t] for t in own) == sorted(t for t in TOKENS if t == p)
        subtree = trie.ids[trie.tok_start[i] : trie.tok_start[trie.end[i]]].tolist()
        assert sorted(subtree) == sorted(t for t, b in enumerate(TOKENS) if b.startswith(p))
        # slice_rest: complete characters so far, only slice tokens below, longest remainder
        toks = [TOKENS[t] for t in subtree]
        try:
            p.decode()
            boundary = True
        except UnicodeDecodeError:
            boundary = False
        if boundary and toks and all(is_slice_token(t) for t in toks):
            rest = max(len(t[len(p) :].decode()) for t in toks)
            assert int(trie.slice_rest[i]) == (rest if rest <= SLICE_MAX_CHARS else -1)
        else:
            assert int(trie.slice_rest[i]) == -1
        ascii_pure = toks and all(is_slice_token(t) and t.isascii() for t in toks)
        assert (int(trie.ascii_rest[i]) >= 0) == bool(ascii_pure and int(trie.slice_rest[i]) >= 0)
        alnum_pure = toks and all(t.isascii() and t.isalnum() for t in toks)
        assert (int(trie.alnum_rest[i]) >= 0) == bool(alnum_pure and int(trie.slice_rest[i]) >= 0)


def test_slice_tokens() -> None:
    assert is_slice_token(b"hello world") and is_slice_token("caf\u00e9".encode())
    for bad in (b"", b'a"', b"a\\", b"\x7f", b"\n", b"\xc3", b"\xed\xa0\x80"):
        assert not is_slice_token(bad)


SCHEMAS = {
    "bounded": {
        "type": "object",
        "properties": {"name": {"type": "string", "maxLength": 20}, "id": {"type": "integer"}},
        "required": ["name", "id"],
    },
    "ascii_pattern": {  # printable ASCII without "~": only the letter-and-digit shortcut applies
        "type": "object",
        "properties": {"k": {"type": "string", "pattern": "^[ -}]+$", "minLength": 5, "maxLength": 5}},
        "required": ["k"],
        "additionalProperties": False,
    },
    "hex": {  # no shortcut applies at all
        "type": "object",
        "properties": {"h": {"type": "string", "pattern": "^[0-9a-f]{6,12}$"}},
        "required": ["h"],
    },
    "open_keys": {
        "type": "object",
        "properties": {"title": {"type": "string"}, "tags": {"type": "array", "items": {"enum": ["a", "b c"]}}},
    },
}
TEXTS = {
    "bounded": '{"name": "Ada Lovelace \u00e9t\u00e9", "id": 12}',
    "ascii_pattern": '{"k": "ab|}c"}',
    "hex": '{"h": "00ff00aa"}',
    "open_keys": '{"title": "x y", "tags": ["b c"], "extra": {"q": [1, true]}}',
}


def _brute(eng, vocab, state) -> np.ndarray:  # type: ignore[no-untyped-def]
    allowed = np.zeros(vocab.size, dtype=bool)
    for t in vocab.text_token_ids().tolist():
        allowed[t] = eng.advance_bytes(state, vocab.token_bytes[t]) is not None
    return allowed


def _states(name: str, every: int) -> tuple:  # type: ignore[type-arg]
    vocab = assets.load_vocabulary("llama3")
    tok = assets.load_tokenizer("llama3")
    compiled = structgen.compile(vocab, json_schema=SCHEMAS[name], cache=False)
    eng = compiled.engine
    ids = tok.encode(TEXTS[name], add_special_tokens=False)
    state = eng.initial_state()
    states = [state]
    for t in ids:
        state = eng.advance_token(state, t)
        assert state is not None, (name, vocab.token_bytes[t])
        states.append(state)
    assert eng.is_accepting(state)
    return vocab, eng, states[::every]


def _check_brute(name: str, states: list) -> None:  # type: ignore[type-arg]
    vocab, eng, _ = _states(name, 1)
    for state in states:
        got = unpack_bitmask(eng.token_mask(state)[None, :], vocab.size)[0]
        want = _brute(eng, vocab, state)
        diff = np.flatnonzero(got != want)
        assert diff.size == 0, [(vocab.token_bytes[int(t)], bool(got[t])) for t in diff[:10]]


@pytest.mark.parametrize("name", sorted(SCHEMAS))
def test_json_schema_masks_equal_brute_force(name: str) -> None:
    """Three states per schema: inside a string value, and two more spread over the text."""
    _, _, states = _states(name, 1)
    _check_brute(name, [states[len(states) // 4], states[len(states) // 2], states[-2]])


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(SCHEMAS))
def test_json_schema_masks_equal_brute_force_every_state(name: str) -> None:
    _, _, states = _states(name, 1)
    _check_brute(name, states)


@pytest.mark.skipif(not numba_enabled(), reason="numba is not installed")
@pytest.mark.parametrize("name", sorted(SCHEMAS))
def test_compiled_kernel_equals_python_kernel(name: str) -> None:
    vocab, eng, states = _states(name, 2)
    trie = vocab_trie(vocab)
    seen = set()
    for state in states:
        for e, q in state:
            a = e.accepts | eng.ignore_bits
            if (q, a) in seen:
                continue
            seen.add((q, a))
            words = terminal_words([a], eng._lex.words)[0]
            fast = walk(trie, trie.roots, q, eng._lex, words, eng.width, use_numba=True)
            slow = walk(trie, trie.roots, q, eng._lex, words, eng.width, use_numba=False)
            assert fast.n_inside == slow.n_inside
            for f in ("words", "ids", "whole", "cross_nodes", "cross_states"):
                assert np.array_equal(getattr(fast, f), getattr(slow, f)), f
            if fast.whole.size:
                for use_numba in (True, False):
                    sw, n = subtree_words(trie, fast.whole, eng.width, use_numba=use_numba)
                    want = np.unique(trie.subtree_ids(fast.whole))
                    assert n == want.size
                    assert np.array_equal(
                        np.flatnonzero(unpack_bitmask(sw.view(np.int32)[None, :], vocab.size)[0]), want
                    )
