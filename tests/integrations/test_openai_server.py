"""The OpenAI-compatible server against the official openai client, over real HTTP on loopback."""

from __future__ import annotations

import json
import re
from concurrent.futures import ThreadPoolExecutor

import httpx
import jsonschema
import pytest
from pydantic import BaseModel

openai = pytest.importorskip("openai")

pytestmark = pytest.mark.integration


class City(BaseModel):
    name: str
    country: str
    population: int


WEATHER_TOOL = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Current weather for a city",
        "parameters": {
            "type": "object",
            "properties": {"city": {"type": "string"}, "unit": {"enum": ["celsius", "fahrenheit"]}},
            "required": ["city", "unit"],
            "additionalProperties": False,
        },
    },
}
TIME_TOOL = {
    "type": "function",
    "function": {
        "name": "get_time",
        "parameters": {"type": "object", "properties": {"zone": {"type": "string"}}, "required": ["zone"]},
    },
}


def client(srv) -> openai.OpenAI:  # type: ignore[no-untyped-def]
    return openai.OpenAI(api_key="unused", base_url=srv.base_url, max_retries=0, timeout=300)


def chat(c: openai.OpenAI, content: str, model: str = "tiny", **kwargs):  # type: ignore[no-untyped-def]
    """``chat.completions.create`` with one user message."""
    return c.chat.completions.create(model=model, messages=[{"role": "user", "content": content}], **kwargs)


def json_schema_format(name: str, schema: dict, **options: object) -> dict:
    """The ``response_format`` of a JSON Schema (OpenAI's structured outputs)."""
    return {"type": "json_schema", "json_schema": {"name": name, "schema": schema, **options}}


@pytest.mark.slow
def test_parse_pydantic_with_the_real_model(smollm2_server) -> None:  # type: ignore[no-untyped-def]
    c = client(smollm2_server)
    completion = c.chat.completions.parse(
        model="smollm2",
        messages=[
            {"role": "user", "content": "Give the name, country and population of the capital of France as JSON."}
        ],
        response_format=City,
        max_tokens=60,
        temperature=0,
    )
    city = completion.choices[0].message.parsed
    assert isinstance(city, City)
    assert completion.usage is not None and completion.usage.completion_tokens > 0


@pytest.mark.slow
def test_named_tool_call_with_the_real_model(smollm2_server) -> None:  # type: ignore[no-untyped-def]
    c = client(smollm2_server)
    r = chat(
        c,
        "What's the weather in Paris in celsius?",
        model="smollm2",
        tools=[WEATHER_TOOL],
        tool_choice={"type": "function", "function": {"name": "get_weather"}},
        max_tokens=40,
        temperature=0,
    )
    choice = r.choices[0]
    assert choice.finish_reason == "tool_calls"
    call = choice.message.tool_calls[0]
    assert call.function.name == "get_weather"
    jsonschema.validate(json.loads(call.function.arguments), WEATHER_TOOL["function"]["parameters"])


def test_required_and_auto_tool_choice(tiny_server) -> None:  # type: ignore[no-untyped-def]
    c = client(tiny_server)
    for seed in range(3):
        r = chat(
            c,
            "time or weather?",
            tools=[WEATHER_TOOL, TIME_TOOL],
            tool_choice="required",
            max_tokens=48,
            seed=seed,
        )
        call = r.choices[0].message.tool_calls[0]
        tool = {"get_weather": WEATHER_TOOL, "get_time": TIME_TOOL}[call.function.name]
        jsonschema.validate(json.loads(call.function.arguments), tool["function"]["parameters"])
    r = chat(
        c,
        "hi",
        tools=[WEATHER_TOOL],
        tool_choice="auto",
        max_tokens=48,
        seed=1,
    )
    msg = r.choices[0].message
    assert (msg.tool_calls and msg.content is None) or (isinstance(msg.content, str) and not msg.tool_calls)


def test_response_formats_and_n(tiny_server) -> None:  # type: ignore[no-untyped-def]
    c = client(tiny_server)
    schema = {
        "type": "object",
        "properties": {"a": {"type": "integer"}, "b": {"type": "boolean"}},
        "required": ["a", "b"],
    }
    r = chat(
        c,
        "json",
        n=3,
        seed=5,
        max_tokens=40,
        response_format=json_schema_format("ab", schema, strict=True),
    )
    assert len(r.choices) == 3
    for ch in r.choices:
        jsonschema.validate(json.loads(ch.message.content), schema)
    r = chat(
        c,
        "date",
        max_tokens=20,
        extra_body={"response_format": {"type": "regex", "regex": r"20[0-9]{2}-(0[1-9]|1[0-2])-[0-3][0-9]"}},
    )
    assert re.fullmatch(r"20[0-9]{2}-(0[1-9]|1[0-2])-[0-3][0-9]", r.choices[0].message.content)
    grammar = 'start: "yes" | "no" | "maybe " NUMBER\n%import common.NUMBER'
    r = chat(
        c,
        "?",
        max_tokens=12,
        extra_body={"response_format": {"type": "grammar", "grammar": grammar}},
    )
    assert re.fullmatch(
        r"yes|no|maybe \d+(\.\d+)?([eE][+-]?\d+)?|maybe \.\d+([eE][+-]?\d+)?", r.choices[0].message.content
    )
    r = c.completions.create(
        model="tiny",
        prompt="Numbers:",
        max_tokens=6,
        extra_body={"response_format": {"type": "regex", "regex": "[0-9]{3}"}},
    )
    assert re.fullmatch("[0-9]{3}", r.choices[0].text)


def test_budget_keeps_json_valid(tiny_server) -> None:  # type: ignore[no-untyped-def]
    c = client(tiny_server)
    schema = {"type": "object", "properties": {"note": {"type": "string"}}, "required": ["note"]}
    r = chat(
        c,
        "x",
        max_tokens=12,
        temperature=1.0,
        seed=3,
        response_format=json_schema_format("n", schema),
    )
    jsonschema.validate(json.loads(r.choices[0].message.content), schema)
    with pytest.raises(openai.BadRequestError) as err:
        chat(
            c,
            "x",
            max_tokens=2,
            response_format=json_schema_format("n", schema),
        )
    assert "shortest valid output" in str(err.value)


def test_streaming_chunks_and_usage(tiny_server) -> None:  # type: ignore[no-untyped-def]
    c = client(tiny_server)
    schema = {"type": "object", "properties": {"k": {"type": "string", "maxLength": 12}}, "required": ["k"]}
    stream = chat(
        c,
        "s",
        stream=True,
        seed=2,
        max_tokens=40,
        stream_options={"include_usage": True},
        response_format=json_schema_format("k", schema),
    )
    text, usage, finish = "", None, None
    for chunk in stream:
        if chunk.usage is not None:
            usage = chunk.usage
        for ch in chunk.choices:
            text += ch.delta.content or ""
            finish = ch.finish_reason or finish
    jsonschema.validate(json.loads(text), schema)
    assert finish in ("stop", "length")
    assert usage is not None and usage.completion_tokens > 0


def test_errors_are_openai_shaped(tiny_server) -> None:  # type: ignore[no-untyped-def]
    base = tiny_server.base_url
    bad_regex = httpx.post(
        f"{base}/chat/completions",
        json={"messages": [{"role": "user", "content": "x"}], "response_format": {"type": "regex", "regex": "(a"}},
    )
    assert bad_regex.status_code == 400
    assert "invalid regex" in bad_regex.json()["error"]["message"]
    unsupported = httpx.post(
        f"{base}/chat/completions",
        json={"messages": [{"role": "user", "content": "x"}], "response_format": {"type": "regex", "regex": r"(a)\1"}},
    )
    assert unsupported.status_code == 400 and "backreference" in unsupported.json()["error"]["message"].lower()
    huge = httpx.post(
        f"{base}/chat/completions",
        content=b'{"messages": [' + b" " * 300_000 + b"]}",
        headers={"content-type": "application/json"},
    )
    assert huge.status_code == 413
    missing = httpx.post(f"{base}/chat/completions", json={"model": "tiny"})
    assert missing.status_code == 400 and missing.json()["error"]["param"] == "messages"
    assert httpx.get(f"{base}/models").json()["data"][0]["id"] == "tiny"
    assert httpx.get(f"{base.removesuffix('/v1')}/health").json()["status"] == "ok"


def test_malicious_schema_is_refused_fast(tiny_server) -> None:  # type: ignore[no-untyped-def]
    base = tiny_server.base_url
    schema = {"type": "object", "properties": {f"p{i}": {"type": "integer"} for i in range(10_000)}}
    r = httpx.post(
        f"{base}/chat/completions",
        timeout=60,
        json={
            "messages": [{"role": "user", "content": "x"}],
            "response_format": json_schema_format("big", schema),
        },
    )
    assert r.status_code in (400, 413)
    assert r.elapsed.total_seconds() < 15


def test_load_32_clients_all_valid(tiny_server) -> None:  # type: ignore[no-untyped-def]
    c = client(tiny_server)
    schema = {
        "type": "object",
        "properties": {"id": {"type": "integer", "minimum": 0, "maximum": 999}, "ok": {"type": "boolean"}},
        "required": ["id", "ok"],
    }

    def one(i: int) -> list[dict]:
        out = []
        for j in range(10):
            r = chat(
                c,
                f"client {i} request {j}",
                max_tokens=24,
                seed=i * 100 + j,
                response_format=json_schema_format("s", schema),
            )
            out.append(json.loads(r.choices[0].message.content))
        return out

    with ThreadPoolExecutor(32) as pool:
        results = [v for part in pool.map(one, range(32)) for v in part]
    assert len(results) == 320
    for v in results:
        jsonschema.validate(v, schema)
    health = httpx.get(f"{tiny_server.base_url.removesuffix('/v1')}/health").json()
    assert health["batches"] < health["rows"]  # requests were batched across clients
