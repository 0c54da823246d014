"""Vocabularies of the real tokenizers fetched by ``python -m structgen.assets fetch``.

For each: the size, exact bytes under the tokenizer's own encoding of random text (ASCII, CJK,
emoji, whitespace runs), specials kept out of text, the EOS set, from_file == from_tokenizer,
a fingerprint that tells tokenizers apart, and a padded logits width.
"""

from __future__ import annotations

import random
import unicodedata
from typing import Any

import pytest

from structgen import assets
from structgen.vocab.loaders import vocabulary_from_file, vocabulary_from_tokenizer
from structgen.vocab.vocabulary import Vocabulary

# name: (len(tokenizer), kind, EOS token texts, encoder prepends a dummy-prefix space)
EXPECTED = {
    "llama3": (128256, "byte_level", {"<|end_of_text|>", "<|eot_id|>"}, False),
    "qwen3": (151669, "byte_level", {"<|endoftext|>", "<|im_end|>"}, False),
    "mistral": (32000, "sentencepiece", {"</s>"}, True),
    "gemma3": (262145, "sentencepiece", {"<eos>", "<end_of_turn>"}, False),
    "gpt2": (50257, "byte_level", {"<|endoftext|>"}, False),
}
NAMES = list(EXPECTED)


def _skip_unless_fetched(name: str) -> None:
    if not assets.tokenizer_available(name):
        pytest.skip(f"tokenizer {name!r} not fetched: run `python -m structgen.assets fetch --tokenizers-only`")


@pytest.fixture(scope="module", params=NAMES)
def name(request: pytest.FixtureRequest) -> str:
    _skip_unless_fetched(request.param)
    return str(request.param)


@pytest.fixture(scope="module")
def tokenizer(name: str) -> Any:
    return assets.load_tokenizer(name)


@pytest.fixture(scope="module")
def vocab(name: str) -> Vocabulary:
    # assets.load_vocabulary is Vocabulary.from_tokenizer(assets.load_tokenizer(name)), cached per process
    return assets.load_vocabulary(name)


def random_texts(seed: int, n: int = 300) -> list[str]:
    """Strings mixing ASCII words, digits, punctuation, accents, CJK, emoji and whitespace runs."""
    rng = random.Random(seed)
    pieces: list[Any] = [
        lambda: rng.choice(["hello", "World", "the", "JSON", "tokenizer", "don't", "naïve", "café", "Ünïcödé"]),
        lambda: str(rng.randrange(10 ** rng.randint(1, 9))),
        lambda: "".join(rng.choice("{}[]\":,.;!?-_+*/\\<>|=()@#$%^&~`'") for _ in range(rng.randint(1, 4))),
        lambda: "".join(chr(rng.randint(0x4E00, 0x9FFF)) for _ in range(rng.randint(1, 4))),  # CJK, 3 bytes
        lambda: "".join(
            chr(rng.choice([rng.randint(0x1F600, 0x1F64F), rng.randint(0x1F300, 0x1F5FF)]))
            for _ in range(rng.randint(1, 3))
        ),
        lambda: "".join(rng.choice([" ", "  ", "\t", "\n", "\r\n", "\u00a0"]) for _ in range(rng.randint(1, 6))),
        lambda: "".join(chr(rng.randint(0x20, 0x7E)) for _ in range(rng.randint(1, 12))),
        lambda: rng.choice(["Привет", "مرحبا", "שלום", "こんにちは", "안녕하세요", "Ελληνικά"]),
    ]
    out = []
    for _ in range(n):
        text = "".join(rng.choice(pieces)() for _ in range(rng.randint(1, 10)))
        out.append(text)
    return out


def test_size_kind_and_name(name: str, tokenizer: Any, vocab: Vocabulary) -> None:
    n, kind, _, _ = EXPECTED[name]
    assert len(tokenizer) == n
    assert vocab.num_tokens == vocab.size == n
    assert vocab.kind == kind
    assert vocab.name


def test_encoded_text_round_trips_through_token_bytes(name: str, tokenizer: Any, vocab: Vocabulary) -> None:
    prefix = b" " if EXPECTED[name][3] else b""
    specials = vocab.special_ids
    for text in random_texts(seed=hash(name) % 1000):
        # NFC: Qwen3 normalizes; the others leave these strings alone
        text = unicodedata.normalize("NFC", text)
        ids = tokenizer.encode(text, add_special_tokens=False)
        got = b"".join(vocab.token_bytes[i] for i in ids)
        assert got == prefix + text.encode("utf-8"), (text, ids)
        assert not specials.intersection(ids), (text, ids)


def test_specials_are_never_text(name: str, tokenizer: Any, vocab: Vocabulary) -> None:
    text_ids = set(vocab.text_token_ids().tolist())
    for i in tokenizer.all_special_ids:
        assert i in vocab.special_ids and i not in text_ids
        # the visible text stays in the table
        assert vocab.token_bytes[i] == tokenizer.convert_ids_to_tokens(i).encode()
    assert tokenizer.eos_token_id in vocab.special_ids


def test_eos_set(name: str, tokenizer: Any, vocab: Vocabulary) -> None:
    expected = {tokenizer.convert_tokens_to_ids(t) for t in EXPECTED[name][2]}
    assert vocab.eos_ids == expected
    assert {vocab.token_bytes[i].decode() for i in vocab.eos_ids} == EXPECTED[name][2]


def test_from_file_equals_from_tokenizer(name: str, vocab: Vocabulary) -> None:
    other = vocabulary_from_file(assets.tokenizer_dir(name))
    assert other.token_bytes == vocab.token_bytes
    assert other.special_ids == vocab.special_ids
    assert other.eos_ids == vocab.eos_ids
    assert (other.size, other.kind) == (vocab.size, vocab.kind)
    assert other.fingerprint == vocab.fingerprint


def test_padded_width_never_allows_padding(name: str, tokenizer: Any, vocab: Vocabulary) -> None:
    width = 151936 if name == "qwen3" else vocab.num_tokens + 64
    padded = vocabulary_from_tokenizer(tokenizer, size=width)
    assert padded.size == width and padded.num_tokens == vocab.num_tokens
    assert padded.token_bytes == vocab.token_bytes
    assert int(padded.text_token_ids().max()) < vocab.num_tokens
    assert padded.fingerprint != vocab.fingerprint


def test_utf8_fragments_keep_their_exact_bytes(tokenizer: Any, vocab: Vocabulary) -> None:
    """Tokens that are fragments of a UTF-8 character keep their bytes; decode() would give U+FFFD."""
    specials = vocab.special_ids
    fragments = [i for i, b in enumerate(vocab.token_bytes) if i not in specials and b and not _is_utf8(b)]
    assert fragments
    for i in fragments[:50]:
        assert "\ufffd" in tokenizer.decode([i])
        assert "\ufffd".encode() not in vocab.token_bytes[i]


def _is_utf8(b: bytes) -> bool:
    try:
        b.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


def test_fingerprints_are_distinct() -> None:
    prints = {n: assets.load_vocabulary(n).fingerprint for n in NAMES if assets.tokenizer_available(n)}
    if len(prints) < 2:
        pytest.skip("fewer than two tokenizers fetched")
    assert len(set(prints.values())) == len(prints), prints
