"""StructgenLogitsProcessor inside transformers' own model.generate, batched with per-row constraints."""

from __future__ import annotations

import re

import pytest
import torch
from structgen.integrations.transformers_processor import StructgenLogitsProcessor

import structgen


@pytest.fixture(scope="module")
def tiny(tiny_model):  # type: ignore[no-untyped-def]
    return tiny_model


def _generate(tiny, prompts, processor, **kw):  # type: ignore[no-untyped-def]
    tok = tiny.tokenizer
    tok.padding_side = "left"
    if tok.pad_token_id is None:
        tok.pad_token = tok.eos_token
    enc = tok(prompts, return_tensors="pt", padding=True)
    out = tiny.model.generate(
        **enc,
        logits_processor=[processor],
        pad_token_id=tok.pad_token_id,
        eos_token_id=sorted(tiny.vocab.eos_ids),
        **kw,
    )
    new = out[:, enc["input_ids"].shape[1] :]
    texts = []
    for row in new.tolist():
        ids = [t for t in row if t not in tiny.vocab.eos_ids]
        texts.append(b"".join(tiny.vocab.token_bytes[t] for t in ids).decode("utf-8"))
    return texts


def test_per_row_regex_constraints_sampled(tiny) -> None:  # type: ignore[no-untyped-def]
    patterns = [r"[0-9]{2,4}", r"(yes|no)", r"[a-z]+@[a-z]+\.com"]
    compiled = [structgen.compile(tiny.vocab, regex=p) for p in patterns]
    torch.manual_seed(0)
    for _ in range(3):
        proc = StructgenLogitsProcessor(compiled)
        texts = _generate(tiny, ["a", "b b", "c c c"], proc, do_sample=True, max_new_tokens=24)
        for p, t, m in zip(patterns, texts, proc.matchers):
            if m.is_terminated():
                assert re.fullmatch(p, t), (p, t)
            else:  # ran out of budget mid-value: still a valid prefix
                assert m.error is None
        assert proc.errors == {}


def test_shared_constraint_greedy_matches_generate(tiny) -> None:  # type: ignore[no-untyped-def]
    compiled = structgen.compile(tiny.vocab, regex=r"(red|green|blue)")
    proc = StructgenLogitsProcessor(compiled)
    texts = _generate(tiny, ["colour:", "another colour:"], proc, do_sample=False, max_new_tokens=8)
    assert all(t in ("red", "green", "blue") for t in texts)


def test_width_mismatch_is_a_clear_error(tiny) -> None:  # type: ignore[no-untyped-def]
    small = structgen.Vocabulary.from_bytes([b"a", b"b", b"<eos>"], eos_ids=[2])
    proc = StructgenLogitsProcessor(structgen.compile(small, regex="a+"))
    with pytest.raises(ValueError, match="columns"):
        proc(torch.zeros((1, 3), dtype=torch.long), torch.zeros((1, 10)))
