"""Compiled value-check validators give jsonschema's verdict (check_plan.CheckCompiler).

Differential: every schema of the JSON Schema Test Suite (draft 7 and 2020-12, remotes served from
memory) and the value checks of JSONSchemaBench schemas, on every test instance and each value
nested in it. An exception in jsonschema counts as "invalid", as it does at decode time.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import referencing
import referencing.jsonschema

from structgen.frontends.json_schema.check_plan import CheckCompiler, json_type

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "conformance"))
import harness  # noqa: E402

pytestmark = pytest.mark.skipif(not harness.data_available(), reason="test-suite data not present")

_DRAFTS = {
    "draft7": (jsonschema.Draft7Validator, referencing.jsonschema.DRAFT7),
    "draft2020-12": (jsonschema.Draft202012Validator, referencing.jsonschema.DRAFT202012),
}


def _values(v: Any) -> list[Any]:
    out = [v]
    if isinstance(v, dict):
        for x in v.values():
            out.extend(_values(x))
    elif isinstance(v, list):
        for x in v:
            out.extend(_values(x))
    return out


def _type_of(x: Any) -> str:
    return json_type(json.dumps(x).encode()[0])


def _verdict(f: Any, value: Any) -> bool:
    try:
        return bool(f(value))
    except Exception:  # noqa: BLE001 - decode time: an error is a failed check
        return False


def _registry(spec: Any) -> Any:
    resources = [
        (
            uri,
            referencing.jsonschema.specification_with(
                (doc.get("$schema") if isinstance(doc, dict) else None) or "", default=spec
            ).create_resource(doc),
        )
        for uri, doc in harness.remote_registry().items()
    ]
    return referencing.Registry().with_resources(resources)


@pytest.mark.parametrize("draft", sorted(_DRAFTS))
def test_suite_verdicts_match_jsonschema(draft: str) -> None:
    cls, spec = _DRAFTS[draft]
    registry = _registry(spec)
    fmt = jsonschema.FormatChecker()
    compiled = compared = 0
    for p in sorted((harness.SUITE / draft).rglob("*.json")):
        for case in json.loads(p.read_text()):
            v = cls(case["schema"], registry=registry, format_checker=fmt)
            comp = CheckCompiler(v, spec)
            fast = comp.compile(case["schema"], v._resolver)
            if fast is None:
                continue
            compiled += 1
            always = {t: comp.always(case["schema"], v._resolver, t) for t in ("object", "array", "string", "number")}
            for t in case["tests"]:
                for x in _values(t["data"]):
                    want = _verdict(v.is_valid, x)
                    assert _verdict(fast, x) == want, (p.name, case["description"], t["description"], x)
                    assert always.get(_type_of(x)) in (None, want), (p.name, case["description"], x)
                    compared += 1
    assert compiled > 300 and compared > 1500, (compiled, compared)


def _bench_checks_agree(split: str, index: int) -> int:
    import structgen
    from structgen.assets import load_vocabulary
    from structgen.frontends.json_schema.formatting import dumps
    from structgen.runtime.checked_engine import CheckedEngine

    case = harness.bench_cases(split, index + 1)[index]
    c = structgen.compile(load_vocabulary("llama3"), json_schema=case["schema"], cache=False)
    eng = c.engine
    assert isinstance(eng, CheckedEngine)
    values = [x for t in case["tests"] for x in _values(t["data"])]
    for t in case["tests"]:  # writing the instances creates the checks of the locations they visit
        try:
            eng.advance_bytes(eng.initial_state(), dumps(t["data"]).encode())
        except (TypeError, ValueError):
            continue
    plan = eng.plan
    n = 0
    for i, v in enumerate(plan.validators):
        fast = plan._fast[i]
        if fast is None:
            continue
        every = {t: plan._passes_every(i, t) for t in ("object", "array", "string", "number", "boolean", "null")}
        for x in values:
            want = _verdict(v.is_valid, x)
            assert _verdict(fast, x) == want, (split, index, i, x)
            assert want or not every[_type_of(x)], (split, index, i, x)
            n += 1
    return n


def test_bench_checks_match_jsonschema() -> None:
    assert _bench_checks_agree("Github_trivial", 1) + _bench_checks_agree("Github_medium", 15) > 10


@pytest.mark.slow
@pytest.mark.parametrize(
    "split,index",
    [("Github_trivial", 9), ("Github_medium", 22)]
    + [("JsonSchemaStore", i) for i in (3, 5, 6, 7, 10, 18, 19, 24, 27, 31, 45, 49, 77, 96, 100, 105)],
)
def test_bench_checks_match_jsonschema_more(split: str, index: int) -> None:
    _bench_checks_agree(split, index)
