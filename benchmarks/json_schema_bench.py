"""JSON Schema engines side by side on the JSONSchemaBench dev splits, Llama-3 tokenizer, one harness.

For each of the first N schemas of each split, each engine (structgen, xgrammar, llguidance,
outlines-core) compiles the schema; declared coverage is the number that compiled. Every test
instance is written in the default formatting (", " / ": ", ``formatting.dumps``), tokenized with the
real Llama-3 tokenizer and fed token by token: a valid instance must be accepted (then EOS),
an invalid one rejected. Over-constraint = valid rejected, under-constraint = invalid accepted.
Mask time is the wall time (``--clock cpu``: the thread's CPU time) of one bitmask fill per token
along the valid instances; compile time is wall time. Each schema
runs in a forked worker with a time limit (``--timeout``, compile and instances together); a schema
that runs out of time counts as not compiled for that engine.

Key order: instances are written in their own key order for every engine; structgen, which
emits properties in schema order, gets the same text with keys in the order its grammar takes
(found by the conformance harness's emitter), so no engine is penalised for ordering.

    python benchmarks/json_schema_bench.py --n 150 --out /tmp/bench.json
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests" / "conformance"))

SPLITS = ("Glaiveai2K", "Github_trivial", "Github_easy", "Github_medium", "JsonSchemaStore")
MAX_MASK_SAMPLES_PER_INSTANCE = 64
# mask timer: wall time by default; ``--clock cpu`` uses this thread's CPU time, which a loaded or
# shared machine does not inflate (every engine fills one bitmask row on the calling thread)
CLOCK = time.perf_counter


def load_split(split: str, n: int) -> list[dict[str, Any]]:
    import harness

    return harness.bench_cases(split, n)


class Structgen:
    name = "structgen"

    def __init__(self, tok: Any) -> None:
        from structgen import assets

        self.vocab = assets.load_vocabulary("llama3")
        self.tok = tok
        self.eos = sorted(self.vocab.eos_ids)[0]
        self.bitmask = np.zeros((1, (self.vocab.size + 31) // 32), dtype=np.int32)

    def compile(self, schema: Any) -> Any:
        import structgen

        return structgen.compile(self.vocab, json_schema=schema, cache=False)

    def text_for(self, c: Any, value: Any, default_text: str) -> str:
        import harness

        from structgen.frontends.json_schema.formatting import Style

        ok, text = harness.check_instance(c, value, Style(), None)
        return text if ok and text is not None else default_text

    def run(self, c: Any, ids: list[int], masks: list[float]) -> bool:
        m = c.matcher()
        for t in ids:
            if len(masks) < MAX_MASK_SAMPLES_PER_INSTANCE * 1000:
                t0 = CLOCK()
                m.fill_bitmask(self.bitmask)
                masks.append(CLOCK() - t0)
            if not m.accept_token(t):
                return False
        return m.accept_token(self.eos)


class XGrammar:
    name = "xgrammar"

    def __init__(self, tok: Any) -> None:
        import xgrammar as xgr

        self.xgr = xgr
        self.info = xgr.TokenizerInfo.from_huggingface(tok, vocab_size=len(tok))
        self.compiler = xgr.GrammarCompiler(self.info, max_threads=1, cache_enabled=False)
        self.bitmask = xgr.allocate_token_bitmask(1, self.info.vocab_size)
        self.eos = tok.convert_tokens_to_ids("<|end_of_text|>")

    def compile(self, schema: Any) -> Any:
        return self.compiler.compile_json_schema(
            json.dumps(schema), any_whitespace=False, separators=(", ", ": "), strict_mode=False
        )

    def text_for(self, c: Any, value: Any, default_text: str) -> str:
        return default_text

    def run(self, c: Any, ids: list[int], masks: list[float]) -> bool:
        m = self.xgr.GrammarMatcher(c, override_stop_tokens=[self.eos])
        for t in ids:
            t0 = CLOCK()
            m.fill_next_token_bitmask(self.bitmask)
            masks.append(CLOCK() - t0)
            if not m.accept_token(t):
                return False
        return m.accept_token(self.eos)


class LLGuidance:
    name = "llguidance"

    def __init__(self, tok: Any) -> None:
        import llguidance
        import llguidance.hf
        import llguidance.numpy

        self.ll = llguidance
        self.lltok = llguidance.hf.from_tokenizer(tok)
        self.bitmask = llguidance.numpy.allocate_token_bitmask(1, self.lltok.vocab_size)
        self.fill = llguidance.numpy.fill_next_token_bitmask
        self.eos = self.lltok.eos_token

    def compile(self, schema: Any) -> Any:
        grm = self.ll.LLMatcher.grammar_from_json_schema(
            schema, defaults={"whitespace_flexible": False, "item_separator": ", ", "key_separator": ": "}
        )
        is_err, msgs = self.ll.LLMatcher.validate_grammar_with_warnings(grm, self.lltok)
        if is_err:
            raise RuntimeError(str(msgs)[:200])
        m = self.ll.LLMatcher(self.lltok, grm)
        if m.is_error():
            raise RuntimeError(m.get_error())
        return grm

    def text_for(self, c: Any, value: Any, default_text: str) -> str:
        return default_text

    def run(self, grm: Any, ids: list[int], masks: list[float]) -> bool:
        m = self.ll.LLMatcher(self.lltok, grm)
        for t in ids:
            t0 = CLOCK()
            self.fill(m, self.bitmask, 0)
            masks.append(CLOCK() - t0)
            if not m.consume_token(t):
                return False
        return m.is_accepting()


class OutlinesCore:
    name = "outlines-core"

    def __init__(self, tok: Any) -> None:
        import outlines_core

        from structgen import assets

        self.oc = outlines_core
        v = assets.load_vocabulary("llama3")
        self.eos = sorted(v.eos_ids)[0]
        table: dict[bytes, list[int]] = {}
        for i, b in enumerate(v.token_bytes):
            if i in v.special_ids or not b:
                continue
            table.setdefault(b, []).append(i)
        self.vocab = outlines_core.Vocabulary(self.eos, table)
        self.words = (v.size + 31) // 32
        self.mask = np.zeros(self.words, dtype=np.int32)

    def compile(self, schema: Any) -> Any:
        regex = self.oc.json_schema.build_regex_from_schema(json.dumps(schema), whitespace_pattern=r"[ ]?")
        return self.oc.Index(regex, self.vocab)

    def text_for(self, c: Any, value: Any, default_text: str) -> str:
        return default_text

    def run(self, index: Any, ids: list[int], masks: list[float]) -> bool:
        g = self.oc.Guide(index)
        for t in ids:
            t0 = CLOCK()
            g.write_mask_into(self.mask.ctypes.data, self.mask.size, self.mask.itemsize)
            masks.append(CLOCK() - t0)
            if t not in g.get_tokens():
                return False
            g.advance(t)
        return g.is_finished() or self.eos in g.get_tokens()


def _run_case(eng: Any, tok: Any, case: dict[str, Any]) -> dict[str, Any]:
    """Compile one schema and run its instances (in a forked worker, so a hung compile can be cut)."""
    from structgen.frontends.json_schema.formatting import dumps

    r: dict[str, Any] = {"compiled": False, "valid": 0, "valid_ok": 0, "invalid": 0, "invalid_ok": 0, "mask_us": []}
    t0 = time.perf_counter()
    try:
        c = eng.compile(case["schema"])
    except Exception:
        return r
    r["compiled"] = True
    r["compile_ms"] = 1000 * (time.perf_counter() - t0)
    for t in case["tests"]:
        try:
            base = dumps(t["data"])
        except (TypeError, ValueError):
            continue
        text = eng.text_for(c, t["data"], base) if t["valid"] else base
        ids = tok.encode(text, add_special_tokens=False)
        masks: list[float] = []
        try:
            ok = eng.run(c, ids, masks) if t["valid"] else eng.run(c, ids, [])
        except Exception:
            ok = False
        if t["valid"]:
            r["valid"] += 1
            r["valid_ok"] += bool(ok)
            r["mask_us"].extend(1e6 * x for x in masks)
        else:
            r["invalid"] += 1
            r["invalid_ok"] += not ok
    return r


def _in_worker(eng: Any, tok: Any, case: dict[str, Any], timeout_s: float) -> dict[str, Any] | None:
    import multiprocessing as mp

    ctx = mp.get_context("fork")
    q = ctx.Queue()
    proc = ctx.Process(target=lambda: q.put(_run_case(eng, tok, case)))
    proc.start()
    try:
        res = q.get(timeout=timeout_s)
    except Exception:
        res = None
    proc.join(1)
    if proc.is_alive():
        proc.terminate()  # the worker this function started
        proc.join()
    return res


def bench(engines: list[Any], tok: Any, n: int, timeout_s: float) -> dict[str, Any]:
    out: dict[str, Any] = {}
    pooled: dict[str, tuple[list[float], list[float]]] = {eng.name: ([], []) for eng in engines}
    for split in SPLITS:
        cases = load_split(split, n)
        for eng in engines:
            st = {
                "schemas": len(cases),
                "compiled": 0,
                "valid": 0,
                "valid_ok": 0,
                "invalid": 0,
                "invalid_ok": 0,
                "timeouts": 0,
            }
            ms: list[float] = []
            mk: list[float] = []
            for case in cases:
                r = _in_worker(eng, tok, case, timeout_s)
                if r is None:
                    st["timeouts"] += 1
                    continue
                if not r["compiled"]:
                    continue
                st["compiled"] += 1
                ms.append(r["compile_ms"])
                mk.extend(r["mask_us"])
                for k in ("valid", "valid_ok", "invalid", "invalid_ok"):
                    st[k] += r[k]
            st["compile_ms_p50"] = round(statistics.median(ms), 2) if ms else None
            st["mask_us_p50"] = round(float(np.percentile(mk, 50)), 1) if mk else None
            st["mask_us_p99"] = round(float(np.percentile(mk, 99)), 1) if mk else None
            st["over_constrained"] = st["valid"] - st["valid_ok"]
            st["under_constrained"] = st["invalid"] - st["invalid_ok"]
            out.setdefault(split, {})[eng.name] = st
            pooled[eng.name][0].extend(ms)
            pooled[eng.name][1].extend(mk)
            print(split, eng.name, json.dumps(st), flush=True)
    for name, (ms, mk) in pooled.items():  # every split together: medians/percentiles of the pooled samples
        tot = {
            k: sum(out[sp][name][k] for sp in SPLITS)
            for k in ("schemas", "compiled", "valid", "valid_ok", "invalid", "invalid_ok")
        }
        tot["compile_ms_p50"] = round(statistics.median(ms), 2) if ms else None
        tot["mask_us_p50"] = round(float(np.percentile(mk, 50)), 1) if mk else None
        tot["mask_us_p99"] = round(float(np.percentile(mk, 99)), 1) if mk else None
        tot["over_constrained"] = tot["valid"] - tot["valid_ok"]
        tot["under_constrained"] = tot["invalid"] - tot["invalid_ok"]
        out.setdefault("all", {})[name] = tot
    return out


def to_markdown(res: dict[str, Any], meta: dict[str, Any]) -> str:
    lines = [
        f"Machine: {meta['machine']}; first {meta['n']} schemas per split; Llama-3 tokenizer; mask clock: {meta['clock']}; "
        f"command: `{meta['command']}`",
        "",
        "| split | engine | compiled | compile p50 ms | mask p50 µs | mask p99 µs | valid accepted | invalid rejected | over | under |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for split, engines in res.items():
        for name, s in engines.items():
            lines.append(
                f"| {split} | {name} | {s['compiled']}/{s['schemas']} | {s['compile_ms_p50']} | {s['mask_us_p50']} | {s['mask_us_p99']} | "
                f"{s['valid_ok']}/{s['valid']} | {s['invalid_ok']}/{s['invalid']} | {s['over_constrained']} | {s['under_constrained']} |"
            )
    return "\n".join(lines)


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=150)
    ap.add_argument("--engines", default="structgen,xgrammar,llguidance,outlines-core")
    ap.add_argument(
        "--timeout",
        type=float,
        default=60.0,
        help="seconds per schema (compile + its instances); slower counts as not compiled",
    )
    ap.add_argument("--out", default="")
    ap.add_argument("--clock", choices=("wall", "cpu"), default="wall", help="mask timer (cpu: thread CPU time)")
    args = ap.parse_args()
    global CLOCK
    CLOCK = time.thread_time if args.clock == "cpu" else time.perf_counter
    from structgen import assets

    tok = assets.load_tokenizer("llama3")
    makers = {"structgen": Structgen, "xgrammar": XGrammar, "llguidance": LLGuidance, "outlines-core": OutlinesCore}
    engines = []
    for name in args.engines.split(","):
        try:
            eng = makers[name](tok)
        except Exception as e:  # an engine that is not installed is left out, and said so
            print(f"skipping {name}: {e}", file=sys.stderr)
            continue
        # warm-up in the parent: per-process caches (vocabulary tables, tokenizer preprocessing) are
        # inherited by the forked workers instead of being rebuilt, and excluded from the timings
        _run_case(
            eng,
            tok,
            {
                "schema": {"type": "object", "properties": {"a": {"type": "integer"}}},
                "tests": [{"data": {"a": 1}, "valid": True}],
            },
        )
        engines.append(eng)
    res = bench(engines, tok, args.n, args.timeout)
    meta = {
        "machine": f"{platform.processor() or platform.machine()}, {platform.system()}, Python {platform.python_version()}",
        "n": args.n,
        "command": "python " + " ".join(sys.argv),
        "clock": args.clock,
    }
    md = to_markdown(res, meta)
    print(md)
    if args.out:
        Path(args.out).write_text(json.dumps({"meta": meta, "results": res}, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
