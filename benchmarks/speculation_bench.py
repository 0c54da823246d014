"""Speculation benchmark: target forward passes per output token and tokens/s, in one run.

Modes (greedy, bundled SmolLM2-135M-Instruct, JSONSchemaBench Glaiveai2K schemas, same prompts):
unconstrained, plain constrained, verified jump-forward (``generate()``'s default, lossless),
jump-forward, jump-forward + n-gram (prompt lookup + adaptive table learned across the requests of
the run), and verified jump-forward + n-gram (lossless). All use the same KV-cached loop
(structgen.decoding.speculative.loop) with the same budget steering, so the differences are the
speculation alone. Modes are interleaved per schema (schema 1 in every mode, then schema 2, ...) so
that load drift on a shared machine hits them alike; wall-clock and process CPU time are reported.

    python benchmarks/speculation_bench.py --schemas 8 --max-new-tokens 160
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time

import jsonschema
import torch

import structgen
from structgen.api.prompts import encode
from structgen.decoding.speculative import NGramTable, speculative_generate

DATA = "/work/shared/data/jsonschemabench/Glaiveai2K.jsonl"

MODES: dict[str, dict] = {
    "unconstrained": {"constrained": False, "mode": ()},
    "constrained": {"constrained": True, "mode": ()},
    "verified_jf": {"constrained": True, "mode": ("jump_forward",), "jump_verify": True},
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
    ap.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default)")
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
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
    tables = {name: NGramTable() for name in modes}  # each learns across its own requests only
    acc = {name: {"tokens": 0, "forwards": 0, "seconds": 0.0, "cpu": 0.0, "valid": 0, "complete": 0} for name in modes}
    for c, p, (sname, schema) in zip(compiled, prompts, schemas):
        for name in modes:
            cfg = MODES[name]
            t0, c0 = time.perf_counter(), time.process_time()
            res = speculative_generate(
                loaded,
                p,
                c.matcher() if cfg["constrained"] else None,
                mode=cfg["mode"],
                max_new_tokens=args.max_new_tokens,
                ngram_table=tables[name],
                jump_verify=cfg.get("jump_verify", False),
            )
            a = acc[name]
            a["seconds"] += time.perf_counter() - t0
            a["cpu"] += time.process_time() - c0
            a["tokens"] += len(res.token_ids)
            a["forwards"] += res.forward_passes
            if cfg["constrained"] and (res.matcher.is_accepting() or res.matcher.is_terminated()):
                a["complete"] += 1
                try:
                    jsonschema.validate(json.loads(res.text), schema)
                    a["valid"] += 1
                except Exception:  # noqa: BLE001 - counted, reported
                    pass
            print(sname, name, len(res.token_ids), res.forward_passes, res.stop_reason, flush=True)
    rows = {}
    for name in modes:
        a = acc[name]
        rows[name] = {
            "tokens": a["tokens"],
            "forwards": a["forwards"],
            "seconds": round(a["seconds"], 2),
            "cpu_seconds": round(a["cpu"], 2),
            "forwards_per_token": round(a["forwards"] / max(1, a["tokens"]), 3),
            "tokens_per_s": round(a["tokens"] / a["seconds"], 2),
            "tokens_per_cpu_s": round(a["tokens"] / a["cpu"], 2),
            "complete": a["complete"],
            "valid": a["valid"],
            "requests": len(schemas),
        }
        print(name, rows[name], flush=True)
    base = rows.get("constrained")
    print()
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(
        f"machine: {platform.machine()} {platform.processor() or ''}, {os.cpu_count()} cores, load {load:.1f}, "
        f"torch {torch.__version__}, threads {torch.get_num_threads()}, device {loaded.device}; "
        f"{len(schemas)} Glaiveai2K schemas, greedy, max_new_tokens={args.max_new_tokens}"
    )
    print(
        "| mode | output tokens | target forwards | forwards/token | tokens/s (wall) | tokens/CPU-s "
        "| wall vs constrained | CPU vs constrained | valid/complete |"
    )
    print("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    for name, r in rows.items():
        sp = f"{r['tokens_per_s'] / base['tokens_per_s']:.2f}x" if base else "-"
        spc = f"{r['tokens_per_cpu_s'] / base['tokens_per_cpu_s']:.2f}x" if base else "-"
        vc = f"{r['valid']}/{r['complete']}" if MODES[name]["constrained"] else "-"
        print(
            f"| {name} | {r['tokens']} | {r['forwards']} | {r['forwards_per_token']:.3f} | {r['tokens_per_s']:.2f} "
            f"| {r['tokens_per_cpu_s']:.2f} | {sp} | {spc} | {vc} |"
        )
    if args.json:
        with open(args.json, "w") as f:
            json.dump(rows, f, indent=1)


if __name__ == "__main__":
    main()
