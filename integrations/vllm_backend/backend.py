"""structgen as a vLLM v1 structured-output backend: subclasses of vLLM's own interface classes.

``StructgenBackend`` (a ``vllm.v1.structured_output.backend_types.StructuredOutputBackend``) compiles the
requests vLLM's ``StructuredOutputManager`` hands it; ``StructgenGrammar`` (a ``StructuredOutputGrammar``)
is one request's state. vLLM's manager fills its batch bitmask row by row through ``fill_bitmask`` and its
workers apply the ``(B, ceil(V/32))`` int32 mask (the layout structgen, xgrammar and llguidance share).
vLLM chooses backends from a closed list, so these classes are installed with
:func:`structgen.integrations.vllm_backend.registration.use_structgen_backend`. Imports vllm.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import Any

import torch
from vllm.logger import init_logger
from vllm.v1.structured_output.backend_types import (
    StructuredOutputBackend,
    StructuredOutputGrammar,
    StructuredOutputOptions,
)

import structgen

from .core import BackendOptions, ConstraintState, allocate_token_bitmask, compile_request

logger = init_logger(__name__)

_vocab_lock = threading.Lock()
_vocabs: dict[tuple[int, int], tuple[Any, structgen.Vocabulary]] = {}


def vocabulary_for(tokenizer: Any, vocab_size: int) -> structgen.Vocabulary:
    """The structgen Vocabulary of a vLLM tokenizer at the model's logits width (built once per tokenizer)."""
    size = max(int(vocab_size), len(tokenizer))
    key = (id(tokenizer), size)
    with _vocab_lock:
        hit = _vocabs.get(key)
        if hit is not None and hit[0] is tokenizer:
            return hit[1]
    vocab = structgen.Vocabulary.from_tokenizer(tokenizer, size=size)
    with _vocab_lock:
        _vocabs[key] = (tokenizer, vocab)  # the tokenizer is kept alive so its id is not reused
    return vocab


def backend_options(so_config: Any, base: BackendOptions | None = None) -> BackendOptions:
    """``base`` (or the defaults) with ``StructuredOutputsConfig.disable_any_whitespace`` mapped to compact JSON."""
    base = base or BackendOptions()
    if so_config is not None and getattr(so_config, "disable_any_whitespace", False):
        return BackendOptions(json_style="compact", json_options=base.json_options, limits=base.limits)
    return base


@dataclass
class StructgenGrammar(StructuredOutputGrammar):
    """One request's structgen state behind vLLM's ``StructuredOutputGrammar`` interface."""

    state: ConstraintState
    printed_error: bool = field(default=False, repr=False)

    @property
    def num_processed_tokens(self) -> int:
        return self.state.num_processed_tokens

    def accept_tokens(self, request_id: str, tokens: list[int]) -> bool:
        ok = self.state.accept_tokens(tokens)
        if not ok and not self.printed_error:
            self.printed_error = True
            logger.error("structgen rejected tokens %s of request %s: %s", tokens, request_id, self.state.error)
        return ok

    def validate_tokens(self, tokens: list[int]) -> list[int]:
        return self.state.validate_tokens(tokens)

    def rollback(self, num_tokens: int) -> None:
        self.state.rollback(num_tokens)

    def fill_bitmask(self, bitmask: torch.Tensor, idx: int) -> None:
        self.state.fill_bitmask(bitmask, idx)

    def is_terminated(self) -> bool:
        return self.state.is_terminated()

    def reset(self) -> None:
        self.state.reset()


@dataclass
class StructgenBackend(StructuredOutputBackend):
    """Engine-level structgen backend: one Vocabulary for the engine's tokenizer, compiled constraints cached."""

    options: BackendOptions | None = None

    def __post_init__(self) -> None:
        self.options = backend_options(getattr(self.vllm_config, "structured_outputs_config", None), self.options)
        self.vocab = vocabulary_for(self.tokenizer, self.vocab_size)

    def compile_grammar(
        self,
        request_type: StructuredOutputOptions,
        grammar_spec: str,
        stop_token_ids: set[int] | None = None,
    ) -> StructuredOutputGrammar:
        compiled = compile_request(self.vocab, request_type.name.lower(), grammar_spec, self.options)
        return StructgenGrammar(ConstraintState(compiled, stop_token_ids))

    def allocate_token_bitmask(self, max_num_seqs: int) -> torch.Tensor:
        return allocate_token_bitmask(max_num_seqs, self.vocab.size)  # (max_num_seqs, ceil(V/32)) int32

    def destroy(self) -> None:
        pass
