"""structgen.load and wrap: vocabulary size = logits width, EOS set, caching, GGUF, mismatches."""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")


from _api_helpers import tiny_llama  # noqa: E402

import structgen  # noqa: E402
from structgen.errors import GenerationError  # noqa: E402


def test_wrap_is_cached_and_sized(tiny, smol_tokenizer):
    from structgen.api.loading import wrap

    assert wrap(tiny.model, smol_tokenizer) is tiny
    assert tiny.vocab.size == tiny.model.get_output_embeddings().weight.shape[0]
    assert 2 in tiny.vocab.eos_ids  # <|im_end|>


def test_generate_accepts_model_and_tokenizer_objects(tiny, smol_tokenizer):
    out = structgen.generate(tiny.model, "x", tokenizer=smol_tokenizer, choices=["a", "b"])
    assert out in ("a", "b")
    with pytest.raises(TypeError, match="tokenizer"):
        structgen.generate(tiny.model, "x", choices=["a"])


def _one_layer(vocab_size: int):  # type: ignore[no-untyped-def]
    return tiny_llama(vocab_size, layers=1, heads=2, kv_heads=1, eos_token_id=2)


def test_padded_logits_width_is_accepted(smol_tokenizer):
    from structgen.api.loading import wrap

    lm = wrap(_one_layer(49152 + 64), smol_tokenizer)
    assert lm.vocab.size == 49216 and lm.vocab.num_tokens == 49152
    assert structgen.generate(lm, "x", regex="[0-9]{2}", temperature=1.0, seed=0).isdigit()


def test_smaller_logits_than_tokenizer_is_refused(smol_tokenizer):
    from structgen.api.loading import wrap

    with pytest.raises(GenerationError, match="49152 tokens but the model"):
        wrap(_one_layer(32000), smol_tokenizer)


@pytest.mark.slow
def test_load_bundled_and_cache(smollm2):
    assert structgen.load() is smollm2 or structgen.load("smollm2", device="cpu") is smollm2
    assert smollm2.vocab.size == 49152
    assert smollm2.tokenizer.convert_tokens_to_ids("<|im_end|>") in smollm2.vocab.eos_ids


@pytest.mark.slow
def test_load_gguf_file():
    pytest.importorskip("gguf")
    from structgen import assets

    path = assets.gguf_path("smollm2")
    if not path.exists():
        pytest.skip("the SmolLM2 GGUF is not in the cache")
    lm = structgen.load(str(path), device="cpu")
    assert lm.vocab.size == 49152
    assert structgen.generate(lm, "Pick one", choices=["yes", "no"]) in ("yes", "no")
