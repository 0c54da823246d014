"""Grammar test cases shared by the grammar engine tests: valid and invalid sentences per shipped grammar."""

from __future__ import annotations

from pathlib import Path

GRAMMAR_DIR = Path(__file__).resolve().parents[2] / "grammars"
NAMES = ["json", "arithmetic", "ambiguous", "sql_subset", "c_like"]

# Valid sentences per shipped grammar (also used to pick states in the real-tokenizer tests).
VALID: dict[str, list[str]] = {
    "json": [
        '{"name": "Al\u00e9 \u4e2d\U0001f600", "age": 31, "tags": [1.5e3, true, null, -0.25E-2], "n": {"x": [], "y": {}}}',
        ' [ "a\\"b\\\\c\\u00e9\\n" ,\n\t{ } , false ] ',
        '"plain string"',
        "-12.5e+10",
    ],
    "arithmetic": [
        "1 + 2 * (3 - x) / f(4, y) % 7",
        "-2 ^ 3 ^ 2 - -a",
        "g() * h(1)",
        "alpha_1+beta*gamma",
    ],
    "ambiguous": [
        "1 + 2 * 3",
        "let x = 1 in x + 2 * y",
        "a b (c d) + 7",
        "lets + letx * in2",
    ],
    "sql_subset": [
        "SELECT a, b FROM t WHERE a > 1 AND b = 'x' ORDER BY a DESC LIMIT 10;",
        "select count(*) from users u join orders o on u.id = o.uid where o.total >= 100 or u.vip is not null",
        "SELECT DISTINCT name AS n, age + 1 FROM people AS p GROUP BY name, p.age",
        "Select fromage From selection Where selected In (1, 2, 'x')",
    ],
    "c_like": [
        "int main(int argc, char *argv) { int x = 1; while (x < 10) { x = x + 1; } "
        "if (x == 10) { return 0; } else { return f(x, 'a', \"s\\n\"); } }",
        "void f() { // a comment\n return; }",
        "float g(float a) { if (a) { return -a * 2.5; } else if (!a) { return a % 3; } else { } return 0; }",
        'char *h() { intx = 3; iffy(intx); return "done"; }',
    ],
}

INVALID: dict[str, list[str]] = {
    "json": [
        '{"a":1,}',
        "[1 2]",
        '{"a" 1}',
        "01",
        '"abc',
        '{"a":tru}',
        "[",
        '"\x01"',
        "1.",
        "{" + " " * 41 + "}",
        "nul",
    ],
    "arithmetic": ["1 +", "* 2", "f(,)", "(1", "1 2", "a ^", "1..2", ""],
    "ambiguous": ["let = 1 in 2", "1 +", "let x = 1", "(", "x = 2", ""],
    "sql_subset": ["SELECT FROM t", "SELECT a FROM", "SELECT a FROM t WHERE", "SELECT * FROM t LIMIT x", "FROM t"],
    "c_like": ["int main( { }", "int x;", "int f() { return 1 }", "f() { }", "int f() { if = 1; }", ""],
}

# Lark's dynamic Earley lexer ignores terminal priorities when it lexes (they only rank parse
# trees), so a keyword can also be read as a NAME. structgen lexes like Lark's contextual lexer:
# where a keyword (priority 2) and NAME both match a whole lexeme, the keyword wins. These sentences
# are accepted by Lark(parser="earley") only through a NAME reading of a keyword.
PRIORITY_DIVERGENT: dict[str, set[str]] = {
    "sql_subset": {"SELECT a FROM t WHERE"},  # "WHERE" as the table alias
    "c_like": {"int f() { if = 1; }"},  # "if" as an assigned variable
}


def grammar_text(name: str) -> str:
    return (GRAMMAR_DIR / f"{name}.lark").read_text()
