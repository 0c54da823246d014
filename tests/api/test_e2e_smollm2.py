"""End to end with the real bundled SmolLM2-135M-Instruct."""

from __future__ import annotations

import re

import pytest

torch = pytest.importorskip("torch")

from _api_helpers import json_compiler_available  # noqa: E402

import structgen  # noqa: E402


@pytest.mark.slow
def test_smollm2_regex_short(smollm2):
    torch.set_num_threads(1)
    out = structgen.generate(
        smollm2, "What year did World War II end? Answer with the year.", regex=r"\d{4}", max_new_tokens=8
    )
    assert re.fullmatch(r"\d{4}", out)


@pytest.mark.slow
@pytest.mark.skipif(not json_compiler_available(), reason="the JSON Schema compiler is not in this checkout yet")
def test_invoice_demo_produces_valid_invoice(smollm2):
    from structgen.api.demo import INVOICE_TEXT, Invoice, run_demo

    invoice, result = run_demo(smollm2, INVOICE_TEXT, max_new_tokens=160)
    assert isinstance(invoice, Invoice)
    assert Invoice.model_validate_json(result.constrained_text) == invoice
    assert result.completion_tokens <= 160


@pytest.mark.slow
def test_cli_generate_regex(smollm2, capsys):
    from structgen.cli import main

    assert main(["generate", "--regex", r"(yes|no)", "Is the sky blue? Answer yes or no."]) == 0
    assert capsys.readouterr().out.strip() in ("yes", "no")
