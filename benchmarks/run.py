"""The one benchmark runner.

    python benchmarks/run.py mask --tokenizer llama3                  # regex suite, all engines
    python benchmarks/run.py mask --tokenizer llama3 --suite all      # every registered suite
    python benchmarks/run.py mask --engines structgen xgrammar --strings 5 --out results.md

Benchmarks are registered in ``BENCHMARKS`` (name -> (add_arguments, main)); each ``main`` returns
a markdown report, printed with the machine description (and written to ``--out`` when given).
"""

from __future__ import annotations

import argparse
import os
import platform
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))


def cpu_name() -> str:
    """The CPU model from /proc/cpuinfo, else what ``platform`` knows."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def machine_info() -> str:
    cpu = cpu_name()
    import numpy

    parts = [
        f"{cpu}, {os.cpu_count()} logical CPUs",
        f"Python {platform.python_version()}",
        f"numpy {numpy.__version__}",
    ]
    for mod in ("structgen", "xgrammar", "llguidance", "outlines_core"):
        try:
            from importlib.metadata import version

            parts.append(f"{mod} {version(mod.replace('_', '-'))}")
        except Exception:  # noqa: BLE001
            pass
    try:
        rev = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, check=False
        ).stdout.strip()
        if rev:
            parts.append(f"commit {rev}")
    except OSError:
        pass
    return "; ".join(parts)


def _mask_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--tokenizer", default="llama3")
    p.add_argument("--suite", default="regex", help="a registered suite (regex, ...) or 'all'")
    p.add_argument("--cases", nargs="*", help="only these case names")
    p.add_argument("--engines", nargs="+", default=["structgen", "xgrammar", "llguidance", "outlines-core"])
    p.add_argument("--strings", type=int, default=3, help="random valid strings walked per case")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--repeats", type=int, default=3, help="warm masks: min over this many fills per step")
    p.add_argument(
        "--compile-timeout", type=float, default=60.0, help="seconds before outlines-core's eager index is given up"
    )


def _mask_main(args: Any) -> str:
    import mask_bench

    return mask_bench.main(args)


BENCHMARKS: dict[str, tuple[Callable[[argparse.ArgumentParser], None], Callable[[Any], str]]] = {
    "mask": (_mask_args, _mask_main),
}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="benchmark", required=True)
    for name, (add_args, _) in BENCHMARKS.items():
        p = sub.add_parser(name)
        add_args(p)
        p.add_argument("--out", help="also write the markdown report here")
    args = parser.parse_args(argv)
    report = BENCHMARKS[args.benchmark][1](args)
    cmd = "python benchmarks/run.py " + " ".join(sys.argv[1:] if argv is None else argv)
    text = f"Command: `{cmd}`\n\nMachine: {machine_info()}\n\n{report}\n"
    print(text)
    if args.out:
        Path(args.out).write_text(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
