"""DINGO DP: design-note examples and exact agreement with brute force on random small DFAs."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest

from structgen.decoding.diffusion.dingo import MASKED, Dingo, Fixed, Free, TokenDFA, greedy_block

# ---- toy DFA of the design note: (ab|cd)x*  ------------------------------------------------------
# byte states: 1 start, 2 after a, 3 after c, 4 accepting (x*), 0 dead
TOY_TOKENS = [b"a", b"b", b"c", b"d", b"x", b"ab"]


def _toy() -> Dingo:
    trans = np.zeros((5, 256), dtype=np.int32)
    trans[1, ord("a")] = 2
    trans[1, ord("c")] = 3
    trans[2, ord("b")] = 4
    trans[3, ord("d")] = 4
    trans[4, ord("x")] = 4
    table = np.zeros((5, len(TOY_TOKENS)), dtype=np.int32)
    for q in range(1, 5):
        for t, tb in enumerate(TOY_TOKENS):
            s = q
            for b in tb:
                s = int(trans[s, b])
            table[q, t] = s
    acc = np.array([False, False, False, False, True])
    return Dingo(TokenDFA(table, acc, 1))


def _row(probs: dict[str, float]) -> Free:
    s = np.full(len(TOY_TOKENS), -np.inf)
    for k, p in probs.items():
        s[TOY_TOKENS.index(k.encode())] = math.log(p)
    return Free(s)


def _txt(tokens) -> list[str | None]:
    return [None if t is None else TOY_TOKENS[t].decode() for t in tokens]


def test_global_beats_greedy() -> None:
    d = _toy()
    rows = [_row({"a": 0.6, "c": 0.4}), _row({"b": 0.1, "d": 0.9})]
    r = d.decode_block(d.start, rows, remaining=0)
    assert r.ok and _txt(r.tokens) == ["c", "d"]
    assert math.isclose(math.exp(r.score), 0.36)
    g = greedy_block(d, d.start, rows, live_only=True)
    assert g.ok and _txt(g.tokens) == ["a", "b"] and math.isclose(math.exp(g.score), 0.06)


def test_mask_is_wildcard() -> None:
    d = _toy()
    rows = [_row({"a": 0.5, "c": 0.45, "x": 0.05}), MASKED, _row({"x": 0.7, "b": 0.3})]
    r = d.decode_block(d.start, rows, remaining=0)
    assert r.ok and _txt(r.tokens) == ["a", None, "x"]
    assert math.isclose(math.exp(r.score), 0.35)


def test_multichar_tokens() -> None:
    d = _toy()
    r = d.decode_block(d.start, [_row({"ab": 0.3, "a": 0.7}), _row({"x": 0.2, "b": 0.8})], remaining=0)
    assert _txt(r.tokens) == ["a", "b"] and math.isclose(math.exp(r.score), 0.56)


def test_fixed_rows_are_respected() -> None:
    d = _toy()
    r = d.decode_block(d.start, [Fixed(TOY_TOKENS.index(b"c")), _row({"b": 0.99, "d": 0.01})], remaining=0)
    assert _txt(r.tokens) == ["c", "d"]


def test_infeasible_reports_failure() -> None:
    d = _toy()
    r = d.decode_block(d.start, [_row({"x": 1.0})], remaining=0)
    assert not r.ok and r.score == -np.inf


def test_eos_padding_digits() -> None:
    # [0-9]{2} with 8 answer positions: two digits then six EOS
    toks = [str(i).encode() for i in range(10)] + [b"12", b"a", b"<eos>"]
    eos = len(toks) - 1
    trans = np.zeros((4, 256), dtype=np.int32)
    for ch in b"0123456789":
        trans[1, ch] = 2
        trans[2, ch] = 3
    table = np.zeros((4, len(toks)), dtype=np.int32)
    for q in range(1, 4):
        for t, tb in enumerate(toks[:-1]):
            s = q
            for b in tb:
                s = int(trans[s, b])
            table[q, t] = s
    d = Dingo(TokenDFA(table, np.array([False, False, False, True]), 1, (eos,)))
    rng = np.random.default_rng(0)
    rows = [Free(np.log(rng.dirichlet(np.ones(len(toks))))) for _ in range(8)]
    r = d.decode_block(d.start, rows, remaining=0)
    assert r.ok
    text = b""
    n_eos = 0
    for t in r.tokens:
        if t == eos:
            n_eos += 1
        else:
            assert n_eos == 0
            text += toks[t]
    assert len(text) == 2 and text.isdigit()
    # brute force over a 4-position version agrees
    r4 = d.decode_block(d.start, rows[:4], remaining=0)
    best = _brute(table, np.array([False, False, False, True]), 1, (eos,), rows[:4], 0)
    assert math.isclose(r4.score, best, rel_tol=1e-9, abs_tol=1e-9)


# ---- brute force ---------------------------------------------------------------------------------
def _brute(table, acc, start, eos_ids, rows, remaining) -> float:
    """Max score over all assignments of the Free rows whose ⊥-substitution set has a valid word."""
    n_states, v = table.shape
    done = n_states

    def f(q: int, t: int) -> int:
        if t in eos_ids:
            if q == done or (q != 0 and acc[q]):
                return done
            return 0
        if q == done:
            return 0
        return int(table[q, t])

    def step_set(states: set[int], row) -> set[int]:
        out: set[int] = set()
        for q in states:
            if isinstance(row, Fixed):
                out.add(f(q, row.token))
            else:
                out.update(f(q, t) for t in range(v))
        out.discard(0)
        return out

    free_idx = [i for i, r in enumerate(rows) if isinstance(r, Free)]
    best = -np.inf
    for assign in itertools.product(range(v), repeat=len(free_idx)):
        sc = sum(float(rows[i].scores[t]) for i, t in zip(free_idx, assign))
        if not sc > best:
            continue
        concrete = list(rows)
        for i, t in zip(free_idx, assign):
            concrete[i] = Fixed(t)
        cur = {start} - {0}
        for row in concrete + [MASKED] * remaining:
            cur = step_set(cur, row)
            if not cur:
                break
        if any(q == done or acc[q] for q in cur):
            best = sc
    return best


def _random_case(rng: np.random.Generator):
    n_states = int(rng.integers(2, 7))  # including dead state 0
    alphabet = b"abc"
    trans = np.zeros((n_states, 256), dtype=np.int32)
    for q in range(1, n_states):
        for ch in alphabet:
            if rng.random() < 0.92:
                trans[q, ch] = int(rng.integers(1, n_states))
    acc = rng.random(n_states) < 0.6
    acc[0] = False
    n_tok = int(rng.integers(2, 8))
    toks = [bytes(rng.choice(list(alphabet), size=int(rng.integers(1, 4))).tolist()) for _ in range(n_tok)]
    use_eos = rng.random() < 0.5
    eos_ids: tuple[int, ...] = ()
    if use_eos:
        toks.append(b"</s>")
        eos_ids = (len(toks) - 1,)
    table = np.zeros((n_states, len(toks)), dtype=np.int32)
    for q in range(1, n_states):
        for t, tb in enumerate(toks):
            if t in eos_ids:
                continue
            s = q
            for b in tb:
                s = int(trans[s, b])
            table[q, t] = s
    start = int(rng.integers(1, n_states))
    d = int(rng.integers(1, 5))
    rows = []
    for _ in range(d):
        kind = rng.random()
        if kind < 0.1:
            rows.append(Fixed(int(rng.integers(0, len(toks)))))
        elif kind < 0.45:
            rows.append(MASKED)
        else:
            s = np.log(rng.dirichlet(np.ones(len(toks))))
            s[rng.random(len(toks)) < 0.1] = -np.inf
            rows.append(Free(s))
    remaining = int(rng.integers(0, 3))
    return table, acc, start, eos_ids, rows, remaining, toks


def _check_valid(d: Dingo, start, rows, tokens, remaining) -> bool:
    states = np.zeros(d.num_states, dtype=bool)
    states[start] = True
    for row, t in zip(rows, tokens):
        if row is MASKED:
            states = d.mask_succ[states].any(axis=0)
        else:
            nxt = np.zeros(d.num_states, dtype=bool)
            dst = d.dest[states, t]
            nxt[dst] = True
            states = nxt
        states[0] = False
    return bool((states & d.good(remaining)).any())


@pytest.mark.parametrize("chunk", range(3))
def test_matches_brute_force(chunk: int) -> None:
    feasible = 0
    for seed in range(chunk * 250, (chunk + 1) * 250):
        feasible += _one_case(seed)
    assert feasible > 120  # the generator must produce enough non-trivial cases


def _one_case(seed: int) -> bool:
    rng = np.random.default_rng(seed)
    table, acc, start, eos_ids, rows, remaining, _ = _random_case(rng)
    d = Dingo(TokenDFA(table, acc, start, eos_ids))
    r = d.decode_block(start, rows, remaining=remaining)
    best = _brute(table, acc, start, eos_ids, rows, remaining)
    if best == -np.inf:
        assert not r.ok, seed
        return False
    assert r.ok, seed
    assert math.isclose(r.score, best, rel_tol=1e-9, abs_tol=1e-9), (seed, r.score, best)
    # the returned assignment is valid and scores what it claims
    own = sum(float(row.scores[t]) for row, t in zip(rows, r.tokens) if isinstance(row, Free))
    assert math.isclose(own, r.score, rel_tol=1e-9, abs_tol=1e-9)
    for row, t in zip(rows, r.tokens):
        if isinstance(row, Fixed):
            assert t == row.token
        elif row is MASKED:
            assert t is None
    assert _check_valid(d, start, rows, r.tokens, remaining), seed
    return True


def test_torch_scores_match_numpy() -> None:
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(7)
    for _ in range(30):
        table, acc, start, eos_ids, rows, remaining, _ = _random_case(rng)
        d = Dingo(TokenDFA(table, acc, start, eos_ids))
        trows = [Free(torch.tensor(r.scores, dtype=torch.float32)) if isinstance(r, Free) else r for r in rows]
        a = d.decode_block(start, rows, remaining=remaining)
        b = d.decode_block(start, trows, remaining=remaining)
        assert a.ok == b.ok
        if a.ok:
            assert math.isclose(a.score, b.score, rel_tol=1e-5, abs_tol=1e-5)


def test_from_byte_dfa_matches_walk() -> None:
    from structgen.vocab.vocabulary import Vocabulary

    rng = np.random.default_rng(3)
    trans = rng.integers(0, 5, size=(5, 256)).astype(np.int32)
    trans[0] = 0

    class _D:
        transitions = trans
        accepting = np.array([False, True, False, True, False])
        start = 1

    toks = [bytes(rng.integers(0, 256, size=int(rng.integers(1, 5))).astype(np.uint8)) for _ in range(40)]
    vocab = Vocabulary.from_bytes(toks + [b"<eos>"], eos_ids=[40])
    t = TokenDFA.from_byte_dfa(_D, vocab)
    for q in range(5):
        for i, tb in enumerate(toks):
            s = q
            for b in tb:
                s = int(trans[s, b])
            assert t.table[q, i] == (0 if q == 0 else s)
        assert t.table[q, 40] == 0
    assert t.eos_ids == (40,)
