"""TokenIndex: per-state token rows and masks equal a direct walk of every token; caching bounds."""

from __future__ import annotations

import numpy as np
import pytest

from structgen.automaton.lexer import compile_regex_dfa
from structgen.automaton.token_index import TokenIndex, TokenTrie
from structgen.limits import Limits
from structgen.runtime.bitmask import unpack_bitmask
from structgen.vocab.vocabulary import Vocabulary

TOKENS = [b"a", b"b", b"ab", b"ba", b"abc", b"", b"\xc3", b"\xa9", b"\xc3\xa9", b"c\xc3", b"1", b"12", b"<s>", b"aaaa"]


@pytest.fixture(scope="module")
def vocab() -> Vocabulary:
    # id 12 is special (never text), id 5 is empty; width padded to 40
    return Vocabulary.from_bytes(TOKENS, special_ids=[12], eos_ids=[], size=40)


def _walk_row(dfa, vocab: Vocabulary, state: int) -> np.ndarray:
    row = np.zeros(vocab.size, dtype=np.int32)
    for t in vocab.text_token_ids().tolist():
        row[t] = dfa.step(state, vocab.token_bytes[t])
    return row


@pytest.mark.parametrize("pattern", [r"(ab|c)*é?", r"[a-c]+\d*", r"a{2,4}|b", r"(?s).*", r"xyz"])
def test_rows_and_masks_equal_direct_walk(vocab: Vocabulary, pattern: str) -> None:
    dfa = compile_regex_dfa(pattern)
    ix = TokenIndex(dfa, vocab)
    for s in range(dfa.num_states):
        want = _walk_row(dfa, vocab, s)
        row = ix.next_states(s)
        assert row.shape == (40,) and row.dtype == np.int32 and not row.flags.writeable
        np.testing.assert_array_equal(row, want)
        words = ix.mask(s)
        assert words.shape == (2,) and words.dtype == np.int32 and not words.flags.writeable
        np.testing.assert_array_equal(unpack_bitmask(words, 40), want != 0)
    assert ix.next_states(0).sum() == 0
    # special, empty and padding ids are never allowed
    allowed_any = np.zeros(40, dtype=bool)
    for s in range(dfa.num_states):
        allowed_any |= ix.next_states(s) != 0
    assert not allowed_any[[5, 12]].any() and not allowed_any[len(TOKENS) :].any()


def test_trie_shares_prefixes(vocab: Vocabulary) -> None:
    trie = TokenTrie.of(vocab)
    assert trie is TokenTrie.of(vocab)  # cached on the vocabulary
    # distinct non-empty prefixes of the text tokens
    prefixes = {t[:k] for i, t in enumerate(TOKENS) if t and i != 12 for k in range(1, len(t) + 1)}
    assert trie.num_nodes == len(prefixes)


def test_reachable_states_and_token_table(vocab: Vocabulary) -> None:
    dfa = compile_regex_dfa(r"ab(c|1)")
    ix = TokenIndex(dfa, vocab)
    reach = ix.reachable_states()
    assert reach[0] == dfa.start
    want = {dfa.start}
    frontier = [dfa.start]
    while frontier:
        s = frontier.pop()
        for t in _walk_row(dfa, vocab, s).tolist():
            if t and t not in want:
                want.add(t)
                frontier.append(t)
    assert set(reach) == want
    table = ix.token_table(list(reach))
    assert table.shape == (len(reach), 40)
    for i, s in enumerate(reach):
        np.testing.assert_array_equal(table[i], _walk_row(dfa, vocab, s))


def test_mask_cache_is_bounded_lru(vocab: Vocabulary) -> None:
    dfa = compile_regex_dfa(r"a{0,20}")
    ix = TokenIndex(dfa, vocab, Limits(max_cached_states=3))
    for s in range(1, dfa.num_states):
        ix.mask(s)
    assert len(ix._masks) == 3
    assert ix.cached_mask(dfa.num_states - 1) is not None and ix.cached_mask(1) is None


def test_empty_vocabulary_of_text() -> None:
    v = Vocabulary.from_bytes([b"<eos>"], eos_ids=[0])
    ix = TokenIndex(compile_regex_dfa("a"), v)
    assert ix.mask(1).tolist() == [0]
