"""The grammar IR every front end lowers to (Lark text, JSON Schema, choices).

A grammar is a set of rules over terminals; terminals are byte-level regular languages (given as
Python-``re``-subset patterns or literal strings). It is inert and hashable: compile() turns it into
a lexer DFA plus an Earley parser.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Terminal:
    """A lexeme class. ``pattern`` is a regex (structgen's Python ``re`` subset) or, when
    ``is_literal``, the exact text. Higher ``priority`` wins when two terminals match the same lexeme."""

    name: str
    pattern: str
    is_literal: bool = False
    priority: int = 0
    flags: str = ""  # Lark/re flags among "imsx"


@dataclass(frozen=True, slots=True)
class Sym:
    """A symbol on a rule's right-hand side: a rule (``is_terminal=False``) or terminal name."""

    name: str
    is_terminal: bool


@dataclass(frozen=True, slots=True)
class Rule:
    """``lhs -> rhs`` (one alternative; an empty ``rhs`` is epsilon)."""

    lhs: str
    rhs: tuple[Sym, ...]


@dataclass(frozen=True, slots=True)
class Grammar:
    """A context-free grammar over terminals. ``ignore`` names terminals skipped between lexemes."""

    rules: tuple[Rule, ...]
    terminals: tuple[Terminal, ...]
    start: str
    ignore: tuple[str, ...] = ()
    source: str = ""  # the text it came from, for messages

    def rules_for(self, lhs: str) -> tuple[Rule, ...]:
        return tuple(r for r in self.rules if r.lhs == lhs)
