"""RegexEngine through the public Matcher on tiny byte vocabularies: regressions, EOS, rollback, fork."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import structgen
from structgen.compile.compiler import compile as sg_compile
from structgen.compile.regex_compiler import compile_regex_engine
from structgen.errors import InvalidRegex, LimitExceeded, UnsupportedRegex
from structgen.runtime.engine import TokenEngine
from structgen.vocab.vocabulary import Vocabulary

EOS = b"<eos>"


def tiny(*tokens: bytes) -> Vocabulary:
    toks = list(tokens) + [EOS]
    return Vocabulary.from_bytes(toks, eos_ids=[len(toks) - 1])


def allowed(m: structgen.Matcher) -> set[bytes]:
    return {m.vocab.token_bytes[i] for i in m.allowed_token_ids().tolist()}


# ---- outlines-core regressions (masks-and-speculation.md (b)) ------------------------------------


def test_regression_accepting_state_keeps_continuations() -> None:
    m = sg_compile(tiny(b"a", b"b"), regex=r"a(ba)*").matcher()
    assert m.accept_token(0)
    assert allowed(m) == {b"b", EOS}


def test_regression_token_leaving_accepting_state() -> None:
    m = sg_compile(tiny(b"a", b"b", b"ab"), regex=r"(ab)+").matcher()
    assert m.accept_token(2)
    assert allowed(m) == {b"a", b"ab", EOS}


def test_regression_incomplete_automaton() -> None:
    v = tiny(b"a", b"c")
    m = sg_compile(v, regex=r"(ac|[^a])+").matcher()
    for t in [0, 1, 0, 1]:
        assert m.accept_token(t)
    assert m.is_accepting()
    assert m.accept_token(2) and m.is_finished()


# ---- protocol and matcher contract ------------------------------------------------------------


def test_engine_implements_protocol() -> None:
    eng = compile_regex_engine("ab", tiny(b"a"))
    assert isinstance(eng, TokenEngine)
    assert eng.dfa.start == eng.initial_state() and eng.index is not None


def test_eos_only_when_accepting() -> None:
    v = tiny(b"1", b"2", b"12", b"yes", b"no")
    eos = v.num_tokens - 1
    m = sg_compile(v, regex=r"[0-9]+").matcher()
    assert not m.is_accepting() and not m.accept_token(eos)
    assert m.accept_token(2)
    assert allowed(m) == {b"1", b"2", b"12", EOS}
    m2 = sg_compile(v, regex=r"yes|no").matcher()
    assert m2.accept_token(3)
    assert allowed(m2) == {EOS} and m2.is_accepting()
    assert m2.accept_token(eos) and m2.is_finished() and not m2.accept_token(3)


def test_out_of_range_special_and_bad_ids_return_false() -> None:
    v = Vocabulary.from_bytes([b"a", b"", b"<s>", EOS], special_ids=[2], eos_ids=[3], size=64)
    m = sg_compile(v, regex=r"a*").matcher()
    for bad in [-1, 4, 63, 64, 10**12, 1, 2]:
        assert m.accept_token(bad) is False and m.error
    assert m.accept_token("x") is False  # type: ignore[arg-type]
    assert m.num_accepted == 0
    eng = m.engine
    assert eng.advance_token(1, 10**9) is None and eng.advance_token(10**9, 0) is None
    assert eng.advance_token(0, 0) is None  # the dead state


def test_rejected_token_keeps_state() -> None:
    m = sg_compile(tiny(b"a", b"b"), regex=r"ab").matcher()
    assert not m.accept_token(1)
    assert m.accept_token(0) and m.accept_token(1) and m.is_accepting()


def test_accept_text_and_partial_utf8() -> None:
    v = tiny("é".encode()[:1], "é".encode()[1:], b"a")
    m = sg_compile(v, regex=r"é+a").matcher()
    assert allowed(m) == {b"\xc3"}
    assert m.accept_token(0) and allowed(m) == {b"\xa9"}
    assert m.accept_token(1) and m.accept_text("éé") and m.accept_token(2) and m.is_accepting()
    assert not m.accept_text("b")


def test_forced_text() -> None:
    v = tiny(b"{", b'"', b"a", b"1", b"}")
    m = sg_compile(v, regex=r'\{"name": "[a-z]+", "age": [0-9]+\}').matcher()
    assert m.forced_text() == '{"name": "'
    assert m.accept_text('{"name": "ab')
    assert m.forced_text() == ""
    assert m.accept_text('"')
    assert m.forced_text() == ', "age": '
    m2 = sg_compile(v, regex=r"a(bc)?").matcher()
    assert m2.forced_text() == "a" and m2.accept_token(2) and m2.forced_text() == ""  # accepting: EOS may follow
    m3 = sg_compile(v, regex=r"日本").matcher()
    assert m3.forced_text() == "日本" and m3.forced_bytes() == "日本".encode()
    m4 = sg_compile(v, regex=r"x[éè]").matcher()
    assert m4.forced_text() == "x" and m4.forced_bytes() == b"x\xc3"  # cut to whole characters


def test_rollback_fork_reset() -> None:
    v = tiny(b"a", b"b", b"ab")
    c = sg_compile(v, regex=r"(ab)+")
    m = c.matcher()
    assert m.accept_token(2) and m.accept_token(0)
    s_after_a = m.state
    f = m.fork()
    assert f.accept_token(1) and f.is_accepting()
    assert m.state == s_after_a and not m.is_accepting()  # fork is independent
    m.rollback(1)
    assert m.is_accepting() and m.num_accepted == 1
    m.rollback(1)
    assert m.state == c.engine.initial_state()
    with pytest.raises(ValueError):
        m.rollback(1)
    f.reset()
    assert f.num_accepted == 0


@settings(max_examples=60, deadline=None)
@given(st.lists(st.sampled_from([0, 1, 2]), max_size=12), st.integers(0, 12))
def test_rollback_restores_masks(tokens: list[int], n: int) -> None:
    v = tiny(b"a", b"b", b"ab")
    m = sg_compile(v, regex=r"(a|ab|b)*b?a+").matcher()
    history = [m.mask_words()]
    accepted = 0
    for t in tokens:
        if m.accept_token(t):
            accepted += 1
            history.append(m.mask_words())
    n = min(n, accepted)
    m.rollback(n)
    np.testing.assert_array_equal(m.mask_words(), history[accepted - n])


def test_mask_bits_match_accept_token() -> None:
    v = tiny(b"a", b"b", b"ab", b"ba", b"bb", "é".encode())
    m = sg_compile(v, regex=r"a(b|é)*").matcher()
    for text in ["", "a", "ab", "abé"]:
        mm = m.fork()
        assert mm.accept_text(text) or text == ""
        ids = set(mm.allowed_token_ids().tolist())
        for t in range(v.num_tokens):
            assert (t in ids) == mm.is_token_allowed(t)
            ff = mm.fork()
            assert ff.accept_token(t) == (t in ids)


def test_bitmask_fill_numpy_and_layout() -> None:
    toks = [bytes([65 + i % 26]) * (1 + i // 26) for i in range(39)] + [EOS]
    v = Vocabulary.from_bytes(toks, eos_ids=[39])
    m = sg_compile(v, regex=r"A|F+|M{2}").matcher()
    bm = structgen.allocate_bitmask(2, v.size)
    m.fill_bitmask(bm, 1)
    assert bm.dtype == np.int32 and bm.shape == (2, 2)
    assert set(m.allowed_token_ids().tolist()) == {0, 5, 12, 31, 38}  # A, F, M (prefix of MM), FF, MM
    word0 = np.array(1 | 1 << 5 | 1 << 12 | 1 << 31, dtype=np.int64).astype(np.uint32).view(np.int32)
    assert bm[1].tolist() == [int(word0), 1 << 6]
    assert bm[0].tolist() == [-1, -1]  # other rows untouched


def test_compile_errors() -> None:
    v = tiny(b"a")
    with pytest.raises(UnsupportedRegex, match="lookbehind"):
        sg_compile(v, regex=r"(?<=a)b")
    with pytest.raises(InvalidRegex, match="matches no string"):
        sg_compile(v, regex=r"a(?=b)")  # whole-output match: the lookahead contradicts the end
    with pytest.raises(InvalidRegex, match="position 1"):
        sg_compile(v, regex=r"a(")
    with pytest.raises(LimitExceeded, match="max_dfa_states"):
        sg_compile(v, regex=r"(a|b)*a(a|b){12}", limits=structgen.Limits(max_dfa_states=500))


def test_choices_go_through_regex() -> None:
    v = tiny(b"a", b"b", b".", b"*", b"a.", b"b*")
    m = sg_compile(v, choices=["a.", "b*"]).matcher()
    assert allowed(m) == {b"a", b"b", b"a.", b"b*"}
    assert m.accept_token(0) and allowed(m) == {b"."}


def test_empty_language_is_refused() -> None:
    # a constraint nothing satisfies is an input error, not a matcher that can never finish
    with pytest.raises(InvalidRegex, match="matches no string"):
        sg_compile(tiny(b"a"), regex=r"[^\s\S]")
