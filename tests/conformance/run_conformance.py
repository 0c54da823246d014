"""Run the conformance ratchet by hand; ``--update`` rewrites the baseline and docs/json-schema.md.

python tests/conformance/run_conformance.py            # default tier, print a summary
python tests/conformance/run_conformance.py --update   # ... and rewrite baseline.json + the doc
python tests/conformance/run_conformance.py --full --update   # all dev split schemas (baseline_full.json,
                                                              # docs/json-schema-support-full.md)
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import harness  # noqa: E402


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--update", action="store_true")
    ap.add_argument("--full", action="store_true", help="every schema of the dev splits")
    ap.add_argument("--progress", action="store_true")
    args = ap.parse_args()
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
    path = harness.BASELINE_SLOW if args.full else harness.BASELINE
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


if __name__ == "__main__":
    raise SystemExit(main())
