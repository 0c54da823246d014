"""A transformers ``LogitsProcessor`` for users of ``model.generate``: batched, per-row constraints.

    import structgen
    from structgen.integrations.transformers_processor import StructgenLogitsProcessor

    vocab = structgen.Vocabulary.from_tokenizer(tokenizer, size=model.config.vocab_size)
    compiled = structgen.compile(vocab, json_schema=Invoice)
    processor = StructgenLogitsProcessor(compiled)            # or a list: one constraint per row
    out = model.generate(**inputs, logits_processor=[processor], max_new_tokens=200)

The processor keeps one Matcher per row, feeds it the token the model picked at the previous step,
and masks the logits with the packed bitmask (``structgen.kernels.apply_token_bitmask_``). A row whose
constraint is complete and whose EOS was sampled is left alone; a row whose matcher rejected a token
(only possible when another processor changed the choice) is forced to EOS and reported in ``errors``.
Uses only structgen's public API.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from structgen.kernels import apply_token_bitmask_
from transformers import LogitsProcessor

import structgen


class StructgenLogitsProcessor(LogitsProcessor):
    """Constrain ``model.generate`` with compiled structgen constraints (one per row, or one shared)."""

    def __init__(self, constraints: structgen.CompiledConstraint | Sequence[structgen.CompiledConstraint]) -> None:
        if isinstance(constraints, structgen.CompiledConstraint):
            self._shared: structgen.CompiledConstraint | None = constraints
            self._per_row: list[structgen.CompiledConstraint] = []
        else:
            self._shared = None
            self._per_row = list(constraints)
            if not self._per_row:
                raise ValueError("constraints must not be empty")
            sizes = {c.vocab.size for c in self._per_row}
            if len(sizes) != 1:
                raise ValueError(f"all constraints must share one vocabulary width, got {sorted(sizes)}")
        first = self._shared or self._per_row[0]
        self.vocab = first.vocab
        self.matchers: list[structgen.Matcher] = []
        self.errors: dict[int, str] = {}
        self._prompt_length = -1
        self._bitmask: torch.Tensor | None = None

    def _start(self, batch: int, prompt_length: int) -> None:
        if self._shared is not None:
            self.matchers = [self._shared.matcher() for _ in range(batch)]
        else:
            if batch % len(self._per_row):
                raise ValueError(
                    f"batch of {batch} rows is not a multiple of the {len(self._per_row)} constraints given"
                )
            repeat = batch // len(self._per_row)  # num_return_sequences / beams repeat each prompt
            self.matchers = [c.matcher() for c in self._per_row for _ in range(repeat)]
        self._prompt_length = prompt_length
        self.errors = {}
        self._bitmask = torch.from_numpy(structgen.allocate_bitmask(batch, self.vocab.size))

    def __call__(self, input_ids: torch.LongTensor, scores: torch.FloatTensor) -> torch.FloatTensor:
        batch, length = input_ids.shape
        if scores.shape[-1] != self.vocab.size:
            raise ValueError(
                f"logits have {scores.shape[-1]} columns but the constraint's vocabulary has size {self.vocab.size}; "
                "build the Vocabulary with size=model.config.vocab_size"
            )
        if not self.matchers or length <= self._prompt_length or len(self.matchers) != batch:
            self._start(batch, length)
        else:
            last = input_ids[:, -1].tolist()
            for row, (m, tok) in enumerate(zip(self.matchers, last)):
                if m.is_terminated() or row in self.errors:
                    continue
                if not m.accept_token(tok):
                    self.errors[row] = m.error or f"token {tok} rejected"
        assert self._bitmask is not None  # set by _start
        eos = sorted(self.vocab.eos_ids)
        for row, m in enumerate(self.matchers):
            if m.is_terminated() or row in self.errors:
                self._bitmask[row].zero_()
                if eos:  # keep padding with EOS once a row is done
                    word, bit = divmod(eos[0], 32)
                    self._bitmask[row, word] = torch.tensor(1 << bit, dtype=torch.int64).to(torch.int32)
            else:
                m.fill_bitmask(self._bitmask, row)
        bitmask = self._bitmask.to(scores.device, non_blocking=True)
        apply_token_bitmask_(scores, bitmask)
        return scores
