"""OpenAI-server overhead and latency under load (loopback only).

    python benchmarks/server_bench.py --model tiny --requests 20 --clients 16
    python benchmarks/server_bench.py --model smollm2 --requests 5 --clients 4

Overhead: the same requests (compile cached) sent one at a time through HTTP vs ``structgen.generate``
called directly in-process, as a ratio of wall time. Load: ``clients`` concurrent clients each send
``requests`` requests; p50/p99 latency and errors are reported. Every output is validated.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import jsonschema

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "integrations"))

SCHEMA = {
    "type": "object",
    "properties": {"id": {"type": "integer", "minimum": 0, "maximum": 999}, "ok": {"type": "boolean"}},
    "required": ["id", "ok"],
    "additionalProperties": False,
}


def _model(name: str):  # type: ignore[no-untyped-def]
    import structgen

    if name == "tiny":
        from conftest import tiny_random_model  # the tests' 2-layer random Llama over the SmolLM2 tokenizer

        return tiny_random_model()
    return structgen.load(name)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", default="tiny", help="'tiny' (random weights) or what structgen.load takes")
    p.add_argument("--requests", type=int, default=20)
    p.add_argument("--clients", type=int, default=16)
    p.add_argument("--max-tokens", type=int, default=24)
    args = p.parse_args(argv)

    import openai
    import torch
    import uvicorn
    from structgen.integrations.openai_server import ServerConfig, create_app

    import structgen

    torch.set_num_threads(1)
    loaded = _model(args.model)
    app = create_app(loaded, ServerConfig(max_batch=32), model_name=args.model)
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    while not server.started:
        time.sleep(0.05)
    port = server.servers[0].sockets[0].getsockname()[1]
    client = openai.OpenAI(api_key="unused", base_url=f"http://127.0.0.1:{port}/v1", max_retries=0, timeout=600)
    rf = {"type": "json_schema", "json_schema": {"name": "s", "schema": SCHEMA}}
    messages = [{"role": "user", "content": "Give an id and a flag."}]

    def via_http(seed: int) -> float:
        t0 = time.perf_counter()
        r = client.chat.completions.create(
            model=args.model,
            messages=messages,
            max_tokens=args.max_tokens,
            seed=seed,
            temperature=1.0,
            response_format=rf,
        )
        jsonschema.validate(json.loads(r.choices[0].message.content), SCHEMA)
        return time.perf_counter() - t0

    def direct(seed: int) -> float:
        t0 = time.perf_counter()
        v = structgen.generate(
            loaded, messages, json_schema=SCHEMA, max_new_tokens=args.max_tokens, seed=seed, temperature=1.0
        )
        jsonschema.validate(v, SCHEMA)
        return time.perf_counter() - t0

    via_http(0), direct(0)  # warm: compile cache, first forward
    seeds = range(1, args.requests + 1)
    d = [direct(s) for s in seeds]
    h = [via_http(s) for s in seeds]
    overhead = (sum(h) - sum(d)) / sum(d)

    lat: list[float] = []
    errors = 0

    def client_run(i: int) -> None:
        nonlocal errors
        for j in range(args.requests):
            try:
                lat.append(via_http(1000 * i + j))
            except Exception:  # noqa: BLE001 - counted and reported
                errors += 1

    t0 = time.perf_counter()
    with ThreadPoolExecutor(args.clients) as pool:
        list(pool.map(client_run, range(args.clients)))
    wall = time.perf_counter() - t0
    lat.sort()
    p99 = lat[min(len(lat) - 1, int(0.99 * len(lat)))]
    print(f"model {args.model}; {args.requests} sequential requests; max_tokens {args.max_tokens}")
    print(f"direct generate mean {statistics.mean(d) * 1e3:.1f} ms, via HTTP mean {statistics.mean(h) * 1e3:.1f} ms")
    print(f"server overhead (HTTP vs direct, same requests): {overhead * 100:+.1f}%")
    print(
        f"load: {args.clients} clients x {args.requests} requests in {wall:.1f} s, errors {errors}, "
        f"latency p50 {statistics.median(lat) * 1e3:.0f} ms, p99 {p99 * 1e3:.0f} ms, "
        f"{len(lat) / wall:.1f} req/s"
    )
    server.should_exit = True
    thread.join(timeout=30)
    return 0 if errors == 0 else 1


if __name__ == "__main__":
    raise SystemExit(main())
