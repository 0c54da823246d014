"""Constrained decoding for masked diffusion LMs (LLaDA/Dream-style): DINGO for regular constraints,
CFG ∩ regular emptiness checks for grammars. Heavy imports (torch) happen inside the modules that need them."""

from __future__ import annotations

import importlib
from typing import Any

_LAZY = {
    "MASKED": "structgen.decoding.diffusion.dingo",
    "Dingo": "structgen.decoding.diffusion.dingo",
    "DingoResult": "structgen.decoding.diffusion.dingo",
    "Fixed": "structgen.decoding.diffusion.dingo",
    "Free": "structgen.decoding.diffusion.dingo",
    "TokenDFA": "structgen.decoding.diffusion.dingo",
    "DiffusionModel": "structgen.decoding.diffusion.protocol",
    "DiffusionResult": "structgen.decoding.diffusion.loop",
    "generate_diffusion": "structgen.decoding.diffusion.loop",
    "MaskedLMAdapter": "structgen.decoding.diffusion.adapters",
    "tiny_masked_diffusion_model": "structgen.decoding.diffusion.adapters",
    "InfillChecker": "structgen.decoding.diffusion.cfg_infill",
    "greedy_block": "structgen.decoding.diffusion.dingo",
    "num_transfer_tokens": "structgen.decoding.diffusion.loop",
    "schema_to_regex": "structgen.decoding.diffusion.schema_regex",
}

__all__ = sorted(_LAZY)


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value
