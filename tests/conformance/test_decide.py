"""Negative controls for :mod:`decide` and :mod:`checked_key` (the merged-state keys of checked matcher
states): a proof of rejection must never be given for an instance some key order is accepted in, and
merging checked states must not change the key-order search's verdict."""

from __future__ import annotations

import copy
import json
import random
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import checked_key  # noqa: E402
import decide  # noqa: E402
import harness  # noqa: E402
import pytest  # noqa: E402

import structgen  # noqa: E402
from structgen.errors import StructgenError  # noqa: E402
from structgen.frontends.json_schema.formatting import Style  # noqa: E402

needs_data = pytest.mark.skipif(not harness.data_available(), reason=f"conformance data not found under {harness.DATA}")
STEPS = 20_000

# dev-split schemas whose engine runs value checks (uniqueItems, format, not, oneOf; some with a
# root check), picked among those whose proofs are fast
DEV_CASES = [
    "Github_trivial/o10020",
    "Github_trivial/o10092",
    "Github_trivial/o25731",
    "Github_trivial/o25751",
    "Github_trivial/o25761",
    "Github_trivial/o51159",
    "Github_trivial/o63308",
    "Github_trivial/o66073",
    "Github_trivial/o88605",
    "Github_easy/o2231",
    "Github_easy/o39084",
    "Github_easy/o66309",
    "Github_easy/o90946",
    "Github_easy/o90953",
    "Github_medium/o11666",
    "Github_medium/o25692",
    "Github_medium/o25695",
    "Github_medium/o26217",
    "Github_medium/o3626",
    "Github_medium/o45306",
    "Github_medium/o6226",
    "Github_medium/o65012",
    "Github_medium/o65916",
    "Github_medium/o65917",
    "Github_medium/o69248",
    "JsonSchemaStore/anywork-ac-1.1",
    "JsonSchemaStore/artifacthub-repo",
    "JsonSchemaStore/avro-avsc",
    "JsonSchemaStore/backportrc",
]


@pytest.fixture(scope="module")
def bytes_vocab():
    from structgen.vocab.vocabulary import Vocabulary

    return Vocabulary.from_bytes([bytes([i]) for i in range(256)] + [b"<eos>"], eos_ids=[256], name="bytes")


@pytest.fixture(autouse=True)
def _switches():
    yield
    harness.MERGE[0] = harness.PRUNE[0] = harness.DECIDE[0] = True


def _search(c, value, schema, merge, budget=2_000):
    """(accepted, undecided) of the key-order search alone (no proof), states merged or not."""
    harness.MERGE[0] = merge
    harness.DECIDE[0] = False
    try:
        ok = harness.check_instance(c, value, Style(), schema, budget)[0]
        return ok, harness.UNDECIDED[0]
    finally:
        harness.MERGE[0] = harness.DECIDE[0] = True


def _mutants(value, rnd, n):
    """Up to ``n`` small edits of ``value``: a member dropped, an item duplicated or dropped, a scalar
    changed (valid and invalid instances both come out)."""
    spots = []

    def walk(v, path):
        spots.append(path)
        if isinstance(v, dict):
            for k, x in v.items():
                walk(x, (*path, k))
        elif isinstance(v, list):
            for i, x in enumerate(v):
                walk(x, (*path, i))

    walk(value, ())
    out = []
    for _ in range(4 * n):
        if len(out) >= n:
            break
        path = rnd.choice(spots)
        v = copy.deepcopy(value)
        parent, node = None, v
        for p in path:
            parent, node = node, node[p]
        if isinstance(node, dict) and node:
            del node[rnd.choice(list(node))]
        elif isinstance(node, list) and node:
            if rnd.random() < 0.6:
                node.append(copy.deepcopy(node[0]))  # a duplicate item (uniqueItems)
            else:
                node.pop()
        elif parent is not None:
            parent[path[-1]] = rnd.choice(["", "x", "2020-01-01", 0, -1, 1.5, True, None, [], {}])
        else:
            continue
        out.append(v)
    return out


# ---- checked_key ------------------------------------------------------------------------------------
def _after(c, data):
    m = c.matcher()
    assert m.accept_bytes(data), data
    return m


def test_key_ignores_member_order_of_checked_objects_only(bytes_vocab):
    schema = {"type": "array", "uniqueItems": True, "items": {"type": "object"}}
    c = structgen.compile(bytes_vocab, json_schema=schema, cache=False)
    checked_key.watch(c)
    item = b'[{"a": [1], "b": [2]}, '
    ab, ba = _after(c, item + b'{"a": [1], "b": [2]'), _after(c, item + b'{"b": [2], "a": [1]')
    assert harness.state_key(ab) == harness.state_key(ba)
    other = _after(c, item + b'{"b": [3], "a": [1]')
    assert harness.state_key(ab) != harness.state_key(other)
    # the futures do differ: '}' completes a duplicate item after ab only
    assert not ab.fork().accept_text("}") and other.fork().accept_text("}")


def test_key_keeps_float_sign_and_number_types():
    assert checked_key.canon(-0.0) != checked_key.canon(0.0)
    assert checked_key.canon(1) != checked_key.canon(1.0) != checked_key.canon(True)
    pv = checked_key.partial_value
    # json.loads keeps the last of duplicate keys: an earlier "b" is overwritten by the open one
    assert pv('{"a": 1, "b": {"c": [1]') == pv('{"b": 5, "a": 0, "a": 1, "b": {"c": [1]')
    assert pv('{"a": 1, "b": {"c": [1]') != pv('{"a": 1, "b": {"c": [1]}')
    assert pv('{"a": 1, "b": {"c": [1]') != pv('{"a": 1.0, "b": {"c": [1]')
    with pytest.raises(ValueError):
        pv('{"a": 1, "b": {"c": [1')  # the number may go on: raw bytes are used


def test_key_of_a_string_cut_inside_a_utf8_sequence_is_exact(bytes_vocab):
    # two strings cut after different lead bytes of a 3-byte character decode to the same U+FFFD: the
    # key must keep the bytes (only the first completes a duplicate of the item before it)
    schema = {"type": "array", "uniqueItems": True, "items": {"type": "string"}}
    c = structgen.compile(bytes_vocab, json_schema=schema, cache=False)
    checked_key.watch(c)
    first = '["\u4e00", "'.encode()
    a, b = _after(c, first + b"\xe4\xb8"), _after(c, first + b"\xe4\xb9")
    assert harness.state_key(a) != harness.state_key(b)
    assert not a.fork().accept_bytes(b'\x80"') and b.fork().accept_bytes(b'\x80"')


def test_a_raising_validator_turns_merging_off(bytes_vocab):
    # a check that raises when the object's first member is "d": the order d, c then fails, c, d passes;
    # merging the two orders (equal values) would let a proof rest on the failing one (without the
    # taint, proves_rejected says True here)
    schema = {
        "type": "object",
        "properties": {"a": {"type": "integer"}, "b": {"type": "integer"}},
        "oneOf": [{"properties": {"u": {"type": "array", "uniqueItems": True}}}, {"required": ["b"]}],
    }
    value = {"d": "x", "c": "x"}  # additional keys: the grammar takes either order
    for run in ("decide", "search"):
        c = structgen.compile(bytes_vocab, json_schema=schema, cache=False)
        plan = c.matcher().engine.plan
        assert plan.root("object").checks
        for i, fn in enumerate(plan._fast):
            assert fn is not None

            def raising(v, fn=fn):
                if isinstance(v, dict) and list(v)[:1] == ["d"]:
                    raise RuntimeError("order-dependent failure")
                return fn(v)

            plan._fast[i] = raising
        assert checked_key.tainted(c)  # not watched yet: validations could have raised unseen
        checked_key.watch(c)
        assert not checked_key.tainted(c)
        if run == "decide":
            assert not decide.proves_rejected(c, value, Style(), STEPS)
        else:
            assert harness.check_instance(c, value, Style(), schema)[0]
        assert checked_key.tainted(c)
        m = _after(c, b'{"a": 2')
        assert harness.state_key(m) is m.state  # keyed by identity from now on


# ---- decide: never a proof for an accepted instance ------------------------------------------------------
@needs_data
def test_decide_never_rejects_a_valid_suite_instance(bytes_vocab):
    registry = harness.remote_registry()
    n_valid = proven = 0
    for draft in harness.DRAFTS:
        for case in harness.suite_cases(draft):
            opts: dict = {"draft": "7" if draft == "draft7" else "2020-12"}
            if "localhost:1234" in json.dumps(case["schema"]):
                opts["registry"] = registry
            try:
                c = structgen.compile(bytes_vocab, json_schema=case["schema"], cache=False, **opts)
            except (StructgenError, RecursionError):
                continue
            for t in case["tests"]:
                got = decide.proves_rejected(c, t["data"], Style(), STEPS)
                if t["valid"]:
                    n_valid += 1
                    assert not got, (case["id"], t["description"])
                else:
                    proven += got
    assert n_valid > 500 and proven > 300


def _dev_cases():
    want = set(DEV_CASES)
    out = []
    for split in sorted({cid.split("/")[0] for cid in want}):
        out += [c for c in harness.bench_cases(split, None) if c["id"] in want]
    assert len(out) == len(want)
    return out


@needs_data
def test_decide_and_merged_search_on_dev_schemas_with_value_checks(bytes_vocab):
    """Over the cases' instances and edits of their valid ones: an instance the plain search (checked
    states not merged) accepts is never proven rejected, and the search finds the same verdict with
    checked states merged as without."""
    rnd = random.Random(0)
    checked = n_accepted = proven = compared = 0
    for case in _dev_cases():
        schema = case["schema"]
        c = structgen.compile(bytes_vocab, json_schema=schema, cache=False)
        checked += hasattr(c.matcher().engine, "plan")
        values = [t["data"] for t in case["tests"]]
        for t in case["tests"]:
            if t["valid"]:
                values += _mutants(t["data"], rnd, 8)
        for v in values:
            plain, plain_undecided = _search(c, v, schema, merge=False)
            merged, merged_undecided = _search(c, v, schema, merge=True)
            if not plain_undecided and not merged_undecided:
                compared += 1
                assert plain == merged, (case["id"], v)
            got = decide.proves_rejected(c, v, Style(), STEPS)
            if plain or merged:
                n_accepted += 1
                assert not got, (case["id"], v)
            proven += got
    print(f"{checked} checked engines, {n_accepted} accepted, {proven} proven rejected, {compared} compared")
    assert checked == len(DEV_CASES)
    assert n_accepted > 60 and proven > 60 and compared > 200
