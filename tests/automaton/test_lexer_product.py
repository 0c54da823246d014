"""The product-built lexer and the code-point pipeline against the joint byte-level construction.

Reference: every terminal in one Thompson byte NFA -> subset construction -> Moore minimization ->
liveness fixed point (the lexer before per-terminal caching). The new lexer must give the *same*
tables (transitions, accepts, alive, start), not just the same language; the code-point regex
pipeline must give the byte pipeline's table; the numba kernels must agree with the numpy paths.
"""

from __future__ import annotations

import json
import random
import re
import sys
from pathlib import Path

import numpy as np
import pytest
from structgen.grammars import grammar_names, read_grammar

from structgen.automaton import determinize, lexer, product
from structgen.automaton.accel import compiled
from structgen.automaton.dfa import DEAD, LexerDFA
from structgen.automaton.lexer import build_lexer_dfa, compile_regex_dfa, dfa_from_asts
from structgen.errors import CompileError, LimitExceeded
from structgen.frontends.lark_frontend import grammar_from_lark, prune_grammar
from structgen.frontends.regex_parser import parse_literal, parse_regex
from structgen.ir.grammar import Terminal
from structgen.limits import DEFAULT_LIMITS, Limits


def reference_lexer(terminals: list[Terminal], limits: Limits = DEFAULT_LIMITS) -> tuple:
    """(transitions, accepts, alive, start) by the joint byte-level construction."""
    nodes = [
        parse_literal(t.pattern, t.flags) if t.is_literal else parse_regex(t.pattern, t.flags, limits)
        for t in terminals
    ]
    trans_cls, classes, tags, start = lexer._class_dfa_from_asts(nodes, limits)
    trans = np.ascontiguousarray(trans_cls[:, classes], dtype=np.int32)
    alive = list(tags)
    alive[0] = 0
    changed = True
    while changed:
        changed = False
        for s in range(trans.shape[0] - 1, 0, -1):
            bits = alive[s]
            for t in set(trans[s].tolist()):
                bits |= alive[t]
            if bits != alive[s]:
                alive[s] = bits
                changed = True
    return trans, list(tags), alive, start


def assert_same(lex: LexerDFA, ref: tuple) -> None:
    trans, accepts, alive, start = ref
    assert lex.dfa.start == start
    assert lex.dfa.transitions.shape == trans.shape
    assert np.array_equal(lex.dfa.transitions, trans)
    assert list(lex.accepts) == accepts
    assert list(lex.alive) == alive
    assert np.array_equal(lex.dfa.accepting, np.array([a != 0 for a in accepts]))


def lark_terminals(name: str) -> list[Terminal]:
    return list(prune_grammar(grammar_from_lark(read_grammar(name))).terminals)


def _bench_dir() -> Path:
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "conformance"))
    import harness

    return Path(harness.BENCH)


def schema_terminals(split: str, n: int) -> list[tuple[str, list[Terminal]]]:
    from structgen.frontends.json_schema.lowering import lower_schema

    out = []
    with open(_bench_dir() / f"{split}.jsonl") as fh:
        for line in fh:
            rec = json.loads(line)
            try:
                low = lower_schema(rec["schema"], {}, DEFAULT_LIMITS)
            except CompileError:
                continue
            out.append((rec["id"], list(low.grammar.terminals)))
            if len(out) >= n:
                break
    return out


def _bench_available() -> bool:
    return (_bench_dir() / "Glaiveai2K.jsonl").is_file()


UNICODE_TERMS = [
    Terminal("WORD", r"\w+"),
    Terminal("NONASCII", r"[^\x00-\x7f]+"),
    Terminal("BMP", r"[\u0800-\uffff]{1,3}"),
    Terminal("ASTRAL", r"[\U00010000-\U0010ffff]x?"),
    Terminal("DIGIT", r"\d"),
    Terminal("ANY", r"(?s:.)"),
    Terminal("STRASSE", "straße", is_literal=True, flags="i"),
    Terminal("EMOJI", "😀!", is_literal=True),
    Terminal("EDGES", "[\u07ff\u0800\ud7ff\ue000\uffff\U00010000\U0010ffff]"),
    Terminal("EMPTY", "", is_literal=True),
    Terminal("NOTHING", "[^\\s\\S]"),
    Terminal("SURR", "a\ud800", is_literal=True),
    Terminal("DUP1", "if", is_literal=True),
    Terminal("DUP2", "if", is_literal=True),
    Terminal("RDUP1", "[a-c]+"),
    Terminal("RDUP2", "[a-c]+"),
    Terminal("LOOK", r"(?!ab)[a-z]{2}"),
]


@pytest.mark.parametrize("name", grammar_names())
def test_shipped_grammars_match_reference(name: str) -> None:
    terms = lark_terminals(name)
    assert_same(build_lexer_dfa(terms), reference_lexer(terms))


@pytest.mark.parametrize("drop", [None, *range(len(UNICODE_TERMS))])
def test_unicode_and_odd_terminals_match_reference(drop: int | None) -> None:
    terms = [t for i, t in enumerate(UNICODE_TERMS) if i != drop]
    assert_same(build_lexer_dfa(terms), reference_lexer(terms))


def test_many_terminals_and_empty_sets() -> None:
    terms = [Terminal(f"K{i}", f"kw{i}", is_literal=True) for i in range(80)] + [Terminal("ID", "[a-z]+[0-9]*")]
    assert_same(build_lexer_dfa(terms), reference_lexer(terms))
    lex = build_lexer_dfa([])
    assert lex.dfa.start == 0 and lex.dfa.num_states == 1
    nothing = [Terminal("N", "[^\\s\\S]")]
    assert_same(build_lexer_dfa(nothing), reference_lexer(nothing))


@pytest.mark.skipif(not _bench_available(), reason="JSONSchemaBench dev splits not present")
@pytest.mark.parametrize("split", ["Glaiveai2K", "Github_trivial", "Github_easy", "Github_medium"])
def test_dev_split_lexers_match_reference(split: str) -> None:
    limits = Limits(max_dfa_states=20_000)
    for _id, terms in schema_terminals(split, 4):
        try:
            ref = reference_lexer(terms, limits)
        except LimitExceeded:
            continue  # the joint construction's intermediate DFA is too big; the product may not be
        assert_same(build_lexer_dfa(terms, limits), ref)


@pytest.mark.deep
@pytest.mark.slow
@pytest.mark.skipif(not _bench_available(), reason="JSONSchemaBench dev splits not present")
@pytest.mark.parametrize("split", ["Glaiveai2K", "Github_trivial", "Github_easy", "Github_medium", "JsonSchemaStore"])
def test_dev_split_lexers_match_reference_many(split: str) -> None:
    limits = Limits(max_dfa_states=20_000, compile_timeout_s=10.0)
    for _id, terms in schema_terminals(split, 40):
        try:
            ref = reference_lexer(terms, limits)
        except LimitExceeded:
            continue
        assert_same(build_lexer_dfa(terms, limits), ref)


REGEXES = [
    r"\w+@\w+\.(com|org)",
    r"[^\x00-\x7f]",
    r"(?i)ǅx[ß-ÿ]+",
    r"[\u0080-\u07ff][\u0800-\ud7ff\ue000-\uffff]*",
    r"[\U00010000-\U0010ffff]+|\d{2,4}",
    r"(?s).{0,3}é",
    r'"(?:[^"\\\x00-\x1f]|\\["\\/bfnrt]|\\u[0-9a-fA-F]{4})*"',
    r"(a|b)*a(a|b){5}",
    r"[\s\S]*z",
    r"[^\s\S]",
    r"",
    r"x*",
]


@pytest.mark.parametrize("pattern", REGEXES)
def test_codepoint_pipeline_equals_byte_pipeline(pattern: str) -> None:
    node = parse_regex(pattern)
    got = dfa_from_asts([node], DEFAULT_LIMITS)
    trans_cls, classes, tags, start = lexer._class_dfa_from_asts([node], DEFAULT_LIMITS)
    assert got[2] == start
    assert np.array_equal(got[0], trans_cls[:, classes])
    assert got[1] == tags


@pytest.mark.parametrize("pattern", REGEXES[:8])
def test_regex_dfa_agrees_with_re_on_random_text(pattern: str) -> None:
    dfa = compile_regex_dfa(pattern)
    rx = re.compile(pattern)
    rng = random.Random(7)
    alphabet = 'ab09_xé\u0800\uffff\U00010000 "\\zǅß'
    for _ in range(300):
        text = "".join(rng.choice(alphabet) for _ in range(rng.randint(0, 6)))
        assert dfa.matches(text.encode()) == bool(rx.fullmatch(text)), text
    for _ in range(300):  # arbitrary bytes, invalid UTF-8 included: never accepted unless valid
        data = bytes(rng.randrange(256) for _ in range(rng.randint(0, 4)))
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError:
            assert not dfa.matches(data)
            continue
        assert dfa.matches(data) == bool(rx.fullmatch(text)), data


def _random_lexer_states(lex: LexerDFA, rng: random.Random) -> None:
    """Every state reachable, live and correctly tagged along random byte walks."""
    t = lex.dfa.transitions
    for _ in range(200):
        s = lex.dfa.start
        for _ in range(12):
            nxt = int(t[s, rng.randrange(256)])
            if nxt == DEAD:
                break
            assert lex.alive[nxt] != 0 and lex.accepts[nxt] & ~lex.alive[nxt] == 0
            s = nxt


def test_numba_and_numpy_products_agree() -> None:
    if compiled("product", product.product_kernel, product.rehash_kernel) is None:
        pytest.skip("numba not installed (or STRUCTGEN_NO_NUMBA set)")
    for terms in [lark_terminals(n) for n in grammar_names()] + [UNICODE_TERMS]:
        parts = _parts(terms)
        a = product.product_dfa(parts, len(terms), DEFAULT_LIMITS, use_numba=True)
        b = product.product_dfa(parts, len(terms), DEFAULT_LIMITS, use_numba=False)
        assert np.array_equal(a[0], b[0]) and a[1:] == b[1:]
    _random_lexer_states(build_lexer_dfa(UNICODE_TERMS), random.Random(3))


def _parts(terms: list[Terminal]) -> list[product.Component]:
    """The components build_lexer_dfa would use (reusing its helpers)."""
    literals = [(t.pattern.encode(), 1 << i) for i, t in enumerate(terms) if lexer._trie_text(t) is not None]
    parts = [product.literal_trie(literals)] if literals else []
    for i, t in enumerate(terms):
        if lexer._trie_text(t) is None:
            trans, classes, start, accepting = lexer._terminal_dfa(t.pattern, t.is_literal, t.flags, DEFAULT_LIMITS)
            bits = 1 << i
            parts.append(
                product.Component(
                    trans=trans,
                    classes=classes,
                    start=start,
                    accepts=tuple(bits if a else 0 for a in accepting.tolist()),
                    alive=(0,) + (bits,) * (trans.shape[0] - 1),
                )
            )
    return parts


def test_moore_kernel_python_numba_and_numpy_agree() -> None:
    rng = np.random.default_rng(11)
    kernels = compiled("moore", determinize.moore_kernel)
    for n, c in [(2, 1), (9, 2), (40, 3), (200, 5)]:
        t = rng.integers(0, n, size=(n, c)).astype(np.int64)
        t[0] = 0
        labels = rng.integers(0, 3, size=n).astype(np.int64)
        labels[0] = 0
        num = len(np.unique(labels))
        part_py, num_py, stable = determinize.moore_kernel(t, labels.copy(), num, 10_000)
        assert stable
        weights = np.random.default_rng(0x5EED).integers(1, 2**63 - 1, size=c + 1, dtype=np.uint64) | np.uint64(1)
        part_np, count = labels.copy(), num
        while True:
            part_np, new = determinize._refine(part_np, t, weights)
            if new == count:
                break
            count = new
        assert num_py == count
        assert _same_partition(part_py, part_np)
        if kernels is not None:
            part_nb, num_nb, _ = kernels[0](t, labels.copy(), num, 10_000)
            assert num_nb == num_py and np.array_equal(part_nb, part_py)


def _same_partition(a: np.ndarray, b: np.ndarray) -> bool:
    pairs = set(zip(a.tolist(), b.tolist(), strict=True))
    return len(pairs) == len(set(a.tolist())) == len(set(b.tolist()))


def test_limits_still_stop_blowups() -> None:
    with pytest.raises(LimitExceeded) as e:
        build_lexer_dfa([Terminal("X", "(a|b)*a(a|b){16}")], Limits(max_dfa_states=1000))
    assert e.value.limit == "max_dfa_states"
    # the product itself: many independent keywords sharing no prefix stay small, a cross product does not
    terms = [Terminal(f"T{i}", f"(?:[a-z]{{{i}}})*") for i in range(2, 9)]
    with pytest.raises(LimitExceeded) as e:
        build_lexer_dfa(terms, Limits(max_dfa_states=500))
    assert e.value.limit == "max_dfa_states"
    with pytest.raises(LimitExceeded) as e:
        build_lexer_dfa([Terminal("X", "(?:(?:a{100}){100}){100}")], Limits(max_nfa_states=10_000))
    assert e.value.limit == "max_nfa_states"


def test_product_respects_timeout() -> None:
    terms = [Terminal(f"T{i}", f"(?:[a-z]{{{i}}})*") for i in range(2, 9)]
    parts = _parts(terms)
    for use_numba in [False, True] if compiled("product", product.product_kernel, product.rehash_kernel) else [False]:
        with pytest.raises(LimitExceeded) as e:
            product.product_dfa(parts, len(terms), Limits(compile_timeout_s=0.0), use_numba=use_numba)
        assert e.value.limit == "compile_timeout_s"


if __name__ == "__main__":  # pragma: no cover
    sys.exit(pytest.main([__file__, "-q"]))


def _nfas() -> list[tuple[object, int, dict[int, int], bool]]:
    """(nfa, start, tags, codepoints) for every shipped grammar's and a few odd terminal sets."""
    from structgen.automaton.nfa import build_nfa

    out = []
    sets = [lark_terminals(n) for n in grammar_names()] + [[t for t in UNICODE_TERMS if t.name != "LOOK"]]
    for terms in sets:
        nodes = [parse_literal(t.pattern, t.flags) if t.is_literal else parse_regex(t.pattern, t.flags) for t in terms]
        for cp in (False, True):
            nfa, start, ends = build_nfa(nodes, DEFAULT_LIMITS.max_nfa_states, codepoints=cp)
            tags: dict[int, int] = {}
            for i, e in enumerate(ends):
                tags[e] = tags.get(e, 0) | (1 << i)
            out.append((nfa, start, tags, cp))
    return out


def test_subset_kernel_matches_python_path() -> None:
    if compiled("subset", determinize.subset_kernel) is None:
        pytest.skip("numba not installed (or STRUCTGEN_NO_NUMBA set)")
    for nfa, start, tags, cp in _nfas():
        fn = determinize.subset_construction_cp if cp else determinize.subset_construction
        a = fn(nfa, start, tags, DEFAULT_LIMITS, use_numba=True)
        b = fn(nfa, start, tags, DEFAULT_LIMITS, use_numba=False)
        assert np.array_equal(a[0], b[0]) and np.array_equal(a[1], b[1]) and a[2] == b[2]
    with pytest.raises(LimitExceeded) as e:
        nfa, start, tags, _ = _nfas()[0]
        determinize.subset_construction(nfa, start, tags, Limits(max_dfa_states=3), use_numba=True)
    assert e.value.limit == "max_dfa_states"


def test_coreach_kernel_matches_numpy() -> None:
    rng = np.random.default_rng(5)
    for n, c in [(1, 1), (6, 2), (50, 4), (300, 3)]:
        trans = rng.integers(0, n, size=(n, c)).astype(np.int32)
        accepting = rng.random(n) < 0.05
        live = accepting.copy()
        determinize.coreach_kernel(trans, live)
        # brute force: iterate predecessors to a fixed point
        want = accepting.copy()
        changed = True
        while changed:
            new = want | want[trans].any(axis=1)
            changed = bool((new != want).any())
            want = new
        assert np.array_equal(live, want)
        assert np.array_equal(determinize._coreachable(trans, accepting), want)
