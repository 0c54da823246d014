"""Turn an OpenAI request into structgen prompts and constraints, and outputs back into choices."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from structgen.integrations.openai_server.protocol import ChatRequest, CommonParams, Tool, new_id


class RequestError(ValueError):
    """A request that cannot be served (answered with HTTP 400 and ``param``)."""

    def __init__(self, message: str, param: str | None = None) -> None:
        super().__init__(message)
        self.param = param


@dataclass(frozen=True)
class ConstraintChoice:
    """What one request asks structgen to enforce, and how to read the output back.

    ``kind`` is a ``structgen.generate`` keyword (``json_schema``, ``regex``, ``grammar``) or None for
    free text; ``mode`` is ``content`` or ``tool:<name>`` (a named tool), ``tool_any`` (required: one
    of the tools), ``auto`` (an envelope: a tool call or a text reply).
    """

    kind: str | None
    value: Any
    mode: str = "content"


def _text_of(content: Any) -> str:
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    if isinstance(content, list):  # content parts
        return "".join(p.get("text", "") for p in content if isinstance(p, dict))
    raise RequestError(f"message content must be a string or a list of parts, got {type(content).__name__}", "messages")


def normalize_messages(req: ChatRequest, tools_prompt: str | None) -> list[dict[str, str]]:
    """Plain {role, content} messages a chat template accepts (tool messages rendered as text)."""
    out: list[dict[str, str]] = []
    for i, msg in enumerate(req.messages):
        role = msg.get("role")
        if role not in ("system", "developer", "user", "assistant", "tool"):
            raise RequestError(f"messages[{i}].role {role!r} is not supported", f"messages[{i}].role")
        text = _text_of(msg.get("content"))
        if role == "assistant" and msg.get("tool_calls"):
            calls = [
                {"name": c["function"]["name"], "arguments": json.loads(c["function"]["arguments"] or "{}")}
                for c in msg["tool_calls"]
            ]
            text = (text + "\n" if text else "") + json.dumps(calls[0] if len(calls) == 1 else calls)
        if role == "tool":
            role, text = "user", f"Tool result ({msg.get('tool_call_id', '')}): {text}"
        if role == "developer":
            role = "system"
        out.append({"role": role, "content": text})
    if tools_prompt:
        if out and out[0]["role"] == "system":
            out[0] = {"role": "system", "content": out[0]["content"] + "\n\n" + tools_prompt}
        else:
            out.insert(0, {"role": "system", "content": tools_prompt})
    if not out:
        raise RequestError("messages must not be empty", "messages")
    return out


def _tool_call_schema(tool: Tool) -> dict[str, Any]:
    return {
        "type": "object",
        "properties": {"name": {"const": tool.function.name}, "arguments": tool.function.parameters},
        "required": ["name", "arguments"],
        "additionalProperties": False,
    }


def tools_prompt(tools: list[Tool]) -> str:
    lines = ['You can call these functions. To call one, answer with a JSON object {"name": ..., "arguments": {...}}.']
    for t in tools:
        lines.append(
            json.dumps(
                {
                    "name": t.function.name,
                    "description": t.function.description or "",
                    "parameters": t.function.parameters,
                }
            )
        )
    return "\n".join(lines)


def response_constraint(params: CommonParams) -> ConstraintChoice:
    rf = params.response_format
    if rf is None or rf.type == "text":
        return ConstraintChoice(None, None)
    if rf.type == "json_object":
        return ConstraintChoice("json_schema", {"type": "object"})
    if rf.type == "json_schema":
        spec = rf.json_schema or {}
        schema = spec.get("schema")
        if not isinstance(schema, dict):
            raise RequestError("response_format.json_schema.schema must be a JSON Schema object", "response_format")
        return ConstraintChoice("json_schema", schema)
    if rf.type == "regex":
        if not rf.regex:
            raise RequestError("response_format.regex is required for type 'regex'", "response_format")
        return ConstraintChoice("regex", rf.regex)
    if not rf.grammar:
        raise RequestError("response_format.grammar is required for type 'grammar'", "response_format")
    return ConstraintChoice("grammar", rf.grammar)


def chat_constraint(req: ChatRequest) -> ConstraintChoice:
    """The constraint of a chat request: tools (by tool_choice) or response_format."""
    tools = req.tools or []
    choice = req.tool_choice if req.tool_choice is not None else ("auto" if tools else "none")
    if not tools or choice == "none":
        return response_constraint(req)
    if isinstance(choice, dict):
        name = (choice.get("function") or {}).get("name")
        match = [t for t in tools if t.function.name == name]
        if not match:
            raise RequestError(f"tool_choice names function {name!r}, which is not among the tools", "tool_choice")
        return ConstraintChoice("json_schema", match[0].function.parameters, mode=f"tool:{name}")
    calls = [_tool_call_schema(t) for t in tools]
    if choice == "required":
        schema = calls[0] if len(calls) == 1 else {"anyOf": calls}
        return ConstraintChoice("json_schema", schema, mode="tool_any")
    if choice == "auto":
        reply = {
            "type": "object",
            "properties": {"content": {"type": "string"}},
            "required": ["content"],
            "additionalProperties": False,
        }
        return ConstraintChoice("json_schema", {"anyOf": [*calls, reply]}, mode="auto")
    raise RequestError(f"tool_choice {choice!r} is not one of none, auto, required or a named function", "tool_choice")


def chat_choice(index: int, text: str, value: Any, mode: str, finish_reason: str) -> dict[str, Any]:
    """One ``choices[i]`` entry of a chat completion."""
    message: dict[str, Any] = {"role": "assistant", "content": text, "tool_calls": None}
    call: tuple[str, Any] | None = None
    if mode.startswith("tool:"):
        call = (mode[5:], value)
    elif mode in ("tool_any", "auto") and isinstance(value, dict) and "name" in value:
        call = (value["name"], value["arguments"])
    elif mode == "auto" and isinstance(value, dict):
        message["content"] = value.get("content", "")
    if call is not None:
        message["content"] = None
        message["tool_calls"] = [
            {"id": new_id("call"), "type": "function", "function": {"name": call[0], "arguments": json.dumps(call[1])}}
        ]
        finish_reason = "tool_calls"
    return {"index": index, "message": message, "finish_reason": finish_reason, "logprobs": None}


def finish_reason(stop_reason: str, constrained: bool) -> str:
    """OpenAI's finish_reason: ``length`` only for free text cut by the budget.

    A constrained output is always complete (structgen steers it to close within ``max_tokens``), so
    it finishes with ``stop`` even when the budget decided where it ended.
    """
    return "length" if stop_reason == "length" and not constrained else "stop"
