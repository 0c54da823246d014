"""The JSON Schema conformance ratchet: run the JSON Schema Test Suite and JSONSchemaBench through
structgen and compare per-case results with a checked-in baseline.

How an instance is checked. A valid instance must be *accepted as text*: it is written in the
default formatting (``structgen.frontends.json_schema.formatting.dumps``: ", " and ": ",
numbers in positional notation, strings as ``json.dumps(ensure_ascii=False)``) and fed to a fresh
matcher with ``accept_text``, object keys in whatever order the grammar takes (the emitter tries
the instance's keys in turn, so schema-order output is found without guessing), then
``is_accepting()`` must hold. An invalid instance must be rejected in every key order. For a sample
of valid instances the accepted text is also tokenized with the real Llama-3 tokenizer and fed
token by token with ``accept_token``.

Per case the result is ``compiled`` (with valid/invalid counts) or ``refused:<Error>[:keyword]``.
A case *passes* when it compiled and every instance came out right, or when it was refused with a
named error. Regressions against the baseline fail the test: a case that passed and now fails, or a
schema that compiled and is now refused.

Regenerate the baseline after an improvement (and the support page):

    python tests/conformance/run_conformance.py --update
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from itertools import islice
from pathlib import Path
from typing import Any

DATA = Path(__file__).resolve().parents[2].parent / "shared" / "data"
if not DATA.exists():  # a clone elsewhere: look for shared/ next to the repository root
    DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
SUITE = DATA / "json-schema-test-suite"
BENCH = DATA / "jsonschemabench"
HERE = Path(__file__).resolve().parent
BASELINE = HERE / "baseline.json"
BASELINE_SLOW = HERE / "baseline_full.json"
SPLITS = ("Glaiveai2K", "Github_trivial", "Github_easy", "Github_medium", "JsonSchemaStore")
DRAFTS = ("draft2020-12", "draft7")
# default tier: the whole Test Suite (top-level files) and the first N schemas of each dev split
BENCH_DEFAULT_N = 15
MAX_INSTANCE_STEPS = 20_000
# the key-order search for an invalid instance: the same budget by default (a screening run may lower
# it); an invalid instance whose search runs out is counted rejected and reported as ``undecided``
MAX_INVALID_STEPS = MAX_INSTANCE_STEPS
# the full-split tier (6,000 schemas) searches invalid instances with this smaller budget: with the
# default one its large any-order objects take hours; budget-outs show up as ``undecided``
FULL_INVALID_STEPS = 2_000
# format.json checks that 'format' is only an annotation by default; structgen asserts the formats
# it knows (documented in docs/json-schema.md), as JSONSchemaBench's harness also leaves these out.
SKIPPED_FILES = {"format.json"}


def data_available() -> bool:
    return SUITE.exists() and BENCH.exists()


def remote_registry() -> dict[str, Any]:
    """The Test Suite's remotes, served from memory at http://localhost:1234/ (never fetched)."""
    reg: dict[str, Any] = {}
    root = SUITE / "remotes"
    for p in sorted(root.rglob("*.json")):
        rel = p.relative_to(root).as_posix()
        try:
            reg["http://localhost:1234/" + rel] = json.loads(p.read_text())
        except json.JSONDecodeError:
            continue
    return reg


def suite_cases(draft: str) -> list[dict[str, Any]]:
    out = []
    for p in sorted((SUITE / draft).glob("*.json")):
        if p.name in SKIPPED_FILES:
            continue
        for i, case in enumerate(json.loads(p.read_text())):
            out.append(
                {
                    "id": f"{draft}/{p.name}#{i}",
                    "schema": case["schema"],
                    "tests": case["tests"],
                    "description": case["description"],
                    "draft": draft,
                }
            )
    return out


def bench_cases(split: str, limit: int | None) -> list[dict[str, Any]]:
    out = []
    with open(BENCH / f"{split}.jsonl") as fh:
        for line in fh:
            rec = json.loads(line)
            out.append({"id": rec["id"], "schema": rec["schema"], "tests": rec["tests"]})
            if limit is not None and len(out) >= limit:
                break
    return out


# ---- emitting an instance through a matcher --------------------------------------------------------
class _Budget(Exception):
    pass


def feed_value(m: Any, value: Any, style: Any, depth: int, steps: list[int]) -> Iterator[tuple[Any, str]]:
    """Every way (a fork of) ``m`` reads ``value``: (matcher after it, text fed), one per distinct state.

    Objects are tried in every key order the matcher takes (schema order first), and the caller
    backtracks into these alternatives when a later part of the instance fails, so an early key
    order that a nested value happens to allow never hides the one the rest of the grammar needs.
    """
    from structgen.frontends.json_schema.formatting import dumps

    steps[0] += 1
    if steps[0] > steps[1]:
        raise _Budget()

    def punct(what: str) -> str:
        return _punct(style, what, depth)

    if isinstance(value, dict) and value:
        m = m.fork()
        opener = punct("{")
        if not m.accept_text(opener):
            return
        keys = key_order(value)
        for m2, text in _feed_members(m, value, keys, True, style, depth, steps):
            yield m2, opener + text
        return
    if isinstance(value, list) and value:
        m = m.fork()
        text = punct("[")
        if not m.accept_text(text):
            return
        yield from _feed_items(m, value, 0, text, style, depth, steps)
        return
    text = dumps(value, style if style.name != "flexible" else "default", depth)
    m = m.fork()
    if m.accept_text(text):
        yield m, text


def _punct(style: Any, what: str, depth: int) -> str:
    if style.name == "flexible":
        return {",": ", ", ":": ": "}.get(what, what)
    return str(style.punct(what, depth)[0])


def _distinct(results: Iterator[tuple[Any, str]]) -> Iterator[tuple[Any, str]]:
    seen: set[Any] = set()
    for m, text in results:
        if m.state not in seen:
            seen.add(m.state)
            yield m, text


def _feed_items(
    m: Any, items: list, i: int, text: str, style: Any, depth: int, steps: list[int]
) -> Iterator[tuple[Any, str]]:
    if i == len(items):
        close = _punct(style, "]", depth)
        m2 = m.fork()
        if m2.accept_text(close):
            yield m2, text + close
        return
    sep = ""
    if i:
        sep = _punct(style, ",", depth)
        m = m.fork()
        if not m.accept_text(sep):
            return
    for m2, t in islice(_distinct(feed_value(m, items[i], style, depth + 1, steps)), ALTS[0]):
        yield from _feed_items(m2, items, i + 1, text + sep + t, style, depth, steps)


def _feed_members(
    m: Any, obj: dict, remaining: list[str], first: bool, style: Any, depth: int, steps: list[int]
) -> Iterator[tuple[Any, str]]:
    memo_key = (id(obj), m.state, tuple(remaining), first)
    if memo_key in FAILED:
        return
    found = False
    for res in _feed_members_uncached(m, obj, remaining, first, style, depth, steps):
        found = True
        yield res
    if not found:
        FAILED.add(memo_key)


def _feed_members_uncached(
    m: Any, obj: dict, remaining: list[str], first: bool, style: Any, depth: int, steps: list[int]
) -> Iterator[tuple[Any, str]]:
    if not remaining:
        close = _punct(style, "}", depth)
        m2 = m.fork()
        if m2.accept_text(close):
            yield m2, close
        return
    for k in remaining:
        m2 = m.fork()
        head = (
            ("" if first else _punct(style, ",", depth)) + json.dumps(k, ensure_ascii=False) + _punct(style, ":", depth)
        )
        if not m2.accept_text(head):
            continue
        rest = [r for r in remaining if r != k]
        for m3, vtext in islice(_distinct(feed_value(m2, obj[k], style, depth + 1, steps)), ALTS[0]):
            for m4, rtext in _feed_members(m3, obj, rest, False, style, depth, steps):
                yield m4, head + vtext + rtext


RANK: dict[str, int] = {}
ORDERS: list[dict[str, int]] = []
FAILED: set[tuple] = set()
UNDECIDED = [False]
ALTS: list[int | None] = [None]  # how many ways of reading a nested value to backtrack into (None: all)
GREEDY_STEPS = 2_000


def property_rank(schema: Any) -> dict[str, int]:
    """Property names in the order a walk of the schema document meets them (a key-order hint)."""
    rank: dict[str, int] = {}
    for order in property_orders(schema):
        for k in order:
            rank.setdefault(k, len(rank))
    return rank


def property_orders(schema: Any) -> list[dict[str, int]]:
    """Every ``properties`` block of the schema document as {name: position}, in walk order."""
    orders: list[dict[str, int]] = []

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            props = node.get("properties")
            if isinstance(props, dict) and props:
                orders.append({k: i for i, k in enumerate(props)})
            for v in node.values():
                walk(v)
        elif isinstance(node, list):
            for v in node:
                walk(v)

    walk(schema)
    return orders


def key_order(obj: dict) -> list[str]:
    """The order to try ``obj``'s keys in: that of the ``properties`` block naming most of them (and
    fewest others; a schema-order grammar then goes straight through), then the document-wide rank, then the
    instance's own order. Only a search hint: every order is still tried."""
    best: dict[str, int] = {}
    fit = (0, 0)
    for order in ORDERS:
        n = sum(1 for k in obj if k in order)
        if n and (n, n - len(order)) > fit:  # most keys named, then fewest names besides
            best, fit = order, (n, n - len(order))
    own = list(obj)
    return sorted(obj, key=lambda k: (best.get(k, len(best)), RANK.get(k, len(RANK)), own.index(k)))


def check_instance(
    compiled: Any, value: Any, style: Any, schema: Any = None, budget: int | None = None
) -> tuple[bool, str | None]:
    """(accepted, accepted text) for ``value`` under ``compiled`` (some key order, as text).

    ``budget`` caps the key-order search (MAX_INSTANCE_STEPS); ``UNDECIDED[0]`` tells afterwards
    whether a rejection came from the search running out rather than from trying every order."""
    global RANK, ORDERS
    UNDECIDED[0] = False
    ORDERS = property_orders(schema) if schema is not None else []
    RANK = property_rank(schema) if schema is not None else {}
    from structgen.frontends.json_schema.formatting import dumps

    own = dumps(value, style if style.name != "flexible" else "default", 0)  # the instance's own key order
    m0 = compiled.matcher()
    if m0.accept_text(own) and m0.is_accepting():
        return True, own
    limit = MAX_INSTANCE_STEPS if budget is None else budget
    # a greedy pass first (each nested value read its first way only: a value that reads in many key
    # orders cannot then hide a different key choice around it), then the full backtracking search
    for alts, cap in ((1, min(GREEDY_STEPS, limit)), (None, limit)):
        FAILED.clear()
        ALTS[0] = alts
        steps = [0, cap]
        try:
            for m, text in feed_value(compiled.matcher(), value, style, 0, steps):
                if m.is_accepting():
                    return True, text
            if alts is None:
                return False, None
        except (_Budget, RecursionError):
            if alts is None:
                UNDECIDED[0] = True
        finally:
            ALTS[0] = None
    return False, None


def check_tokens(compiled: Any, tokenizer: Any, text: str) -> bool:
    ids = tokenizer.encode(text, add_special_tokens=False)
    m = compiled.matcher()
    for t in ids:
        if not m.accept_token(t):
            return False
    return bool(m.is_accepting())


# ---- running cases -------------------------------------------------------------------------------
def run_case(
    case: dict[str, Any], vocab: Any, options: dict[str, Any], tokenizer: Any = None, token_sample: int = 0
) -> dict[str, Any]:
    import structgen
    from structgen.errors import StructgenError, UnsupportedSchema
    from structgen.frontends.json_schema.formatting import Style

    style = Style.of(options)
    t0 = time.perf_counter()
    try:
        compiled = structgen.compile(vocab, json_schema=case["schema"], cache=False, **options)
    except StructgenError as e:
        kw = getattr(e, "keyword", "") if isinstance(e, UnsupportedSchema) else getattr(e, "limit", "")
        n_valid = sum(1 for t in case["tests"] if t["valid"])
        return {
            "status": f"refused:{type(e).__name__}" + (f":{kw}" if kw else ""),
            "valid": [0, n_valid],
            "invalid": [0, len(case["tests"]) - n_valid],
            "compile_ms": round(1000 * (time.perf_counter() - t0), 1),
            "message": str(e)[:200],
        }
    except RecursionError:
        n_valid = sum(1 for t in case["tests"] if t["valid"])
        return {"status": "crash:RecursionError", "valid": [0, n_valid], "invalid": [0, len(case["tests"]) - n_valid]}
    compile_ms = round(1000 * (time.perf_counter() - t0), 1)
    v_ok = v_n = i_ok = i_n = undecided = 0
    failures = []
    sampled = 0
    for idx, t in enumerate(case["tests"]):
        ok, text = check_instance(compiled, t["data"], style, case["schema"], None if t["valid"] else MAX_INVALID_STEPS)
        if t["valid"]:
            v_n += 1
            if ok and tokenizer is not None and sampled < token_sample and text is not None:
                sampled += 1
                if not check_tokens(compiled, tokenizer, text):
                    ok = False
                    failures.append(f"valid #{idx} accepted as text but rejected as Llama-3 tokens")
            if ok:
                v_ok += 1
            else:
                failures.append(f"valid #{idx} rejected")
        else:
            i_n += 1
            if not ok:
                i_ok += 1
                undecided += UNDECIDED[0]
            else:
                failures.append(f"invalid #{idx} accepted as {text!r}"[:200])
    out: dict[str, Any] = {"status": "compiled", "valid": [v_ok, v_n], "invalid": [i_ok, i_n], "compile_ms": compile_ms}
    if compiled.info.get("dropped"):
        out["dropped"] = [d["keyword"] for d in compiled.info["dropped"]]
    if failures:
        out["failures"] = failures[:5]
    if undecided:
        out["undecided"] = undecided
    return out


def passed(res: dict[str, Any]) -> bool:
    if res["status"] == "compiled":
        return res["valid"][0] == res["valid"][1] and res["invalid"][0] == res["invalid"][1]
    return res["status"].startswith("refused:")


def run_all(
    vocab: Any,
    bench_n: int | None = BENCH_DEFAULT_N,
    tokenizer: Any = None,
    token_sample: int = 1,
    suite: bool = True,
    bench: bool = True,
    progress: bool = False,
) -> dict[str, dict[str, Any]]:
    results: dict[str, dict[str, Any]] = {}
    registry = remote_registry() if suite else {}
    if suite:
        for draft in DRAFTS:
            for case in suite_cases(draft):
                uses_remote = "localhost:1234" in json.dumps(case["schema"])
                opts: dict[str, Any] = {"draft": "7" if draft == "draft7" else "2020-12"}
                if uses_remote:
                    opts["registry"] = registry
                results[case["id"]] = run_case(case, vocab, opts, tokenizer, token_sample)
                if progress:
                    print(case["id"], results[case["id"]]["status"], flush=True)
    if bench:
        for split in SPLITS:
            for case in bench_cases(split, bench_n):
                if not case["tests"]:
                    continue
                results[case["id"]] = run_case(case, vocab, {}, tokenizer, token_sample)
                if progress:
                    print(case["id"], results[case["id"]]["status"], flush=True)
    return results


def summarize(results: dict[str, dict[str, Any]]) -> dict[str, dict[str, int]]:
    """Per group (draft or split): cases, compiled, passed, valid accepted/total, invalid rejected/total."""
    groups: dict[str, dict[str, int]] = {}
    for cid, r in results.items():
        g = cid.split("/")[0]
        s = groups.setdefault(
            g,
            {
                "cases": 0,
                "compiled": 0,
                "passed": 0,
                "valid_ok": 0,
                "valid": 0,
                "invalid_ok": 0,
                "invalid": 0,
                "valid_rejected": 0,
                "invalid_accepted": 0,
                "undecided": 0,
            },
        )
        s["cases"] += 1
        s["passed"] += passed(r)
        if r["status"] == "compiled":
            s["compiled"] += 1
            s["valid_ok"] += r["valid"][0]
            s["valid"] += r["valid"][1]
            s["invalid_ok"] += r["invalid"][0]
            s["invalid"] += r["invalid"][1]
            s["valid_rejected"] += r["valid"][1] - r["valid"][0]
            s["invalid_accepted"] += r["invalid"][1] - r["invalid"][0]
            s["undecided"] += r.get("undecided", 0)
    return groups


def compare(baseline: dict[str, dict[str, Any]], results: dict[str, dict[str, Any]]) -> tuple[list[str], list[str]]:
    """(regressions, improvements) of ``results`` against ``baseline``."""
    regressions, improvements = [], []
    for cid, old in baseline.items():
        new = results.get(cid)
        if new is None:
            continue
        if passed(old) and not passed(new):
            regressions.append(f"{cid}: passed before ({old['status']}), now {new['status']} {new.get('failures', '')}")
        elif old["status"] == "compiled" and new["status"] != "compiled":
            regressions.append(f"{cid}: compiled before, now {new['status']} ({new.get('message', '')})")
        elif not passed(old) and passed(new):
            improvements.append(f"{cid}: now passes ({new['status']})")
        elif old["status"] != "compiled" and new["status"] == "compiled":
            improvements.append(f"{cid}: now compiles")
    return regressions, improvements


def strip(results: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """What the baseline keeps per case (no timings)."""
    keep = ("status", "valid", "invalid", "dropped")
    return {cid: {k: r[k] for k in keep if k in r} for cid, r in sorted(results.items())}
