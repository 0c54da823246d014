"""Token masks on real JSONSchemaBench schemas equal a straightforward reference, state by state.

The schemas are dev-split schemas (a Glaive function signature with free strings, a GitHub schema
with a length-bounded hex pattern and a number, a GitHub schema whose ``uniqueItems``/``oneOf`` are
value checks), compiled for the real Llama-3 vocabulary and fed their first valid instance token by
token. At every state, the mask ``Matcher.fill_bitmask`` writes must equal the reference: every text
token ``t`` is allowed exactly when ``engine.advance_bytes(state, bytes(t))`` succeeds. The
reference walks the sorted token bytes with prefix sharing (a dead prefix rejects every token that
extends it), using nothing of the engine's mask machinery; a sample of tokens is also checked one
by one with ``accept_token`` on a fork of the matcher, the public definition.
"""

from __future__ import annotations

import json
import random
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import structgen
from structgen import assets
from structgen.runtime.bitmask import unpack_bitmask

BENCH = Path(__file__).resolve().parents[3] / "shared" / "data" / "jsonschemabench"
if not BENCH.exists():
    BENCH = Path(__file__).resolve().parents[2] / "shared" / "data" / "jsonschemabench"

CASES = {  # split -> schema id
    "Glaiveai2K": "Glaiveai2K/analyze_social_media_sentiment_6ef0069e",
    "Github_easy": "Github_easy/o10009",
    "Github_medium": "Github_medium/o11666",
}


def _case(split: str, case_id: str) -> dict[str, Any]:
    with open(BENCH / f"{split}.jsonl") as fh:
        for line in fh:
            rec = json.loads(line)
            if rec["id"] == case_id:
                return rec  # type: ignore[no-any-return]
    raise LookupError(case_id)


def _sorted_text_tokens(vocab: Any) -> list[tuple[bytes, int]]:
    key = "tests.mask_differential.sorted"
    got = vocab._cache.get(key)
    if got is None:
        got = vocab._cache[key] = sorted((vocab.token_bytes[t], t) for t in vocab.text_token_ids().tolist())
    return got  # type: ignore[no-any-return]


def reference_allowed(engine: Any, state: Any, tokens: list[tuple[bytes, int]]) -> set[int]:
    """Text tokens ``t`` with ``engine.advance_bytes(state, t) is not None``, by prefix sharing."""
    allowed: set[int] = set()
    path: list[Any] = [state]  # path[k]: the state after the first k bytes of the current token
    prev = b""
    dead: bytes | None = None
    for tb, tid in tokens:
        if dead is not None and tb.startswith(dead):
            continue
        dead = None
        k = 0
        limit = min(len(prev), len(tb), len(path) - 1)
        while k < limit and prev[k] == tb[k]:
            k += 1
        del path[k + 1 :]
        while len(path) <= len(tb):
            nxt = engine.advance_bytes(path[-1], tb[len(path) - 1 : len(path)])
            if nxt is None:
                dead = tb[: len(path)]
                break
            path.append(nxt)
        prev = tb
        if dead is None:
            allowed.add(tid)
    return allowed


@pytest.mark.parametrize("split", sorted(CASES))
def test_masks_equal_reference_on_bench_schemas(split: str) -> None:
    """Every fifth state (the reference costs about a second per state inside a string)."""
    _check(split, every=5)


@pytest.mark.deep
@pytest.mark.slow
@pytest.mark.parametrize("split", sorted(CASES))
def test_masks_equal_reference_on_every_state(split: str) -> None:
    _check(split, every=1)


def _check(split: str, every: int) -> None:
    if not BENCH.exists():
        pytest.skip(f"JSONSchemaBench data not found at {BENCH}")
    from structgen.frontends.json_schema.formatting import dumps

    vocab = assets.load_vocabulary("llama3")
    tok = assets.load_tokenizer("llama3")
    case = _case(split, CASES[split])
    compiled = structgen.compile(vocab, json_schema=case["schema"], cache=False)
    value = next(t["data"] for t in case["tests"] if t["valid"])
    ids = tok.encode(dumps(value), add_special_tokens=False)
    tokens = _sorted_text_tokens(vocab)
    text_ids = vocab.text_token_ids()
    rng = random.Random(7)
    bitmask = np.zeros((1, (vocab.size + 31) // 32), dtype=np.int32)  # (1, ceil(V/32)) int32
    m = compiled.matcher()
    checked = 0
    for step, t in enumerate([*ids, None]):
        if step % every and t is not None:  # the final state is always checked
            assert m.accept_token(t), (step, vocab.token_bytes[t])
            continue
        m.fill_bitmask(bitmask)
        got = unpack_bitmask(bitmask, vocab.size)[0]
        want = np.zeros(vocab.size, dtype=bool)
        want[sorted(reference_allowed(m.engine, m.state, tokens))] = True
        want[sorted(vocab.eos_ids)] = m.is_accepting()
        diff = np.flatnonzero(got != want)
        assert diff.size == 0, (step, [(vocab.token_bytes[int(i)], bool(got[i])) for i in diff[:8]])
        for i in rng.sample(text_ids.tolist(), 64) + np.flatnonzero(got)[:16].tolist():
            assert m.fork().accept_token(i) == bool(got[i]), (step, vocab.token_bytes[i])
        checked += 1
        if t is not None:
            assert m.accept_token(t), (step, vocab.token_bytes[t])
    assert m.accept_token(sorted(vocab.eos_ids)[0])
    assert checked == sum(1 for s in range(len(ids) + 1) if s % every == 0 or s == len(ids))
