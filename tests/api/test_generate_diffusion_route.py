"""structgen.generate routes masked diffusion models to the DINGO / CFG-infilling loop."""

from __future__ import annotations

import json
import re

import jsonschema
import pytest
import torch
from pydantic import BaseModel

import structgen
from structgen.decoding.diffusion.adapters import tiny_masked_diffusion_model


class Flag(BaseModel):
    ok: bool


@pytest.fixture(scope="module")
def vocab() -> structgen.Vocabulary:
    chars = [bytes([c]) for c in range(32, 127)]
    extra = [b'{"', b'":', b'",', b'"}', b"true", b"false", b"null"]
    return structgen.Vocabulary.from_bytes(
        [b"<pad>", b"<eos>", b"<mask>", *chars, *extra], eos_ids=[1], special_ids=[0, 2]
    )


@pytest.fixture(scope="module")
def model(vocab: structgen.Vocabulary):  # type: ignore[no-untyped-def]
    torch.set_num_threads(1)
    return tiny_masked_diffusion_model(vocab.size, 2, seed=0, hidden=32, layers=1)


def test_regex_and_choices(model, vocab) -> None:  # type: ignore[no-untyped-def]
    prompt = list(range(3, 10))
    for seed in range(3):
        out = structgen.generate(
            model, prompt, tokenizer=vocab, regex=r"[0-9]{3}-[a-z]{2}", max_new_tokens=16, seed=seed
        )
        assert re.fullmatch(r"[0-9]{3}-[a-z]{2}", out)
    assert structgen.generate(model, prompt, tokenizer=vocab, choices=["red", "blue"], max_new_tokens=8) in (
        "red",
        "blue",
    )


def test_pydantic_schema_and_result(model, vocab) -> None:  # type: ignore[no-untyped-def]
    res = structgen.generate(model, [5, 6, 7], tokenizer=vocab, schema=Flag, max_new_tokens=16, return_result=True)
    assert isinstance(res.value, Flag)
    jsonschema.validate(json.loads(res.text), Flag.model_json_schema())
    assert res.extra["diffusion"].valid


def test_needs_a_tokenizer(model) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(TypeError, match="tokenizer"):
        structgen.generate(model, [1, 2], regex="a")
