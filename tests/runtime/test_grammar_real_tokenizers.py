"""Grammar masks on real tokenizers equal the Lark-based brute-force reference, token by token.

For each shipped grammar × tokenizer, a valid sentence is encoded with the tokenizer's own encoding
and the matcher state after some of its tokens is compared with ``GrammarReference.mask`` over the
whole vocabulary (every text token's bytes checked). Llama-3, Qwen3 and Mistral run by default (one
state each); Gemma-3 and GPT-2, and four more states per grammar and tokenizer, run in the slow tier.
"""

from __future__ import annotations

import zlib
from functools import cache
from typing import Any

import numpy as np
import pytest
from _grammar_cases import NAMES, VALID, grammar_text
from _grammar_reference import GrammarReference

from structgen import assets
from structgen.compile.grammar_compiler import compile_grammar_engine
from structgen.frontends.lark_frontend import grammar_from_lark
from structgen.runtime.bitmask import unpack_bitmask

FAST = ["llama3", "qwen3", "mistral"]
SLOW = ["gemma3", "gpt2"]


@cache
def _vocab(tok: str) -> Any:
    return assets.load_vocabulary(tok)


@cache
def _tokenizer(tok: str) -> Any:
    return assets.load_tokenizer(tok)


@cache
def _reference(name: str) -> GrammarReference:
    return GrammarReference(grammar_text(name))


@cache
def _engine(name: str, tok: str) -> Any:
    return compile_grammar_engine(grammar_from_lark(grammar_text(name)), _vocab(tok))


def _check(name: str, tok: str, sentence: int, fractions: tuple[float, ...]) -> None:
    if not assets.tokenizer_available(tok):
        pytest.skip(f"tokenizer {tok!r} not fetched: run `python -m structgen.assets fetch --tokenizers-only`")
    vocab = _vocab(tok)
    text = VALID[name][sentence]
    ids = _tokenizer(tok).encode(text, add_special_tokens=False)
    prefix_all = b"".join(vocab.token_bytes[i] for i in ids)
    if prefix_all != text.encode():
        # SentencePiece dummy prefix: one leading space more (or less); the states compared below
        # are reached with the token bytes themselves, whatever they are
        assert prefix_all.lstrip(b" ") == text.encode().lstrip(b" ")
    eng = _engine(name, tok)
    ref = _reference(name)
    cand = vocab.text_token_ids()
    token_bytes = list(vocab.token_bytes)
    cuts = sorted({min(len(ids), int(f * len(ids))) for f in fractions})
    for cut in cuts:
        prefix = b"".join(vocab.token_bytes[i] for i in ids[:cut])
        state = eng.advance_bytes(eng.initial_state(), prefix)
        if state is None:
            assert name == "json" or prefix.startswith(b" "), f"{tok}/{name}: valid prefix {prefix!r} rejected"
            continue  # a dummy-prefix space the grammar does not allow: nothing to compare
        got_full = unpack_bitmask(eng.token_mask(state), vocab.size)
        got = got_full[cand]
        want = ref.mask(prefix, token_bytes, cand)
        if not np.array_equal(got, want):
            bad = np.flatnonzero(got != want)[:8]
            detail = [(token_bytes[cand[i]], "engine" if got[i] else "reference") for i in bad]
            raise AssertionError(
                f"{tok}/{name} after {prefix[-40:]!r}: {len(bad)}+ mismatches, allowed only by {detail}"
            )
        extra = np.ones(vocab.size, dtype=bool)
        extra[cand] = False
        assert not got_full[extra].any()
        # the state reached token by token behaves the same, and the next real token is allowed
        st2 = eng.initial_state()
        for t in ids[:cut]:
            st2 = eng.advance_token(st2, t)
            assert st2 is not None
        # (parser states are memoized weakly, so equal states need not be the same objects)
        np.testing.assert_array_equal(eng.token_mask(st2), eng.token_mask(state))
        assert eng.is_accepting(st2) == eng.is_accepting(state)
        if cut < len(ids):
            assert got_full[ids[cut]], f"{tok}/{name}: the tokenizer's own next token was masked"


def _fraction(name: str, tok: str) -> float:
    return 0.25 + 0.5 * (zlib.crc32(f"{name}/{tok}".encode()) % 1000) / 1000


@pytest.mark.parametrize("tok", FAST)
@pytest.mark.parametrize("name", NAMES)
def test_masks_equal_reference(name: str, tok: str) -> None:
    _check(name, tok, 0, (_fraction(name, tok),))


@pytest.mark.slow
@pytest.mark.parametrize("tok", SLOW)
@pytest.mark.parametrize("name", NAMES)
def test_masks_equal_reference_slow_tokenizers(name: str, tok: str) -> None:
    _check(name, tok, 0, (_fraction(name, tok),))


@pytest.mark.slow
@pytest.mark.parametrize("tok", FAST)
@pytest.mark.parametrize("name", NAMES)
def test_masks_equal_reference_more_states(name: str, tok: str) -> None:
    _check(name, tok, 1, (0.0, 0.5, 1.0))
    _check(name, tok, 0, (0.85,))
