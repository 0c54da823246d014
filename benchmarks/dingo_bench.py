"""DINGO benchmark: DP time per denoising step, and decoding quality of none / greedy / DINGO.

    python benchmarks/dingo_bench.py                      # both sections, llama3 tokenizer (128,256 tokens)
    python benchmarks/dingo_bench.py --section dp --tokenizer llama3 --reps 5
    python benchmarks/dingo_bench.py --section quality --seeds 8

Section ``dp``: one ``Dingo.decode_block`` call on random log-probability rows (as from a softmax);
the block holds ``free`` rows committed this step and masked rows otherwise, with 32 positions after
the block (so the exact length-feasibility check is exercised). Reported: min and median over
``--reps`` (the min filters scheduler preemption on a shared machine).
``free = 1`` is LLaDA's usual ``steps == gen_length`` schedule; ``free = block`` is the worst case.

Section ``quality``: the same tiny random-weight ModernBERT masked LM (no trained diffusion LM is
installable here), same prompts and seeds, decoded unconstrained, with greedy token masking and
with DINGO; reported: validity rate (``regex`` module fullmatch) and mean summed log-probability of
the committed tokens.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

# regexes of growing token-level DFA size
DFA_CASES = {
    "small": r"(true|false|null)",
    "country": r"[A-Z][a-z]{2,12}, population [0-9]{1,9}, capital [A-Z][a-z]{2,12}",
    "json-person": r'\{"name":"[a-zA-Z ]{1,20}","age":[0-9]{1,3},"email":"[a-z]{1,10}@[a-z]{1,8}\.(com|org)"\}',
    "long-fields": r'\{"id":[0-9]{1,12},"title":"[a-zA-Z0-9 ]{5,60}","tags":\["[a-z]{1,12}"(,"[a-z]{1,12}"){0,4}\]\}',
}


def machine() -> str:
    try:
        from run import machine_info  # benchmarks/run.py

        return machine_info()
    except Exception:  # noqa: BLE001 - the runner is optional
        import os
        import platform

        return (
            f"{platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, Python {platform.python_version()}"
        )


def bench_dp(tokenizer: str, reps: int, blocks: list[int], frees: list[str]) -> str:
    import structgen
    from structgen.assets import load_vocabulary
    from structgen.decoding.diffusion.dingo import MASKED, Dingo, Free, TokenDFA

    t0 = time.perf_counter()
    vocab = load_vocabulary(tokenizer)
    lines = [f"Vocabulary `{tokenizer}`: {vocab.size} logits ({time.perf_counter() - t0:.1f} s to load).", ""]
    lines.append(
        "| regex | DFA states | token classes | build (s) | block | free rows | DP ms (min) | DP ms (median) |"
    )
    lines.append("|---|---|---|---|---|---|---|---|")
    rng = np.random.default_rng(0)
    # log-softmax rows of random logits (full support, like a real model's softmax)
    pool = []
    for _ in range(8):
        z = rng.standard_normal(vocab.size).astype(np.float32) * 3
        pool.append((z - np.log(np.exp(z - z.max()).sum()) - z.max()).astype(np.float32))
    for name, rx in DFA_CASES.items():
        t = time.perf_counter()
        compiled = structgen.compile(vocab, regex=rx)
        d = Dingo(TokenDFA.from_engine(compiled.engine, vocab))
        build = time.perf_counter() - t
        n_states = int((d.dest != 0).any(axis=1).sum())
        for block in blocks:
            for f in frees:
                k = block if f == "block" else min(int(f), block)
                rows = [Free(pool[i % len(pool)]) if i < k else MASKED for i in range(block)]
                times = []
                for _ in range(reps):
                    t = time.perf_counter()
                    res = d.decode_block(d.start, rows, remaining=32)
                    times.append(time.perf_counter() - t)
                assert res.ok
                lines.append(
                    f"| {name} | {n_states} | {d.num_classes} | {build:.1f} | {block} | {k} | {min(times) * 1e3:.1f} | {statistics.median(times) * 1e3:.1f} |"
                )
    return "\n".join(lines)


def _tiny_model(tokens: list[bytes]) -> tuple[Any, Any]:
    """``(model, vocab)``: the tiny random ModernBERT (hidden 64, 2 layers) over ``<pad> <eos> <mask>``
    followed by ``tokens``."""
    import torch

    from structgen.decoding.diffusion.adapters import tiny_masked_diffusion_model
    from structgen.vocab.vocabulary import Vocabulary

    torch.set_num_threads(1)
    vocab = Vocabulary.from_bytes([b"<pad>", b"<eos>", b"<mask>", *tokens], eos_ids=[1], special_ids=[0, 2])
    return tiny_masked_diffusion_model(vocab.size, 2, seed=0, hidden=64, layers=2), vocab


def _decode(model: Any, vocab: Any, seed: int, **options: Any) -> Any:
    """One seed's answer; the prompt is 6 random ids drawn from the seed."""
    from structgen.decoding.diffusion.loop import generate_diffusion

    prompt = np.random.default_rng(seed).integers(3, 90, size=6).tolist()
    return generate_diffusion(model, vocab, prompt, seed=seed, **options)


def bench_quality(seeds: int, gen_length: int, block_length: int, steps: int) -> str:
    import regex as regex_mod

    chars = [bytes([c]) for c in range(32, 127)]
    multi = [b"12", b"ab", b'{"', b'":', b'",', b'"}', b"true", b"null", b".com", b"name", b"age", b"@", b"00"]
    model, vocab = _tiny_model([*chars, *multi])
    patterns = {
        "email": r"[a-z]{3,8}@[a-z]{2,5}\.(com|org)",
        "number": r"-?[0-9]{1,4}(\.[0-9]{1,2})?",
        "json": r'\{"name":"[a-z]{1,8}","age":[0-9]{1,2}\}',
    }
    lines = [
        f"Tiny random ModernBERT (hidden 64, 2 layers), vocabulary of {vocab.size} byte/multi-byte tokens; "
        f"gen_length {gen_length}, block_length {block_length}, steps {steps}, low-confidence remasking, "
        f"{seeds} seeds (prompts = seed-dependent random ids), temperature 0 and 1 alternating.",
        "",
        "| regex | method | valid | mean log-prob (all) | mean log-prob (valid only) | mean DP ms / step |",
        "|---|---|---|---|---|---|",
    ]
    for pname, rx in patterns.items():
        for method in ("none", "greedy", "dingo"):
            valid = 0
            lps = []
            vlps = []
            dps = []
            for s in range(seeds):
                r = _decode(
                    model,
                    vocab,
                    s,
                    regex=None if method == "none" else rx,
                    method=method,
                    gen_length=gen_length,
                    block_length=block_length,
                    steps=steps,
                    temperature=float(s % 2),
                )
                ok = bool(regex_mod.fullmatch(rx, r.text))
                valid += ok
                lps.append(r.logprob)
                if ok:
                    vlps.append(r.logprob)
                if r.dp_calls:
                    dps.append(r.dp_seconds / r.dp_calls * 1e3)
            dp = f"{statistics.mean(dps):.2f}" if dps else "-"
            vl = f"{statistics.mean(vlps):.1f}" if vlps else "-"
            lines.append(f"| {pname} | {method} | {valid}/{seeds} | {statistics.mean(lps):.1f} | {vl} | {dp} |")
    return "\n".join(lines)


def bench_cfg(seeds: int, gen_length: int, block_length: int) -> str:
    import lark

    from structgen.decoding.diffusion.cfg_infill import InfillChecker

    chars = [bytes([c]) for c in range(32, 127)] + [b"\n"]
    multi = [b'{"', b'":', b'",', b'"}', b"true", b"null", b"int", b"return", b"main", b"()", b" {", b"}", b";"]
    model, vocab = _tiny_model([*chars, *multi])
    root = Path(__file__).resolve().parents[1] / "grammars"
    lines = [
        f"CFG infilling, same tiny random ModernBERT; gen_length {gen_length}, block_length {block_length}, "
        f"steps = gen_length, {seeds} seeds. valid = Lark parses the output (Earley; LALR in its own column: "
        "Lark's LALR lexer lets priority-2 keywords win on identifier prefixes, e.g. `ifx` = `if` `x`, unlike "
        "structgen's longest-match lexer); stuck = some position had no acceptable candidate.",
        "",
        "| grammar | method | valid (Lark Earley) | valid (Lark LALR) | checker valid | stuck | mean checks / answer "
        "| mean ms / check | mean resamples |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for gname in ("json", "c_like"):
        text = (root / f"{gname}.lark").read_text()
        parser = lark.Lark(text, parser="earley")
        lalr = lark.Lark(text, parser="lalr")
        for method in ("none", "cfg"):
            valid = valid_lalr = checker_valid = stuck = 0
            checks: list[float] = []
            ms: list[float] = []
            res: list[int] = []
            for s in range(seeds):
                checker = InfillChecker.from_lark(text, vocab) if method == "cfg" else None
                t0 = time.perf_counter()
                r = _decode(
                    model,
                    vocab,
                    s,
                    grammar=text if method == "cfg" else None,
                    checker=checker,
                    method=method,
                    gen_length=gen_length,
                    block_length=block_length,
                    steps=gen_length,
                )
                el = time.perf_counter() - t0 - r.forward_seconds
                for prs, count in ((parser, "e"), (lalr, "l")):
                    try:
                        prs.parse(r.text)
                    except lark.exceptions.LarkError:
                        continue
                    if count == "e":
                        valid += 1
                    else:
                        valid_lalr += 1
                checker_valid += bool(r.valid)
                stuck += bool(r.info.get("stuck"))
                res.append(r.resamples)
                if checker is not None:
                    checks.append(checker.checks)
                    ms.append(el / max(1, checker.checks) * 1e3)
            c = f"{statistics.mean(checks):.0f}" if checks else "-"
            cv = f"{checker_valid}/{seeds}" if method == "cfg" else "-"
            m = f"{statistics.mean(ms):.1f}" if ms else "-"
            lines.append(
                f"| {gname} | {method} | {valid}/{seeds} | {valid_lalr}/{seeds} | {cv} | {stuck}/{seeds} "
                f"| {c} | {m} | {statistics.mean(res):.0f} |"
            )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--section", choices=["dp", "quality", "cfg", "all"], default="all")
    ap.add_argument("--tokenizer", default="llama3")
    ap.add_argument("--reps", type=int, default=5)
    ap.add_argument("--blocks", default="8,32,64")
    ap.add_argument("--free", default="1,4,block", help="free rows per step: integers and/or 'block'")
    ap.add_argument("--seeds", type=int, default=6)
    ap.add_argument("--gen-length", type=int, default=32)
    ap.add_argument("--block-length", type=int, default=16)
    ap.add_argument("--steps", type=int, default=32)
    ap.add_argument("--cfg-block-length", type=int, default=4)
    ap.add_argument("--out", default=None)
    args = ap.parse_args(argv)
    parts = [f"Machine: {machine()}", ""]
    if args.section in ("dp", "all"):
        parts += [
            "### DP time per denoising step",
            "",
            bench_dp(args.tokenizer, args.reps, [int(b) for b in args.blocks.split(",")], args.free.split(",")),
            "",
        ]
    if args.section in ("quality", "all"):
        parts += [
            "### Validity and log-probability",
            "",
            bench_quality(args.seeds, args.gen_length, args.block_length, args.steps),
            "",
        ]
    if args.section in ("cfg", "all"):
        parts += ["### CFG infilling", "", bench_cfg(args.seeds, args.gen_length, args.cfg_block_length), ""]
    report = "\n".join(parts)
    print(report)
    if args.out:
        Path(args.out).write_text(report)


if __name__ == "__main__":
    main()
