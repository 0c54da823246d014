"""The conformance harness's key-order hint: each object is tried in the order of the ``properties``
block naming most of its keys, so schema-order grammars are met without a search that runs out of
budget (JsonSchemaStore/cargo: workspace.package lists Package's keys in another block's order)."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import harness  # noqa: E402
import pytest  # noqa: E402

import structgen  # noqa: E402
from structgen.frontends.json_schema.formatting import Style  # noqa: E402

KEYS = [f"k{i:02d}" for i in range(16)]
SCHEMA = {
    "type": "object",
    "properties": {
        # the first block met names the keys (and one more) in one order ...
        "a": {"type": "object", "properties": {k: {"type": "integer"} for k in [*KEYS, "extra"]}},
        # ... the object checked lists them in the reverse order
        "b": {"$ref": "#/$defs/B"},
    },
    "$defs": {"B": {"type": "object", "properties": {k: {"type": "integer"} for k in reversed(KEYS)}}},
}
VALUE = {"b": {k: i for i, k in enumerate(KEYS)}}


@pytest.fixture(scope="module")
def bytes_vocab():
    from structgen.vocab.vocabulary import Vocabulary

    return Vocabulary.from_bytes([bytes([i]) for i in range(256)] + [b"<eos>"], eos_ids=[256], name="bytes")


def test_key_order_follows_the_best_matching_properties_block():
    harness.ORDERS = harness.property_orders(SCHEMA)
    harness.RANK = harness.property_rank(SCHEMA)
    assert harness.key_order(VALUE["b"]) == list(reversed(KEYS))
    assert harness.key_order({"zz": 1, "k03": 2, "k01": 3}) == ["k03", "k01", "zz"]


def test_schema_order_object_found_within_budget(bytes_vocab):
    c = structgen.compile(bytes_vocab, json_schema=SCHEMA, cache=False)
    ok, text = harness.check_instance(c, VALUE, Style(), SCHEMA)
    assert ok and text is not None and text.index('"k15"') < text.index('"k00"')
    assert harness.check_instance(c, {"b": {"k15": 1, "k00": "x"}}, Style(), SCHEMA) == (False, None)
