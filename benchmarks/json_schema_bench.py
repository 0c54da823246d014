"""JSON Schema engines side by side on the JSONSchemaBench dev splits, Llama-3 tokenizer, one harness.

For each of the first N schemas of each split, each engine (structgen, xgrammar, llguidance,
outlines-core; ``xgrammar-strict`` on request) compiles the schema; declared coverage is the number
that compiled. Every test instance is written in the default formatting (", " / ": ",
``formatting.dumps``), tokenized with the real Llama-3 tokenizer and fed token by token through one
loop shared by all engines (``feed``: fill a mask, advance on the token; at the end, is
``<|end_of_text|>`` allowed): a valid instance must be accepted, an invalid one rejected.
Over-constraint = valid rejected, under-constraint = invalid accepted.

What is timed (``_run_case``), per engine:

- structgen: ``structgen.compile(vocab, json_schema=..., cache=False)``.
- xgrammar: ``GrammarCompiler(max_threads=1, cache_enabled=False).compile_json_schema(...)``,
  ``strict_mode=False`` (JSON Schema semantics: undeclared properties allowed; xgrammar's default
  ``strict_mode=True`` forbids them and compiles up to ~70x faster: engine ``xgrammar-strict``).
- llguidance: ``grammar_from_json_schema`` + one ``LLMatcher`` (parser built, errors reported);
  instances run on ``deep_copy()`` of it.
- outlines-core: ``build_regex_from_schema`` + ``Index`` (the whole token-level DFA).

Excluded for every engine alike, by construction and one warm-up in the parent (``warm_up``: two
compiles and runs of a small schema; the forked workers inherit the result): the tokenizer
adaptation (structgen ``Vocabulary`` and its trie, xgrammar ``TokenizerInfo``, llguidance
``LLTokenizer``, outlines-core ``Vocabulary``), imports, JIT compilation of kernels (structgen's
numba trie walk), and any first-use lazy initialisation. Per-schema compile and masks are in.

Clock (``--clock``): wall (``perf_counter``) or cpu = ``process_time`` of the worker, which counts
every thread of the worker (a forked child starts with only the forking thread, so these are the
engine's own threads), so an engine that compiled on helper threads would not be undercounted;
xgrammar is also given one compile thread. Compile and mask times use the same clock; the JSON also
keeps compile wall time. Mask time is one bitmask fill per token along the valid instance's
accepted text (else its first text), cold: every schema is compiled fresh.

Isolation: each (engine, schema) runs in a forked worker with a wall time limit (``--timeout``,
compile and instances together); one that runs out of time counts as not compiled (and is
listed as a timeout). Before its schema the worker compiles and runs a two-property schema
(``PREWARM_CASE``, untimed) so that copy-on-write faults on the inherited memory are not charged
to the measured compile. Checked on the first 6 schemas of each split, CPU clock, median of
per-schema ratios forked / in-process: without it 1.15x (structgen), 1.5x (llguidance), 1.04x
(xgrammar strict), 0.97x (xgrammar); with it, the in-process compile also right after the small
case, 1.10x, 1.24x and 1.03x: a residual of ~0.3 ms (llguidance) to ~5 ms (structgen).
``--isolation inline`` runs everything in this process without a limit, for such checks.

Key order: a valid instance counts as accepted when the engine accepts its text in the instance's
own key order or in the order structgen's grammar takes (found by the conformance harness's
emitter when structgen rejects the first text; structgen runs first per split and the texts it
found are given to every later engine). Every engine thus sees the same texts. Invalid instances
are fed in their own key order.

    python benchmarks/json_schema_bench.py --n 30 --clock cpu --out /tmp/bench.json --md /tmp/bench.md
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
# compile and mask timer: wall time by default; ``--clock cpu`` uses the worker process's CPU time
# (all threads), which a loaded or shared machine inflates far less than wall time
CLOCK = time.perf_counter


def load_split(split: str, n: int) -> list[dict[str, Any]]:
    import harness

    return harness.bench_cases(split, n)


class Structgen:
    """structgen: ``structgen.compile(..., cache=False)``; one matcher per instance, masks lazily filled."""

    name = "structgen"

    def __init__(self, tok: Any) -> None:
        from structgen import assets

        self.vocab = assets.load_vocabulary("llama3")
        self.eos = eos_id(tok)
        self.bitmask = np.zeros((1, (self.vocab.size + 31) // 32), dtype=np.int32)

    def compile(self, schema: Any) -> Any:
        import structgen

        return structgen.compile(self.vocab, json_schema=schema, cache=False)

    def key_order_text(self, c: Any, value: Any, schema: Any) -> str | None:
        """The instance with its keys in the order this grammar takes (untimed; shared with all engines)."""
        import harness

        from structgen.frontends.json_schema.formatting import Style

        ok, text = harness.check_instance(c, value, Style(), schema)
        return text if ok else None

    def start(self, c: Any) -> Any:
        return c.matcher()

    def fill(self, m: Any) -> None:
        m.fill_bitmask(self.bitmask)

    def advance(self, m: Any, t: int) -> bool:
        return bool(m.accept_token(t))

    def accepts_eos(self, m: Any) -> bool:
        return bool(m.accept_token(self.eos))


class XGrammar:
    """xgrammar ``compile_json_schema`` with JSON Schema semantics (``strict_mode=False``: undeclared
    properties/items allowed, as the spec says); one ``GrammarMatcher`` per instance."""

    name = "xgrammar"
    strict = False

    def __init__(self, tok: Any) -> None:
        import xgrammar as xgr

        self.xgr = xgr
        self.info = xgr.TokenizerInfo.from_huggingface(tok, vocab_size=len(tok))
        # one compile thread, no cache: the compile is the schema's alone and runs on the calling thread
        self.compiler = xgr.GrammarCompiler(self.info, max_threads=1, cache_enabled=False)
        self.bitmask = xgr.allocate_token_bitmask(1, self.info.vocab_size)
        self.eos = eos_id(tok)

    def compile(self, schema: Any) -> Any:
        return self.compiler.compile_json_schema(
            json.dumps(schema), any_whitespace=False, separators=(", ", ": "), strict_mode=self.strict
        )

    def start(self, c: Any) -> Any:
        return self.xgr.GrammarMatcher(c, override_stop_tokens=[self.eos])

    def fill(self, m: Any) -> None:
        m.fill_next_token_bitmask(self.bitmask)

    def advance(self, m: Any, t: int) -> bool:
        return bool(m.accept_token(t))

    def accepts_eos(self, m: Any) -> bool:
        return bool(m.accept_token(self.eos))


class XGrammarStrict(XGrammar):
    """xgrammar's default ``strict_mode=True``: no undeclared properties or items (not JSON Schema
    semantics; valid instances with extra keys are rejected). For comparison with figures measured
    with xgrammar's defaults."""

    name = "xgrammar-strict"
    strict = True


class LLGuidance:
    """llguidance: compile = ``grammar_from_json_schema`` + one ``LLMatcher`` (which builds the parser
    and reports errors); each instance runs on a ``deep_copy`` of that matcher."""

    name = "llguidance"

    def __init__(self, tok: Any) -> None:
        import llguidance
        import llguidance.hf
        import llguidance.numpy

        self.ll = llguidance
        self.eos = eos_id(tok)
        self.lltok = llguidance.hf.from_tokenizer(tok, eos_token=self.eos)
        self.bitmask = llguidance.numpy.allocate_token_bitmask(1, self.lltok.vocab_size)
        self._fill = llguidance.numpy.fill_next_token_bitmask

    def compile(self, schema: Any) -> Any:
        grm = self.ll.LLMatcher.grammar_from_json_schema(
            schema, defaults={"whitespace_flexible": False, "item_separator": ", ", "key_separator": ": "}
        )
        m = self.ll.LLMatcher(self.lltok, grm)
        if m.is_error():
            raise RuntimeError(m.get_error()[:200])
        return m

    def start(self, c: Any) -> Any:
        return c.deep_copy()

    def fill(self, m: Any) -> None:
        self._fill(m, self.bitmask, 0)

    def advance(self, m: Any, t: int) -> bool:
        return bool(m.consume_token(t))

    def accepts_eos(self, m: Any) -> bool:
        return bool(m.consume_token(self.eos))


class OutlinesCore:
    """outlines-core: compile = schema to regex + ``Index`` (the whole token-level DFA); one ``Guide``
    per instance."""

    name = "outlines-core"

    def __init__(self, tok: Any) -> None:
        import outlines_core

        from structgen import assets

        self.oc = outlines_core
        v = assets.load_vocabulary("llama3")
        self.eos = eos_id(tok)
        table: dict[bytes, list[int]] = {}
        for i, b in enumerate(v.token_bytes):
            if i in v.special_ids or not b:
                continue
            table.setdefault(b, []).append(i)
        self.vocab = outlines_core.Vocabulary(self.eos, table)
        self.mask = np.zeros((v.size + 31) // 32, dtype=np.int32)

    def compile(self, schema: Any) -> Any:
        regex = self.oc.json_schema.build_regex_from_schema(json.dumps(schema), whitespace_pattern=r"[ ]?")
        return self.oc.Index(regex, self.vocab)

    def start(self, c: Any) -> Any:
        return self.oc.Guide(c)

    def fill(self, g: Any) -> None:
        g.write_mask_into(self.mask.ctypes.data, self.mask.size, self.mask.itemsize)

    def advance(self, g: Any, t: int) -> bool:
        try:
            g.advance(t, return_tokens=False)
        except ValueError:  # no transition on this token
            return False
        return True

    def accepts_eos(self, g: Any) -> bool:
        return self.eos in g.get_tokens()


MAKERS = {
    "structgen": Structgen,
    "xgrammar": XGrammar,
    "xgrammar-strict": XGrammarStrict,
    "llguidance": LLGuidance,
    "outlines-core": OutlinesCore,
}


def eos_id(tok: Any) -> int:
    """The one EOS every engine is asked about after a text: Llama-3's ``<|end_of_text|>``."""
    return int(tok.convert_tokens_to_ids("<|end_of_text|>"))


def feed(eng: Any, c: Any, ids: list[int], masks: list[float]) -> bool:
    """Fill one mask (timed) before each token, advance on it, then ask whether EOS is allowed.

    The same loop for every engine: a text is accepted when every token is and EOS then is.
    """
    m = eng.start(c)
    for t in ids:
        t0 = CLOCK()
        eng.fill(m)
        masks.append(CLOCK() - t0)
        if not eng.advance(m, t):
            return False
    return eng.accepts_eos(m)


def _run_case(eng: Any, tok: Any, case: dict[str, Any], orders: dict[int, str] | None = None) -> dict[str, Any]:
    """Compile one schema and run its instances.

    ``orders`` maps a test's index to the instance re-written in another key order (structgen's
    grammar order, found by its emitter); a valid instance counts as accepted when any of its texts
    is, an invalid one as rejected when its text is. Every engine gets the same texts.
    """
    from structgen.frontends.json_schema.formatting import dumps

    orders = orders or {}
    r: dict[str, Any] = {"compiled": False, "valid": 0, "valid_ok": 0, "invalid": 0, "invalid_ok": 0, "mask_us": []}
    w0, c0 = time.perf_counter(), CLOCK()
    try:
        c = eng.compile(case["schema"])
    except Exception:
        return r
    r["compile_ms"] = 1000 * (CLOCK() - c0)
    r["compile_wall_ms"] = 1000 * (time.perf_counter() - w0)
    r["compiled"] = True
    found: dict[int, str] = {}
    for i, t in enumerate(case["tests"]):
        try:
            base = dumps(t["data"])
        except (TypeError, ValueError):
            continue
        texts = [base]
        if t["valid"] and orders.get(i, base) != base:
            texts.append(orders[i])
        ok, kept = _feed_texts(eng, c, tok, texts)
        if t["valid"] and not ok and hasattr(eng, "key_order_text"):  # untimed search for a key order
            try:
                alt = eng.key_order_text(c, t["data"], case["schema"])
            except Exception:
                alt = None
            if alt is not None and alt not in texts:
                found[i] = alt
                ok, kept = _feed_texts(eng, c, tok, [alt])
        if t["valid"]:
            r["valid"] += 1
            r["valid_ok"] += ok
            r["mask_us"].extend(1e6 * x for x in kept or [])
        else:
            r["invalid"] += 1
            r["invalid_ok"] += not ok
    r["orders"] = found
    return r


def _feed_texts(eng: Any, c: Any, tok: Any, texts: list[str]) -> tuple[bool, list[float]]:
    """Whether any text is accepted; the mask times of the accepted one (else of the first)."""
    kept: list[float] | None = None
    for text in texts:
        masks: list[float] = []
        try:
            ok = feed(eng, c, tok.encode(text, add_special_tokens=False), masks)
        except Exception:
            ok = False
        if ok:
            return True, masks
        if kept is None:
            kept = masks
    return False, kept or []


def _in_worker(
    eng: Any, tok: Any, case: dict[str, Any], timeout_s: float, orders: dict[int, str]
) -> dict[str, Any] | None:
    """``_run_case`` in a forked child (inheriting the parent's warm engine), cut after ``timeout_s``."""
    import multiprocessing as mp

    ctx = mp.get_context("fork")
    q = ctx.Queue()

    def work() -> None:
        _run_case(eng, tok, PREWARM_CASE)  # untimed: the child's first writes to inherited memory
        q.put(_run_case(eng, tok, case, orders))

    proc = ctx.Process(target=work)
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


def _summary(st: dict[str, Any], ms: list[float], mk: list[float]) -> dict[str, Any]:
    st["compile_ms_p50"] = round(statistics.median(ms), 2) if ms else None
    st["mask_us_p50"] = round(float(np.percentile(mk, 50)), 1) if mk else None
    st["mask_us_p99"] = round(float(np.percentile(mk, 99)), 1) if mk else None
    st["over_constrained"] = st["valid"] - st["valid_ok"]
    st["under_constrained"] = st["invalid"] - st["invalid_ok"]
    return st


COUNTS = ("schemas", "compiled", "timeouts", "valid", "valid_ok", "invalid", "invalid_ok")


def bench(
    engines: list[Any],
    tok: Any,
    n: int,
    timeout_s: float,
    isolation: str = "fork",
    splits: tuple[str, ...] = SPLITS,
    save: Any = None,
) -> dict[str, Any]:
    """Raw results ``{split: {engine: {counts, compile_ms: {case id: ms}, mask_us: [...]}}}``.

    Per split, structgen (when present) runs first, and the key orders its emitter found are given
    to every engine after it. ``save(raw)`` is called after each (split, engine), so an interrupted
    run keeps what it measured.
    """
    raw: dict[str, Any] = {}
    for split in splits:
        cases = load_split(split, n)
        orders: dict[str, dict[int, str]] = {}
        for eng in engines:
            st = dict.fromkeys(COUNTS, 0)
            st["schemas"] = len(cases)
            compile_ms: dict[str, float] = {}
            mk: list[float] = []
            for case in cases:
                extra = orders.get(case["id"], {})
                if isolation == "fork":
                    r = _in_worker(eng, tok, case, timeout_s, extra)
                else:  # the same protocol in this process: the small case, then the schema
                    _run_case(eng, tok, PREWARM_CASE)
                    r = _run_case(eng, tok, case, extra)
                if r is None:
                    st["timeouts"] += 1
                    continue
                if r.get("orders"):
                    orders.setdefault(case["id"], {}).update(r["orders"])
                if not r["compiled"]:
                    continue
                st["compiled"] += 1
                compile_ms[case["id"]] = round(r["compile_ms"], 3)
                mk.extend(round(x, 2) for x in r["mask_us"])
                for k in ("valid", "valid_ok", "invalid", "invalid_ok"):
                    st[k] += r[k]
            raw.setdefault(split, {})[eng.name] = {"counts": st, "compile_ms": compile_ms, "mask_us": mk}
            print(split, eng.name, json.dumps(_summary(dict(st), list(compile_ms.values()), mk)), flush=True)
            if save is not None:
                save(raw)
    return raw


def summarize(raw: dict[str, Any]) -> dict[str, Any]:
    """Rows per split and engine, plus "all" (every split's samples pooled) and ratios to structgen."""
    out: dict[str, Any] = {}
    names = list(dict.fromkeys(name for engines in raw.values() for name in engines))
    for split, engines in raw.items():
        for name, r in engines.items():
            out.setdefault(split, {})[name] = _summary(dict(r["counts"]), list(r["compile_ms"].values()), r["mask_us"])
    for name in names:
        have = [engines[name] for engines in raw.values() if name in engines]
        tot = {k: sum(r["counts"][k] for r in have) for k in COUNTS}
        ms = [x for r in have for x in r["compile_ms"].values()]
        out.setdefault("all", {})[name] = _summary(tot, ms, [x for r in have for x in r["mask_us"]])
    per_case = {
        name: {i: x for e in raw.values() if name in e for i, x in e[name]["compile_ms"].items()} for name in names
    }
    _add_ratios(out, per_case)
    return out


def _add_ratios(out: dict[str, Any], per_case: dict[str, dict[str, float]]) -> None:
    """Ratios to structgen in the same run: compile = median over the schemas both compiled of the
    per-schema ratio (engine / structgen); masks = ratio of the percentiles (each engine's own samples)."""
    if "structgen" not in per_case:
        return
    sg = per_case["structgen"]
    for split, engines in out.items():
        base = engines.get("structgen")
        if base is None:
            continue
        for name, st in engines.items():
            ids = [i for i in per_case[name] if i in sg and (split == "all" or i.startswith(split + "/"))]
            ratios = [per_case[name][i] / sg[i] for i in ids if sg[i] > 0]
            st["compile_x_sg"] = round(statistics.median(ratios), 3) if ratios else None
            st["compile_common"] = len(ratios)
            for k in ("mask_us_p50", "mask_us_p99"):
                a, b = st[k], base[k]
                st[k + "_x_sg"] = round(a / b, 2) if a is not None and b else None


def _fmt(x: Any) -> str:
    return "–" if x is None else str(x)


def to_markdown(res: dict[str, Any], meta: dict[str, Any]) -> str:
    """The run as a markdown table; "× sg" columns are ratios to structgen in the same run (< 1: faster)."""
    lines = [
        f"Machine: {meta['machine']}; first {meta['n']} schemas per split; Llama-3 tokenizer; "
        f"clock: {meta['clock']}; isolation: {meta.get('isolation', 'fork')}; command: `{meta['command']}`",
        "",
        "| split | engine | compiled | timeouts | compile p50 ms | compile × sg (n) | mask p50 µs | × sg | "
        "mask p99 µs | × sg | valid accepted | invalid rejected | over | under |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for split, engines in res.items():
        for name, s in engines.items():
            ratio = _fmt(s.get("compile_x_sg"))
            if s.get("compile_x_sg") is not None:
                ratio += f" ({s['compile_common']})"
            lines.append(
                f"| {split} | {name} | {s['compiled']}/{s['schemas']} | {s.get('timeouts', 0)} | "
                f"{_fmt(s['compile_ms_p50'])} | {ratio} | {_fmt(s['mask_us_p50'])} | "
                f"{_fmt(s.get('mask_us_p50_x_sg'))} | {_fmt(s['mask_us_p99'])} | {_fmt(s.get('mask_us_p99_x_sg'))} | "
                f"{s['valid_ok']}/{s['valid']} | {s['invalid_ok']}/{s['invalid']} | {s['over_constrained']} | "
                f"{s['under_constrained']} |"
            )
    return "\n".join(lines)


WARMUP_CASE: dict[str, Any] = {
    "schema": {
        "type": "object",
        "properties": {
            "a": {"type": "integer"},
            "b": {"type": "string", "pattern": "^[a-z0-9]+$"},
            "c": {"type": "array", "items": {"type": "number"}},
            "d": {"enum": ["x", "y"]},
            "e": {"type": "object", "properties": {"f": {"type": "boolean"}, "g": {"type": "string"}}},
        },
        "required": ["a"],
    },
    "tests": [
        {"data": {"a": 1, "b": "ab1", "c": [1.5, -2], "d": "x", "e": {"f": True, "g": "héllo wörld"}}, "valid": True},
        {"data": {"a": "no"}, "valid": False},
    ],
}


# run in each forked worker before its schema: a fork shares the parent's memory copy-on-write, so
# the first writes to it (allocator free lists, Python reference counts, buffers) fault page by
# page; without this, forked compiles measured 1.15x (structgen) to 1.5x (llguidance) in-process
PREWARM_CASE: dict[str, Any] = {
    "schema": {"type": "object", "properties": {"a": {"type": "integer"}, "b": {"type": "string"}}},
    "tests": [{"data": {"a": 1, "b": "x"}, "valid": True}],
}


def warm_up(eng: Any, tok: Any) -> None:
    """Once per engine, in the parent: the first compile and mask fills pay the process's one-time
    setup (lazy tables, JIT-compiled kernels, first allocations), which every forked worker inherits."""
    for _ in range(2):
        _run_case(eng, tok, WARMUP_CASE)


def _merge(paths: list[str], md_path: str) -> int:
    """One table from several ``--out`` files (later files' splits replace earlier ones)."""
    raw: dict[str, Any] = {}
    metas = []
    for path in paths:
        data = json.loads(Path(path).read_text())
        metas.append(data["meta"])
        for split, engines in data["raw"].items():
            raw.setdefault(split, {}).update(engines)
    meta = dict(metas[0], command=" ; ".join(m["command"] for m in metas))
    md = to_markdown(summarize(raw), meta)
    print(md)
    if md_path:
        Path(md_path).write_text(md + "\n")
    return 0


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=150)
    ap.add_argument("--engines", default="structgen,xgrammar,llguidance,outlines-core", help=",".join(MAKERS))
    ap.add_argument(
        "--timeout",
        type=float,
        default=60.0,
        help="wall seconds per schema and engine (compile + its instances); slower counts as not compiled",
    )
    ap.add_argument("--out", default="")
    ap.add_argument("--md", default="", help="also write the markdown table here")
    ap.add_argument(
        "--clock",
        choices=("wall", "cpu"),
        default="wall",
        help="compile and mask timer (cpu: the worker process's CPU time, all its threads)",
    )
    ap.add_argument(
        "--isolation",
        choices=("fork", "inline"),
        default="fork",
        help="fork: each schema in a forked worker with the timeout; inline: in this process, no timeout "
        "(to check that the fork does not change the timings)",
    )
    ap.add_argument("--splits", default=",".join(SPLITS))
    ap.add_argument(
        "--merge",
        nargs="+",
        default=[],
        help="print (and --md) the table of earlier --out files, e.g. one per split run apart; no run",
    )
    args = ap.parse_args()
    if args.merge:
        return _merge(args.merge, args.md)
    global CLOCK
    CLOCK = time.process_time if args.clock == "cpu" else time.perf_counter
    from structgen import assets

    tok = assets.load_tokenizer("llama3")
    names = args.engines.split(",")
    names.sort(key=lambda x: x != "structgen")  # structgen first: its key orders are shared with the rest
    engines = []
    for name in names:
        try:
            eng = MAKERS[name](tok)
            warm_up(eng, tok)
        except Exception as e:  # an engine that is not installed is left out, and said so
            print(f"skipping {name}: {e}", file=sys.stderr)
            continue
        engines.append(eng)
    meta = {
        "machine": f"{platform.processor() or platform.machine()}, {platform.system()}, Python {platform.python_version()}",
        "n": args.n,
        "command": "python " + " ".join(sys.argv),
        "clock": args.clock,
        "isolation": args.isolation,
    }

    def save(raw: dict[str, Any]) -> None:
        if args.out:
            Path(args.out).write_text(json.dumps({"meta": meta, "raw": raw, "results": summarize(raw)}))

    raw = bench(engines, tok, args.n, args.timeout, args.isolation, tuple(args.splits.split(",")), save)
    res = summarize(raw)
    md = to_markdown(res, meta)
    print(md)
    if args.md:
        Path(args.md).write_text(md + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
