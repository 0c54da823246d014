"""Optional numba compilation of the automaton kernels (plain-Python functions, also run as is).

``compiled(name, *kernels)`` returns the kernels compiled with ``numba.njit(cache=True)`` when numba
is importable and ``STRUCTGEN_NO_NUMBA`` is unset, else None (callers then take their numpy path).
numba is a heavy import, so nothing is compiled or imported before the first call.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

__all__ = ["compiled"]

_COMPILED: dict[str, tuple[Callable[..., Any], ...] | None] = {}


def compiled(name: str, *kernels: Callable[..., Any]) -> tuple[Callable[..., Any], ...] | None:
    """The numba-compiled ``kernels`` (memoized under ``name``), or None without numba."""
    if name not in _COMPILED:
        _COMPILED[name] = _compile(kernels)
    return _COMPILED[name]


def _compile(kernels: tuple[Callable[..., Any], ...]) -> tuple[Callable[..., Any], ...] | None:
    if os.environ.get("STRUCTGEN_NO_NUMBA"):
        return None
    try:
        import numba
    except ImportError:
        return None
    jit = numba.njit(cache=True, nogil=True)
    return tuple(jit(k) for k in kernels)
