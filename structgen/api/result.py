"""The result object of ``generate(..., return_result=True)``."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass
class GenerationResult:
    """One generated output with its accounting.

    Attributes:
        value: what ``generate`` returns: a validated pydantic instance (pydantic schema), a dict/list
            (JSON Schema), or a str (regex, grammar, choices, no constraint).
        text: the whole visible output (EOS excluded; cut before a stop string).
        constrained_text: the part the constraint governs (after ``constraint_start_after``).
        reasoning: the free text before the constraint (delimiter included), "" without it.
        token_ids: generated token ids (EOS included when it was sampled).
        stop_reason: ``"eos"`` (model ended, constraint complete), ``"complete"`` (the constraint
            admits no further token), ``"stop"`` (a stop string), ``"length"`` (``max_new_tokens``;
            with a constraint the output is still complete: the budget steered it).
        prompt_tokens / completion_tokens: counts.
        budget_rejections: sampled tokens refused because they could not finish within the budget.
        compile_seconds / prefill_seconds / decode_seconds / total_seconds: timings of this call;
            prefill and decode are shared by every row of a batch.
    """

    value: Any
    text: str
    constrained_text: str
    reasoning: str
    token_ids: list[int]
    stop_reason: str
    prompt_tokens: int
    completion_tokens: int
    budget_rejections: int = 0
    compile_seconds: float = 0.0
    prefill_seconds: float = 0.0
    decode_seconds: float = 0.0
    total_seconds: float = 0.0
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def seconds_per_token(self) -> float:
        """Decode seconds per generated token of this call (0 when nothing was generated)."""
        return self.decode_seconds / self.completion_tokens if self.completion_tokens else 0.0
