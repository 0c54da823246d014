"""Packaging and architecture guards.

- ``import structgen`` stays light (no torch, no transformers), checked in a fresh interpreter.
- The public API is a sorted ``__all__`` whose names all resolve.
- Imports go one way (docs/architecture.md, "Layers"): a stage imports only stages below it;
  ``kernels/`` imports nothing of structgen; ``integrations/`` use only the public API.
- ``structgen.kernels``, ``structgen.integrations`` and ``structgen.grammars`` import from the
  editable install and from a built wheel.
"""

from __future__ import annotations

import ast
import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

import structgen

ROOT = Path(__file__).resolve().parents[1]

# Layer of each top-level part of the structgen package: a module may import its own part and
# parts of a strictly lower layer. Parts on one layer are siblings and do not import each other.
# Keep in sync with docs/architecture.md ("Layers").
LAYERS: dict[str, int] = {
    # foundation
    "errors": 0,
    "limits": 0,
    "version": 0,
    "grammars": 0,  # package data (top-level grammars/), with a loader
    "kernels": 0,  # top-level kernels/: self-contained, imports nothing of structgen (own test below)
    # leaves: the grammar IR every front end lowers to; the tokenizer-agnostic vocabulary
    "ir": 1,
    "vocab": 1,
    # what the user asked for (a GrammarSpec may carry lowered IR)
    "spec": 2,
    # real tokenizer and model files fetched from package registries (builds Vocabulary objects)
    "assets": 2,
    # spec -> IR: regex parser, Lark, JSON Schema
    "frontends": 3,
    # IR -> byte automata, token-level views over a vocabulary
    "automaton": 4,
    # the hot path: Matcher, engines, bitmask
    "runtime": 5,
    # spec x vocabulary -> CompiledConstraint (drives the front ends, builds the engines)
    "compile": 6,
    # algorithms over matchers
    "decoding": 7,
    # generate(), model adapters
    "api": 8,
    # the package's public face: lazy re-exports only (checked by the light-import test)
    "__init__": 9,
    # edges: entry points that use the public API
    "cli": 10,
    "__main__": 10,
}
# Known upward imports, each with the change that removes it. Keep this list short.
ALLOWED_UPWARD: dict[tuple[str, str], str] = {
    # Unicode range helpers are used by the regex front end and the automata alike; they belong
    # in ir/ (the CharSet nodes of the regex AST are made of them).
    ("frontends", "structgen.automaton.utf8"): "move automaton/utf8.py under ir/",
}
# top-level integrations/ sits above everything and uses only the public API (own test below)
SEPARATE = {"integrations"}
# command-line entry points may start an integration (``structgen serve`` runs the OpenAI server)
ENTRY_POINTS = {"cli", "__main__"}
# what integrations may import from structgen besides the names in structgen.__all__
INTEGRATIONS_MAY_USE = ("structgen.integrations", "structgen.kernels")


def run_python(code: str, *, cwd: Path | None = None, env: dict[str, str] | None = None) -> str:
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=cwd, env=env, timeout=300)
    assert proc.returncode == 0, f"stdout:\n{proc.stdout}\nstderr:\n{proc.stderr}"
    return proc.stdout


# ---------------------------------------------------------------------------------------------
# light import and public API


def test_import_structgen_is_light() -> None:
    out = run_python(
        "import sys, structgen\n"
        "heavy = sorted(m for m in ('torch', 'transformers', 'tokenizers', 'triton') if m in sys.modules)\n"
        "print(','.join(heavy))"
    )
    assert out.strip() == "", f"`import structgen` imported {out.strip()}"


def test_all_is_sorted_and_resolves() -> None:
    assert list(structgen.__all__) == sorted(structgen.__all__)
    assert len(set(structgen.__all__)) == len(structgen.__all__)
    assert set(structgen.__all__) <= set(dir(structgen))


# ---------------------------------------------------------------------------------------------
# import direction


def _module_name(path: Path, base: Path, package: str) -> str:
    rel = path.relative_to(base).with_suffix("")
    parts = [package, *rel.parts]
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _imports(path: Path, module: str) -> list[tuple[int, str, list[str]]]:
    """(line, absolute module, imported names) of every import in ``path``, function-local ones included."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    is_package = path.name == "__init__.py"
    out: list[tuple[int, str, list[str]]] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out.extend((node.lineno, alias.name, []) for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            names = [alias.name for alias in node.names]
            if node.level:
                parts = module.split(".")
                base = parts if is_package else parts[:-1]
                base = base[: len(base) - (node.level - 1)]
                target = ".".join([*base, node.module] if node.module else base)
            else:
                target = node.module or ""
            out.append((node.lineno, target, names))
    return out


def _part(module: str) -> str | None:
    """The top-level part of structgen that ``module`` belongs to, or None outside structgen."""
    parts = module.split(".")
    if parts[0] != "structgen":
        return None
    return parts[1] if len(parts) > 1 else "__init__"


def _python_files(base: Path) -> list[Path]:
    return sorted(p for p in base.rglob("*.py") if "__pycache__" not in p.parts)


def test_relative_imports_resolve(tmp_path: Path) -> None:
    code = "from . import a\nfrom .b import c\nfrom ..vocab.vocabulary import Vocabulary\nimport numpy\n"
    (tmp_path / "mod.py").write_text(code)
    (tmp_path / "__init__.py").write_text(code)
    assert [t for _, t, _ in _imports(tmp_path / "mod.py", "structgen.runtime.mod")] == [
        "structgen.runtime",
        "structgen.runtime.b",
        "structgen.vocab.vocabulary",
        "numpy",
    ]
    assert [t for _, t, _ in _imports(tmp_path / "__init__.py", "structgen.runtime")] == [
        "structgen.runtime",
        "structgen.runtime.b",
        "structgen.vocab.vocabulary",
        "numpy",
    ]


def test_structgen_imports_point_down() -> None:
    base = ROOT / "structgen"
    problems = []
    for path in _python_files(base):
        module = _module_name(path, base, "structgen")
        part = _part(module)
        assert part is not None
        if part not in LAYERS:
            problems.append(f"{path.relative_to(ROOT)}: part {part!r} has no layer in tests/test_packaging.py LAYERS")
            continue
        for line, target, names in _imports(path, module):
            # `from structgen import vocab` names a subpackage: check it, not the package root
            targets = [f"structgen.{n}" for n in names if n in LAYERS or n in SEPARATE] if target == "structgen" else []
            for t in targets or [target]:
                other = _part(t)
                if other is None or other == part:
                    continue
                if other in SEPARATE:
                    if part not in ENTRY_POINTS:
                        problems.append(
                            f"{path.relative_to(ROOT)}:{line}: imports {t} (structgen does not depend on it)"
                        )
                elif other not in LAYERS:
                    problems.append(f"{path.relative_to(ROOT)}:{line}: imports unknown part {t}")
                elif part == "__init__":
                    continue  # checked by test_import_structgen_is_light and the lazy table
                elif LAYERS[other] >= LAYERS[part] and (part, t) not in ALLOWED_UPWARD:
                    problems.append(
                        f"{path.relative_to(ROOT)}:{line}: {part} (layer {LAYERS[part]}) imports {t} "
                        f"({other}, layer {LAYERS[other]}): imports must point to lower layers"
                    )
    assert not problems, "\n".join(problems)


def test_kernels_import_nothing_from_structgen() -> None:
    base = ROOT / "kernels"
    problems = []
    for path in _python_files(base):
        module = _module_name(path, base, "structgen.kernels")
        for line, target, _ in _imports(path, module):
            if _part(target) is not None and not target.startswith("structgen.kernels"):
                problems.append(f"{path.relative_to(ROOT)}:{line}: imports {target}")
    assert not problems, "kernels/ must not import structgen:\n" + "\n".join(problems)


def test_integrations_use_only_the_public_api() -> None:
    base = ROOT / "integrations"
    public = set(structgen.__all__)
    problems = []
    for path in _python_files(base):
        module = _module_name(path, base, "structgen.integrations")
        for line, target, names in _imports(path, module):
            if _part(target) is None or target.startswith(INTEGRATIONS_MAY_USE):
                continue
            if target == "structgen" and set(names) <= public | {"integrations", "kernels"}:
                continue
            problems.append(f"{path.relative_to(ROOT)}:{line}: imports {target} {names or ''}".rstrip())
    assert not problems, "integrations/ may use only `structgen` and its __all__:\n" + "\n".join(problems)


# ---------------------------------------------------------------------------------------------
# installed layouts

MAPPED_IMPORT_CHECK = (
    "import sys, structgen, structgen.kernels, structgen.integrations, structgen.grammars\n"
    "print(structgen.kernels.__file__)\n"
    "print(structgen.grammars.__file__)\n"
    "print(len(structgen.grammars.grammar_names()))\n"
)


def test_mapped_packages_import_from_the_install(tmp_path: Path) -> None:
    """From outside the source tree, the installed (editable) structgen finds its mapped folders."""
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    out = run_python(MAPPED_IMPORT_CHECK, cwd=tmp_path, env=env).splitlines()
    assert Path(out[0]).resolve() == (ROOT / "kernels" / "__init__.py").resolve()
    assert int(out[2]) == len(list((ROOT / "grammars").glob("*.lark")))


@pytest.mark.slow
def test_mapped_packages_import_from_a_built_wheel(tmp_path: Path) -> None:
    src = tmp_path / "src"
    src.mkdir()
    # a copy of what the sdist holds, so the build leaves no build/ or egg-info in the checkout
    for name in ("pyproject.toml", "setup.py", "README.md"):
        if (ROOT / name).exists():
            shutil.copy2(ROOT / name, src / name)
    for folder in ("structgen", "kernels", "integrations", "grammars"):
        shutil.copytree(ROOT / folder, src / folder, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    wheels = tmp_path / "wheels"
    build = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w", str(wheels), str(src)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert build.returncode == 0, build.stdout + build.stderr
    (wheel,) = wheels.glob("structgen-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    assert "structgen/kernels/__init__.py" in names
    assert "structgen/integrations/__init__.py" in names
    assert "structgen/grammars/__init__.py" in names
    assert "structgen/py.typed" in names
    for lark in (ROOT / "grammars").glob("*.lark"):
        assert f"structgen/grammars/{lark.name}" in names
    target = tmp_path / "site"
    install = subprocess.run(
        [sys.executable, "-m", "pip", "install", "--no-deps", "-q", "--target", str(target), str(wheel)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert install.returncode == 0, install.stdout + install.stderr
    # PYTHONPATH comes before site-packages (and the editable install's finder); cwd is not the checkout
    out = run_python(MAPPED_IMPORT_CHECK, cwd=tmp_path, env={**os.environ, "PYTHONPATH": str(target)}).splitlines()
    assert Path(out[0]).is_relative_to(target) and Path(out[1]).is_relative_to(target)
    assert int(out[2]) == len(list((ROOT / "grammars").glob("*.lark")))
