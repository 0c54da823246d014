"""The transformers adapter (batched forward, KV-cache reuse across SMC steps) with a tiny random Llama."""

from __future__ import annotations

import re
import sys
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "api"))
from _api_helpers import tiny_llama  # noqa: E402

import structgen  # noqa: E402
from structgen.decoding.asap import ASApSampler  # noqa: E402
from structgen.decoding.lm import TransformersLM  # noqa: E402
from structgen.decoding.smc import smc_generate  # noqa: E402
from structgen.vocab.vocabulary import Vocabulary  # noqa: E402

EOS = 256


@pytest.fixture(scope="module")
def tiny():
    model = tiny_llama(257, seed=0, max_position_embeddings=128, eos_token_id=EOS, bos_token_id=0, pad_token_id=0)
    vocab = Vocabulary.from_bytes([bytes([i]) for i in range(256)] + [b"</s>"], eos_ids=[EOS])
    return model, vocab


def test_kv_cache_reuse_matches_full_recompute(tiny) -> None:
    model, _ = tiny
    lm = TransformersLM(model)
    first = [[1, 2, 3], [4, 5, 6], [7, 8, 9]]
    lm.next_logprobs(first)
    # resampled and extended: parents reordered and duplicated, one new token each
    second = [first[2] + [10], first[0] + [11], first[0] + [12], first[1] + [13]]
    cached = lm.next_logprobs(second)
    assert lm.incremental_calls == 1
    fresh = TransformersLM(model).next_logprobs(second)
    np.testing.assert_allclose(cached, fresh, atol=1e-4)
    np.testing.assert_allclose(np.exp(cached).sum(axis=1), 1.0, atol=1e-9)
    # an unrelated batch falls back to a full (left-padded) recompute
    mixed = [[5], [1, 2, 3, 4, 5, 6]]
    out = lm.next_logprobs(mixed)
    assert lm.incremental_calls == 1
    for row, seq in zip(out, mixed):
        np.testing.assert_allclose(row, TransformersLM(model).next_logprobs([seq])[0], atol=1e-4)


def test_smc_with_regex_on_tiny_llama(tiny) -> None:
    model, vocab = tiny
    pattern = r'\{"n": [0-9]{1,2}\}'
    compiled = structgen.compile(vocab, regex=pattern)
    lm = TransformersLM(model, vocab_size=vocab.size)
    result = smc_generate(lm, [1, 2, 3], compiled, particles=8, max_new_tokens=16, ess_threshold=0.5, rng=0)
    assert result.lm_calls == result.steps
    assert lm.incremental_calls == result.steps - 1  # every step after the first reused the cache
    assert len(result.ess_trace) == result.steps
    assert np.isfinite(result.log_marginal_likelihood)
    for text, fin in zip(result.texts, result.finished):
        if fin:
            assert re.fullmatch(pattern, text)
    assert any(result.finished)
    # a random model puts little mass on the constraint, yet far fewer checks than masking's V per token
    tokens = sum(len(s) + 1 for s in result.samples)
    assert result.n_evaluations / tokens < vocab.size / 2


def test_asap_on_tiny_llama(tiny) -> None:
    model, vocab = tiny
    compiled = structgen.compile(vocab, regex=r"(yes|no)")
    sampler = ASApSampler(TransformersLM(model, vocab_size=vocab.size), compiled, [1, 2], max_new_tokens=5)
    outs = sampler.sample_many(10, 0)
    assert all(o.finished and o.text in ("yes", "no") for o in outs)
