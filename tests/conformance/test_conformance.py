"""The conformance ratchet (see harness.py): Test Suite + JSONSchemaBench against baseline.json.

Default tier: the Test Suite's top-level draft2020-12 and draft7 files (format.json aside) and the
first ``BENCH_DEFAULT_N`` schemas with tests of each dev split. ``-m slow`` adds every dev-split
schema against baseline_full.json (when it exists).
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

import harness  # noqa: E402

pytestmark = pytest.mark.skipif(not harness.data_available(), reason=f"conformance data not found under {harness.DATA}")


@pytest.fixture(scope="module")
def llama3():
    from structgen import assets

    try:
        return assets.load_vocabulary("llama3"), assets.load_tokenizer("llama3")
    except Exception as e:  # no tokenizer cache and no npm: nothing to test against
        pytest.skip(f"the Llama-3 tokenizer is not available ({e})")


def _check(results: dict, baseline_path: Path) -> None:
    summary = harness.summarize(results)
    for group, s in summary.items():
        print(f"{group:16} {json.dumps(s)}")
    if not baseline_path.exists():
        pytest.fail(f"no baseline at {baseline_path}: run python tests/conformance/run_conformance.py --update")
    baseline = json.loads(baseline_path.read_text())
    regressions, improvements = harness.compare(baseline, results)
    if improvements:
        print(
            f"{len(improvements)} improvement(s): update the baseline with "
            "python tests/conformance/run_conformance.py --update"
        )
        for line in improvements[:20]:
            print("  ", line)
    assert not regressions, f"{len(regressions)} regression(s) against {baseline_path.name}:\n" + "\n".join(
        regressions[:30]
    )
    # compliance among compiled schemas (the target): report, and hold the line via the baseline
    bad = sum(s["valid_rejected"] + s["invalid_accepted"] for s in summary.values())
    print(f"compliance failures among compiled schemas: {bad}")


def test_conformance_default_tier(llama3):
    vocab, tok = llama3
    results = harness.run_all(vocab, harness.BENCH_DEFAULT_N, tok, token_sample=1)
    _check(results, harness.BASELINE)


@pytest.mark.slow
def test_conformance_full_dev_splits(llama3):
    if not harness.BASELINE_SLOW.exists():
        pytest.skip("no baseline_full.json yet (python tests/conformance/run_conformance.py --full --update)")
    vocab, tok = llama3
    harness.MAX_INVALID_STEPS = harness.FULL_INVALID_STEPS
    harness.DECIDE[0] = False  # the proofs only turn "undecided" into "rejected": both pass; minutes saved
    try:
        workers = min(2, os.cpu_count() or 1)  # CI has 2 cores; the cases are independent
        results = harness.run_all(vocab, None, tok, token_sample=1, suite=False, workers=workers)
    finally:
        harness.MAX_INVALID_STEPS = harness.MAX_INSTANCE_STEPS
        harness.DECIDE[0] = True
    _check(results, harness.BASELINE_SLOW)


def test_compare_flags_regressions():
    base = {
        "a": {"status": "compiled", "valid": [2, 2], "invalid": [1, 1]},
        "b": {"status": "compiled", "valid": [1, 1], "invalid": [0, 0]},
        "c": {"status": "refused:UnsupportedSchema:not", "valid": [0, 1], "invalid": [0, 0]},
    }
    new = {
        "a": {"status": "compiled", "valid": [1, 2], "invalid": [1, 1]},
        "b": {"status": "refused:UnsupportedSchema:x", "valid": [0, 1], "invalid": [0, 0]},
        "c": {"status": "compiled", "valid": [1, 1], "invalid": [0, 0]},
    }
    reg, imp = harness.compare(base, new)
    assert len(reg) == 2 and len(imp) == 1
