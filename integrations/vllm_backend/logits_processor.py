"""structgen as a vLLM v1 logits processor: per-request constraints, one batched bitmask per step.

vLLM loads custom logits processors by class, by ``"module:Class"`` name (``LLM(logits_processors=[...])``,
``vllm serve --logits-processors``) or from the ``vllm.logits_processors`` entry point group. Each request
names its constraint in ``SamplingParams.extra_args["structgen"]``, a dict with exactly one of ``json`` (a
schema dict or JSON text), ``json_object``, ``regex``, ``grammar`` (Lark) or ``choice``; requests without it
are left alone. Every step the processor advances each row's matcher by the tokens vLLM appended to the
row's output list (in ``apply`` too: with async scheduling the last token only lands there just before
sampling), fills one ``(max_num_seqs, ceil(V/32))`` int32 bitmask, moves it to the logits' device
and masks all constrained rows in one call to :func:`structgen.kernels.apply_token_bitmask_` (Triton on
CUDA, vectorized torch on CPU). Stop tokens (``SamplingParams.all_stop_token_ids``) are allowed exactly
when the output is complete.

Decode time never raises: a constraint that fails to compile in the worker, or a row whose matcher rejects
a token (another processor changed the choice), logs the reason and allows only the row's stop tokens, so
the request ends at once instead of bringing the engine down. ``validate_params`` checks the request's form
up front (HTTP 400 in ``vllm serve``). Not available with speculative decoding (vLLM rejects custom logits
processors there). Imports vllm.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from vllm.logger import init_logger
from vllm.sampling_params import SamplingParams
from vllm.v1.sample.logits_processor import BatchUpdate, LogitsProcessor
from vllm.v1.sample.logits_processor.builtin import process_dict_updates

from structgen import CompileError

from .backend import backend_options, vocabulary_for
from .core import ConstraintState, allocate_token_bitmask, apply_bitmask, compile_request, request_from_params

logger = init_logger(__name__)

EXTRA_ARGS_KEY = "structgen"


class _Row:
    """One batch row: its constraint state and vLLM's live list of its output tokens."""

    __slots__ = ("state", "output_ids", "consumed", "stop_ids", "failed")

    def __init__(self, state: ConstraintState | None, output_ids: list[int], stop_ids: set[int], failed: str) -> None:
        self.state = state
        self.output_ids = output_ids  # vLLM appends sampled tokens to this very list
        self.consumed = 0
        self.stop_ids = stop_ids
        self.failed = failed

    def advance(self) -> None:
        if self.state is None or self.failed:
            return
        new = self.output_ids[self.consumed :]
        for n, token in enumerate(new):
            if token < 0:  # a placeholder of a token not sampled yet (async scheduling)
                new = new[:n]
                break
        if not new:
            return
        if not self.state.accept_tokens(new):
            self.failed = f"token rejected: {self.state.error}"
        self.consumed += len(new)


def _request_args(params: SamplingParams) -> Any:
    extra = params.extra_args or {}
    return extra.get(EXTRA_ARGS_KEY)


class StructgenLogitsProcessor(LogitsProcessor):
    """Constrain requests that carry ``extra_args={"structgen": {...}}``; see the module docstring."""

    @classmethod
    def validate_params(cls, sampling_params: SamplingParams) -> None:
        args = _request_args(sampling_params)
        if args is not None:
            request_from_params(args)  # ValueError: vLLM turns it into a validation error (HTTP 400)

    def __init__(self, vllm_config: Any, device: torch.device, is_pin_memory: bool) -> None:
        self.vllm_config = vllm_config
        self.device = device
        self.vocab_size = vllm_config.model_config.get_vocab_size()
        self.options = backend_options(getattr(vllm_config, "structured_outputs_config", None))
        self.rows: dict[int, _Row] = {}
        self._vocab: Any = None
        num_rows = max(1, int(vllm_config.scheduler_config.max_num_seqs))
        self._pin = bool(is_pin_memory) and device.type == "cuda"
        self.bitmask = self._allocate(num_rows)

    def _allocate(self, num_rows: int) -> torch.Tensor:
        bitmask = allocate_token_bitmask(num_rows, self.vocab_size)  # (R, ceil(V/32)) int32
        return bitmask.pin_memory() if self._pin else bitmask

    @property
    def vocab(self) -> Any:
        """The structgen Vocabulary of the engine's tokenizer (built on first use)."""
        if self._vocab is None:
            from vllm.tokenizers import cached_tokenizer_from_config

            tokenizer = cached_tokenizer_from_config(model_config=self.vllm_config.model_config)
            self._vocab = vocabulary_for(tokenizer, self.vocab_size)
        return self._vocab

    def is_argmax_invariant(self) -> bool:
        return False  # masking changes the argmax

    def _new_row(self, params: SamplingParams, _prompt_ids: list[int] | None, output_ids: list[int]) -> _Row | None:
        args = _request_args(params)
        if args is None:
            return None
        stop_ids = {int(t) for t in params.all_stop_token_ids}
        try:
            kind, spec = request_from_params(args)
            compiled = compile_request(self.vocab, kind, spec, self.options)
        except (CompileError, ValueError) as e:
            logger.error("structgen could not compile a request's constraint; ending it: %s", e)
            return _Row(None, output_ids, stop_ids, f"compile error: {e}")
        row = _Row(ConstraintState(compiled, stop_ids or None), output_ids, stop_ids, "")
        row.advance()  # a resumed (preempted) request arrives with its earlier output
        return row

    def update_state(self, batch_update: BatchUpdate | None) -> None:
        process_dict_updates(self.rows, batch_update, self._new_row)
        for index, row in self.rows.items():
            before = row.failed
            row.advance()
            if row.failed and not before:
                logger.error("structgen: batch row %d %s; allowing only its stop tokens", index, row.failed)

    def apply(self, logits: torch.Tensor) -> torch.Tensor:
        if not self.rows:
            return logits
        num_rows = logits.shape[0]
        if self.bitmask.shape[0] < num_rows:
            self.bitmask = self._allocate(num_rows)
        words = self.bitmask.numpy()  # (R, W) int32 view of the (pinned) CPU tensor
        masked: list[int] = []
        for index, row in self.rows.items():
            if index >= num_rows:
                continue
            # With async scheduling, update_state runs while the last sampled token is still a -1
            # placeholder; vLLM writes the real id into the list just before sampling, so catch up here.
            failed_before = row.failed
            row.advance()
            if row.failed and not failed_before:
                logger.error("structgen: batch row %d %s; allowing only its stop tokens", index, row.failed)
            if row.state is not None and not row.failed:
                if row.state.is_terminated():
                    continue
                row.state.fill_words(words[index])
            else:
                if not row.stop_ids:
                    continue
                words[index] = 0
                u = words[index].view(np.uint32)
                for t in row.stop_ids:
                    if t < self.vocab_size:
                        u[t >> 5] |= np.uint32(1) << np.uint32(t & 31)
            masked.append(index)
        return apply_bitmask(logits, self.bitmask[:num_rows], masked, self.vocab_size)
