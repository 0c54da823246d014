"""Every grammar shipped in ``structgen.grammars`` (package data) compiles and accepts an example."""

from __future__ import annotations

import importlib.resources

import pytest

from structgen import assets
from structgen.compile.compiler import compile as sg_compile
from structgen.vocab.vocabulary import Vocabulary

EXAMPLES = {
    "json.lark": '{"a": [1, 2.5e-3, "x\\u00e9"], "b": {"c": null}}',
    "arithmetic.lark": "(1 + x) * f(2, -y) ^ 3 - 4 / 5",
    "ambiguous.lark": "let x = 1 in x + 2 * x y",
    "sql_subset.lark": "SELECT name, count(*) FROM t WHERE age >= 18 GROUP BY name LIMIT 5;",
    "c_like.lark": "int main() { int x = 0; while (x < 3) { x = x + 1; } return x; }",
}


def shipped() -> list[str]:
    files = importlib.resources.files("structgen.grammars")
    return sorted(p.name for p in files.iterdir() if p.name.endswith(".lark"))


def read(name: str) -> str:
    return importlib.resources.files("structgen.grammars").joinpath(name).read_text(encoding="utf-8")


def test_the_five_grammars_are_shipped() -> None:
    assert set(EXAMPLES) <= set(shipped())


@pytest.mark.parametrize("name", shipped())
def test_shipped_grammar_compiles_and_accepts_its_example(name: str) -> None:
    vocab = Vocabulary.from_bytes([bytes([i]) for i in range(256)] + [b"<eos>"], eos_ids=[256])
    compiled = sg_compile(vocab, grammar=read(name))
    m = compiled.matcher()
    assert m.allowed_token_ids().size > 0
    if name in EXAMPLES:
        assert m.accept_text(EXAMPLES[name]), m.error
        assert m.is_accepting()


@pytest.mark.parametrize("name", shipped())
def test_shipped_grammar_on_llama3(name: str) -> None:
    if not assets.tokenizer_available("llama3"):
        pytest.skip("tokenizer 'llama3' not fetched: run `python -m structgen.assets fetch --tokenizers-only`")
    vocab = assets.load_vocabulary("llama3")
    m = sg_compile(vocab, grammar=read(name)).matcher()
    if name in EXAMPLES:
        ids = assets.load_tokenizer("llama3").encode(EXAMPLES[name], add_special_tokens=False)
        for t in ids:
            assert m.accept_token(t), m.error
        assert m.is_accepting()
