"""Lark text -> grammar IR: lowering of the Lark syntax, and errors with line, column and caret."""

from __future__ import annotations

import pytest

from structgen.compile.grammar_compiler import compile_grammar_engine
from structgen.errors import InvalidGrammar, LimitExceeded
from structgen.frontends.lark_frontend import grammar_from_lark
from structgen.ir.grammar import Grammar, Rule, Sym, Terminal
from structgen.limits import Limits
from structgen.vocab.vocabulary import Vocabulary


@pytest.fixture(scope="module")
def vocab() -> Vocabulary:
    return Vocabulary.from_bytes([bytes([i]) for i in range(256)] + [b"<eos>"], eos_ids=[256])


def test_lowering_keeps_terminals_rules_ignore_and_priorities() -> None:
    g = grammar_from_lark(
        r"""
start: item+ [TAIL]
item: NAME ("," NAME)* | _kw{"x"}
_kw{w}: w "!"
NAME.3: /[a-z]+/i
TAIL: "end"i
%import common.WS
%ignore WS
"""
    )
    assert isinstance(g, Grammar) and g.start == "start" and g.ignore == ("WS",)
    terms = {t.name: t for t in g.terminals}
    assert terms["NAME"] == Terminal("NAME", "[a-z]+", is_literal=False, priority=3, flags="i")
    assert terms["TAIL"].is_literal and terms["TAIL"].flags == "i" and terms["TAIL"].pattern == "end"
    assert "WS" in terms and not terms["WS"].is_literal
    lhs = {r.lhs for r in g.rules}
    assert "start" in lhs and "item" in lhs
    assert any(r.rhs == (Sym("NAME", True),) for r in g.rules if r.lhs == "item")
    # EBNF + and [] are expanded by Lark into plain alternatives (some with an empty right-hand side
    # or helper rules); templates are instantiated
    assert all(isinstance(r, Rule) for r in g.rules)
    assert any("_kw" in r.lhs for r in g.rules)


def test_unproductive_rules_are_pruned() -> None:
    g = grammar_from_lark(
        """
start: "a" | loop
loop: "b" loop
"""
    )
    assert {r.lhs for r in g.rules} == {"start"}
    assert [t.pattern for t in g.terminals] == ["a"]


def test_empty_language_is_refused() -> None:
    with pytest.raises(InvalidGrammar, match="empty") as info:
        grammar_from_lark('start: "a" start\n')
    assert info.value.line == 1


def test_syntax_error_has_line_column_and_caret() -> None:
    text = 'start: "a" b\nb: "x\n'
    with pytest.raises(InvalidGrammar) as info:
        grammar_from_lark(text)
    err = info.value
    assert err.line == 2 and err.column is not None
    msg = str(err)
    assert "line 2" in msg and '\n  b: "x\n' in msg and msg.rstrip().endswith("^")


def test_undefined_rule_is_located() -> None:
    text = 'start: "a" other\n'
    with pytest.raises(InvalidGrammar, match="other") as info:
        grammar_from_lark(text)
    assert (info.value.line, info.value.column) == (1, 12)
    assert "^" in str(info.value)


def test_terminal_matching_the_empty_string_is_refused_by_name() -> None:
    with pytest.raises(InvalidGrammar, match=r"EMPTYISH .* matches the empty string") as info:
        grammar_from_lark('start: EMPTYISH "x"\nEMPTYISH: /a*/\n')
    assert info.value.line == 1


def test_ir_terminal_matching_empty_is_refused_at_compile(vocab: Vocabulary) -> None:
    g = Grammar(rules=(Rule("start", (Sym("A", True),)),), terminals=(Terminal("A", "b?"),), start="start")
    with pytest.raises(InvalidGrammar, match="A .* matches the empty string"):
        compile_grammar_engine(g, vocab)


def test_ir_undefined_symbols_are_refused(vocab: Vocabulary) -> None:
    g = Grammar(rules=(Rule("start", (Sym("B", True),)),), terminals=(Terminal("A", "a", True),), start="start")
    with pytest.raises(InvalidGrammar, match="terminal B"):
        compile_grammar_engine(g, vocab)
    g2 = Grammar(rules=(Rule("start", (Sym("nope", False),)),), terminals=(), start="start")
    with pytest.raises(InvalidGrammar, match="rule nope"):
        compile_grammar_engine(g2, vocab)
    g3 = Grammar(rules=(Rule("other", ()),), terminals=(), start="start")
    with pytest.raises(InvalidGrammar, match="start rule"):
        compile_grammar_engine(g3, vocab)


def test_limits_are_enforced(vocab: Vocabulary) -> None:
    text = "start: " + " | ".join(f'"w{i}"' for i in range(50)) + "\n"
    many = "\n".join(f'r{i}: "x{i}"' for i in range(30))
    g = grammar_from_lark("start: " + " | ".join(f"r{i}" for i in range(30)) + "\n" + many + "\n")
    with pytest.raises(LimitExceeded, match="max_grammar_rules"):
        compile_grammar_engine(g, vocab, Limits(max_grammar_rules=10))
    with pytest.raises(LimitExceeded, match="max_dfa_states"):
        compile_grammar_engine(grammar_from_lark(text), vocab, Limits(max_dfa_states=20))


def test_not_a_string() -> None:
    with pytest.raises(TypeError):
        grammar_from_lark(b"start: 'a'")  # type: ignore[arg-type]
