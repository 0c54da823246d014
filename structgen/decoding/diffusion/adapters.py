"""Adapters from transformers models to :class:`DiffusionModel`, and a tiny random test model.

No trained diffusion LM (LLaDA, Dream, MDLM) is installable from the package registries reachable
here, so tests and benchmarks build a small model from a real bidirectional masked-LM architecture
that transformers ships (ModernBERT by default, BERT as an alternative) with random weights: the
denoising loop, the bidirectional forward and the constraint code run for real, only the weights
are random. A real LLaDA/Dream checkpoint plugs in through :class:`MaskedLMAdapter` unchanged
(``AutoModel.from_pretrained(..., trust_remote_code=True)`` with its mask id, e.g. 126336 for LLaDA).
"""

from __future__ import annotations

from typing import Any

import torch


class MaskedLMAdapter:
    """Wraps any transformers model whose forward returns ``.logits`` of shape ``(B, L, V)`` for every
    position (LLaDA/Dream ``AutoModel`` with remote code, ``*ForMaskedLM``)."""

    def __init__(self, model: Any, mask_token_id: int, vocab_size: int | None = None) -> None:
        self.model = model
        self.mask_token_id = int(mask_token_id)
        cfg = getattr(model, "config", None)
        self.vocab_size = int(vocab_size if vocab_size is not None else cfg.vocab_size)  # type: ignore[union-attr]

    @property
    def device(self) -> torch.device:
        try:
            return next(self.model.parameters()).device
        except (StopIteration, AttributeError):
            return torch.device("cpu")

    @torch.no_grad()
    def logits(self, input_ids: torch.Tensor) -> torch.Tensor:
        out = self.model(input_ids=input_ids.to(self.device))
        return out.logits if hasattr(out, "logits") else out[0]  # (B, L, V)


def tiny_masked_diffusion_model(
    vocab_size: int,
    mask_token_id: int,
    *,
    arch: str = "modernbert",
    hidden: int = 64,
    layers: int = 2,
    max_positions: int = 512,
    seed: int = 0,
    pad_token_id: int = 0,
) -> MaskedLMAdapter:
    """A random-weight bidirectional masked LM of a real transformers architecture (tests, benchmarks)."""
    torch.manual_seed(seed)
    shape: dict[str, Any] = dict(
        vocab_size=vocab_size,
        hidden_size=hidden,
        intermediate_size=2 * hidden,
        num_hidden_layers=layers,
        num_attention_heads=max(1, hidden // 32),
        max_position_embeddings=max_positions,
        pad_token_id=pad_token_id,
    )
    model: Any
    if arch == "modernbert":
        from transformers import ModernBertConfig, ModernBertForMaskedLM

        special: dict[str, Any] = dict.fromkeys(
            ("bos_token_id", "eos_token_id", "cls_token_id", "sep_token_id"), pad_token_id
        )
        model = ModernBertForMaskedLM(
            ModernBertConfig(
                **shape,
                **special,
                layer_types=["full_attention"] * layers,  # every layer global: fully bidirectional
            )
        )
    elif arch == "bert":
        from transformers import BertConfig, BertForMaskedLM

        model = BertForMaskedLM(BertConfig(**shape))
    else:
        raise ValueError(f"unknown arch {arch!r}; use 'modernbert' or 'bert'")
    model.eval()
    return MaskedLMAdapter(model, mask_token_id, vocab_size)
