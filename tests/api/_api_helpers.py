"""Shared helpers of the generate() tests (imported by file name: tests/ has no packages)."""

from __future__ import annotations

import torch


def make_tiny(dtype=None, seed: int = 0, cls=None):  # type: ignore[no-untyped-def]
    from transformers import LlamaConfig, LlamaForCausalLM

    cfg = LlamaConfig(
        vocab_size=49152,
        hidden_size=64,
        intermediate_size=128,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=4096,
        tie_word_embeddings=True,
        bos_token_id=1,
        eos_token_id=2,
        pad_token_id=2,
    )
    torch.manual_seed(seed)
    model = (cls or LlamaForCausalLM)(cfg)
    if dtype is not None:
        model = model.to(dtype)
    return model.eval()


def json_compiler_available() -> bool:
    import importlib.util

    return importlib.util.find_spec("structgen.compile.json_schema_compiler") is not None
