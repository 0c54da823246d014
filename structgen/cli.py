"""The ``structgen`` command line.

structgen demo                                   # the README's first command (bundled SmolLM2)
structgen generate --schema invoice.json "Extract: ..."
structgen generate --model path/or.gguf --regex '\\d{4}-\\d{2}-\\d{2}' "When?"
structgen generate --grammar expr.lark --stream "2+2="
structgen compile --schema invoice.json          # compile time, automaton size, explain table
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any


def _constraint_args(p: argparse.ArgumentParser) -> None:
    g = p.add_mutually_exclusive_group()
    g.add_argument("--schema", metavar="FILE|JSON", help="JSON Schema: a .json file or inline JSON text")
    g.add_argument("--regex", metavar="PATTERN", help="a regular expression the whole output must match")
    g.add_argument("--grammar", metavar="FILE|TEXT", help="a Lark grammar: a .lark file or inline text")
    g.add_argument("--choices", metavar="A,B,...", help="comma-separated alternatives")


def _constraint_kwargs(args: argparse.Namespace) -> dict[str, Any]:
    if args.schema:
        text = Path(args.schema).read_text() if Path(args.schema).is_file() else args.schema
        return {"json_schema": json.loads(text)}
    if args.regex:
        return {"regex": args.regex}
    if args.grammar:
        p = Path(args.grammar)
        return {"grammar": p.read_text() if p.is_file() else args.grammar}
    if args.choices:
        return {"choices": [c for c in args.choices.split(",")]}
    return {}


def _cmd_generate(args: argparse.Namespace) -> int:
    import structgen

    kw = _constraint_kwargs(args)
    model = structgen.load(args.model)
    common = dict(
        max_new_tokens=args.max_new_tokens,
        temperature=args.temperature,
        top_p=args.top_p,
        top_k=args.top_k,
        seed=args.seed,
        stop=args.stop or None,
        system=args.system,
        constraint_start_after=args.constraint_start_after,
        chat=False if args.raw else None,
    )
    if args.stream:
        s = structgen.stream(model, args.prompt, **common, **kw)
        for chunk in s:
            sys.stdout.write(chunk)
            sys.stdout.flush()
        sys.stdout.write("\n")
        result = s.result
    else:
        result = structgen.generate(model, args.prompt, return_result=True, **common, **kw)
        value = result.value
        print(json.dumps(value, indent=2, ensure_ascii=False) if "json_schema" in kw else value)
    if args.verbose and result is not None:
        print(
            f"[{result.completion_tokens} tokens, stop: {result.stop_reason}, compile {result.compile_seconds:.2f} s, "
            f"prefill {result.prefill_seconds:.2f} s, decode {result.decode_seconds:.2f} s]",
            file=sys.stderr,
        )
    return 0


def _cmd_compile(args: argparse.Namespace) -> int:
    from structgen.compile.compiler import compile as sg_compile

    kw = _constraint_kwargs(args)
    if not kw:
        print("structgen compile: pass one of --schema, --regex, --grammar, --choices", file=sys.stderr)
        return 2
    if args.tokenizer:
        from structgen import assets

        vocab = assets.load_vocabulary(args.tokenizer)
        label = f"tokenizer {args.tokenizer}"
    else:
        import structgen

        vocab = structgen.load(args.model).vocab
        label = f"model {args.model or 'smollm2'}"
    t0 = time.perf_counter()
    compiled = sg_compile(vocab, cache=False, **kw)
    dt = time.perf_counter() - t0
    print(f"compiled against {label} ({vocab.size} tokens) in {dt * 1000:.1f} ms")
    print(f"fingerprint: {compiled.fingerprint}")
    info = dict(compiled.info)
    stats = getattr(compiled.engine, "stats", None)
    if callable(stats):
        try:
            info.update(stats())
        except Exception:  # noqa: BLE001 - reporting only
            pass
    dfa = getattr(compiled.engine, "dfa", None)
    if dfa is not None and hasattr(dfa, "num_states"):
        info["dfa_states"] = dfa.num_states
    for k, v in info.items():
        if k not in ("explain", "report"):
            print(f"  {k}: {v}")
    if "json_schema" in kw:
        try:
            from structgen.frontends.json_schema.explain import explain
        except ImportError:
            return 0
        print()
        print(explain(kw["json_schema"]))
    return 0


def _cmd_demo(args: argparse.Namespace) -> int:
    from structgen.api.demo import main as demo_main

    return demo_main()


def _cmd_serve(args: argparse.Namespace) -> int:
    try:
        from structgen.integrations.openai_server import ServerConfig, serve
    except ImportError as exc:  # fastapi / uvicorn are the optional ``server`` extra
        print(f"structgen serve needs the server extra: pip install 'structgen[server]' ({exc})", file=sys.stderr)
        return 1
    config = ServerConfig(max_batch=args.max_batch, default_max_tokens=args.default_max_tokens)
    serve(args.model, host=args.host, port=args.port, config=config)
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="structgen", description="Structured generation with language models.")
    sub = parser.add_subparsers(dest="cmd", required=True)

    g = sub.add_parser("generate", help="generate with a model under a constraint and print the result")
    g.add_argument("prompt")
    g.add_argument("--model", default=None, help="checkpoint dir, .gguf file, or 'smollm2' (default: bundled)")
    _constraint_args(g)
    g.add_argument("--max-new-tokens", type=int, default=256)
    g.add_argument("--temperature", type=float, default=0.0)
    g.add_argument("--top-p", type=float, default=None)
    g.add_argument("--top-k", type=int, default=None)
    g.add_argument("--seed", type=int, default=None)
    g.add_argument("--stop", action="append", help="stop string for free text (repeatable)")
    g.add_argument("--system", default=None, help="system message (chat models)")
    g.add_argument("--constraint-start-after", default=None, metavar="DELIM", help='e.g. "</think>"')
    g.add_argument("--raw", action="store_true", help="send the prompt verbatim (no chat template)")
    g.add_argument("--stream", action="store_true", help="print text as it is generated")
    g.add_argument("-v", "--verbose", action="store_true", help="print token counts and timings to stderr")
    g.set_defaults(func=_cmd_generate)

    c = sub.add_parser("compile", help="compile a constraint and report time, automaton size and explain table")
    _constraint_args(c)
    c.add_argument("--model", default=None, help="compile against this model's vocabulary (default: bundled)")
    c.add_argument(
        "--tokenizer", default=None, help="or a cached tokenizer name (llama3, qwen3, mistral, gemma3, gpt2)"
    )
    c.set_defaults(func=_cmd_compile)

    d = sub.add_parser("demo", help="extract an invoice into a pydantic object with the bundled model")
    d.set_defaults(func=_cmd_demo)

    s = sub.add_parser("serve", help="run the OpenAI-compatible server (needs the server extra)")
    s.add_argument("--model", default=None, help="checkpoint dir, .gguf file, or 'smollm2' (default: bundled)")
    s.add_argument("--host", default="127.0.0.1")
    s.add_argument("--port", type=int, default=8000)
    s.add_argument("--max-batch", type=int, default=16, help="rows per model batch across clients")
    s.add_argument("--default-max-tokens", type=int, default=256)
    s.set_defaults(func=_cmd_serve)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    from structgen.errors import StructgenError

    try:
        return int(args.func(args))
    except StructgenError as exc:
        print(f"structgen: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    raise SystemExit(main())
