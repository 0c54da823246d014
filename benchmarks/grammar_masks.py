"""Grammar mask suite: per-token mask time and compile time of structgen's grammar engine, with
xgrammar and llguidance on the same tokenizer and documents in the same run (when installed).

    python -m benchmarks.grammar_masks --tokenizer llama3 --docs 60

Workload: random JSON documents (nested objects and arrays, escapes, CJK and emoji, numbers in every
form) from a fixed seed, encoded with the tokenizer's own encoding; at every token the matcher's
bitmask is filled and timed (the forward step a decoder would do), then the token is accepted.

* structgen: ``grammars/json.lark`` (Lark), compiled against the vocabulary. *cold*: a freshly
  compiled engine on the first documents (token classifications are computed lazily on first use);
  *warm*: the same engine on new documents (classification caches warm, parser states and masks
  new; a real server reuses one compiled grammar across requests).
* llguidance: the same ``json.lark`` text (its Lark dialect accepts it).
* xgrammar: its built-in JSON grammar (it does not read Lark), compiled with ``GrammarCompiler``.

``suite(tokenizer_name, ...)`` returns one row per engine (dicts) and ``main()`` prints a Markdown
table. For the shared runner, importing this module registers a ``grammar`` suite (JSON with random
documents, plus the arithmetic, SQL and C-like grammars on sample sentences) through
``mask_bench.register_cases``.
"""

from __future__ import annotations

import argparse
import json
import platform
import random
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

GRAMMAR_DIR = Path(__file__).resolve().parents[1] / "grammars"


def _rand_string(rng: random.Random) -> str:
    pool = [
        "alpha",
        "beta",
        "Gamma",
        "delta_1",
        "x",
        "naïve",
        "café",
        "中文",
        "日本語",
        "😀",
        " ",
        "\n",
        '"',
        "\\",
        "/",
        "tab\t",
    ]
    return "".join(rng.choice(pool) for _ in range(rng.randint(0, 6)))


def _rand_value(rng: random.Random, depth: int) -> Any:
    r = rng.random()
    if depth > 3 or r < 0.35:
        k = rng.randint(0, 5)
        if k == 0:
            return rng.randint(-1000, 10**6)
        if k == 1:
            return round(rng.uniform(-1e4, 1e4), rng.randint(0, 5))
        if k == 2:
            return rng.choice([True, False, None])
        if k == 3:
            return float(f"{rng.randint(1, 9)}e{rng.randint(-20, 20)}")
        return _rand_string(rng)
    if r < 0.7:
        return {_rand_string(rng) or "k": _rand_value(rng, depth + 1) for _ in range(rng.randint(0, 5))}
    return [_rand_value(rng, depth + 1) for _ in range(rng.randint(0, 5))]


def json_documents(n: int, seed: int = 0) -> list[str]:
    """``n`` random JSON texts (objects at the top level), compact or indented at random."""
    rng = random.Random(seed)
    docs = []
    for _ in range(n):
        value = {f"key{i}": _rand_value(rng, 1) for i in range(rng.randint(1, 6))}
        indent = rng.choice([None, None, 2])
        docs.append(json.dumps(value, ensure_ascii=rng.random() < 0.3, indent=indent))
    return docs


def _pct(xs: list[tuple[float, float]]) -> dict[str, float]:
    """Wall-clock and thread-CPU percentiles (CPU time is immune to other processes on a busy box)."""
    a = np.array(xs) * 1e6  # (n, 2) µs: wall, cpu
    out: dict[str, float] = {"n": len(xs)}
    for col, tag in ((0, ""), (1, "cpu_")):
        out[f"{tag}p50_us"] = float(np.percentile(a[:, col], 50))
        out[f"{tag}p99_us"] = float(np.percentile(a[:, col], 99))
        out[f"{tag}mean_us"] = float(a[:, col].mean())
    return out


def _time_masks(
    engine: str,
    docs: list[list[int]],
    new_matcher: Callable[[], Any],
    fill: Callable[[Any], object],
    accept: Callable[[Any, int], bool],
    error: Callable[[Any], str] = lambda m: "",
    finished: Callable[[Any], bool] | None = None,
) -> list[tuple[float, float]]:
    """(wall, thread-CPU) seconds of every ``fill(matcher)`` along each document (a fresh matcher per
    document), accepting each token after its mask; a rejected token raises with ``error(matcher)``,
    and ``finished(matcher)`` (when given) must hold at the end of each document."""
    times = []
    for ids in docs:
        m = new_matcher()
        for t in ids:
            t1, c1 = time.perf_counter(), time.thread_time()
            fill(m)
            times.append((time.perf_counter() - t1, time.thread_time() - c1))
            if not accept(m, t):
                raise AssertionError(f"{engine} rejected token {t}{error(m)}")
        if finished is not None:
            assert finished(m)
    return times


def _row(
    engine: str,
    grammar: str,
    compile_s: float,
    run: Callable[[list[list[int]]], list[tuple[float, float]]],
    cold_docs: list[list[int]],
    warm_docs: list[list[int]],
) -> dict[str, Any]:
    """One engine's result row: compile time and mask-time percentiles, cold documents first."""
    cold = run(cold_docs)
    warm = run(warm_docs)
    return {"engine": engine, "grammar": grammar, "compile_s": compile_s, "cold": _pct(cold), "warm": _pct(warm)}


def bench_structgen(vocab: Any, encoded: list[list[int]], warm_docs: list[list[int]]) -> dict[str, Any]:
    from structgen.compile.grammar_compiler import compile_grammar_engine
    from structgen.frontends.lark_frontend import grammar_from_lark
    from structgen.runtime.bitmask import allocate_bitmask
    from structgen.runtime.matcher import Matcher

    text = (GRAMMAR_DIR / "json.lark").read_text()
    vocab.arrays()  # the vocabulary's token arrays are shared by every constraint: not a compile cost
    t0 = time.perf_counter()
    engine = compile_grammar_engine(grammar_from_lark(text), vocab)
    compile_s = time.perf_counter() - t0
    bitmask = allocate_bitmask(1, vocab.size)

    def run(docs: list[list[int]]) -> list[tuple[float, float]]:
        return _time_masks(
            "structgen",
            docs,
            lambda: Matcher(engine, vocab),
            lambda m: m.fill_bitmask(bitmask, 0),
            lambda m, t: m.accept_token(t),
            lambda m: f": {m.error}",
            lambda m: m.is_accepting(),
        )

    return {**_row("structgen", "json.lark", compile_s, run, encoded, warm_docs), "stats": engine.stats()}


def bench_llguidance(tokenizer: Any, encoded: list[list[int]], warm_docs: list[list[int]]) -> dict[str, Any]:
    import llguidance
    import llguidance.hf
    import llguidance.numpy as lln

    lt = llguidance.hf.from_tokenizer(tokenizer)
    text = (GRAMMAR_DIR / "json.lark").read_text()
    t0 = time.perf_counter()
    grammar = llguidance.grammar_from("lark", text)
    first = llguidance.LLMatcher(lt, grammar)
    compile_s = time.perf_counter() - t0
    if first.get_error():
        raise RuntimeError(first.get_error())
    bitmask = np.zeros((1, (lt.vocab_size + 31) // 32), dtype=np.int32)

    def run(docs: list[list[int]]) -> list[tuple[float, float]]:
        return _time_masks(
            "llguidance",
            docs,
            lambda: llguidance.LLMatcher(lt, grammar),
            lambda m: lln.fill_next_token_bitmask(m, bitmask, 0),
            lambda m, t: m.consume_token(t),
            lambda m: f": {m.get_error()}",
        )

    return _row("llguidance", "json.lark", compile_s, run, encoded, warm_docs)


def bench_xgrammar(tokenizer: Any, encoded: list[list[int]], warm_docs: list[list[int]]) -> dict[str, Any]:
    import xgrammar as xgr

    info = xgr.TokenizerInfo.from_huggingface(tokenizer)
    compiler = xgr.GrammarCompiler(info)
    t0 = time.perf_counter()
    compiled = compiler.compile_builtin_json_grammar()
    compile_s = time.perf_counter() - t0
    bitmask = xgr.allocate_token_bitmask(1, info.vocab_size)

    def run(docs: list[list[int]]) -> list[tuple[float, float]]:
        return _time_masks(
            "xgrammar",
            docs,
            lambda: xgr.GrammarMatcher(compiled),
            lambda m: m.fill_next_token_bitmask(bitmask),
            lambda m, t: m.accept_token(t),
        )

    return _row("xgrammar", "builtin JSON", compile_s, run, encoded, warm_docs)


def suite(tokenizer_name: str = "llama3", n_docs: int = 60, seed: int = 0, others: bool = True) -> list[dict[str, Any]]:
    """Rows for the JSON grammar on one tokenizer: structgen, then llguidance and xgrammar if installed."""
    from structgen import assets

    tokenizer = assets.load_tokenizer(tokenizer_name)
    vocab = assets.load_vocabulary(tokenizer_name)
    docs = json_documents(2 * n_docs, seed)
    enc = [tokenizer.encode(d, add_special_tokens=False) for d in docs]
    cold_docs, warm_docs = enc[:n_docs], enc[n_docs:]
    rows = [bench_structgen(vocab, cold_docs, warm_docs)]
    if others:
        for fn in (bench_llguidance, bench_xgrammar):
            try:
                rows.append(fn(tokenizer, cold_docs, warm_docs))
            except ImportError as exc:
                rows.append({"engine": fn.__name__.removeprefix("bench_"), "error": f"not installed: {exc}"})
    for r in rows:
        r["tokenizer"] = tokenizer_name
    return rows


def markdown(rows: list[dict[str, Any]]) -> str:
    """A Markdown table with ratios to structgen (ratio > 1: structgen is slower)."""
    base = rows[0]
    lines = [
        "| engine | grammar | compile | cold p50 / p99 (µs) | warm p50 / p99 (µs) | warm CPU p50 / p99 (µs) "
        "| structgen ÷ engine (warm CPU p50 / p99) |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        if "error" in r:
            lines.append(f"| {r['engine']} | – | – | – | – | – | {r['error']} |")
            continue
        ratio = (
            "1"
            if r is base
            else f"{base['warm']['cpu_p50_us'] / r['warm']['cpu_p50_us']:.1f}× / "
            f"{base['warm']['cpu_p99_us'] / r['warm']['cpu_p99_us']:.1f}×"
        )
        lines.append(
            f"| {r['engine']} | {r['grammar']} | {r['compile_s'] * 1e3:.0f} ms | {r['cold']['p50_us']:.0f} / {r['cold']['p99_us']:.0f} "
            f"| {r['warm']['p50_us']:.0f} / {r['warm']['p99_us']:.0f} "
            f"| {r['warm']['cpu_p50_us']:.0f} / {r['warm']['cpu_p99_us']:.0f} | {ratio} |"
        )
    n = base["warm"]["n"] + base["cold"]["n"]
    lines.append(
        f"\n{n} masks; machine: {platform.machine()}, {platform.processor() or 'cpu'}, python {platform.python_version()}"
    )
    return "\n".join(lines)


# ---- cases for the shared mask runner (benchmarks/mask_bench.py) -------------------------------

# xgrammar reads EBNF, not Lark: the same language as grammars/json.lark.
JSON_EBNF = r"""
root ::= ws value ws
value ::= object | array | string | number | "true" | "false" | "null"
object ::= "{" ws "}" | "{" ws member (ws "," ws member)* ws "}"
member ::= string ws ":" ws value
array ::= "[" ws "]" | "[" ws value (ws "," ws value)* ws "]"
string ::= "\"" char* "\""
char ::= [^"\\\x00-\x1f] | "\\" (["\\/bfnrt] | "u" [0-9a-fA-F]{4})
number ::= "-"? ("0" | [1-9] [0-9]*) ("." [0-9]+)? ([eE] [+-]? [0-9]+)?
ws ::= [ \t\n\r]{0,40}
"""

SAMPLES = {
    "arithmetic": ("1 + 2 * (3 - x) / f(4, y) % 7", "-2 ^ 3 ^ 2 - -a", "alpha_1+beta*gamma"),
    "sql_subset": (
        "SELECT a, b FROM t WHERE a > 1 AND b = 'x' ORDER BY a DESC LIMIT 10;",
        "select count(*) from users u join orders o on u.id = o.uid where o.total >= 100",
    ),
    "c_like": ("int main(int argc, char *argv) { int x = 1; while (x < 10) { x = x + 1; } return x; }",),
}


def cases(n_json: int = 20, seed: int = 0) -> list[Any]:
    """Grammar cases for mask_bench's runner: JSON (random documents) and three other shipped grammars."""
    try:
        from mask_bench import Case  # type: ignore[import-not-found]
    except ImportError:
        from benchmarks.mask_bench import Case
    out = [
        Case(
            "json_grammar",
            "grammar",
            (GRAMMAR_DIR / "json.lark").read_text(),
            samples=tuple(json_documents(n_json, seed)),
            extra={"xgrammar_ebnf": JSON_EBNF},
        )
    ]
    for name, samples in SAMPLES.items():
        out.append(Case(f"{name}_grammar", "grammar", (GRAMMAR_DIR / f"{name}.lark").read_text(), samples=samples))
    return out


def register() -> None:
    """Register the ``grammar`` suite with mask_bench (``--suite grammar`` or ``--suite all``)."""
    try:
        from mask_bench import register_cases  # type: ignore[import-not-found]
    except ImportError:
        from benchmarks.mask_bench import register_cases
    register_cases("grammar", cases)


try:  # importing this module from the runner registers the suite
    register()
except ImportError:  # mask_bench not present: the standalone CLI below still works
    pass


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--tokenizer", default="llama3")
    ap.add_argument("--docs", type=int, default=60, help="documents per pass (cold pass, then warm pass)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--no-others", action="store_true", help="structgen only")
    ap.add_argument("--json", action="store_true", help="print raw rows as JSON")
    args = ap.parse_args()
    rows = suite(args.tokenizer, args.docs, args.seed, others=not args.no_others)
    print(json.dumps(rows, indent=1) if args.json else markdown(rows))


if __name__ == "__main__":
    main()
