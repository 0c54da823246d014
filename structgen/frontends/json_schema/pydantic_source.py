"""Anything a user may pass as ``json_schema=`` -> a JSON Schema dict.

* a dict (or ``True``/``False``): returned as is (validated later, with pointers);
* a JSON string holding a schema object;
* a pydantic ``BaseModel`` subclass: ``model_json_schema()``;
* any other type pydantic understands (``list[Model]``, unions, ``Enum``, ``Literal``,
  ``Annotated[str, StringConstraints(...)]``, ``conint(...)``, dataclasses, ``TypedDict``):
  ``pydantic.TypeAdapter(obj).json_schema()``.
"""

from __future__ import annotations

import json
from typing import Any

from structgen.errors import InvalidSchema


def schema_from_any(obj: Any) -> dict[str, Any] | bool:
    """The JSON Schema for ``obj`` (see the module docstring); raises InvalidSchema otherwise."""
    if isinstance(obj, bool):
        return obj
    if isinstance(obj, dict):
        bad = [k for k in obj if not isinstance(k, str)]
        if bad:
            raise InvalidSchema(f"schema keys must be strings, got {bad[0]!r}", "#")
        return obj
    if isinstance(obj, str):
        try:
            parsed = json.loads(obj)
        except json.JSONDecodeError as e:
            raise InvalidSchema(f"a string schema must be JSON text ({e})", "#") from None
        if not isinstance(parsed, (dict, bool)):
            raise InvalidSchema(f"a schema must be an object or a boolean, got {type(parsed).__name__}", "#")
        return parsed
    try:
        import pydantic
    except ImportError as e:  # pragma: no cover - pydantic is a dependency
        raise InvalidSchema(f"cannot turn {obj!r} into a schema without pydantic ({e})", "#") from None
    if isinstance(obj, type) and issubclass(obj, pydantic.BaseModel):
        return obj.model_json_schema()
    if isinstance(obj, pydantic.TypeAdapter):
        return obj.json_schema()
    try:
        return pydantic.TypeAdapter(obj).json_schema()
    except (pydantic.PydanticSchemaGenerationError, pydantic.errors.PydanticUserError, TypeError) as e:
        raise InvalidSchema(f"{obj!r} is neither a schema dict nor a type pydantic can describe ({e})", "#") from None
