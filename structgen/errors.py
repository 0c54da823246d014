"""The one error tree of structgen.

::

    StructgenError
    ├── CompileError                 raised by compile(); never at decode time
    │   ├── InvalidRegex             .position, message names the offset
    │   ├── UnsupportedRegex         backreferences, lookaround, ... (.construct, .position)
    │   ├── InvalidGrammar           .line, .column, message shows a caret line
    │   ├── SchemaError              .pointer (JSON pointer such as "#/properties/a/anyOf/1")
    │   │   ├── InvalidSchema        not valid JSON Schema
    │   │   ├── UnsatisfiableSchema  no instance can satisfy it
    │   │   └── UnsupportedSchema    a keyword structgen cannot enforce (.keyword)
    │   └── LimitExceeded            a documented limit in structgen.limits (.limit, .value)
    ├── VocabularyError              a tokenizer that cannot be turned into exact token bytes
    └── GenerationError              misuse of generate() (budget below the minimum, vocab/logits mismatch)

Decode time never raises on a model's token: matchers return False and keep a sticky ``.error``.
API misuse (wrong bitmask shape or dtype) raises ``ValueError`` / ``TypeError``.
"""

from __future__ import annotations


class StructgenError(Exception):
    """Base class of every structgen error."""


class CompileError(StructgenError):
    """A constraint could not be compiled."""


class InvalidRegex(CompileError):
    """A regular expression is malformed; ``position`` is the 0-based offset in the pattern."""

    def __init__(self, message: str, pattern: str, position: int | None) -> None:
        self.pattern = pattern
        self.position = position
        where = f" at position {position}" if position is not None else ""
        caret = ""
        if position is not None:
            caret = f"\n  {pattern}\n  {' ' * position}^"
        super().__init__(f"invalid regex{where}: {message}{caret}")


class UnsupportedRegex(InvalidRegex):
    """A valid Python regex construct that a finite automaton cannot express (named in ``construct``)."""

    def __init__(self, construct: str, pattern: str, position: int | None) -> None:
        self.construct = construct
        super().__init__(f"{construct} is not supported by structgen's regex automata", pattern, position)


class InvalidGrammar(CompileError):
    """A Lark grammar is malformed; ``line``/``column`` are 1-based."""

    def __init__(self, message: str, text: str = "", line: int | None = None, column: int | None = None) -> None:
        self.line = line
        self.column = column
        where = f" at line {line}, column {column}" if line is not None and column is not None else ""
        caret = ""
        if line is not None and column is not None and text:
            lines = text.splitlines()
            if 1 <= line <= len(lines):
                caret = f"\n  {lines[line - 1]}\n  {' ' * max(column - 1, 0)}^"
        super().__init__(f"invalid grammar{where}: {message}{caret}")


class SchemaError(CompileError):
    """A JSON Schema problem located by a JSON pointer."""

    kind = "schema error"

    def __init__(self, message: str, pointer: str = "#") -> None:
        self.pointer = pointer
        super().__init__(f"{self.kind} at {pointer}: {message}")


class InvalidSchema(SchemaError):
    """The schema is not valid JSON Schema."""

    kind = "invalid schema"


class UnsatisfiableSchema(SchemaError):
    """No JSON value satisfies the schema."""

    kind = "unsatisfiable schema"


class UnsupportedSchema(SchemaError):
    """A keyword that structgen cannot enforce exactly; ``keyword`` names it."""

    kind = "unsupported schema"

    def __init__(self, message: str, pointer: str = "#", keyword: str = "") -> None:
        self.keyword = keyword
        super().__init__(f"keyword {keyword!r}: {message}" if keyword else message, pointer)


class LimitExceeded(CompileError):
    """A documented limit (a field of ``structgen.limits.Limits``) was exceeded."""

    def __init__(self, limit: str, value: int | float, bound: int | float, what: str = "") -> None:
        self.limit = limit
        self.value = value
        self.bound = bound
        self.what = what
        detail = f" while {what}" if what else ""
        super().__init__(
            f"limit Limits.{limit} = {bound} exceeded ({value}){detail}; "
            f"raise it with structgen.Limits({limit}=...) if this is intended"
        )


class VocabularyError(StructgenError):
    """A tokenizer cannot be turned into an exact byte-level vocabulary."""


class GenerationError(StructgenError):
    """A generation request that cannot be satisfied (reported before the model runs)."""
