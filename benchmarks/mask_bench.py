"""Mask benchmark: structgen vs xgrammar, llguidance and outlines-core, side by side in one run.

For every case (a regex today; grammar suites register themselves with :func:`register_cases`),
random valid strings are drawn, tokenized with the real tokenizer's own encoding, and walked token
by token in every engine: at each step the time to fill the next-token bitmask is recorded, then the
token is accepted. Reported per engine: compile time and per-token mask p50/p99, plus the ratio of
structgen to each other engine.

structgen is measured twice over the same walks: *cold* (a fresh compile, so every first visit
of a state computes its mask) and *warm* (the second pass, masks cached). Other engines keep their
own caches, so their numbers are warm too (xgrammar and outlines-core precompute at compile time;
llguidance computes every mask afresh). A warm step's time is the minimum over ``--repeats`` fills
of the same mask, which filters out scheduler preemption on a loaded machine; cold first visits are
measured once.

    python benchmarks/run.py mask --tokenizer llama3 [--suite regex] [--strings 3] [--engines ...]

JSONSchemaBench per-token masks, structgen only (the method of ``json_schema_bench.py``: every
schema compiled fresh, one ``fill_bitmask`` of a ``(1, W)`` row timed with the thread's CPU clock
before each token of each valid instance, written with ``formatting.dumps`` in its own key order or
else in the order the grammar takes). Each schema is compiled and run
``--repeats`` times (per-vocabulary memos added by a run are dropped before the next, as a fresh
worker process would have them) and each token's time is the minimum over the repeats, which
filters out a loaded machine; the first run's figures are reported beside it:

    python benchmarks/mask_bench.py --n 60 --repeats 3 [--splits Glaiveai2K,Github_easy]
"""

from __future__ import annotations

import random
import re
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np


@dataclass(frozen=True)
class Case:
    """One constraint to benchmark. ``kind`` is ``"regex"`` or ``"grammar"`` (Lark text)."""

    name: str
    kind: str
    source: str
    samples: tuple[str, ...] = ()  # valid outputs; regex cases are sampled when empty
    extra: dict[str, Any] = field(default_factory=dict)  # per-engine sources, e.g. {"xgrammar_ebnf": ...}


REGEX_CASES: list[Case] = [
    Case("date", "regex", r"[0-9]{4}-(0[1-9]|1[0-2])-(0[1-9]|[12][0-9]|3[01])"),
    Case("email", "regex", r"[a-zA-Z0-9._%+-]+@[a-zA-Z0-9.-]+\.[a-zA-Z]{2,6}"),
    Case("json_number", "regex", r"-?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?"),
    Case("json_string", "regex", r'"([^"\\\x00-\x1f]|\\["\\/bfnrt]|\\u[0-9a-fA-F]{4}){0,60}"'),
    Case("ipv4", "regex", r"((25[0-5]|2[0-4][0-9]|1?[0-9]?[0-9])\.){3}(25[0-5]|2[0-4][0-9]|1?[0-9]?[0-9])"),
    Case("uuid", "regex", r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"),
    Case("sentence", "regex", r"[A-Z][a-z]+( [a-z]+){2,12}\."),
    Case(
        "json_object",
        "regex",
        r'\{"name": "[a-zA-Z ]{1,30}", "age": (0|[1-9][0-9]{0,2}), "email": "[a-z0-9.]{1,20}@[a-z]{1,10}\.(com|org|net)", '
        r'"tags": \[("[a-z]{1,10}"(, "[a-z]{1,10}"){0,4})?\], "active": (true|false)\}',
    ),
    Case("free_text", "regex", r"[^\n]{0,80}\n"),
    Case(
        "long_200",
        "regex",
        r'\{"id": [0-9]{1,8}, "user": \{"first": "[A-Z][a-z]{1,15}", "last": "[A-Z][a-z]{1,15}"\}, '
        r'"created": "[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}Z", "score": -?[0-9]+\.[0-9]{1,4}, '
        r'"status": "(open|closed|pending)"\}',
    ),
]

_SUITES: dict[str, Callable[[], list[Case]]] = {"regex": lambda: list(REGEX_CASES)}


def register_cases(suite: str, provider: Callable[[], list[Case]]) -> None:
    """Add a suite of cases (e.g. grammars) under ``suite``; ``--suite all`` runs every suite."""
    _SUITES[suite] = provider


def suites() -> dict[str, Callable[[], list[Case]]]:
    try:  # grammar suites live beside this file when their engineer adds them
        import grammar_masks  # type: ignore[import-not-found]  # noqa: F401
    except ImportError:
        pass
    return _SUITES


# ---- engines ----------------------------------------------------------------------------------


class Engine:
    """Adapter interface: compile a case, make a matcher, fill a mask, accept a token."""

    name = "?"

    def compile(self, case: Case) -> Any:
        raise NotImplementedError

    def matcher(self, compiled: Any) -> Any:
        raise NotImplementedError

    def fill(self, m: Any) -> None:
        raise NotImplementedError

    def accept(self, m: Any, token: int) -> bool:
        raise NotImplementedError

    def mask(self, m: Any) -> np.ndarray:
        """The allowed-token bitmask words of the last fill (for cross-checks)."""
        raise NotImplementedError


class StructgenEngine(Engine):
    name = "structgen"

    def __init__(self, vocab: Any) -> None:
        import structgen
        from structgen.compile.compiler import compile as sg_compile

        self.vocab = vocab
        self._compile = sg_compile
        self.bitmask = structgen.allocate_bitmask(1, vocab.size)

    def compile(self, case: Case) -> Any:
        if case.kind == "regex":
            return self._compile(self.vocab, regex=case.source, cache=False)
        if case.kind == "grammar":
            return self._compile(self.vocab, grammar=case.source, cache=False)
        raise NotImplementedError(case.kind)

    def matcher(self, compiled: Any) -> Any:
        return compiled.matcher()

    def fill(self, m: Any) -> None:
        m.fill_bitmask(self.bitmask, 0)

    def accept(self, m: Any, token: int) -> bool:
        return bool(m.accept_token(token))

    def mask(self, m: Any) -> np.ndarray:
        return self.bitmask[0]


class XGrammarEngine(Engine):
    name = "xgrammar"

    def __init__(self, hf_tokenizer: Any, vocab_size: int, stop_ids: Sequence[int]) -> None:
        import xgrammar as xgr

        self.xgr = xgr
        self.info = xgr.TokenizerInfo.from_huggingface(
            hf_tokenizer, vocab_size=vocab_size, stop_token_ids=list(stop_ids)
        )
        self.compiler = xgr.GrammarCompiler(self.info, cache_enabled=False)
        self.bitmask = xgr.allocate_token_bitmask(1, vocab_size)

    def compile(self, case: Case) -> Any:
        if case.kind == "regex":
            return self.compiler.compile_regex(case.source)
        if "xgrammar_ebnf" in case.extra:
            return self.compiler.compile_grammar(case.extra["xgrammar_ebnf"])
        raise NotImplementedError(case.kind)

    def matcher(self, compiled: Any) -> Any:
        return self.xgr.GrammarMatcher(compiled)

    def fill(self, m: Any) -> None:
        m.fill_next_token_bitmask(self.bitmask, 0)

    def accept(self, m: Any, token: int) -> bool:
        return bool(m.accept_token(token))

    def mask(self, m: Any) -> np.ndarray:
        return self.bitmask[0].numpy()


class LLGuidanceEngine(Engine):
    name = "llguidance"

    def __init__(self, hf_tokenizer: Any, vocab_size: int, stop_ids: Sequence[int]) -> None:
        import llguidance
        import llguidance.hf
        import llguidance.numpy as lnp

        self.llg = llguidance
        self.lnp = lnp
        self.tok = llguidance.hf.from_tokenizer(hf_tokenizer, n_vocab=vocab_size, eos_token=list(stop_ids)[0])
        self.bitmask = lnp.allocate_token_bitmask(1, self.tok.vocab_size)

    def compile(self, case: Case) -> Any:
        if case.kind == "regex":
            grammar = self.llg.LLMatcher.grammar_from_regex(case.source)
        elif case.kind == "grammar":
            grammar = self.llg.LLMatcher.grammar_from_lark(case.extra.get("llguidance_lark", case.source))
        else:
            raise NotImplementedError(case.kind)
        m = self.llg.LLMatcher(self.tok, grammar)  # validates and builds the lexer; masks are lazy
        if m.is_error():
            raise RuntimeError(m.get_error())
        return grammar

    def matcher(self, compiled: Any) -> Any:
        return self.llg.LLMatcher(self.tok, compiled)

    def fill(self, m: Any) -> None:
        self.lnp.fill_next_token_bitmask(m, self.bitmask, 0)

    def accept(self, m: Any, token: int) -> bool:
        return bool(m.consume_token(token))

    def mask(self, m: Any) -> np.ndarray:
        return self.bitmask[0]


class OutlinesCoreEngine(Engine):
    name = "outlines-core"

    def __init__(self, vocab: Any) -> None:
        import outlines_core as oc

        self.oc = oc
        mapping: dict[bytes, list[int]] = {}
        for i in vocab.text_token_ids().tolist():
            mapping.setdefault(vocab.token_bytes[i], []).append(i)
        self.ovocab = oc.Vocabulary(min(vocab.eos_ids), mapping)
        self.bitmask = np.zeros((1, (vocab.size + 31) // 32), dtype=np.int32)

    def compile(self, case: Case) -> Any:
        if case.kind != "regex":
            raise NotImplementedError(case.kind)
        return self.oc.Index(case.source, self.ovocab)

    def matcher(self, compiled: Any) -> Any:
        return self.oc.Guide(compiled)

    def fill(self, m: Any) -> None:
        m.write_mask_into(self.bitmask.ctypes.data, self.bitmask.size, 4)

    def accept(self, m: Any, token: int) -> bool:
        try:
            m.advance(token)
            return True
        except Exception:  # noqa: BLE001 - outlines raises on a rejected token
            return False

    def mask(self, m: Any) -> np.ndarray:
        return self.bitmask[0]


# ---- workload ---------------------------------------------------------------------------------


def sample_regex_strings(pattern: str, n: int, seed: int) -> list[str]:
    """Random strings of the regex's language (walks of structgen's DFA, checked with ``re``)."""
    from structgen.automaton.dfa import DEAD
    from structgen.automaton.lexer import compile_regex_dfa

    dfa = compile_regex_dfa(pattern)
    t = dfa.transitions
    rng = random.Random(seed)
    out: list[str] = []
    for _ in range(100 * n):
        s, data = dfa.start, bytearray()
        while len(data) < 400:
            if dfa.accepting[s] and (rng.random() < 0.05 or len(data) > 150):
                break
            live = np.flatnonzero(t[s] != DEAD)
            if len(live) == 0:
                break
            ascii_live = live[live < 0x80]
            pool = ascii_live if len(ascii_live) and rng.random() < 0.9 else live
            b = int(pool[rng.randrange(len(pool))])
            data.append(b)
            s = int(t[s, b])
        if dfa.accepting[s]:
            text = bytes(data).decode("utf-8")
            if re.fullmatch(pattern, text):
                out.append(text)
        if len(out) == n:
            break
    return out


def _pct(xs: list[float], q: float) -> float:
    return float(np.percentile(np.array(xs), q)) if xs else float("nan")


def _compiles_within(eng: Engine, case: Case, timeout: float) -> bool:
    """Try the compile in a forked child first: some engines' eager precomputation can take minutes."""
    import multiprocessing as mp

    ctx = mp.get_context("fork")
    proc = ctx.Process(target=eng.compile, args=(case,))
    proc.start()
    proc.join(timeout)
    if proc.is_alive():
        proc.kill()
        proc.join()
        return False
    return True


def run_case(
    case: Case,
    engines: list[Engine],
    encode: Callable[[str], list[int]],
    n_strings: int,
    seed: int,
    compile_timeout: float = 60.0,
    probe_engines: Sequence[str] = ("outlines-core",),
    repeats: int = 1,
) -> dict[str, Any]:
    samples = list(case.samples) or sample_regex_strings(case.source, n_strings, seed)
    walks = [encode(s) for s in samples]
    res: dict[str, Any] = {
        "case": case.name,
        "kind": case.kind,
        "chars": len(case.source),
        "tokens": sum(map(len, walks)),
    }
    for eng in engines:
        if eng.name in probe_engines and not _compiles_within(eng, case, compile_timeout):
            res[eng.name] = {"error": f"compile did not finish within {compile_timeout:.0f} s"}
            continue
        try:
            t0 = time.perf_counter()
            compiled = eng.compile(case)
            compile_s = time.perf_counter() - t0
        except NotImplementedError:
            res[eng.name] = None
            continue
        except Exception as e:  # noqa: BLE001 - report, keep benchmarking the others
            res[eng.name] = {"error": f"{type(e).__name__}: {str(e)[:120]}"}
            continue
        passes = 2 if eng.name == "structgen" else 1
        times: list[list[float]] = [[] for _ in range(passes)]
        rejected = 0
        for p in range(passes):
            for ids in walks:
                m = eng.matcher(compiled)
                for tok in ids:
                    t0 = time.perf_counter()
                    eng.fill(m)
                    best = time.perf_counter() - t0
                    if p == passes - 1:  # warm pass: min over repeats filters scheduler noise
                        for _ in range(repeats - 1):
                            t0 = time.perf_counter()
                            eng.fill(m)
                            best = min(best, time.perf_counter() - t0)
                    times[p].append(best)
                    if not eng.accept(m, tok):
                        rejected += 1
                        break
                else:
                    t0 = time.perf_counter()
                    eng.fill(m)  # the final mask (EOS)
                    times[p].append(time.perf_counter() - t0)
        entry = {
            "compile_s": compile_s,
            "p50_us": _pct(times[-1], 50) * 1e6,
            "p99_us": _pct(times[-1], 99) * 1e6,
            "mean_us": float(np.mean(times[-1])) * 1e6 if times[-1] else float("nan"),
            "rejected": rejected,
        }
        if passes == 2:
            entry.update(
                cold_p50_us=_pct(times[0], 50) * 1e6,
                cold_p99_us=_pct(times[0], 99) * 1e6,
                cold_max_us=max(times[0]) * 1e6 if times[0] else float("nan"),
            )
        entry["all_times"] = times[-1]
        if passes == 2:
            entry["cold_times"] = times[0]
        res[eng.name] = entry
    return res


def make_engines(names: Sequence[str], vocab: Any, hf_tokenizer: Any) -> list[Engine]:
    engines: list[Engine] = []
    stop = sorted(vocab.eos_ids)
    for n in names:
        try:
            if n == "structgen":
                engines.append(StructgenEngine(vocab))
            elif n == "xgrammar":
                engines.append(XGrammarEngine(hf_tokenizer, vocab.size, stop))
            elif n == "llguidance":
                engines.append(LLGuidanceEngine(hf_tokenizer, vocab.size, stop))
            elif n in ("outlines-core", "outlines_core", "outlines"):
                engines.append(OutlinesCoreEngine(vocab))
            else:
                raise ValueError(f"unknown engine {n!r}")
        except ImportError as e:
            print(f"# skipping {n}: {e} (pip install 'structgen[bench]')")
    return engines


def _fmt(x: float | None, unit: str = "") -> str:
    if x is None or x != x:
        return "n/a"
    return f"{x:,.1f}{unit}" if x < 100 else f"{x:,.0f}{unit}"


def report(results: list[dict[str, Any]], engine_names: list[str]) -> str:
    """A markdown report: per case, then pooled over all steps, with structgen ratios."""
    others = [e for e in engine_names if e != "structgen"]
    lines = []
    hdr = (
        "| case | chars | tokens | "
        + " | ".join(f"{e} compile ms | {e} p50 µs | {e} p99 µs" for e in engine_names)
        + " |"
    )
    lines += [hdr, "|" + "---|" * (3 + 3 * len(engine_names))]
    for r in results:
        cells = [r["case"], str(r["chars"]), str(r["tokens"])]
        for e in engine_names:
            x = r.get(e)
            if not x or "error" in x:
                cells += ["n/a" if not x else "error", "", ""]
            else:
                cells += [_fmt(x["compile_s"] * 1e3), _fmt(x["p50_us"]), _fmt(x["p99_us"])]
        lines.append("| " + " | ".join(cells) + " |")
    # pooled
    lines += ["", "Pooled over all steps of all cases (warm for structgen; cold = first pass on a fresh compile):", ""]
    lines += [
        "| engine | mask p50 µs | mask p99 µs | mean µs | median compile ms | max compile ms |",
        "|---|---|---|---|---|---|",
    ]
    pooled: dict[str, dict[str, float]] = {}
    for e in engine_names:
        ts = [t for r in results if r.get(e) and "all_times" in r[e] for t in r[e]["all_times"]]
        cs = [r[e]["compile_s"] for r in results if r.get(e) and "compile_s" in r[e]]
        if not ts:
            continue
        pooled[e] = {
            "p50": _pct(ts, 50) * 1e6,
            "p99": _pct(ts, 99) * 1e6,
            "mean": float(np.mean(ts)) * 1e6,
            "compile": float(np.median(cs)) * 1e3,
            "compile_max": float(np.max(cs)) * 1e3,
        }
        p = pooled[e]
        lines.append(
            f"| {e} | {_fmt(p['p50'])} | {_fmt(p['p99'])} | {_fmt(p['mean'])} | {_fmt(p['compile'])} | {_fmt(p['compile_max'])} |"
        )
    cold = [
        t
        for r in results
        if r.get("structgen") and "cold_times" in r["structgen"]
        for t in r["structgen"]["cold_times"]
    ]
    if cold:
        lines.append(
            f"| structgen (cold) | {_fmt(_pct(cold, 50) * 1e6)} | {_fmt(_pct(cold, 99) * 1e6)} | "
            f"{_fmt(float(np.mean(cold)) * 1e6)} | | |"
        )
    if "structgen" in pooled and others:
        lines += ["", "Ratios structgen / other (below 1 = structgen faster):", ""]
        lines += ["| vs | mask p50 | mask p99 | median compile |", "|---|---|---|---|"]
        s = pooled["structgen"]
        for e in others:
            if e in pooled:
                o = pooled[e]
                lines.append(
                    f"| {e} | {s['p50'] / o['p50']:.2f} | {s['p99'] / o['p99']:.2f} | {s['compile'] / o['compile']:.2f} |"
                )
    rej = [(r["case"], e, r[e]["rejected"]) for r in results for e in engine_names if r.get(e) and r[e].get("rejected")]
    errs = [(r["case"], e, r[e]["error"]) for r in results for e in engine_names if r.get(e) and "error" in r[e]]
    if rej or errs:
        lines += [""] + [f"- {c}: {e} rejected {n} walk(s) of the tokenizer's own encoding" for c, e, n in rej]
        lines += [f"- {c}: {e} failed to compile: {msg}" for c, e, msg in errs]
    return "\n".join(lines)


def main(args: Any) -> str:
    from transformers import PreTrainedTokenizerFast

    from structgen import assets
    from structgen.vocab.vocabulary import Vocabulary

    tdir = assets.tokenizer_dir(args.tokenizer)
    vocab = Vocabulary.from_file(str(tdir))
    hf = PreTrainedTokenizerFast(tokenizer_file=str(tdir / "tokenizer.json"))

    def encode(s: str) -> list[int]:
        return list(hf.encode(s, add_special_tokens=False))

    engine_names = list(args.engines)
    engines = make_engines(engine_names, vocab, hf)
    # one-time costs kept out of compile timings (reported separately): structgen's per-vocabulary
    # token trie and per-process Unicode tables; the other engines' tokenizer setup is in make_engines
    t0 = time.perf_counter()
    from structgen.compile.compiler import compile as sg_compile

    sg_compile(vocab, regex=r"[\d\w\s]", cache=False)
    print(f"# structgen one-time vocabulary preparation: {time.perf_counter() - t0:.2f} s", flush=True)
    engine_names = [e.name for e in engines]
    all_suites = suites()
    chosen = list(all_suites) if args.suite == "all" else [args.suite]
    cases = [c for s in chosen for c in all_suites[s]()]
    if args.cases:
        cases = [c for c in cases if c.name in args.cases]
    results = []
    for i, case in enumerate(cases):
        r = run_case(
            case,
            engines,
            encode,
            args.strings,
            seed=args.seed + i,
            compile_timeout=args.compile_timeout,
            repeats=args.repeats,
        )
        results.append(r)
        summary = ", ".join(
            f"{e}: {r[e]['p50_us']:.1f}/{r[e]['p99_us']:.1f} µs, {r[e]['compile_s'] * 1e3:.0f} ms"
            for e in engine_names
            if r.get(e) and "p50_us" in r[e]
        )
        print(f"# {case.name}: {summary}", flush=True)
    return report(results, engine_names)


def _instance_ids(c: Any, tok: Any, value: Any) -> list[int] | None:
    """Token ids of ``value`` in the default formatting, in the instance's own key order when the
    constraint takes it, else in the order its grammar takes (the conformance harness's emitter)."""
    import harness  # tests/conformance

    from structgen.frontends.json_schema.formatting import Style, dumps

    try:
        ids = list(tok.encode(dumps(value), add_special_tokens=False))
    except (TypeError, ValueError):
        return None
    if c.matcher().accept_tokens(ids) == len(ids):
        return ids
    ok, text = harness.check_instance(c, value, Style(), None)
    return list(tok.encode(text, add_special_tokens=False)) if ok and text is not None else ids


def jsonschemabench_masks(splits: Sequence[str], n: int, repeats: int) -> str:
    """Per-split p50/p99 of structgen's per-token mask time (µs) on JSONSchemaBench; see the module doc."""
    import sys
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "conformance"))
    import harness

    import structgen
    from structgen import assets
    from structgen.runtime.trie_walk import vocab_trie

    tok = assets.load_tokenizer("llama3")
    vocab = assets.load_vocabulary("llama3")
    bitmask = np.zeros((1, (vocab.size + 31) // 32), dtype=np.int32)  # (1, ceil(V/32)) int32
    for _ in range(2):  # warm-up: per-vocabulary tables, the trie, numba's compiled kernels
        warm = structgen.compile(
            vocab, json_schema={"type": "object", "properties": {"a": {"type": "string"}}}, cache=False
        )
        wm = warm.matcher()
        for t in tok.encode('{"a": "x1"}', add_special_tokens=False):
            wm.fill_bitmask(bitmask)
            wm.accept_token(t)
    memo = vocab_trie(vocab).cache
    base_keys = set(memo)
    lines = [
        f"first {n} schemas per split, {repeats} runs each; thread CPU time per fill_bitmask (µs)",
        "",
        "| split | masks | p50 (min of runs) | p99 (min of runs) | p50 (first run) | p99 (first run) | compile p50 ms |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    pooled: tuple[list[float], list[float]] = ([], [])
    for split in splits:
        best: list[float] = []
        first: list[float] = []
        compile_ms: list[float] = []
        for case in harness.bench_cases(split, n):
            runs: list[list[float]] = []
            texts: list[list[int]] | None = None
            for _ in range(repeats):
                for k in set(memo) - base_keys:
                    del memo[k]
                t0 = time.perf_counter()
                try:
                    c = structgen.compile(vocab, json_schema=case["schema"], cache=False)
                except Exception:  # noqa: BLE001  (not compiled: no masks to time)
                    break
                compile_ms.append(1e3 * (time.perf_counter() - t0))
                if texts is None:  # untimed, and found on a separate compile so masks stay cold
                    found = (_instance_ids(c, tok, t["data"]) for t in case["tests"] if t["valid"])
                    texts = [ids for ids in found if ids]
                    c = structgen.compile(vocab, json_schema=case["schema"], cache=False)
                times: list[float] = []
                for ids in texts:
                    m = c.matcher()
                    for tid in ids:
                        t0 = time.thread_time()
                        m.fill_bitmask(bitmask)
                        times.append(1e6 * (time.thread_time() - t0))
                        if not m.accept_token(tid):
                            break
                runs.append(times)
            if runs:
                first.extend(runs[0])
                best.extend(np.min(np.array(runs), axis=0).tolist())
        pooled[0].extend(best)
        pooled[1].extend(first)
        cm = float(np.median(compile_ms)) if compile_ms else float("nan")
        lines.append(
            f"| {split} | {len(best)} | {_pct(best, 50):.1f} | {_pct(best, 99):.1f} | "
            f"{_pct(first, 50):.1f} | {_pct(first, 99):.1f} | {cm:.1f} |"
        )
        print(lines[-1], flush=True)
    lines.append(
        f"| all | {len(pooled[0])} | {_pct(pooled[0], 50):.1f} | {_pct(pooled[0], 99):.1f} | "
        f"{_pct(pooled[1], 50):.1f} | {_pct(pooled[1], 99):.1f} | |"
    )
    return "\n".join(lines)


if __name__ == "__main__":
    import argparse

    ap = argparse.ArgumentParser(description="structgen per-token masks on JSONSchemaBench dev splits")
    ap.add_argument("--n", type=int, default=60, help="first N schemas per split")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--splits", default="Glaiveai2K,Github_trivial,Github_easy,Github_medium,JsonSchemaStore")
    a = ap.parse_args()
    print(jsonschemabench_masks(a.splits.split(","), a.n, a.repeats))
