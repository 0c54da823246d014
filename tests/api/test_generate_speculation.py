"""generate(..., speculation=...) routes prompts through the speculative loop; outputs validate."""

from __future__ import annotations

import json
import re

import jsonschema
import pytest

import structgen

SCHEMA = {
    "type": "object",
    "properties": {"name": {"type": "string", "maxLength": 8}, "age": {"type": "integer", "minimum": 0, "maximum": 99}},
    "required": ["name", "age"],
    "additionalProperties": False,
}


def test_greedy_verified_jump_forward_equals_plain(tiny64) -> None:  # type: ignore[no-untyped-def]
    prompt = "Describe a person as JSON."
    plain = structgen.generate(tiny64, prompt, json_schema=SCHEMA, max_new_tokens=60, return_result=True)
    fast = structgen.generate(
        tiny64,
        prompt,
        json_schema=SCHEMA,
        max_new_tokens=60,
        return_result=True,
        speculation=["jump_forward_verified", "ngram"],
    )
    assert fast.token_ids[: len(plain.token_ids)] == plain.token_ids[: len(fast.token_ids)]
    jsonschema.validate(json.loads(fast.text), SCHEMA)
    assert fast.extra["forward_passes"] <= len(fast.token_ids) + 1


def test_jump_forward_outputs_validate(tiny) -> None:  # type: ignore[no-untyped-def]
    pattern = r'\{"name": "[a-z]{1,6}", "age": [0-9]{1,2}\}'
    for seed in range(3):
        res = structgen.generate(
            tiny,
            "x",
            regex=pattern,
            max_new_tokens=40,
            temperature=1.0,
            seed=seed,
            speculation="jump_forward",
            return_result=True,
        )
        assert re.fullmatch(pattern, res.value)
        assert res.extra["jumped"] > 0


def test_bad_speculation_arguments(tiny) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(ValueError, match="unknown speculation"):
        structgen.generate(tiny, "x", regex="a", speculation="warp")
    with pytest.raises(ValueError, match="draft_model"):
        structgen.generate(tiny, "x", regex="a", speculation="draft")
    with pytest.raises(ValueError, match="constraint_start_after"):
        structgen.generate(tiny, "x", regex="a", speculation="ngram", constraint_start_after="</think>")


def test_explicit_modes_run_a_batch_row_by_row(tiny64) -> None:  # type: ignore[no-untyped-def]
    prompts = ["Describe a person as JSON.", "Another person, please."]
    plain = structgen.generate(tiny64, prompts, json_schema=SCHEMA, max_new_tokens=40, return_result=True)
    fast = structgen.generate(
        tiny64, prompts, json_schema=SCHEMA, max_new_tokens=40, return_result=True, speculation="ngram"
    )
    for p, f in zip(plain, fast):
        assert f.token_ids == p.token_ids and f.extra["speculation"] == ["ngram"]
        jsonschema.validate(json.loads(f.text), SCHEMA)
