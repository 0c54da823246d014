"""The structgen CLI (cheap paths; the model paths are in test_e2e_smollm2.py)."""

from __future__ import annotations

import pytest

from structgen.cli import build_parser, main


def test_parser_has_commands():
    p = build_parser()
    args = p.parse_args(["generate", "--regex", "a+", "hello"])
    assert args.regex == "a+" and args.prompt == "hello"
    with pytest.raises(SystemExit):
        p.parse_args(["generate", "--regex", "a", "--choices", "a,b", "x"])  # one constraint at most


def test_compile_reports(capsys):
    from structgen import assets

    if not assets.tokenizer_available("gpt2"):
        pytest.skip("gpt2 tokenizer not cached")
    assert main(["compile", "--regex", r"[a-z]{2}", "--tokenizer", "gpt2"]) == 0
    out = capsys.readouterr().out
    assert "compiled against tokenizer gpt2" in out and "fingerprint" in out
    assert main(["compile", "--regex", "(", "--tokenizer", "gpt2"]) == 1
