"""structgen: structured generation with language models.

Light at import time: neither torch nor transformers is imported until a name that needs them
(``generate``, ``load``, ...) is first used.
"""

from __future__ import annotations

import importlib
from typing import Any

# Bound eagerly: the subpackage ``structgen.compile`` would otherwise shadow the function once any of
# its modules is imported. It costs only numpy.
from structgen.compile.compiler import compile
from structgen.errors import (
    CompileError,
    GenerationError,
    InvalidGrammar,
    InvalidRegex,
    InvalidSchema,
    LimitExceeded,
    SchemaError,
    StructgenError,
    UnsatisfiableSchema,
    UnsupportedRegex,
    UnsupportedSchema,
    VocabularyError,
)
from structgen.limits import Limits
from structgen.version import __version__

# name -> module that defines it (imported on first access)
_LAZY = {
    "CompiledConstraint": "structgen.compile.compiled",
    "Generator": "structgen.api.generator",
    "Matcher": "structgen.runtime.matcher",
    "Vocabulary": "structgen.vocab.vocabulary",
    "allocate_bitmask": "structgen.runtime.bitmask",
    "explain": "structgen.compile.explain",
    "generate": "structgen.api.generate",
    "load": "structgen.api.loading",
    "stream": "structgen.api.generate",
}

__all__ = [
    "CompileError",
    "CompiledConstraint",
    "GenerationError",
    "Generator",
    "InvalidGrammar",
    "InvalidRegex",
    "InvalidSchema",
    "LimitExceeded",
    "Limits",
    "Matcher",
    "SchemaError",
    "StructgenError",
    "UnsatisfiableSchema",
    "UnsupportedRegex",
    "UnsupportedSchema",
    "Vocabulary",
    "VocabularyError",
    "__version__",
    "allocate_bitmask",
    "compile",
    "explain",
    "generate",
    "load",
    "stream",
]


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'structgen' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
