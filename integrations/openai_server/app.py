"""The FastAPI app: /v1/chat/completions, /v1/completions, /v1/models, /health."""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import AsyncIterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, StreamingResponse
from pydantic import ValidationError
from structgen.integrations.openai_server.batcher import Batcher, Job, SamplingKey
from structgen.integrations.openai_server.protocol import (
    ChatRequest,
    CommonParams,
    CompletionRequest,
    chat_completion,
    error_body,
    new_id,
    text_completion,
    usage,
)
from structgen.integrations.openai_server.requests import (
    ConstraintChoice,
    RequestError,
    chat_choice,
    chat_constraint,
    finish_reason,
    normalize_messages,
    response_constraint,
    tools_prompt,
)

import structgen


@dataclass(frozen=True)
class ServerConfig:
    """Limits that keep one client from hurting the others.

    Attributes:
        max_request_bytes: largest request body accepted (HTTP 413 beyond).
        default_max_tokens / max_tokens_cap: budget when the client gives none / the largest allowed.
        max_n: largest ``n``.
        compile_timeout_s: a constraint that takes longer to compile is refused with HTTP 400
            (compiles run on a side pool, never on the model's thread).
        request_timeout_s: a request waiting longer is answered with HTTP 408.
        max_batch / batch_window_s: rows per model batch and how long the batcher waits to fill one.
        limits: structgen compile limits applied to every request's schema, regex or grammar.
    """

    max_request_bytes: int = 1_000_000
    default_max_tokens: int = 256
    max_tokens_cap: int = 4096
    max_n: int = 8
    compile_timeout_s: float = 10.0
    request_timeout_s: float = 300.0
    max_batch: int = 16
    batch_window_s: float = 0.01
    limits: structgen.Limits = field(
        default_factory=lambda: structgen.Limits(max_schema_properties=500, max_dfa_states=20_000)
    )


class HTTPError(Exception):
    def __init__(
        self, status: int, message: str, *, type_: str = "invalid_request_error", param: str | None = None
    ) -> None:
        super().__init__(message)
        self.status = status
        self.body = error_body(message, type_=type_, param=param)


def create_app(model: Any, config: ServerConfig | None = None, *, model_name: str | None = None) -> FastAPI:
    """An OpenAI-compatible app serving ``model`` (what ``structgen.load`` returns, or a path)."""
    config = config or ServerConfig()
    loaded = structgen.load(model) if isinstance(model, (str, type(None))) else model
    name = model_name or getattr(loaded, "name", "") or "structgen"
    batcher = Batcher(loaded, max_batch=config.max_batch, window_s=config.batch_window_s)
    compile_pool = ThreadPoolExecutor(max_workers=2, thread_name_prefix="structgen-compile")

    @contextlib.asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        yield
        batcher.close()
        compile_pool.shutdown(wait=False, cancel_futures=True)

    app = FastAPI(title="structgen OpenAI-compatible server", lifespan=lifespan)
    app.state.batcher = batcher
    app.state.config = config

    @app.exception_handler(HTTPError)
    async def _http_error(_: Request, exc: HTTPError) -> JSONResponse:
        return JSONResponse(exc.body, status_code=exc.status)

    @app.middleware("http")
    async def _limit_body(request: Request, call_next: Any) -> Any:
        length = request.headers.get("content-length")
        if length is not None and int(length) > config.max_request_bytes:
            return JSONResponse(
                error_body(f"request body of {length} bytes exceeds the limit of {config.max_request_bytes} bytes"),
                status_code=413,
            )
        return await call_next(request)

    async def _parse(request: Request, cls: type[CommonParams]) -> Any:
        raw = await request.body()
        if len(raw) > config.max_request_bytes:
            raise HTTPError(
                413, f"request body of {len(raw)} bytes exceeds the limit of {config.max_request_bytes} bytes"
            )
        try:
            return cls.model_validate_json(raw)
        except ValidationError as exc:
            first = exc.errors()[0]
            param = ".".join(str(p) for p in first.get("loc", ()))
            raise HTTPError(400, f"invalid request: {param}: {first.get('msg')}", param=param) from None

    def _budget(params: CommonParams) -> int:
        budget = params.budget(config.default_max_tokens)
        if budget < 1 or budget > config.max_tokens_cap:
            raise HTTPError(
                400, f"max_tokens must be between 1 and {config.max_tokens_cap}, got {budget}", param="max_tokens"
            )
        if not 1 <= params.n <= config.max_n:
            raise HTTPError(400, f"n must be between 1 and {config.max_n}, got {params.n}", param="n")
        return budget

    async def _precompile(choice: ConstraintChoice) -> None:
        """Compile on the side pool (cached by fingerprint), so errors are 400s and slow schemas hurt nobody."""
        if choice.kind is None:
            return
        loop = asyncio.get_running_loop()
        call = lambda: structgen.compile(loaded.vocab, limits=config.limits, **{choice.kind: choice.value})  # noqa: E731
        try:
            await asyncio.wait_for(loop.run_in_executor(compile_pool, call), config.compile_timeout_s)
        except asyncio.TimeoutError:
            raise HTTPError(
                400, f"the constraint took longer than {config.compile_timeout_s} s to compile", param="response_format"
            ) from None
        except structgen.StructgenError as exc:
            raise HTTPError(400, f"constraint rejected: {exc}", param="response_format") from None

    async def _run(key: SamplingKey, prompts: list[Any], values: list[Any], stream_cb: Any = None) -> Any:
        loop = asyncio.get_running_loop()
        fut: asyncio.Future[Any] = loop.create_future()
        batcher.submit(Job(key, prompts, values, fut, loop, stream=stream_cb))
        try:
            return await asyncio.wait_for(fut, config.request_timeout_s)
        except asyncio.TimeoutError:
            raise HTTPError(408, f"request exceeded {config.request_timeout_s} s", type_="timeout") from None
        except structgen.GenerationError as exc:
            raise HTTPError(400, str(exc), param="max_tokens") from None
        except structgen.StructgenError as exc:
            raise HTTPError(400, str(exc)) from None

    def _key(params: CommonParams, choice: ConstraintChoice, chat: bool, budget: int) -> SamplingKey:
        stop = (params.stop,) if isinstance(params.stop, str) else tuple(params.stop or ())
        temperature = 1.0 if params.temperature is None else float(params.temperature)
        if temperature < 0 or temperature > 2:
            raise HTTPError(400, f"temperature must be in [0, 2], got {temperature}", param="temperature")
        return SamplingKey(choice.kind, chat, budget, temperature, params.top_p, params.seed, stop)

    @app.get("/health")
    async def health() -> dict[str, Any]:
        return {"status": "ok", "batches": batcher.batches_run, "rows": batcher.rows_run}

    @app.get("/v1/models")
    async def models() -> dict[str, Any]:
        return {"object": "list", "data": [{"id": name, "object": "model", "created": 0, "owned_by": "structgen"}]}

    @app.post("/v1/chat/completions")
    async def chat_completions(request: Request) -> Any:
        req: ChatRequest = await _parse(request, ChatRequest)
        budget = _budget(req)
        try:
            choice = chat_constraint(req)
            messages = normalize_messages(
                req, tools_prompt(req.tools) if req.tools and choice.mode != "content" else None
            )
        except RequestError as exc:
            raise HTTPError(400, str(exc), param=exc.param) from None
        await _precompile(choice)
        key = _key(req, choice, True, budget)
        if req.stream:
            if req.n != 1:
                raise HTTPError(400, "stream=true supports n=1 only", param="n")
            include_usage = bool(req.stream_options and req.stream_options.include_usage)
            return StreamingResponse(_chat_stream(key, messages, choice, include_usage), media_type="text/event-stream")
        results = await _run(key, [messages] * req.n, [choice.value] * req.n)
        choices = [
            chat_choice(i, r.text, r.value, choice.mode, finish_reason(r.stop_reason, choice.kind is not None))
            for i, r in enumerate(results)
        ]
        return chat_completion(name, choices, results[0].prompt_tokens, sum(r.completion_tokens for r in results))

    async def _chat_stream(
        key: SamplingKey, messages: Any, choice: ConstraintChoice, include_usage: bool
    ) -> AsyncIterator[str]:
        loop = asyncio.get_running_loop()
        chunks: asyncio.Queue[str | None] = asyncio.Queue()
        emit = lambda c: loop.call_soon_threadsafe(chunks.put_nowait, c)  # noqa: E731
        cid, created = new_id("chatcmpl"), int(time.time())

        def event(choices: list[dict[str, Any]], **extra: Any) -> str:
            body = {
                "id": cid,
                "object": "chat.completion.chunk",
                "created": created,
                "model": name,
                "choices": choices,
                **extra,
            }
            return f"data: {json.dumps(body)}\n\n"

        def frame(delta: dict[str, Any], finish: str | None = None) -> str:
            return event([{"index": 0, "delta": delta, "finish_reason": finish, "logprobs": None}])

        task = asyncio.ensure_future(_run(key, [messages], [choice.value], stream_cb=emit))
        yield frame({"role": "assistant", "content": ""})
        as_content = choice.mode == "content"
        while True:
            chunk = await chunks.get()
            if chunk is None:
                break
            if as_content and chunk:
                yield frame({"content": chunk})
        try:
            (result,) = await task
        except HTTPError as exc:
            yield f"data: {json.dumps(exc.body)}\n\n"
            return
        final = chat_choice(
            0, result.text, result.value, choice.mode, finish_reason(result.stop_reason, choice.kind is not None)
        )
        if final["message"]["tool_calls"]:
            calls = [dict(c, index=k) for k, c in enumerate(final["message"]["tool_calls"])]
            yield frame({"tool_calls": calls})
        elif not as_content:
            yield frame({"content": final["message"]["content"]})
        yield frame({}, final["finish_reason"])
        if include_usage:
            yield event([], usage=usage(result.prompt_tokens, result.completion_tokens))
        yield "data: [DONE]\n\n"

    @app.post("/v1/completions")
    async def completions(request: Request) -> Any:
        req: CompletionRequest = await _parse(request, CompletionRequest)
        budget = _budget(req)
        if req.stream:
            raise HTTPError(400, "stream=true is supported on /v1/chat/completions only", param="stream")
        try:
            choice = response_constraint(req)
        except RequestError as exc:
            raise HTTPError(400, str(exc), param=exc.param) from None
        await _precompile(choice)
        prompts = [req.prompt] if isinstance(req.prompt, str) else list(req.prompt)
        rows = [p for p in prompts for _ in range(req.n)]
        results = await _run(_key(req, choice, False, budget), rows, [choice.value] * len(rows))
        choices = [
            {
                "index": i,
                "text": r.text,
                "finish_reason": finish_reason(r.stop_reason, choice.kind is not None),
                "logprobs": None,
            }
            for i, r in enumerate(results)
        ]
        return text_completion(
            name, choices, sum(r.prompt_tokens for r in results), sum(r.completion_tokens for r in results)
        )

    return app


def serve(
    model: str | None = None, *, host: str = "127.0.0.1", port: int = 8000, config: ServerConfig | None = None
) -> None:
    """Run the server with uvicorn (blocking)."""
    import uvicorn

    uvicorn.run(create_app(model, config), host=host, port=port, log_level="info")
