"""Whether Triton can run here, decided without importing triton unless it is needed."""

from __future__ import annotations

import importlib.util
import os

import torch


def _env_interpret() -> bool:
    return os.environ.get("TRITON_INTERPRET", "0").lower() in ("1", "true", "on", "yes")


def interpreter_active() -> bool:
    """True when triton's ``@jit`` produces interpreted kernels in this process.

    triton 3.x reads ``TRITON_INTERPRET`` when each ``@triton.jit`` decorator runs, including those of
    ``triton.language`` itself (``tl.max``, ``tl.argmax``, ...), so the variable must be set before the
    first ``import triton``. Once triton is imported, its own knob is the truth.
    """
    if importlib.util.find_spec("triton") is None:
        return False
    import sys

    if "triton" not in sys.modules:
        return _env_interpret()
    import triton

    knobs = getattr(triton, "knobs", None)
    if knobs is not None:
        return bool(knobs.runtime.interpret)
    return _env_interpret()  # pragma: no cover - triton < 3.3


def triton_runs_on(device: torch.device) -> bool:
    if importlib.util.find_spec("triton") is None:
        return False
    if device.type == "cuda":
        return True
    if device.type == "cpu":
        return interpreter_active()
    return False
