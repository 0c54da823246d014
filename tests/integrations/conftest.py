"""Servers on loopback for the integration tests: the real bundled model and a tiny random one."""

from __future__ import annotations

import socket
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("fastapi")
uvicorn = pytest.importorskip("uvicorn")

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "api"))  # _api_helpers


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class RunningServer:
    def __init__(self, app: Any) -> None:
        self.port = _free_port()
        self.base_url = f"http://127.0.0.1:{self.port}/v1"
        self.server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=self.port, log_level="warning"))
        self.thread = threading.Thread(target=self.server.run, daemon=True)
        self.app = app

    def __enter__(self) -> RunningServer:
        self.thread.start()
        deadline = time.time() + 30
        while not self.server.started:
            if time.time() > deadline:
                raise RuntimeError("server did not start")
            time.sleep(0.05)
        return self

    def __exit__(self, *exc: Any) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=30)


def tiny_random_model() -> Any:
    """A 2-layer Llama with random weights over the real SmolLM2 tokenizer (fast, real decode path)."""
    from _api_helpers import tiny_llama
    from transformers import AutoTokenizer

    from structgen.api.loading import wrap
    from structgen.assets import model_dir

    tok = AutoTokenizer.from_pretrained(str(model_dir("smollm2")))
    model = tiny_llama(
        len(tok),
        hidden=64,
        heads=2,
        seed=0,
        max_position_embeddings=2048,
        bos_token_id=tok.bos_token_id,
        eos_token_id=tok.eos_token_id,
    )
    return wrap(model, tok, name="tiny-random")


@pytest.fixture(scope="session")
def smollm2_server() -> Iterator[RunningServer]:
    from structgen.integrations.openai_server import create_app

    import structgen

    with RunningServer(create_app(structgen.load(), model_name="smollm2")) as srv:
        yield srv


@pytest.fixture(scope="session")
def tiny_model() -> Any:
    return tiny_random_model()


@pytest.fixture(scope="session")
def tiny_server(tiny_model: Any) -> Iterator[RunningServer]:
    from structgen.integrations.openai_server import ServerConfig, create_app

    config = ServerConfig(max_batch=32, default_max_tokens=64, max_request_bytes=200_000)
    with RunningServer(create_app(tiny_model, config, model_name="tiny")) as srv:
        yield srv
