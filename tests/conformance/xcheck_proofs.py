"""Soundness cross-check of the rejection proof (``decide.proves_rejected``): no *valid* instance of a
dev-split schema that structgen compiles may come out "proven rejected". The proof decides invalid
instances the key-order search cannot finish, so this is the check that its over-approximation and
the merging keys behind it (``harness.state_key``, ``checked_key``) never cut a real reading.

    python tests/conformance/xcheck_proofs.py [--steps 20000] [--workers 2]

Prints the counts and every violation; exits 1 on a violation.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.setrecursionlimit(20_000)

import decide  # noqa: E402
import harness  # noqa: E402

_CASES: list[dict[str, Any]] = []
_STATE: dict[str, Any] = {}


def _run(i: int) -> tuple[int, list[str]]:
    import structgen
    from structgen.frontends.json_schema.formatting import Style

    case = _CASES[i]
    compiled = structgen.compile(_STATE["vocab"], json_schema=case["schema"], cache=False)
    checked, bad = 0, []
    for j, t in enumerate(case["tests"]):
        if t["valid"]:
            harness._CANON.clear()
            harness._SET_SIG.clear()
            harness._CASCADE.clear()
            checked += 1
            if decide.proves_rejected(compiled, t["data"], Style.of({}), _STATE["steps"]):
                bad.append(f"{case['id']} valid #{j}")
    return checked, bad


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=20_000, help="matcher steps of each proof")
    ap.add_argument("--workers", type=int, default=2)
    args = ap.parse_args()
    from structgen import assets

    baseline = json.loads(harness.BASELINE_SLOW.read_text())
    for split in harness.SPLITS:
        for case in harness.bench_cases(split, None):
            if baseline.get(case["id"], {}).get("status") == "compiled" and any(t["valid"] for t in case["tests"]):
                _CASES.append(case)
    _STATE.update(vocab=assets.load_vocabulary("llama3"), steps=args.steps)
    t0 = time.perf_counter()
    checked, bad = 0, []
    with multiprocessing.get_context("fork").Pool(args.workers) as pool:
        for n, b in pool.imap_unordered(_run, range(len(_CASES)), chunksize=8):
            checked += n
            bad += b
    print(
        f"{len(_CASES)} schemas, {checked} valid instances, {len(bad)} proven rejected, {time.perf_counter() - t0:.0f} s"
    )
    for line in bad:
        print("VIOLATION", line)
    return 1 if bad else 0


if __name__ == "__main__":
    raise SystemExit(main())
