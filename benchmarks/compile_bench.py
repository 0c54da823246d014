"""JSON Schema compile time on the JSONSchemaBench dev splits, one process, CPU clock.

    python benchmarks/compile_bench.py --n 150                     # per-split median / p90 compile ms
    python benchmarks/compile_bench.py --n 30 --phases             # + lexer / Earley / engine split
    python benchmarks/compile_bench.py --n 150 --json /tmp/c.json  # raw per-schema numbers

Each schema is compiled with ``structgen.compile(vocab, json_schema=s, cache=False)`` against the
Llama-3 vocabulary (``assets.load_vocabulary("llama3")``, loaded once). Times are this process's CPU
time (``time.process_time``), which a shared machine inflates less than wall time. Schemas are
compiled in order, so process-wide caches (per-terminal DFAs, regexes) warm up as the run goes: the
first schema's time is reported separately ("first"), and ``--cold`` clears structgen's automaton
caches before every schema to show the cold-cache cost. Failed compiles (unsupported, limits) are
counted and timed too: their time is what a caller waits before the error.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests" / "conformance"))

SPLITS = ("Glaiveai2K", "Github_trivial", "Github_easy", "Github_medium", "JsonSchemaStore")


def _clear_caches() -> None:
    """Drop structgen's process-wide automaton caches (regex DFAs, per-terminal DFAs)."""
    import structgen.automaton.lexer as lexer

    for name in dir(lexer):
        obj = getattr(lexer, name)
        if hasattr(obj, "cache_clear"):
            obj.cache_clear()


def _phases() -> tuple[dict[str, float], Any]:
    """Wrap the compile phases with CPU timers; returns (accumulator, restore function)."""
    import importlib

    # ``structgen.compile`` is also the public function, so import the module by its dotted name
    gc = importlib.import_module("structgen.compile.grammar_compiler")

    acc: dict[str, float] = {}
    saved = {name: getattr(gc, name) for name in ("build_lexer_dfa", "build_tables", "GrammarEngine", "prune_grammar")}

    def timed(name: str, fn: Any) -> Any:
        def wrapper(*a: Any, **k: Any) -> Any:
            t = time.process_time()
            try:
                return fn(*a, **k)
            finally:
                acc[name] = acc.get(name, 0.0) + time.process_time() - t

        return wrapper

    for name, fn in saved.items():
        setattr(gc, name, timed(name, fn))

    def restore() -> None:
        for name, fn in saved.items():
            setattr(gc, name, fn)

    return acc, restore


def _pct(xs: list[float], q: float) -> float:
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(q * len(xs)))]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", type=int, default=150, help="schemas per split")
    ap.add_argument("--splits", nargs="*", default=list(SPLITS))
    ap.add_argument("--phases", action="store_true", help="time lexer / Earley tables / engine separately")
    ap.add_argument("--cold", action="store_true", help="clear automaton caches before every schema")
    ap.add_argument("--json", help="write per-schema numbers here")
    ap.add_argument("--slowest", type=int, default=5, help="list the slowest schemas")
    args = ap.parse_args()

    import harness

    import structgen
    from structgen import assets

    vocab = assets.load_vocabulary("llama3")
    acc, restore = _phases() if args.phases else ({}, lambda: None)
    rows: list[dict[str, Any]] = []
    first: float | None = None
    for split in args.splits:
        for case in harness.bench_cases(split, args.n):
            if args.cold:
                _clear_caches()
            acc.clear()
            t = time.process_time()
            try:
                structgen.compile(vocab, json_schema=case["schema"], cache=False)
                status = "ok"
            except Exception as exc:  # noqa: BLE001 - every failure is a data point
                status = type(exc).__name__
            ms = (time.process_time() - t) * 1e3
            if first is None:
                first = ms
            rows.append(
                {"split": split, "id": case["id"], "ms": ms, "status": status} | {k: v * 1e3 for k, v in acc.items()}
            )
    restore()

    cols = ["build_lexer_dfa", "build_tables", "GrammarEngine"] if args.phases else []
    head = "| split | n | ok | median ms | p90 ms | max ms |" + "".join(f" median {c} |" for c in cols)
    print(head)
    print("|" + "---|" * (head.count("|") - 1))
    groups = [(s, [r for r in rows if r["split"] == s]) for s in args.splits] + [("all", rows)]
    for name, rs in groups:
        if not rs:
            continue
        ms = [r["ms"] for r in rs]
        ok = sum(r["status"] == "ok" for r in rs)
        line = f"| {name} | {len(rs)} | {ok} | {statistics.median(ms):.1f} | {_pct(ms, 0.9):.1f} | {max(ms):.0f} |"
        line += "".join(f" {statistics.median([r.get(c, 0.0) for r in rs]):.1f} |" for c in cols)
        print(line)
    print(f"\nfirst schema (cold caches): {first:.1f} ms")
    for r in sorted(rows, key=lambda r: -r["ms"])[: args.slowest]:
        print(f"slow: {r['ms']:8.1f} ms  {r['id']}  {r['status']}")
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=1))


if __name__ == "__main__":
    main()
