"""speculation="auto" (generate()'s default) is lossless, and every speculative mode keeps the budget.

* auto = verified jump-forward + verified n-gram drafts for one constrained prompt: token-identical to ``speculation=None``
  under greedy decoding (tiny float64 Llama over the real SmolLM2 tokenizer, and the real SmolLM2)
  and under sampling with the same seed (the verified positions draw their Gumbel keys like the
  batched loop), with fewer forward passes;
* the speculative loop steers ``max_new_tokens`` like the batched loop: at tight budgets every mode
  closes the value, jumped tokens count, and the lossless modes pick exactly what plain decoding picks;
* n-gram and draft-model modes on the real model (SmolLM2 drafting for itself), every output
  validated with jsonschema.
"""

from __future__ import annotations

import json
import re

import jsonschema
import pytest

import structgen
from structgen.compile.compiler import compile as sg_compile
from structgen.decoding.budget import oracle_for

SCHEMAS = [
    {
        "type": "object",
        "properties": {
            "name": {"type": "string", "maxLength": 8},
            "age": {"type": "integer", "minimum": 0, "maximum": 99},
        },
        "required": ["name", "age"],
        "additionalProperties": False,
    },
    {
        "type": "object",
        "properties": {
            "id": {"type": "integer"},
            "tag": {"enum": ["red", "green", "blue"]},
            "ok": {"type": "boolean"},
        },
        "required": ["id", "tag", "ok"],
    },
    {
        "type": "object",
        "properties": {
            "title": {"type": "string"},
            "items": {"type": "array", "items": {"type": "number"}, "maxItems": 3},
            "meta": {
                "type": "object",
                "properties": {"source": {"type": "string"}, "year": {"type": "integer"}},
                "required": ["source", "year"],
            },
        },
        "required": ["title", "items", "meta"],
    },
    {"type": "array", "items": {"enum": ["alpha", "beta", "gamma"]}, "minItems": 2, "maxItems": 4},
]
PROMPT = "Return one JSON value that fits the schema."


def _pair(model, schema, **kw):  # type: ignore[no-untyped-def]
    plain = structgen.generate(model, PROMPT, json_schema=schema, return_result=True, speculation=None, **kw)
    auto = structgen.generate(model, PROMPT, json_schema=schema, return_result=True, **kw)
    return plain, auto


def _check_identical(plain, auto, schema) -> None:  # type: ignore[no-untyped-def]
    assert auto.extra["speculation"] == ["jump_forward_verified", "ngram"]
    assert "speculation" not in plain.extra
    assert auto.token_ids == plain.token_ids, (plain.text, auto.text)
    assert auto.stop_reason == plain.stop_reason
    assert auto.budget_rejections == plain.budget_rejections
    jsonschema.validate(json.loads(auto.text), schema)
    assert auto.extra["forward_passes"] <= len(auto.token_ids)


@pytest.mark.parametrize("schema", SCHEMAS, ids=["person", "enum", "nested", "array"])
def test_auto_greedy_identical_tiny(tiny64, schema) -> None:  # type: ignore[no-untyped-def]
    plain, auto = _pair(tiny64, schema, max_new_tokens=40)
    _check_identical(plain, auto, schema)
    assert auto.extra["accepted"] > 0  # forced text / n-grams were verified as free drafts


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_auto_sampling_same_seed_identical_tiny(tiny64, seed) -> None:  # type: ignore[no-untyped-def]
    schema = SCHEMAS[seed % 2]
    plain, auto = _pair(tiny64, schema, max_new_tokens=40, temperature=1.0, top_p=0.95, seed=seed)
    _check_identical(plain, auto, schema)


def test_auto_for_small_batches_off_for_large_and_none(tiny64) -> None:  # type: ignore[no-untyped-def]
    from structgen.api.generate import AUTO_MAX_BATCH

    prompts = [PROMPT, "Another one.", PROMPT]
    kw = dict(json_schema=SCHEMAS[:3], max_new_tokens=30, return_result=True, temperature=1.0, seed=5)
    plain = structgen.generate(tiny64, prompts, speculation=None, **kw)
    auto = structgen.generate(tiny64, prompts, **kw)
    for p, a, schema in zip(plain, auto, SCHEMAS):
        _check_identical(p, a, schema)  # per-row generators: same seed, same tokens as the batch
    big = structgen.generate(
        tiny64, [PROMPT] * (AUTO_MAX_BATCH + 1), regex="[a-z]{3}", max_new_tokens=8, return_result=True
    )
    assert all("speculation" not in r.extra for r in big)
    for off in (None, False, "off"):
        r = structgen.generate(tiny64, PROMPT, regex="[a-z]{3}", max_new_tokens=8, return_result=True, speculation=off)
        assert "speculation" not in r.extra
    free = structgen.generate(tiny64, PROMPT, max_new_tokens=4, return_result=True)
    assert "speculation" not in free.extra  # unconstrained: nothing is forced, plain loop
    with pytest.raises(ValueError, match="not both"):
        structgen.generate(tiny64, PROMPT, regex="a", speculation=["jump_forward", "jump_forward_verified"])


PATTERNS = [r'\{"name": "[a-z ]+", "age": [1-9][0-9]?\}', r"\[(\"[a-z]{2,}\", )*\"[a-z]{2,}\"\]"]


@pytest.mark.parametrize("pattern", PATTERNS, ids=["person", "list"])
def test_tight_budgets_close_in_every_mode(tiny64, pattern) -> None:  # type: ignore[no-untyped-def]
    vocab = tiny64.vocab
    compiled = sg_compile(vocab, regex=pattern)
    d, exact = oracle_for(compiled.engine, vocab).min_tokens(compiled.matcher().state)
    assert exact
    for budget in (d, d + 5):
        for temperature in (0.0, 1.0):
            kw = dict(regex=pattern, max_new_tokens=budget, temperature=temperature, seed=budget, return_result=True)
            plain = structgen.generate(tiny64, "a", speculation=None, **kw)
            for mode in ("auto", "jump_forward_verified", "ngram", ["jump_forward", "ngram"], "jump_forward"):
                r = structgen.generate(tiny64, "a", speculation=mode, **kw)
                assert re.fullmatch(pattern, r.text), (budget, mode, r.text)
                assert r.completion_tokens <= budget, (budget, mode)
                if mode != "jump_forward" and "jump_forward" not in mode:
                    # lossless modes choose exactly the steered tokens of plain decoding
                    assert r.token_ids == plain.token_ids, (budget, temperature, mode)
                    assert r.budget_rejections == plain.budget_rejections
            draft = structgen.generate(tiny64, "a", speculation="draft", draft_model=tiny64, **kw)
            assert re.fullmatch(pattern, draft.text) and draft.completion_tokens <= budget
            if temperature == 0.0:
                assert draft.token_ids == plain.token_ids


# ---- the real bundled model ---------------------------------------------------------------------------
REAL = [SCHEMAS[0], SCHEMAS[1]]


@pytest.mark.parametrize("schema", REAL, ids=["person", "enum"])
def test_auto_greedy_identical_smollm2(smollm2, schema) -> None:  # type: ignore[no-untyped-def]
    plain, auto = _pair(smollm2, schema, max_new_tokens=24)
    _check_identical(plain, auto, schema)
    assert auto.extra["forward_passes"] < len(auto.token_ids)


def _bench_schemas(n: int, stride: int) -> list[dict]:
    from pathlib import Path

    path = Path("/work/shared/data/jsonschemabench/Glaiveai2K.jsonl")
    if not path.exists():
        pytest.skip(f"{path} is not available")
    out = []
    with path.open() as f:
        for i, line in enumerate(f):
            if i % stride == 0:
                out.append(json.loads(line)["schema"])
            if len(out) >= n:
                break
    return out


@pytest.mark.slow
def test_auto_greedy_identical_smollm2_bench_schemas(smollm2) -> None:  # type: ignore[no-untyped-def]
    """8 JSONSchemaBench schemas with the schema in the prompt: identical tokens, fewer forwards."""
    forwards = tokens = 0
    for schema in _bench_schemas(8, 53):
        prompt = "Return only a JSON object that fits this JSON Schema:\n" + json.dumps(schema)
        kw = dict(json_schema=schema, max_new_tokens=48, return_result=True)
        plain = structgen.generate(smollm2, prompt, speculation=None, **kw)
        auto = structgen.generate(smollm2, prompt, **kw)
        _check_identical(plain, auto, schema)
        forwards += auto.extra["forward_passes"]
        tokens += len(auto.token_ids)
    assert forwards < 0.8 * tokens


def _real_modes(smollm2, speculation, sampled: bool) -> None:  # type: ignore[no-untyped-def]
    schema = SCHEMAS[0]
    prompt = 'Reply with a JSON object like {"name": "ada", "age": 36} for a person named bob aged 41.'
    kw = dict(json_schema=schema, max_new_tokens=24, return_result=True)
    plain = structgen.generate(smollm2, prompt, speculation=None, **kw)
    r = structgen.generate(smollm2, prompt, speculation=speculation, draft_model=smollm2, **kw)
    jsonschema.validate(json.loads(r.text), schema)
    assert r.value == json.loads(r.text)
    assert r.extra["forward_passes"] < len(r.token_ids)
    if "jump_forward" not in speculation:  # lossless: same greedy tokens as plain decoding
        assert r.token_ids == plain.token_ids
    if "draft" in speculation:
        assert r.extra["accepted"] > 0  # a model drafting for itself is accepted
    if sampled:
        s = structgen.generate(
            smollm2, prompt, speculation=speculation, draft_model=smollm2, temperature=0.8, seed=3, **kw
        )
        jsonschema.validate(json.loads(s.text), schema)


@pytest.mark.parametrize("speculation", ["ngram", "draft"])
def test_ngram_and_draft_modes_smollm2(smollm2, speculation) -> None:  # type: ignore[no-untyped-def]
    _real_modes(smollm2, speculation, sampled=speculation == "draft")


@pytest.mark.slow
@pytest.mark.parametrize(
    "speculation",
    [["jump_forward_verified", "ngram"], ["jump_forward", "ngram"], ["jump_forward", "draft"], "ngram"],
    ids=["verified+ngram", "jf+ngram", "jf+draft", "ngram"],
)
def test_combined_modes_smollm2(smollm2, speculation) -> None:  # type: ignore[no-untyped-def]
    _real_modes(smollm2, speculation, sampled=True)
