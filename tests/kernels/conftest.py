"""Run the Triton kernels everywhere: natively on CUDA, under the Triton interpreter on the CPU.

triton 3.x decides interpreted-vs-compiled when its ``@triton.jit`` decorators run, including those
inside ``triton.language`` (``tl.max``, ``tl.argmax``), so ``TRITON_INTERPRET=1`` must be in the
environment before the first ``import triton`` in the process. This conftest sets it when no CUDA
device is present. If something imported triton earlier in the session (a test module collected
before this directory), the interpreter cannot be switched on any more: tests that use the
``triton_device`` fixture are then run in a fresh ``python -m pytest`` subprocess with the
variable set (one subprocess per test module), and each test reports its own outcome from there.
"""

from __future__ import annotations

import os
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
import torch

_CHILD = "STRUCTGEN_KERNELS_INTERPRETED_CHILD"

if not torch.cuda.is_available() and "triton" not in sys.modules:
    os.environ.setdefault("TRITON_INTERPRET", "1")


def _interpreter_active() -> bool:
    from structgen.kernels._triton_support import interpreter_active

    return interpreter_active()


def _needs_subprocess() -> bool:
    return not torch.cuda.is_available() and not _interpreter_active()


@pytest.fixture(autouse=True)
def _one_intra_op_thread():
    """These tests use small tensors: intra-op threads only add contention (seconds per step on a
    loaded 2-core runner, measured). Restored after each test, so other suites are unaffected."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture
def triton_device() -> str:
    """The device the Triton kernels run on here: ``cuda``, or ``cpu`` through the interpreter."""
    if torch.cuda.is_available():
        return "cuda"
    if _interpreter_active():
        return "cpu"
    if os.environ.get(_CHILD):
        pytest.fail("the Triton interpreter is off even in the interpreted subprocess")
    return "cpu"  # the call itself is diverted to a subprocess by pytest_pyfunc_call below


@pytest.fixture
def cuda_device() -> str:
    if not torch.cuda.is_available():
        pytest.skip("needs a CUDA device (the same checks run on the CPU through the Triton interpreter)")
    return "cuda"


_results: dict[str, dict[str, str | None]] = {}


def _run_module_interpreted(path: Path) -> dict[str, str | None]:
    key = str(path)
    if key in _results:
        return _results[key]
    report = path.parent / f".{path.stem}.interpreted.xml"
    env = dict(os.environ, TRITON_INTERPRET="1", **{_CHILD: "1"})
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", str(path), "-q", "-p", "no:cacheprovider", f"--junitxml={report}"],
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    outcomes: dict[str, str | None] = {}
    try:
        for case in ET.parse(report).getroot().iter("testcase"):
            failure = case.find("failure")
            if failure is None:
                failure = case.find("error")
            skipped = case.find("skipped")
            if failure is not None:
                outcomes[case.get("name", "")] = (failure.get("message") or "") + "\n" + (failure.text or "")
            elif skipped is not None:
                outcomes[case.get("name", "")] = "SKIP " + (skipped.get("message") or "")
            else:
                outcomes[case.get("name", "")] = None
    except (OSError, ET.ParseError):
        outcomes["__all__"] = (
            f"interpreted subprocess produced no report (rc={proc.returncode}):\n{proc.stdout[-4000:]}\n{proc.stderr[-4000:]}"
        )
    finally:
        report.unlink(missing_ok=True)
    _results[key] = outcomes
    return outcomes


@pytest.hookimpl(tryfirst=True)
def pytest_pyfunc_call(pyfuncitem: pytest.Function) -> bool | None:
    if "triton_device" not in pyfuncitem.fixturenames or not _needs_subprocess() or os.environ.get(_CHILD):
        return None
    outcomes = _run_module_interpreted(Path(str(pyfuncitem.path)))
    if "__all__" in outcomes:
        pytest.fail(outcomes["__all__"] or "interpreted subprocess failed")
    if pyfuncitem.name not in outcomes:
        pytest.fail(f"{pyfuncitem.name} did not run in the interpreted subprocess")
    message = outcomes[pyfuncitem.name]
    if message is not None and message.startswith("SKIP "):
        pytest.skip(f"skipped in the interpreted subprocess: {message[5:]}")
    if message is not None:
        pytest.fail(f"failed under TRITON_INTERPRET=1 in a subprocess:\n{message}", pytrace=False)
    return True
