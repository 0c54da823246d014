"""The batched decode loop and the budget oracle, below the generate() API."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("transformers")

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "api"))
from _api_helpers import make_tiny  # noqa: E402

from structgen.compile.compiler import compile as sg_compile  # noqa: E402
from structgen.decoding.autoregressive import BatchDecoder, Row, greedy_tokenizer  # noqa: E402
from structgen.decoding.budget import oracle_for, token_lookup  # noqa: E402
from structgen.decoding.sampling import SamplingParams, process_logits  # noqa: E402


@pytest.fixture(scope="module")
def setup():
    from structgen import assets

    d = assets.model_dir("smollm2")
    if not (d / "tokenizer.json").exists():
        pytest.skip("bundled SmolLM2 tokenizer not fetched")
    from transformers import AutoTokenizer

    from structgen.api.loading import wrap

    torch.set_num_threads(1)
    return wrap(make_tiny(torch.float64, seed=2), AutoTokenizer.from_pretrained(str(d)))


def _decode(lm, prompts, matchers, budget=12):
    rows = [Row(prompt_ids=p, matcher=m, max_new_tokens=budget) for p, m in zip(prompts, matchers)]
    dec = BatchDecoder(
        lm.model,
        lm.vocab,
        rows,
        SamplingParams(temperature=0.0),
        pad_id=lm.pad_id,
        tokenize_bytes=greedy_tokenizer(lm.vocab),
    )
    return dec, dec.run()


def test_rows_dropped_and_padding_invariant(setup):
    lm = setup
    c = sg_compile(lm.vocab, regex=r"[0-9]{1,2}")
    prompts = [[5, 6, 7], [9] * 11, [100, 200]]
    dec, rows = _decode(lm, prompts, [c.matcher(), None, c.matcher()])
    # constrained rows finish early; the free row runs to the budget alone (rows were dropped)
    assert rows[1].stop_reason == "length" and len(rows[1].token_ids) == 12
    assert all(r.stop_reason in ("eos", "complete", "length") for r in rows)
    for p, m, r in zip(prompts, [c.matcher(), None, c.matcher()], rows):
        _, (alone,) = _decode(lm, [p], [m])
        assert alone.token_ids == r.token_ids


def test_events_cover_every_token(setup):
    lm = setup
    rows = [Row(prompt_ids=[1, 2, 3], max_new_tokens=5)]
    dec = BatchDecoder(lm.model, lm.vocab, rows, SamplingParams(temperature=0.0), pad_id=lm.pad_id)
    data = b"".join(ev.data for step in dec.steps() for ev in step)
    assert data == bytes(rows[0].out_bytes) and len(rows[0].token_ids) == 5


def test_oracle_min_tokens_matches_brute_force(setup):
    """Choices: the exact minimum is the fewest-token segmentation of the best option (a DP over bytes)."""
    lm = setup
    by_bytes, max_len = token_lookup(lm.vocab)
    options = ["structured", "generation", "xyzzyplugh", "a"]
    for opts in (options[:3], options):
        c = sg_compile(lm.vocab, choices=opts)
        d, exact = oracle_for(c.engine, lm.vocab).min_tokens(c.matcher().state)

        def seg(s: bytes) -> int:
            best = [0] + [10**9] * len(s)
            for i in range(1, len(s) + 1):
                for k in range(max(0, i - max_len), i):
                    if s[k:i] in by_bytes:
                        best[i] = min(best[i], best[k] + 1)
            return best[-1]

        assert exact and d == min(seg(o.encode()) for o in opts)


def test_top_p_top_k_keep_masked_tokens_out():
    x = torch.tensor([[2.0, 1.0, 0.5, float("-inf")], [0.0, 0.0, 0.0, 0.0]])
    y = process_logits(x, SamplingParams(temperature=1.0, top_k=2))
    assert torch.isneginf(y[0, 2:]).all() and torch.isfinite(y[0, :2]).all()
    z = process_logits(x, SamplingParams(temperature=1.0, top_p=0.5))
    assert torch.isfinite(z[0, 0]) and torch.isneginf(z[0, 1:]).all()
    with pytest.raises(ValueError):
        SamplingParams(temperature=-1.0)
