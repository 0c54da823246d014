"""Cross-client batching: one worker thread owns the model and runs compatible requests together."""

from __future__ import annotations

import asyncio
import queue
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import structgen


@dataclass(frozen=True)
class SamplingKey:
    """Requests with equal keys share one ``structgen.generate`` call."""

    kind: str | None
    chat: bool
    max_new_tokens: int
    temperature: float
    top_p: float | None
    seed: int | None
    stop: tuple[str, ...]

    def generate_kwargs(self, value: Any) -> dict[str, Any]:
        """Keyword arguments of ``structgen.generate`` / ``structgen.stream`` for this key and the
        constraint ``value`` (a list of them for a batch)."""
        kwargs: dict[str, Any] = dict(
            max_new_tokens=self.max_new_tokens,
            temperature=self.temperature,
            top_p=self.top_p,
            seed=self.seed,
            stop=list(self.stop) or None,
            chat=self.chat,
            progress=False,
        )
        if self.kind is not None:
            kwargs[self.kind] = value
        return kwargs


@dataclass(eq=False)
class Job:
    """``n`` rows of one request; ``future`` receives the list of GenerationResult (or an exception)."""

    key: SamplingKey
    prompts: list[Any]
    values: list[Any]  # constraint value per row (None: free text)
    future: asyncio.Future[Any]
    loop: asyncio.AbstractEventLoop
    stream: Callable[[str | None], None] | None = None  # called from the worker with chunks, None at the end
    enqueued: float = field(default_factory=time.perf_counter)


class Batcher:
    """Collects jobs for ``window_s`` and runs each group of equal keys as one batch (up to ``max_batch`` rows)."""

    def __init__(self, model: Any, *, max_batch: int = 16, window_s: float = 0.01) -> None:
        self.model = model
        self.max_batch = max_batch
        self.window_s = window_s
        self._queue: queue.Queue[Job | None] = queue.Queue()
        self._thread = threading.Thread(target=self._run, name="structgen-batcher", daemon=True)
        self.batches_run = 0
        self.rows_run = 0
        self._thread.start()

    def submit(self, job: Job) -> None:
        self._queue.put(job)

    def close(self) -> None:
        self._queue.put(None)
        self._thread.join(timeout=30)

    # ---- worker ---------------------------------------------------------------------------------
    def _run(self) -> None:
        while True:
            first = self._queue.get()
            if first is None:
                return
            jobs = [first]
            deadline = time.perf_counter() + self.window_s
            while sum(len(j.prompts) for j in jobs) < self.max_batch:
                remaining = deadline - time.perf_counter()
                if remaining <= 0:
                    break
                try:
                    nxt = self._queue.get(timeout=remaining)
                except queue.Empty:
                    break
                if nxt is None:
                    self._queue.put(None)
                    break
                jobs.append(nxt)
            for group in self._groups(jobs):
                self._execute(group)

    def _groups(self, jobs: list[Job]) -> list[list[Job]]:
        groups: dict[SamplingKey, list[Job]] = {}
        out: list[list[Job]] = []
        for job in jobs:
            if job.stream is not None:
                out.append([job])
            else:
                groups.setdefault(job.key, []).append(job)
        return out + list(groups.values())

    def _execute(self, group: list[Job]) -> None:
        live = [j for j in group if not j.future.done()]  # timed-out clients are skipped
        if not live:
            return
        try:
            if live[0].stream is not None:
                self._stream(live[0])
                return
            prompts = [p for j in live for p in j.prompts]
            values = [v for j in live for v in j.values]
            kwargs = live[0].key.generate_kwargs(values)
            results = structgen.generate(self.model, prompts, return_result=True, **kwargs)
            self.batches_run += 1
            self.rows_run += len(prompts)
        except Exception as exc:  # noqa: BLE001 - every failure goes back to its clients
            for j in live:
                j.loop.call_soon_threadsafe(_set_exception, j.future, exc)
            return
        start = 0
        for j in live:
            part = results[start : start + len(j.prompts)]
            start += len(j.prompts)
            j.loop.call_soon_threadsafe(_set_result, j.future, part)

    def _stream(self, job: Job) -> None:
        kwargs = job.key.generate_kwargs(job.values[0])
        emit = job.stream
        assert emit is not None  # _groups only routes streaming jobs here
        try:
            it = structgen.stream(self.model, job.prompts[0], **kwargs)
            for chunk in it:
                if job.future.done():  # the client went away
                    return
                emit(chunk)
            emit(None)
            job.loop.call_soon_threadsafe(_set_result, job.future, [it.result])
        except Exception as exc:  # noqa: BLE001
            job.loop.call_soon_threadsafe(_set_exception, job.future, exc)


def _set_result(fut: asyncio.Future[Any], value: Any) -> None:
    if not fut.done():
        fut.set_result(value)


def _set_exception(fut: asyncio.Future[Any], exc: BaseException) -> None:
    if not fut.done():
        fut.set_exception(exc)
