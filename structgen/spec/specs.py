"""What the user asked for: inert, hashable constraint specs."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import Any, Union

from structgen.ir.grammar import Grammar


@dataclass(frozen=True, slots=True)
class RegexSpec:
    """A regular expression in structgen's Python ``re`` subset, matched against the whole output."""

    pattern: str


@dataclass(frozen=True, slots=True)
class GrammarSpec:
    """A context-free grammar in Lark syntax (``text``) or already lowered (``ir``)."""

    text: str = ""
    start: str = "start"
    ir: Grammar | None = None


@dataclass(frozen=True, slots=True)
class JsonSchemaSpec:
    """A JSON Schema, stored as canonical JSON text so the spec is hashable."""

    schema_json: str
    options_json: str = "{}"

    @staticmethod
    def of(schema: Any, **options: Any) -> JsonSchemaSpec:
        return JsonSchemaSpec(json.dumps(schema, sort_keys=False), json.dumps(options, sort_keys=True, default=str))

    @property
    def schema(self) -> Any:
        return json.loads(self.schema_json)

    @property
    def options(self) -> dict[str, Any]:
        return dict(json.loads(self.options_json))


@dataclass(frozen=True, slots=True)
class ChoiceSpec:
    """Exactly one of the given strings."""

    options: tuple[str, ...]


Spec = Union[RegexSpec, GrammarSpec, JsonSchemaSpec, ChoiceSpec]


def spec_fingerprint(spec: Spec) -> str:
    """A stable hash of a spec."""
    return hashlib.sha256(repr(spec).encode("utf-8")).hexdigest()[:32]
