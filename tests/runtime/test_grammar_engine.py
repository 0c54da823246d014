"""The grammar engine on tiny byte-level vocabularies: masks vs. the Lark-based reference on many
states, accept/reject tables vs. ``Lark(...).parse``, EOS, forced text, rollback/fork, specials.

Real tokenizers are in ``test_grammar_real_tokenizers.py``.
"""

from __future__ import annotations

import random
import zlib

import lark
import numpy as np
import pytest
from _grammar_cases import INVALID, NAMES, PRIORITY_DIVERGENT, VALID, grammar_text
from _grammar_reference import GrammarReference

from structgen.compile.compiler import compile as sg_compile
from structgen.compile.grammar_compiler import compile_grammar_engine
from structgen.frontends.lark_frontend import grammar_from_lark
from structgen.runtime.bitmask import unpack_bitmask
from structgen.vocab.vocabulary import Vocabulary


def tiny_vocab(extra: list[bytes] = ()) -> Vocabulary:  # type: ignore[assignment]
    """Every single byte, some multi-byte pieces crossing lexeme boundaries, a special and EOS."""
    pieces = [
        b'{"',
        b'":',
        b'",',
        b'"}',
        b'"]',
        b"},",
        b"],",
        b'":"',
        b'": ',
        b', "',
        b"true",
        b"null",
        b"  ",
        b"\n\t",
        b"12",
        b"1.",
        b".5",
        b"e3",
        b"-1",
        b"\\u00",
        b"\xe4\xb8",
        b"\xad",
        b"\xc3",
        b'\xa9"',
        b"\xf0\x9f",
        b" + ",
        b"*(",
        b") ",
        b"let",
        b"lets",
        b" in",
        b"in ",
        b"x =",
        b" = ",
        b"SELECT",
        b" FROM",
        b"select",
        b" from",
        b"FROM t",
        b" WHERE",
        b"'x'",
        b"int",
        b" main",
        b"()",
        b"){",
        b"if",
        b"iffy",
        b"return",
        b" 0;",
        b"//",
        b"\n}",
        b";}",
        b"else",
        b"char",
        b" *",
        b"->",
        b"==",
        b"<=",
        b"!=",
        *extra,
    ]
    toks = [bytes([i]) for i in range(256)] + pieces + [b"<|im_end|>", b"<eos>"]
    n = len(toks)
    return Vocabulary.from_bytes(toks, eos_ids=[n - 1], special_ids=[n - 2], size=n + 5)


@pytest.fixture(scope="module")
def vocab() -> Vocabulary:
    return tiny_vocab()


_engines: dict[str, object] = {}


def engine_for(name: str, vocab: Vocabulary):  # type: ignore[no-untyped-def]
    key = f"{name}|{vocab.fingerprint}"
    if key not in _engines:
        _engines[key] = compile_grammar_engine(grammar_from_lark(grammar_text(name)), vocab)
    return _engines[key]


def allowed(engine, state, vocab: Vocabulary) -> np.ndarray:  # type: ignore[no-untyped-def]
    return unpack_bitmask(engine.token_mask(state), vocab.size)


def check_mask(engine, ref: GrammarReference, vocab: Vocabulary, state, prefix: bytes) -> None:  # type: ignore[no-untyped-def]
    cand = vocab.text_token_ids()
    want = ref.mask(prefix, list(vocab.token_bytes), cand)
    got_full = allowed(engine, state, vocab)
    got = got_full[cand]
    if not np.array_equal(want, got):
        bad = np.flatnonzero(want != got)[:10]
        detail = [(vocab.token_bytes[cand[i]], "ref" if want[i] else "engine") for i in bad]
        raise AssertionError(f"mask mismatch after {prefix[-40:]!r}: only allowed by {detail}")
    outside = np.ones(vocab.size, dtype=bool)
    outside[cand] = False
    assert not got_full[outside].any(), "special, EOS or padding ids must never be in the text mask"


@pytest.mark.parametrize("name", NAMES)
def test_masks_match_reference_on_tiny_vocab(name: str, vocab: Vocabulary) -> None:
    eng = engine_for(name, vocab)
    ref = GrammarReference(grammar_text(name))
    rng = random.Random(zlib.crc32(name.encode()))
    for text in VALID[name]:
        data = text.encode()
        # states at every byte of a short prefix, then at random cut points
        cuts = sorted(set(range(min(len(data), 12))) | {rng.randrange(len(data) + 1) for _ in range(6)} | {len(data)})
        for cut in cuts:
            state = eng.advance_bytes(eng.initial_state(), data[:cut])
            assert state is not None, f"{name}: prefix {data[:cut]!r} of a valid sentence was rejected"
            check_mask(eng, ref, vocab, state, data[:cut])


@pytest.mark.parametrize("name", NAMES)
def test_accept_reject_table_matches_lark(name: str, vocab: Vocabulary) -> None:
    eng = engine_for(name, vocab)
    parser = lark.Lark(grammar_text(name), parser="earley")
    ref = GrammarReference(grammar_text(name))
    for text in VALID[name] + INVALID[name]:
        try:
            parser.parse(text)
            lark_ok = True
        except lark.exceptions.UnexpectedInput:
            lark_ok = False
        state = eng.advance_bytes(eng.initial_state(), text.encode())
        ours = state is not None and eng.is_accepting(state)
        if text in PRIORITY_DIVERGENT.get(name, ()):
            assert lark_ok and not ours, f"{name}: {text!r} was expected to differ from Lark's dynamic lexer"
        else:
            assert ours == lark_ok, f"{name}: {text!r} lark={lark_ok} structgen={ours}"
        assert ours == ref.accepts(text.encode()), f"{name}: {text!r} disagrees with the reference"
        assert (text in VALID[name]) == ours


def test_every_prefix_of_a_valid_sentence_is_live(vocab: Vocabulary) -> None:
    for name in NAMES:
        eng = engine_for(name, vocab)
        for text in VALID[name]:
            state = eng.initial_state()
            for i, b in enumerate(text.encode()):
                assert eng.can_continue(state)
                state = eng.advance_bytes(state, bytes([b]))
                assert state is not None, f"{name}: died at byte {i} of {text!r}"
            assert eng.is_accepting(state)


def test_token_walk_equals_byte_walk(vocab: Vocabulary) -> None:
    eng = engine_for("json", vocab)
    state = eng.advance_bytes(eng.initial_state(), b'{"k": [1')
    words = allowed(eng, state, vocab)
    for tid in vocab.text_token_ids().tolist():
        by_token = eng.advance_token(state, tid)
        assert (by_token is not None) == bool(words[tid])
        by_bytes = eng.advance_bytes(state, vocab.token_bytes[tid])
        assert (by_bytes is None) == (by_token is None)
        if by_token is not None:  # equal states (parser states are memoized weakly: not always the same objects)
            np.testing.assert_array_equal(eng.token_mask(by_token), eng.token_mask(by_bytes))
            assert eng.is_accepting(by_token) == eng.is_accepting(by_bytes)


def test_matcher_eos_rollback_fork(vocab: Vocabulary) -> None:
    compiled = sg_compile(vocab, grammar=grammar_text("json"))
    m = compiled.matcher()
    eos = next(iter(vocab.eos_ids))
    ids = {b: i for i, b in enumerate(vocab.token_bytes)}
    seq = [ids[b'{"'], ids[b"k"], ids[b'":'], ids[b"12"], ids[b"}"]]
    masks = [m.mask_words()]
    for t in seq:
        assert m.accept_token(t), m.error
        masks.append(m.mask_words())
    assert m.is_accepting() and masks[-1].view(np.uint32)[eos // 32] >> (eos % 32) & 1
    f = m.fork()
    assert f.accept_token(eos) and f.is_finished()
    assert not m.is_finished()
    for n in range(len(seq), 0, -1):
        m.rollback(1)
        np.testing.assert_array_equal(m.mask_words(), masks[n - 1])
    assert not m.accept_token(ids[b"}"]) and m.error
    assert not m.accept_token(eos)  # EOS before the value is complete
    assert not m.accept_token(vocab.num_tokens - 2)  # <|im_end|> is special: never text
    assert not m.accept_token(vocab.size + 10)
    assert m.accept_text(' {"a": [true, null]}') and m.is_accepting()


def test_forced_text_after_open_brace(vocab: Vocabulary) -> None:
    text = r"""
start: "{\"name\": " STRING ", \"age\": " INT "}"
STRING: /"[a-z]*"/
INT: /[0-9]+/
"""
    m = sg_compile(vocab, grammar=text).matcher()
    assert m.forced_text() == '{"name": "'
    assert m.accept_text('{"name": "bob')
    assert m.forced_text() == ""
    assert m.accept_text('"')
    assert m.forced_text() == ', "age": '
    assert m.accept_text(', "age": 7')
    assert m.forced_text() == ""  # more digits or "}"
    assert m.accept_text("}") and m.is_accepting() and m.forced_text() == ""


def test_maximal_munch_and_priorities(vocab: Vocabulary) -> None:
    # keyword vs NAME at different priorities, and maximal munch across a keyword prefix
    g = r"""
start: IF NAME | NAME NAME
IF.2: "if"
NAME: /[a-z]+/
%ignore " "
"""
    eng = compile_grammar_engine(grammar_from_lark(g), vocab)
    acc = lambda s: (lambda st: st is not None and eng.is_accepting(st))(eng.advance_bytes(eng.initial_state(), s))  # noqa: E731
    assert acc(b"if x")  # IF NAME (IF outranks NAME for the lexeme "if")
    assert acc(b"iffy x")  # maximal munch: "iffy" is one NAME
    assert acc(b"x if")  # contextual: IF is not acceptable second, so the lexeme "if" is a NAME
    assert acc(b"if if")
    assert not acc(b"if")  # IF outranks NAME where both are acceptable, and IF alone is incomplete
    assert acc(b"x iffy")


def test_ambiguous_lexing_keeps_threads(vocab: Vocabulary) -> None:
    eng = engine_for("ambiguous", vocab)
    st = eng.advance_bytes(eng.initial_state(), b"let")
    assert st is not None and eng.is_accepting(st)  # "let" as NAME is a complete sentence
    st2 = eng.advance_bytes(st, b" x = ")
    assert st2 is not None and not eng.is_accepting(st2)  # only the keyword reading survives


def test_left_recursion_deep(vocab: Vocabulary) -> None:
    eng = engine_for("arithmetic", vocab)
    text = " + ".join(str(i) for i in range(300)).encode()
    st = eng.advance_bytes(eng.initial_state(), text)
    assert st is not None and eng.is_accepting(st)
    assert allowed(eng, st, vocab)[vocab.token_bytes.index(b"*(")]


def test_lowered_ir_without_lark(vocab: Vocabulary) -> None:
    """The JSON Schema front end hands IR grammars straight to compile_grammar_engine."""
    from structgen.ir.grammar import Grammar, Rule, Sym, Terminal

    g = Grammar(
        rules=(
            Rule("start", (Sym("LB", True), Sym("items", False), Sym("RB", True))),
            Rule("items", ()),
            Rule("items", (Sym("items", False), Sym("X", True))),
        ),
        terminals=(Terminal("LB", "[", True), Terminal("RB", "]", True), Terminal("X", r"x[0-9]*")),
        start="start",
    )
    m = sg_compile(vocab, grammar=g).matcher()
    assert m.accept_text("[x1x") and not m.is_accepting()
    assert m.accept_text("]") and m.is_accepting()
