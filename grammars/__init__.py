"""Shipped Lark grammars, installed as package data of ``structgen.grammars``.

    from structgen.grammars import grammar_names, read_grammar
    text = read_grammar("json")          # the text of grammars/json.lark

Each ``.lark`` file here has a test that compiles it.
"""

from __future__ import annotations

from importlib import resources

__all__ = ["grammar_names", "read_grammar"]


def grammar_names() -> list[str]:
    """Names of the shipped grammars (file names without ``.lark``), sorted."""
    return sorted(p.name[: -len(".lark")] for p in resources.files(__name__).iterdir() if p.name.endswith(".lark"))


def read_grammar(name: str) -> str:
    """The Lark text of the shipped grammar ``name`` (for example ``"json"``)."""
    path = resources.files(__name__).joinpath(f"{name}.lark")
    if not path.is_file():
        raise KeyError(f"no shipped grammar {name!r}; shipped: {grammar_names()}")
    return path.read_text(encoding="utf-8")
