"""Run the conformance ratchet by hand; ``--update`` rewrites the baseline and docs/json-schema.md.

python tests/conformance/run_conformance.py            # default tier, print a summary
python tests/conformance/run_conformance.py --update   # ... and rewrite baseline.json + the doc
python tests/conformance/run_conformance.py --full --update   # all dev split schemas (baseline_full.json,
                                                              # docs/json-schema-support-full.md)

Re-running only some cases (their baseline entries alone are compared and, with --update, replaced;
the support pages are left as they are: python tests/conformance/make_support_doc.py [--full]):

python tests/conformance/run_conformance.py --full --cases Github_easy/o37787,JsonSchemaStore/bashly
python tests/conformance/run_conformance.py --full --undecided --update   # entries with undecided instances
python tests/conformance/run_conformance.py --full --undecided --split Github_easy --update
python tests/conformance/run_conformance.py --full --undecided --decide-steps 200000 --workers 2 --update
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import harness  # noqa: E402


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--update", action="store_true")
    ap.add_argument("--full", action="store_true", help="every schema of the dev splits")
    ap.add_argument("--progress", action="store_true")
    ap.add_argument("--cases", default="", help="comma-separated case ids: run only these")
    ap.add_argument("--undecided", action="store_true", help="run only the baseline's cases with undecided instances")
    ap.add_argument(
        "--search-steps", type=int, default=0, help="key-order search budget per invalid instance (0: the tier's)"
    )
    ap.add_argument("--decide-steps", type=int, default=0, help="matcher steps of each rejection proof (0: default)")
    ap.add_argument("--workers", type=int, default=1, help="forked worker processes for --cases/--undecided")
    ap.add_argument(
        "--split", default="", help="with --cases/--undecided: only the cases of these comma-separated groups"
    )
    args = ap.parse_args()
    path = harness.BASELINE_SLOW if args.full else harness.BASELINE
    if args.cases or args.undecided:
        return run_selected(args, path)
    from structgen import assets

    vocab = assets.load_vocabulary("llama3")
    tok = assets.load_tokenizer("llama3")
    if args.full:
        harness.MAX_INVALID_STEPS = harness.FULL_INVALID_STEPS
    t0 = time.perf_counter()
    results = harness.run_all(vocab, None if args.full else harness.BENCH_DEFAULT_N, tok, 1, progress=args.progress)
    dt = time.perf_counter() - t0
    summary = harness.summarize(results)
    for g, s in summary.items():
        print(f"{g:16} {json.dumps(s)}")
    print(f"{len(results)} cases in {dt:.1f}s")
    if path.exists():
        reg, imp = harness.compare(json.loads(path.read_text()), results)
        for line in reg:
            print("REGRESSION", line)
        print(f"{len(reg)} regressions, {len(imp)} improvements against {path.name}")
    if args.update:
        path.write_text(json.dumps(harness.strip(results), indent=1, sort_keys=True) + "\n")
        print("wrote", path)
        import make_support_doc

        if args.full:
            make_support_doc.write_full(results)
        else:
            make_support_doc.write(results)
    return 0


def selected_cases(ids: list[str]) -> list[tuple[dict[str, Any], dict[str, Any]]]:
    """(case, compile options) of each id, as :func:`harness.run_all` runs it."""
    want = set(ids)
    found: dict[str, tuple[dict[str, Any], dict[str, Any]]] = {}
    groups = {cid.split("/")[0] for cid in want}
    registry = harness.remote_registry() if groups & set(harness.DRAFTS) else {}
    for draft in harness.DRAFTS:
        if draft in groups:
            for case in harness.suite_cases(draft):
                if case["id"] in want:
                    opts: dict[str, Any] = {"draft": "7" if draft == "draft7" else "2020-12"}
                    if "localhost:1234" in json.dumps(case["schema"]):
                        opts["registry"] = registry
                    found[case["id"]] = (case, opts)
    for split in harness.SPLITS:
        if split in groups:
            for case in harness.bench_cases(split, None):
                if case["id"] in want and case["tests"]:
                    found[case["id"]] = (case, {})
    missing = sorted(want - set(found))
    if missing:
        raise SystemExit(f"unknown case ids (or cases without tests): {', '.join(missing[:10])}")
    return [found[cid] for cid in ids]


def run_selected(args: argparse.Namespace, path: Path) -> int:
    """Run the cases named by --cases / --undecided, compare them with their baseline entries, and
    with --update replace those entries only."""
    baseline: dict[str, dict[str, Any]] = json.loads(path.read_text()) if path.exists() else {}
    ids = [c for c in args.cases.split(",") if c]
    if args.undecided:
        ids += sorted(cid for cid, r in baseline.items() if r.get("undecided"))
    if args.split:
        groups = set(args.split.split(","))
        ids = [cid for cid in ids if cid.split("/")[0] in groups]
    ids = list(dict.fromkeys(ids))
    from structgen import assets

    vocab = assets.load_vocabulary("llama3")
    tok = assets.load_tokenizer("llama3")
    if args.full:
        harness.MAX_INVALID_STEPS = harness.FULL_INVALID_STEPS
    if args.decide_steps:
        harness.DECIDE_STEPS = args.decide_steps
    if args.search_steps:
        harness.MAX_INVALID_STEPS = args.search_steps
    results: dict[str, dict[str, Any]] = {}
    t0 = time.perf_counter()
    for cid, res in harness.run_jobs(selected_cases(ids), vocab, tok, 1, args.workers):
        results[cid] = res
        if args.progress:
            old = baseline.get(cid, {})
            print(
                f"{cid} {res['status']} valid {res['valid']} invalid {res['invalid']} "
                f"undecided {old.get('undecided', 0)} -> {res.get('undecided', 0)} ({time.perf_counter() - t0:.0f}s in)",
                flush=True,
            )
    dt = time.perf_counter() - t0
    old_sel = {cid: baseline[cid] for cid in results if cid in baseline}
    for g, s in harness.summarize(results).items():
        before = harness.summarize({k: v for k, v in old_sel.items() if k.split("/")[0] == g}).get(g, {})
        print(f"{g:16} {json.dumps(s)} (undecided before: {before.get('undecided', 0)})")
    print(f"{len(results)} cases in {dt:.1f}s")
    reg, imp = harness.compare(old_sel, results)
    for line in reg:
        print("REGRESSION", line)
    print(f"{len(reg)} regressions, {len(imp)} improvements against {path.name}")
    if args.update:
        baseline.update(harness.strip(results))
        path.write_text(json.dumps(dict(sorted(baseline.items())), indent=1, sort_keys=True) + "\n")
        print("wrote", path, f"({len(results)} entries replaced; support pages not regenerated)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
