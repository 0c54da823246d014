"""Speculation benchmark: target forward passes per output token and tokens/s, in one run.

Modes (greedy, bundled SmolLM2-135M-Instruct, JSONSchemaBench Glaiveai2K schemas, same prompts):
unconstrained, plain constrained, jump-forward, jump-forward + n-gram (prompt lookup + adaptive
table learned across the requests of the run), and jump-forward + n-gram with verified forced
tokens (lossless). All use the same KV-cached loop (structgen.decoding.speculative.loop), so the
differences are the speculation alone.

    python benchmarks/speculation_bench.py --schemas 8 --max-new-tokens 160
"""

from __future__ import annotations

import argparse
import json
import platform
import time

import torch

import structgen
from structgen.api.prompts import encode
from structgen.decoding.speculative import NGramTable, speculative_generate

DATA = "/work/shared/data/jsonschemabench/Glaiveai2K.jsonl"

MODES: dict[str, dict] = {
    "unconstrained": {"constrained": False, "mode": ()},
    "constrained": {"constrained": True, "mode": ()},
    "jump_forward": {"constrained": True, "mode": ("jump_forward",)},
    "jump_forward+ngram": {"constrained": True, "mode": ("jump_forward", "ngram")},
    "verified_jf+ngram": {"constrained": True, "mode": ("jump_forward", "ngram"), "jump_verify": True},
}


def load_schemas(n: int, stride: int) -> list[tuple[str, dict]]:
    out = []
    with open(DATA) as f:
        for i, line in enumerate(f):
            if i % stride == 0:
                d = json.loads(line)
                out.append((d["name"], d["schema"]))
            if len(out) >= n:
                break
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--schemas", type=int, default=8)
    ap.add_argument("--stride", type=int, default=37)
    ap.add_argument("--max-new-tokens", type=int, default=160)
    ap.add_argument("--modes", default=",".join(MODES))
    ap.add_argument("--json", default="")
    args = ap.parse_args()
    loaded = structgen.load()
    schemas = load_schemas(args.schemas, args.stride)
    compiled = [structgen.compile(loaded.vocab, json_schema=s) for _, s in schemas]
    prompts = [
        encode(loaded.tokenizer, f"Return only a JSON object that fits this JSON Schema:\n{json.dumps(s)}")
        for _, s in schemas
    ]
    modes = [m for m in args.modes.split(",") if m]
    # warm-up (allocator, kernels, mask caches)
    speculative_generate(loaded, prompts[0], compiled[0].matcher(), mode=(), max_new_tokens=8)
    rows = {}
    for name in modes:
        cfg = MODES[name]
        table = NGramTable()  # learned across this mode's requests only
        tokens = forwards = 0
        seconds = 0.0
        valid = complete = 0
        for c, p, (_, schema) in zip(compiled, prompts, schemas):
            t0 = time.perf_counter()
            res = speculative_generate(
                loaded,
                p,
                c.matcher() if cfg["constrained"] else None,
                mode=cfg["mode"],
                max_new_tokens=args.max_new_tokens,
                ngram_table=table,
                jump_verify=cfg.get("jump_verify", False),
            )
            seconds += time.perf_counter() - t0
            tokens += len(res.token_ids)
            forwards += res.forward_passes
            if cfg["constrained"] and res.stop_reason in ("eos", "complete"):
                complete += 1
                try:
                    import jsonschema

                    jsonschema.validate(json.loads(res.text), schema)
                    valid += 1
                except Exception:  # noqa: BLE001 - counted, reported
                    pass
        rows[name] = {
            "tokens": tokens,
            "forwards": forwards,
            "seconds": round(seconds, 2),
            "forwards_per_token": round(forwards / max(1, tokens), 3),
            "tokens_per_s": round(tokens / seconds, 2),
            "complete": complete,
            "valid": valid,
            "requests": len(schemas),
        }
        print(name, rows[name], flush=True)
    base = rows.get("constrained")
    print()
    print(
        f"machine: {platform.machine()} {platform.processor() or ''}, torch {torch.__version__}, threads {torch.get_num_threads()}, "
        f"device {loaded.device}; {len(schemas)} Glaiveai2K schemas, greedy, max_new_tokens={args.max_new_tokens}"
    )
    print(
        "| mode | output tokens | target forwards | forwards/token | tokens/s | speed-up vs constrained | valid/complete |"
    )
    print("| --- | ---: | ---: | ---: | ---: | ---: | ---: |")
    for name, r in rows.items():
        sp = f"{r['tokens_per_s'] / base['tokens_per_s']:.2f}x" if base else "-"
        vc = f"{r['valid']}/{r['complete']}" if MODES[name]["constrained"] else "-"
        print(
            f"| {name} | {r['tokens']} | {r['forwards']} | {r['forwards_per_token']:.3f} | {r['tokens_per_s']:.1f} | {sp} | {vc} |"
        )
    if args.json:
        with open(args.json, "w") as f:
            json.dump(rows, f, indent=1)


if __name__ == "__main__":
    main()
