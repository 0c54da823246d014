"""stream(): chunks concatenate to the final text, never split a character; partial pydantic objects."""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")

from _api_helpers import json_compiler_available  # noqa: E402

import structgen  # noqa: E402


def test_chunks_concatenate_to_final_text(tiny):
    for kw in (dict(regex=r"[a-zé€ ]{4,30}"), dict(), dict(stop=["e"])):
        s = structgen.stream(tiny, "Say", max_new_tokens=24, temperature=1.0, seed=2, **kw)
        chunks = list(s)
        assert all(isinstance(c, str) for c in chunks)
        assert "".join(chunks) == s.result.text
        assert all("\ufffd" not in c for c in chunks) or "\ufffd" in s.result.text
        ref = structgen.generate(tiny, "Say", max_new_tokens=24, temperature=1.0, seed=2, **kw)
        assert ref == s.result.value


def test_stream_errors_surface_at_call(tiny):
    with pytest.raises(structgen.CompileError):
        structgen.stream(tiny, "x", regex="(")
    with pytest.raises(TypeError):
        structgen.stream(tiny, ["a", "b"])


@pytest.mark.skipif(not json_compiler_available(), reason="the JSON Schema compiler is not in this checkout yet")
def test_partial_objects_only_complete_valid_fields(tiny):
    from pydantic import BaseModel

    class P(BaseModel):
        name: str
        age: int
        ok: bool

    events = list(structgen.stream(tiny, "p", schema=P, partial=True, temperature=1.0, seed=1, max_new_tokens=40))
    assert "".join(e.text for e in events) == events[-1].partial.model_dump_json() or events[-1].done
    final = events[-1]
    assert final.done and isinstance(final.partial, P)
    seen: set[str] = set()
    for e in events[:-1]:
        if e.partial is not None:
            fields = set(e.partial.model_fields_set)
            assert seen <= fields  # fields only appear, never vanish
            for f in fields:
                assert getattr(e.partial, f) == getattr(final.partial, f)
            seen = fields


def test_complete_top_level_pairs():
    from structgen.api.generate import _complete_top_level_pairs

    assert _complete_top_level_pairs('{"a": 1, "b": "x,}y", "c": [1, {"d": 2}], "e": 4') == [
        ("a", "1"),
        ("b", '"x,}y"'),
        ("c", '[1, {"d": 2}]'),
    ]
    assert _complete_top_level_pairs('{"a": {"b": 1}}') == [("a", '{"b": 1}')]
