"""The vLLM-independent half of the vLLM integration, with real tokenizers (no vllm needed)."""

from __future__ import annotations

import json

import jsonschema
import numpy as np
import pytest
import torch
from structgen.integrations.vllm_backend import (
    BackendOptions,
    ConstraintState,
    UnsupportedStructuredOutput,
    allocate_token_bitmask,
    apply_bitmask,
    compile_request,
    fill_bitmasks,
    request_from_params,
)

import structgen
from structgen.assets import load_tokenizer, load_vocabulary
from structgen.runtime.bitmask import unpack_bitmask

SCHEMA = {
    "type": "object",
    "properties": {"name": {"type": "string", "maxLength": 8}, "age": {"type": "integer", "minimum": 0}},
    "required": ["name", "age"],
    "additionalProperties": False,
}


@pytest.fixture(scope="module")
def qwen():  # type: ignore[no-untyped-def]
    return load_tokenizer("qwen3"), load_vocabulary("qwen3")


def _ids(tok, text: str) -> list[int]:  # type: ignore[no-untyped-def]
    return list(tok.encode(text, add_special_tokens=False))


def test_every_kind_compiles_and_accepts_its_language(qwen) -> None:  # type: ignore[no-untyped-def]
    tok, vocab = qwen
    cases = [
        ("json", json.dumps(SCHEMA), '{"name": "Ann", "age": 41}', '{"name": "Ann"}'),
        ("json_object", "", '{"a": [1, 2]}', "[1, 2]"),
        ("regex", r"\d{3}-[a-z]+", "123-abc", "12-abc"),
        ("grammar", 'start: "(" start ")" | "x"', "((x))", "((x)"),
        ("choice", json.dumps(["red", "green", "blue"]), "green", "gren"),
    ]
    for kind, spec, good, bad in cases:
        compiled = compile_request(vocab, kind, spec)
        state = ConstraintState(compiled)
        assert state.accept_tokens(_ids(tok, good)), (kind, state.error)
        assert state.is_accepting(), kind
        eos = min(vocab.eos_ids)
        assert state.accept_tokens([eos]) and state.is_terminated(), kind
        bad_state = ConstraintState(compiled)
        assert not (bad_state.accept_tokens(_ids(tok, bad)) and bad_state.is_accepting()), kind


def test_unsupported_requests_raise_clear_compile_errors(qwen) -> None:  # type: ignore[no-untyped-def]
    _, vocab = qwen
    tag = {"structures": [{"begin": "<f>", "schema": {}, "end": "</f>"}], "triggers": ["<f>"]}
    with pytest.raises(UnsupportedStructuredOutput, match="structural tags"):
        compile_request(vocab, "structural_tag", json.dumps(tag))
    with pytest.raises(UnsupportedStructuredOutput, match="GBNF"):
        compile_request(vocab, "grammar", 'root ::= "a" | "b"')
    with pytest.raises(structgen.InvalidSchema, match="not valid JSON"):
        compile_request(vocab, "json", "{not json")
    with pytest.raises(structgen.InvalidRegex):
        compile_request(vocab, "regex", "(ab")
    with pytest.raises(structgen.InvalidGrammar):
        compile_request(vocab, "grammar", "start: undefined_rule")
    with pytest.raises(UnsupportedStructuredOutput, match="unknown structured-output kind"):
        compile_request(vocab, "yaml", "a: 1")


def test_compact_style_option(qwen) -> None:  # type: ignore[no-untyped-def]
    tok, vocab = qwen
    compiled = compile_request(vocab, "json", json.dumps(SCHEMA), BackendOptions(json_style="compact"))
    assert ConstraintState(compiled).accept_tokens(_ids(tok, '{"name":"A","age":1}'))
    spaced = ConstraintState(compiled)
    assert not (spaced.accept_tokens(_ids(tok, '{"name": "A", "age": 1}')) and spaced.is_accepting())


def test_request_from_params() -> None:
    assert request_from_params({"json": SCHEMA}) == ("json", json.dumps(SCHEMA))
    assert request_from_params({"regex": "a+"}) == ("regex", "a+")
    assert request_from_params({"choice": ["a", "b"]}) == ("choice", '["a", "b"]')
    assert request_from_params({"json_object": True}) == ("json_object", "")
    assert request_from_params('{"regex": "a+"}') == ("regex", "a+")  # JSON text, as vLLM's vllm_xargs carry it
    with pytest.raises(ValueError, match="not valid JSON"):
        request_from_params("{regex")
    with pytest.raises(ValueError, match="exactly one"):
        request_from_params({"regex": "a", "grammar": "start: 'a'"})
    with pytest.raises(ValueError, match="unknown structgen request key"):
        request_from_params({"yaml": "a"})
    with pytest.raises(ValueError, match="must be a string"):
        request_from_params({"regex": 5})


def test_rollback_validate_and_termination_semantics(qwen) -> None:  # type: ignore[no-untyped-def]
    tok, vocab = qwen
    state = ConstraintState(compile_request(vocab, "regex", r"ab(c|d)e"))
    ids = _ids(tok, "abde")
    eos = min(vocab.eos_ids)
    before = state.validate_tokens([*ids, eos, 5])
    assert before == [*ids, eos]  # stops after the stop token
    assert state.num_processed_tokens == 0 and not state.is_terminated()
    assert state.accept_tokens([*ids, eos])
    assert state.is_terminated() and state.num_processed_tokens == len(ids) + 1
    assert state.accept_tokens([7, 8])  # ignored after termination, as vLLM's xgrammar backend does
    state.rollback(1)  # the stop token
    assert not state.is_terminated() and state.is_accepting()
    state.rollback(len(ids))
    assert state.num_processed_tokens == 0 and not state.is_accepting()
    assert state.validate_tokens([eos]) == []  # stop before complete
    assert not state.accept_tokens([eos]) and "before the constraint is complete" in (state.error or "")
    state.accept_tokens(ids)
    state.reset()
    assert state.num_processed_tokens == 0 and not state.is_accepting()


def test_request_stop_tokens_replace_the_eos_set(qwen) -> None:  # type: ignore[no-untyped-def]
    tok, vocab = qwen
    compiled = compile_request(vocab, "regex", "yes|no")
    eos = sorted(vocab.eos_ids)
    stop = 42  # an ordinary text token used as a stop token by this request
    state = ConstraintState(compiled, stop_token_ids={stop})
    row = allocate_token_bitmask(1, vocab.size)
    state.fill_bitmask(row, 0)
    allowed = set(np.flatnonzero(unpack_bitmask(row.numpy(), vocab.size))[:].tolist())
    assert stop not in allowed and not allowed & set(eos)  # stop tokens masked until complete
    assert state.accept_tokens(_ids(tok, "yes"))
    state.fill_bitmask(row, 0)
    allowed = set(np.flatnonzero(unpack_bitmask(row.numpy(), vocab.size)).tolist())
    assert allowed == {stop}  # complete: only the request's stop token, not the tokenizer's EOS
    assert not state.accept_tokens([eos[0]]) and "not a stop token" in (state.error or "")
    assert state.accept_tokens([stop]) and state.is_terminated()
    state.fill_bitmask(row, 0)
    assert not row.numpy().any()


def test_bitmask_rows_match_the_matcher(qwen) -> None:  # type: ignore[no-untyped-def]
    tok, vocab = qwen
    compiled = compile_request(vocab, "json", json.dumps(SCHEMA))
    state = ConstraintState(compiled)
    reference = compiled.matcher()
    bm = allocate_token_bitmask(3, vocab.size)
    for t in _ids(tok, '{"name": "Bo", "age": 7}'):
        state.fill_bitmask(bm, 1)
        assert np.array_equal(bm[1].numpy(), reference.mask_words())
        assert np.all(bm[0].numpy() == -1) and np.all(bm[2].numpy() == -1)  # other rows untouched
        assert state.accept_tokens([t]) and reference.accept_token(t)
    state.fill_bitmask(bm.numpy(), 2)  # numpy arrays work too
    assert np.array_equal(bm[2].numpy(), reference.mask_words())


def test_batched_bitmask_path_decodes_valid_outputs(qwen) -> None:  # type: ignore[no-untyped-def]
    """One bitmask for the batch, applied with structgen.kernels, per-row constraints, unconstrained rows untouched."""
    tok, vocab = qwen
    specs = [("json", json.dumps(SCHEMA)), None, ("regex", r"[0-9]{2,4}"), ("choice", '["alpha", "beta"]')]
    states = [None if s is None else ConstraintState(compile_request(vocab, *s)) for s in specs]
    out: list[list[int]] = [[] for _ in specs]
    bitmask = allocate_token_bitmask(8, vocab.size)  # more rows than the batch, as vLLM allocates max_num_seqs
    gen = torch.Generator().manual_seed(0)
    for _ in range(60):
        live = [s if s is not None and not s.is_terminated() else None for s in states]
        if not any(live):
            break
        logits = torch.randn(len(specs), vocab.size, generator=gen)
        raw = logits.clone()
        rows = fill_bitmasks(live, bitmask[: len(specs)])
        apply_bitmask(logits, bitmask, rows, vocab.size)
        assert torch.equal(logits[1], raw[1])  # the unconstrained row
        picks = torch.argmax(logits, dim=-1).tolist()
        for i in rows:
            assert states[i].accept_tokens([picks[i]]), states[i].error  # type: ignore[union-attr]
            if picks[i] not in vocab.eos_ids:
                out[i].append(picks[i])
    assert all(s is None or s.is_terminated() for s in states)
    text = [tok.decode(ids) for ids in out]
    jsonschema.validate(json.loads(text[0]), SCHEMA)
    assert text[2].isdigit() and 2 <= len(text[2]) <= 4
    assert text[3] in ("alpha", "beta")


def test_core_module_imports_no_vllm() -> None:
    import subprocess
    import sys

    code = (
        "import sys, structgen.integrations.vllm_backend as m; "
        "assert 'vllm' not in sys.modules, sorted(k for k in sys.modules if k.startswith('vllm'))"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
