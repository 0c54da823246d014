"""Grammar IR × vocabulary -> GrammarEngine (used for Lark grammars and for lowered JSON Schemas).

Steps: check and prune the IR (undefined symbols, unproductive and unreachable rules, unused
terminals), build one lexer DFA over the kept terminals (refusing terminals that match the empty
string), compile the Earley tables, and hand both to the runtime engine (which precomputes the lexer's
slice closures, a few ms). Token classifications are computed lazily per (lexer state, acceptable
terminals) by trie walks and cached inside the engine.
"""

from __future__ import annotations

from structgen.automaton.earley import build_tables
from structgen.automaton.lexer import build_lexer_dfa
from structgen.errors import InvalidGrammar, LimitExceeded
from structgen.frontends.lark_frontend import _locate_name, prune_grammar
from structgen.ir.grammar import Grammar
from structgen.limits import DEFAULT_LIMITS, Limits
from structgen.runtime.grammar_engine import GrammarEngine
from structgen.vocab.vocabulary import Vocabulary


def compile_grammar_engine(grammar: Grammar, vocab: Vocabulary, limits: Limits | None = None) -> GrammarEngine:
    """Compile ``grammar`` against ``vocab``.

    Raises :class:`InvalidGrammar` (undefined symbols, empty language, a terminal matching the
    empty string) or :class:`LimitExceeded` (``max_grammar_rules``, ``max_dfa_states``, ...).
    """
    limits = limits or DEFAULT_LIMITS
    if len(grammar.rules) > limits.max_grammar_rules:
        raise LimitExceeded("max_grammar_rules", len(grammar.rules), limits.max_grammar_rules, "compiling a grammar")
    grammar = prune_grammar(grammar)
    terminals = grammar.terminals
    lexer = build_lexer_dfa(terminals, limits)
    start = lexer.dfa.start
    if start == 0:
        raise InvalidGrammar("the grammar's terminals match no string at all", grammar.source)
    empty = lexer.accepts[start]
    if empty:
        bad = next(t for i, t in enumerate(terminals) if empty >> i & 1)
        line, col = _locate_name(grammar.source, bad.name) if grammar.source else (None, None)
        if line is None and grammar.source:
            for i, ln in enumerate(grammar.source.splitlines(), start=1):
                if ln.lstrip().startswith(bad.name):
                    line, col = i, ln.index(bad.name) + 1
                    break
        raise InvalidGrammar(
            f"terminal {bad.name} ({bad.pattern!r}) matches the empty string",
            grammar.source,
            line,
            col,
        )
    for i, t in enumerate(terminals):
        if not lexer.alive[start] >> i & 1:
            raise InvalidGrammar(f"terminal {t.name} ({t.pattern!r}) matches no string", grammar.source)
    names = tuple(t.name for t in terminals)
    tables = build_tables(grammar, names, limits)
    index = {n: i for i, n in enumerate(names)}
    return GrammarEngine(
        tables,
        lexer,
        vocab,
        limits,
        ignore=tuple(index[n] for n in grammar.ignore),
        priorities=tuple(t.priority for t in terminals),
    )
