"""The small protocol every masked diffusion LM implements to be decoded by structgen.

A masked diffusion LM (LLaDA, Dream, MDLM, ...) has a mask token id and a *bidirectional* forward pass
that returns logits for every position of the sequence at once. That is all the decoding loop needs.
"""

from __future__ import annotations

from typing import Any, Protocol, runtime_checkable


@runtime_checkable
class DiffusionModel(Protocol):
    """A masked diffusion LM.

    Attributes:
        mask_token_id: the id written into not-yet-decoded positions.
        vocab_size: width of the logits (may exceed the tokenizer's size: padding ids).
    """

    mask_token_id: int
    vocab_size: int

    def logits(self, input_ids: Any) -> Any:
        """``(B, L)`` int64 tensor -> ``(B, L, vocab_size)`` float logits, every position attending to
        every other (no causal mask)."""
        ...
