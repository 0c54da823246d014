"""Lark grammar text -> structgen's grammar IR.

Lark itself parses the full Lark syntax (rules, EBNF ``?``/``*``/``+``/``[]``, templates, string and
regex terminals with flags, ``%import common.X``, ``%ignore``, terminal priorities); we read its
expanded rules and terminal definitions and lower them to :class:`structgen.ir.grammar.Grammar`.

What is kept and what is not:

* terminals: name, pattern (a literal or a Python-``re``-subset regex), flags, priority. Terminal
  priorities decide which terminal a lexeme is when several match it (higher wins; equal priorities
  keep every reading, the Earley parser sorts them out).
* rules: every alternative after Lark's EBNF and template expansion. Rule priorities, aliases,
  ``?``-inlining and ``keep_all_tokens`` only shape Lark's parse trees, never the language, so they
  are dropped.
* ``%ignore`` terminals may appear between any two lexemes.

Checks: Lark's own errors (syntax, undefined rules and terminals, ...) become
:class:`structgen.errors.InvalidGrammar` with line, column and a caret; a terminal that matches the
empty string is refused by name; rules that derive no finite string are pruned, and a grammar whose
start rule derives none is refused (its language is empty).
"""

from __future__ import annotations

import re

from structgen.errors import InvalidGrammar
from structgen.ir.grammar import Grammar, Rule, Sym, Terminal

_POS_RE = re.compile(r"line (\d+),? col(?:umn)? (\d+)")
_UNDEFINED_RE = re.compile(r"(?:Rule|Terminal) '?([A-Za-z_][A-Za-z_0-9]*)'? used but not defined")


def _locate_name(text: str, name: str) -> tuple[int | None, int | None]:
    """1-based line/column of the first use of ``name`` after a rule's colon (for messages)."""
    for lineno, line in enumerate(text.splitlines(), start=1):
        for m in re.finditer(rf"(?<![A-Za-z_0-9]){re.escape(name)}(?![A-Za-z_0-9])", line):
            before = line[: m.start()]
            if ":" in before or before.strip().startswith("|"):
                return lineno, m.start() + 1
    return None, None


def _lark_error(exc: Exception, text: str) -> InvalidGrammar:
    """Turn any Lark exception raised while loading ``text`` into an InvalidGrammar with a position."""
    line = getattr(exc, "line", None)
    column = getattr(exc, "column", None)
    message = str(exc).strip()
    args: tuple[object, ...] = tuple(getattr(exc, "args", ()))
    if len(args) == 2 and "zero-width" in str(args[0]):
        term = args[1]
        name = getattr(term, "name", str(term))
        pattern = getattr(getattr(term, "pattern", None), "value", "")
        line, column = _locate_name(text, name) if not name.startswith("__") else (None, None)
        return InvalidGrammar(f"terminal {name} ({pattern!r}) matches the empty string", text, line, column)
    if not isinstance(line, int) or line < 1:
        m = _POS_RE.search(message)
        if m:
            line, column = int(m.group(1)), int(m.group(2))
        else:
            u = _UNDEFINED_RE.search(message)
            line, column = _locate_name(text, u.group(1)) if u else (None, None)
    first = message.splitlines()[0] if message else type(exc).__name__
    return InvalidGrammar(first, text, line, column)


def grammar_from_lark(text: str, start: str = "start") -> Grammar:
    """Parse Lark grammar ``text`` and lower it to the IR (see the module docstring)."""
    if not isinstance(text, str):
        raise TypeError(f"grammar text must be a str, got {type(text).__name__}")
    import lark
    from lark.exceptions import LarkError

    try:
        parser = lark.Lark(text, start=start, parser="earley", lexer="dynamic", keep_all_tokens=True)
    except LarkError as exc:
        raise _lark_error(exc, text) from None
    except (KeyError, ValueError, TypeError, IndexError) as exc:  # Lark lets a few malformed inputs through as these
        raise InvalidGrammar(f"{type(exc).__name__}: {exc}", text) from None

    terminals = []
    for t in parser.terminals:
        pat = t.pattern
        flags = "".join(sorted(pat.flags))
        is_literal = type(pat).__name__ == "PatternStr"
        terminals.append(
            Terminal(
                name=str(t.name), pattern=str(pat.value), is_literal=is_literal, priority=int(t.priority), flags=flags
            )
        )
    rules = tuple(
        Rule(lhs=str(r.origin.name), rhs=tuple(Sym(str(s.name), bool(s.is_term)) for s in r.expansion))
        for r in parser.rules
    )
    grammar = Grammar(
        rules=rules,
        terminals=tuple(terminals),
        start=start,
        ignore=tuple(str(n) for n in parser.ignore_tokens),
        source=text,
    )
    return prune_grammar(grammar)


def check_grammar(grammar: Grammar) -> None:
    """Refuse undefined symbols and duplicate terminals in an IR grammar (any front end)."""
    text = grammar.source
    names = {t.name for t in grammar.terminals}
    if len(names) != len(grammar.terminals):
        seen: set[str] = set()
        for t in grammar.terminals:
            if t.name in seen:
                raise InvalidGrammar(f"terminal {t.name} is defined twice", text)
            seen.add(t.name)
    lhs = {r.lhs for r in grammar.rules}
    if grammar.start not in lhs:
        raise InvalidGrammar(f"start rule {grammar.start!r} is not defined (rules: {sorted(lhs)[:10]})", text)
    for r in grammar.rules:
        for s in r.rhs:
            if s.is_terminal and s.name not in names:
                line, col = _locate_name(text, s.name) if text else (None, None)
                raise InvalidGrammar(f"terminal {s.name} used in rule {r.lhs} but not defined", text, line, col)
            if not s.is_terminal and s.name not in lhs:
                line, col = _locate_name(text, s.name) if text else (None, None)
                raise InvalidGrammar(f"rule {s.name} used in rule {r.lhs} but not defined", text, line, col)
    for n in grammar.ignore:
        if n not in names:
            raise InvalidGrammar(f"%ignore names {n}, which is not a terminal", text)


def prune_grammar(grammar: Grammar) -> Grammar:
    """Drop unproductive and unreachable rules and unused terminals; refuse an empty language.

    A rule is productive when every symbol on its right-hand side is a terminal or a productive
    rule (least fixed point). Alternatives using an unproductive rule can never finish, so they are
    removed; the language does not change.
    """
    check_grammar(grammar)
    productive: set[str] = set()
    changed = True
    while changed:
        changed = False
        for r in grammar.rules:
            if r.lhs not in productive and all(s.is_terminal or s.name in productive for s in r.rhs):
                productive.add(r.lhs)
                changed = True
    if grammar.start not in productive:
        line, col = _locate_name(grammar.source, grammar.start) if grammar.source else (None, None)
        if line is None and grammar.source:
            for i, ln in enumerate(grammar.source.splitlines(), start=1):
                m = re.match(rf"\s*[?!]?{re.escape(grammar.start)}\b", ln)
                if m:
                    line, col = i, m.end() - len(grammar.start) + 1
                    break
        raise InvalidGrammar(
            f"the start rule {grammar.start!r} derives no finite string (the language is empty): "
            f"every alternative recurses forever",
            grammar.source,
            line,
            col,
        )
    rules = [
        r for r in grammar.rules if r.lhs in productive and all(s.is_terminal or s.name in productive for s in r.rhs)
    ]
    by_lhs: dict[str, list[Rule]] = {}
    for r in rules:
        by_lhs.setdefault(r.lhs, []).append(r)
    reach = {grammar.start}
    stack = [grammar.start]
    used_terms: set[str] = set(grammar.ignore)
    while stack:
        x = stack.pop()
        for r in by_lhs.get(x, ()):
            for s in r.rhs:
                if s.is_terminal:
                    used_terms.add(s.name)
                elif s.name not in reach:
                    reach.add(s.name)
                    stack.append(s.name)
    kept_rules = tuple(r for r in rules if r.lhs in reach)
    kept_terms = tuple(t for t in grammar.terminals if t.name in used_terms)
    if len(kept_rules) == len(grammar.rules) and len(kept_terms) == len(grammar.terminals):
        return grammar
    return Grammar(
        rules=kept_rules, terminals=kept_terms, start=grammar.start, ignore=grammar.ignore, source=grammar.source
    )
