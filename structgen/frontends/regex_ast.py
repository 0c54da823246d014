"""The regex AST: what structgen's Python-``re`` subset lowers to before it becomes an automaton.

Six node kinds form a closed union: four for regular expressions proper, plus the boolean
operators :class:`And` (intersection) and :class:`Not` (complement over all UTF-8 text), which
lookaheads lower to and which the automaton layer builds by a product of minimal DFAs. Character classes are sets of Unicode scalar values (as
normalized code-point ranges, see :mod:`structgen.automaton.utf8`); flags such as IGNORECASE and
DOTALL are already applied, anchors at the pattern edges are already dropped, and lazy quantifiers
are ordinary repeats (same language).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Union

from structgen.automaton.utf8 import Ranges


@dataclass(frozen=True, slots=True)
class CharSet:
    """One character from ``ranges`` (empty ranges = matches nothing)."""

    ranges: Ranges


@dataclass(frozen=True, slots=True)
class Concat:
    """The items in order; ``Concat(())`` matches the empty string."""

    items: tuple[Node, ...]


@dataclass(frozen=True, slots=True)
class Alt:
    """Any one of the items."""

    items: tuple[Node, ...]


@dataclass(frozen=True, slots=True)
class Repeat:
    """``item`` repeated ``min`` to ``max`` times (``max=None``: unbounded)."""

    item: Node
    min: int
    max: int | None


@dataclass(frozen=True, slots=True)
class And:
    """Strings in the language of every item (intersection)."""

    items: tuple[Node, ...]


@dataclass(frozen=True, slots=True)
class Not:
    """Strings (any Unicode text, as UTF-8) *not* in the language of ``item`` (complement)."""

    item: Node


Node = Union[CharSet, Concat, Alt, Repeat, And, Not]

EMPTY = Concat(())
NOTHING = CharSet(())


def literal(text: str) -> Node:
    """The exact text."""
    return Concat(tuple(CharSet(((ord(c), ord(c)),)) for c in text))
