"""Speculative backends for the constrained path: jump-forward, n-gram and draft-model speculation.

    from structgen.decoding.speculative import speculative_generate
    res = speculative_generate(loaded, prompt_ids, compiled.matcher(), mode={"jump_forward", "ngram"})

``structgen.generate`` runs verified jump-forward (``mode="jump_forward", jump_verify=True``) by
default for one constrained prompt: lossless, so its output equals plain decoding token for token.
Every mode steers the token budget like the batched loop (structgen.decoding.budget).
See docs/generate.md (Speculation) and docs/design/speculation.md.
"""

from structgen.decoding.speculative.draft_model import AdaptiveLength, DraftModel
from structgen.decoding.speculative.jump_forward import Jump, apply_jump, make_tokenize_bytes, plan_jump
from structgen.decoding.speculative.loop import MODES, SpeculativeResult, speculative_generate
from structgen.decoding.speculative.ngram import NGramTable, filter_draft, ngram_draft, prompt_lookup, shared_table
from structgen.decoding.speculative.verify import accept_draft, apply_masks, position_masks, walk_draft

__all__ = [
    "MODES",
    "AdaptiveLength",
    "DraftModel",
    "Jump",
    "NGramTable",
    "SpeculativeResult",
    "accept_draft",
    "apply_jump",
    "apply_masks",
    "filter_draft",
    "make_tokenize_bytes",
    "ngram_draft",
    "plan_jump",
    "position_masks",
    "prompt_lookup",
    "shared_table",
    "speculative_generate",
    "walk_draft",
]
