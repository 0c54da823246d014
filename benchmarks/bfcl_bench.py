"""BFCL simple (function calling with gold arguments): unconstrained vs constrained argument generation.

    python benchmarks/bfcl_bench.py --n 50 [--threads 1] [--out results.json]

For each item the bundled SmolLM2-135M-Instruct sees the function's JSON description and the user's
question and writes the call's arguments as a JSON object, twice, with the same prompt and greedy
decoding: once free (the first JSON object in the text is parsed) and once constrained by the
function's parameter schema (``structgen.generate(..., json_schema=...)``). Accuracy follows BFCL's
AST checker for the simple category: every required parameter present, no unknown parameter, each
value among the gold alternatives (strings compared after BFCL's normalization, ints accepted for
floats, "" meaning the optional parameter may be omitted).

Time per output token is decode time / generated tokens, per mode, summed over the same prompts in
one run (the modes alternate item by item so machine load affects both alike); compile time is
reported apart. Wall-clock and process CPU time are both reported: on a shared machine CPU time is
the steadier of the two.
"""

from __future__ import annotations

import argparse
import json
import platform
import re
import sys
import time
from pathlib import Path
from typing import Any

DATA_CANDIDATES = [Path("/work/shared/data/bfcl"), Path(__file__).resolve().parents[2] / "shared" / "data" / "bfcl"]

TYPE_MAP = {
    "dict": "object",
    "float": "number",
    "tuple": "array",
    "list": "array",
    "int": "integer",
    "str": "string",
    "bool": "boolean",
    "any": None,
}


def to_json_schema(node: Any) -> Any:
    """BFCL's parameter schema dialect -> JSON Schema (types renamed, "any" unconstrained)."""
    if isinstance(node, dict):
        out: dict[str, Any] = {}
        for k, v in node.items():
            if k == "type":
                t = TYPE_MAP.get(v, v)
                if t is not None:
                    out["type"] = t
            elif k == "properties":
                out["properties"] = {name: to_json_schema(sub) for name, sub in v.items()}
            elif k in ("items", "additionalProperties"):
                out[k] = to_json_schema(v)
            elif k in ("description", "default", "optional"):
                continue  # annotations: keep the schema small
            else:
                out[k] = v
        if out.get("type") == "object" and "properties" in out:
            out.setdefault("additionalProperties", False)
        return out
    return node


def _norm(s: str) -> str:
    return re.sub(r"[ ,./\-_*^]", "", s).lower().replace("'", '"')


def value_ok(value: Any, gold: list[Any]) -> bool:
    for g in gold:
        if isinstance(g, str) and isinstance(value, str) and _norm(g) == _norm(value):
            return True
        if isinstance(g, bool) or isinstance(value, bool):
            if value is g or value == g and type(value) is type(g):
                return True
            continue
        if isinstance(g, (int, float)) and isinstance(value, (int, float)) and float(g) == float(value):
            if isinstance(g, int) and isinstance(value, float) and not value.is_integer():
                continue
            return True
        if isinstance(g, list) and isinstance(value, list) and len(g) == len(value):
            if all(value_ok(v, [x]) for v, x in zip(value, g)):
                return True
        if isinstance(g, dict) and isinstance(value, dict) and g == value:
            return True
    return False


def check(args: Any, func: dict[str, Any], answer: dict[str, Any]) -> bool:
    if not isinstance(args, dict):
        return False
    gold = answer[func["name"]]
    required = func["parameters"].get("required", [])
    for name in required:
        if name not in args:
            return False
    for name, value in args.items():
        if name not in gold:
            return False
        if not value_ok(value, gold[name]):
            return False
    for name, alts in gold.items():
        if name not in args and "" not in alts:
            return False
    return True


def first_json_object(text: str) -> Any:
    dec = json.JSONDecoder()
    for m in re.finditer(r"\{", text):
        try:
            value, _ = dec.raw_decode(text[m.start() :])
            return value
        except json.JSONDecodeError:
            continue
    return None


def unwrap(value: Any, name: str) -> Any:
    """Free text often wraps the arguments as a call ({"name": ..., "arguments": {...}}): take them out."""
    if isinstance(value, dict):
        for key in ("arguments", "parameters", "args", name):
            inner = value.get(key)
            if isinstance(inner, dict):
                return inner
    return value


def prompt_for(item: dict[str, Any]) -> list[dict[str, str]]:
    func = item["function"][0]
    question = item["question"][0][-1]["content"]
    return [
        {"role": "system", "content": "You call functions. Reply with only the JSON object of the call's arguments."},
        {
            "role": "user",
            "content": 'Function:\n{"name": "add", "parameters": {"type": "dict", "properties": '
            '{"a": {"type": "integer"}, "b": {"type": "integer"}}, "required": ["a", "b"]}}\n\n'
            "Question: What is 2 plus 3?\n\nArguments of add as JSON:",
        },
        {"role": "assistant", "content": '{"a": 2, "b": 3}'},
        {
            "role": "user",
            "content": f"Function:\n{json.dumps(func)}\n\nQuestion: {question}\n\nArguments of {func['name']} as JSON:",
        },
    ]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", type=int, default=25, help="items of BFCL_v4_simple_python (from the start)")
    ap.add_argument("--max-new-tokens", type=int, default=64)
    ap.add_argument("--threads", type=int, default=1, help="torch threads (1: steady on a shared 2-core box)")
    ap.add_argument("--out", default=None, help="write per-item results as JSON here")
    args = ap.parse_args(argv)

    import torch

    import structgen
    from structgen.errors import StructgenError

    torch.set_num_threads(args.threads)
    data = next((d for d in DATA_CANDIDATES if d.exists()), None)
    if data is None:
        print("BFCL data not found", file=sys.stderr)
        return 2
    items = [json.loads(line) for line in (data / "BFCL_v4_simple_python.json").open()][: args.n]
    answers = {
        a["id"]: a["ground_truth"][0]
        for a in map(json.loads, (data / "possible_answer" / "BFCL_v4_simple_python.json").open())
    }
    model = structgen.load("smollm2", device="cpu")
    structgen.generate(model, "warm up", max_new_tokens=4)

    tot = {m: {"ok": 0, "valid": 0, "tokens": 0, "wall": 0.0, "cpu": 0.0} for m in ("free", "constrained")}
    compile_s: list[float] = []
    rows = []
    refused = 0
    t_start = time.perf_counter()
    for k, item in enumerate(items):
        func = item["function"][0]
        schema = to_json_schema(func["parameters"])
        prompt = prompt_for(item)
        row: dict[str, Any] = {"id": item["id"]}
        for mode in ("free", "constrained"):
            kw: dict[str, Any] = {}
            if mode == "constrained":
                t0 = time.perf_counter()
                try:
                    gen = structgen.Generator(model, json_schema=schema, progress=False)
                except StructgenError as exc:
                    refused += 1
                    row["constrained_error"] = str(exc)[:200]
                    continue
                compile_s.append(time.perf_counter() - t0)
                runner = gen
            else:
                runner = structgen.Generator(model)
            c0 = time.process_time()
            res = runner(prompt, max_new_tokens=args.max_new_tokens, return_result=True, **kw)
            cpu = time.process_time() - c0
            value = res.value if mode == "constrained" else unwrap(first_json_object(res.text), func["name"])
            ok = check(value, func, answers[item["id"]])
            t = tot[mode]
            t["ok"] += ok
            t["valid"] += value is not None
            t["tokens"] += res.completion_tokens
            t["wall"] += res.decode_seconds
            t["cpu"] += cpu * res.decode_seconds / max(res.total_seconds, 1e-9)
            row[mode] = {"text": res.text, "ok": ok, "tokens": res.completion_tokens}
        rows.append(row)
        print(
            f"[{k + 1}/{len(items)}] {item['id']}: free={row.get('free', {}).get('ok')} "
            f"constrained={row.get('constrained', {}).get('ok')}",
            file=sys.stderr,
            flush=True,
        )

    n = len(items)
    print(
        f"\nBFCL simple_python, first {n} items, SmolLM2-135M-Instruct (bundled), greedy, "
        f"max_new_tokens={args.max_new_tokens}, torch threads={args.threads}, {platform.processor() or platform.machine()}"
    )
    print(f"{'mode':<12} {'accuracy':>9} {'parsed':>7} {'tokens':>7} {'ms/token wall':>14} {'ms/token cpu':>13}")
    for mode, t in tot.items():
        m = n - (refused if mode == "constrained" else 0)
        print(
            f"{mode:<12} {t['ok'] / n:>9.1%} {t['valid']:>4}/{m:<3} {t['tokens']:>6} "
            f"{1000 * t['wall'] / max(t['tokens'], 1):>14.1f} {1000 * t['cpu'] / max(t['tokens'], 1):>13.1f}"
        )
    if compile_s:
        print(
            f"compile: {len(compile_s)} schemas, median {sorted(compile_s)[len(compile_s) // 2]:.2f} s, "
            f"refused {refused}; run took {time.perf_counter() - t_start:.0f} s"
        )
    if args.out:
        Path(args.out).write_text(json.dumps({"totals": tot, "rows": rows}, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
