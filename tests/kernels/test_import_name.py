"""The top-level ``kernels/`` folder must not shadow the PyPI package ``kernels`` (transformers imports it)."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def _run(code: str) -> subprocess.CompletedProcess[str]:
    """Run ``code`` with the checkout's root first on sys.path, as ``python -m`` from it does."""
    return subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=300)


def test_top_level_kernels_is_the_pypi_package_from_a_checkout() -> None:
    if importlib.util.find_spec("transformers") is None:
        pytest.skip("transformers not installed")
    r = _run(
        "import sys, kernels, structgen.kernels as sk\n"
        "print(kernels.__file__)\n"
        "print(sk.__file__)\n"
        "print(callable(sk.apply_token_bitmask_))\n"
    )
    lines = r.stdout.split()
    if r.returncode != 0:  # only acceptable when no PyPI 'kernels' exists: then the error names structgen.kernels
        assert "structgen.kernels" in r.stderr, r.stderr
        return
    pypi_kernels, ours, ok = lines
    assert not Path(pypi_kernels).resolve().is_relative_to(ROOT), pypi_kernels
    assert Path(ours).resolve() == ROOT / "kernels" / "__init__.py"
    assert ok == "True"


def test_transformers_models_import_from_a_checkout() -> None:
    if importlib.util.find_spec("transformers") is None:
        pytest.skip("transformers not installed")
    r = _run("import transformers.integrations.hub_kernels, transformers.models.llama.modeling_llama; print('ok')")
    assert r.returncode == 0 and r.stdout.strip() == "ok", r.stderr[-2000:]
