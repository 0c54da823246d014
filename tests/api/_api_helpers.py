"""Shared helpers of the model tests (imported by file name: tests/ has no packages; test modules
outside tests/api put this folder on ``sys.path``)."""

from __future__ import annotations

from typing import Any

import torch


def tiny_llama(  # type: ignore[no-untyped-def]
    vocab_size: int,
    *,
    hidden: int = 32,
    layers: int = 2,
    heads: int = 4,
    kv_heads: int = 2,
    seed: int | None = None,
    dtype=None,
    cls=None,
    **config: Any,
):
    """A random-weight Llama (eval mode) of a real transformers config, ``intermediate_size = 2 * hidden``.

    ``config`` adds LlamaConfig fields (token ids, ``max_position_embeddings`` …); ``seed=None`` draws
    the weights from the current torch RNG; ``cls`` replaces ``LlamaForCausalLM``.
    """
    from transformers import LlamaConfig, LlamaForCausalLM

    cfg = LlamaConfig(
        vocab_size=vocab_size,
        hidden_size=hidden,
        intermediate_size=2 * hidden,
        num_hidden_layers=layers,
        num_attention_heads=heads,
        num_key_value_heads=kv_heads,
        **config,
    )
    if seed is not None:
        torch.manual_seed(seed)
    model = (cls or LlamaForCausalLM)(cfg)
    if dtype is not None:
        model = model.to(dtype)
    return model.eval()


def make_tiny(dtype=None, seed: int = 0, cls=None):  # type: ignore[no-untyped-def]
    """The generate() tests' model: 2 layers over the SmolLM2 vocabulary (49,152 tokens)."""
    return tiny_llama(
        49152,
        hidden=64,
        seed=seed,
        dtype=dtype,
        cls=cls,
        max_position_embeddings=4096,
        tie_word_embeddings=True,
        bos_token_id=1,
        eos_token_id=2,
        pad_token_id=2,
    )


def json_compiler_available() -> bool:
    import importlib.util

    return importlib.util.find_spec("structgen.compile.json_schema_compiler") is not None
