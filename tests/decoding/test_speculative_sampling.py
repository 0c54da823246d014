"""Speculative sampling is lossless: chi-square against the exact constrained sampling distribution.

1. The acceptance rule alone (``accept_draft``) on fixed rows: the first emitted token follows
   ``p_0`` and, after an accepted draft token, the next follows ``p_1`` (sampled and point-mass drafts).
2. End to end on a tiny Llama over a 16-token vocabulary with a regex: the exact distribution of
   output token sequences under plain constrained sampling is enumerated (masked softmax products),
   and speculative runs (draft model; jump-forward + n-gram) are tested against it.
"""

from __future__ import annotations

from collections import Counter

import numpy as np
import pytest

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")
stats = pytest.importorskip("scipy.stats")

import structgen  # noqa: E402
from structgen.api.loading import LoadedModel  # noqa: E402
from structgen.decoding.sampling import SamplingParams  # noqa: E402
from structgen.decoding.speculative import NGramTable, accept_draft, speculative_generate  # noqa: E402
from structgen.runtime.bitmask import unpack_bitmask  # noqa: E402
from structgen.vocab.vocabulary import Vocabulary  # noqa: E402

P_MIN = 1e-3  # fixed seeds make these deterministic; the threshold only guards against a wrong rule


def _chi2(observed: Counter, expected: dict, n: int) -> float:
    """p-value of observed counts against expected probabilities (bins under 5 expected are pooled)."""
    obs, exp = [], []
    pool_o = pool_e = 0.0
    for key, p in expected.items():
        if p * n >= 5:
            obs.append(observed.get(key, 0))
            exp.append(p * n)
        else:
            pool_o += observed.get(key, 0)
            pool_e += p * n
    unexpected = sum(c for k, c in observed.items() if k not in expected)
    assert unexpected == 0, f"outcomes with zero probability were sampled: {unexpected}"
    if pool_e > 0:
        obs.append(pool_o)
        exp.append(pool_e)
    exp_arr = np.array(exp) * (sum(obs) / sum(exp))
    return float(stats.chisquare(np.array(obs, dtype=float), exp_arr).pvalue)


@pytest.mark.parametrize("sampled_draft", [False, True])
def test_acceptance_rule_preserves_target_distribution(sampled_draft):
    gen = torch.Generator().manual_seed(0)
    V, n = 8, 6000
    logits = torch.randn(3, V, generator=gen, dtype=torch.float64) * 1.5
    logits[0, 5] = float("-inf")  # a masked token
    p = torch.softmax(logits, dim=-1)
    q = torch.softmax(torch.randn(2, V, generator=gen, dtype=torch.float64), dim=-1)
    params = SamplingParams(temperature=1.0)
    first, second = Counter(), Counter()
    for _ in range(n):
        if sampled_draft:
            draft = [int(torch.multinomial(q[i], 1, generator=gen)) for i in range(2)]
            qrows = [q[0], q[1]]
        else:
            draft = [int(p[0].argmax()), 3]  # a deterministic (n-gram-like) draft, point-mass q
            qrows = None
        acc, nxt = accept_draft(logits.clone(), draft, params, gen, qrows)
        emitted = draft[:acc] + [nxt]
        first[emitted[0]] += 1
        if acc >= 1:
            second[emitted[1]] += 1
    assert _chi2(first, {i: float(p[0, i]) for i in range(V) if p[0, i] > 0}, n) > P_MIN
    assert sum(second.values()) > 300
    assert _chi2(second, {i: float(p[1, i]) for i in range(V)}, sum(second.values())) > P_MIN


def test_greedy_acceptance_is_argmax_agreement():
    logits = torch.tensor([[0.0, 2.0, 1.0], [3.0, 0.0, 1.0], [0.0, 0.0, 5.0]], dtype=torch.float64)
    params = SamplingParams(temperature=0.0)
    assert accept_draft(logits.clone(), [1, 0], params) == (2, 2)
    assert accept_draft(logits.clone(), [1, 2], params) == (1, 0)
    assert accept_draft(logits.clone(), [0, 0], params) == (0, 1)


# ---- end to end on a 16-token vocabulary ------------------------------------------------------------
TOKENS = [b"a", b"b", b"ab", b"ba", b"aa", b"-", b"0", b"1", b"01", b"10", b"-0", b"x", b"y", b"c", b"d", b"</s>"]
EOS = 15
PATTERN = r"[ab]{1,3}-[01]{1,2}"


def _tiny_lm(seed: int):
    import sys
    from pathlib import Path

    api_tests = str(Path(__file__).resolve().parents[1] / "api")
    if api_tests not in sys.path:
        sys.path.insert(0, api_tests)
    from _api_helpers import tiny_llama

    model = tiny_llama(len(TOKENS), seed=seed, dtype=torch.float64, max_position_embeddings=128, eos_token_id=EOS)
    with torch.no_grad():  # sharper than the default init, so the distribution is far from uniform
        model.lm_head.weight.mul_(40.0)
    return model


@pytest.fixture(scope="module")
def setup():
    vocab = Vocabulary.from_bytes(TOKENS, eos_ids=[EOS])
    target = LoadedModel(_tiny_lm(0), None, vocab, "tiny16")
    draft = _tiny_lm(1)
    compiled = structgen.compile(vocab, regex=PATTERN)
    return target, draft, compiled


def _exact_distribution(target, compiled, prompt):
    """{token sequence (EOS included): probability} under plain constrained sampling at temperature 1."""
    vocab = target.vocab
    out: dict[tuple[int, ...], float] = {}

    def walk(seq: list[int], m, prob: float) -> None:
        if m.is_terminated():
            out[tuple(seq)] = out.get(tuple(seq), 0.0) + prob
            return
        with torch.inference_mode():
            logits = target.model(torch.tensor([prompt + seq])).logits[0, -1].double()
        allowed = torch.from_numpy(unpack_bitmask(m.mask_words(), vocab.size))
        p = torch.softmax(logits.masked_fill(~allowed, float("-inf")), dim=-1)
        for t in torch.nonzero(p > 0).flatten().tolist():
            f = m.fork()
            assert f.accept_token(t)
            walk(seq + [t], f, prob * float(p[t]))

    walk([], compiled.matcher(), 1.0)
    return out


@pytest.mark.slow
@pytest.mark.parametrize("mode", ["draft", "jump_forward+ngram"])
def test_speculative_sampling_matches_exact_distribution(setup, mode):
    target, draft, compiled = setup
    prompt = [0, 1, 5, 6, 2, 5, 8]  # "a b - 0 ab - 01": material for prompt lookup
    exact = _exact_distribution(target, compiled, prompt)
    assert abs(sum(exact.values()) - 1.0) < 1e-9
    n = 600
    gen = torch.Generator().manual_seed(123)
    table = NGramTable()
    seen: Counter = Counter()
    drafted = 0
    for _ in range(n):
        kw = (
            {"mode": {"draft"}, "draft_model": draft}
            if mode == "draft"
            else {"mode": {"jump_forward", "ngram"}, "ngram_table": table}
        )
        res = speculative_generate(
            target, prompt, compiled.matcher(), temperature=1.0, generator=gen, max_new_tokens=16, **kw
        )
        assert res.stop_reason == "eos"
        seen[tuple(res.token_ids)] += 1
        drafted += res.drafted
    assert drafted > n  # speculation actually happened
    assert _chi2(seen, exact, n) > P_MIN
