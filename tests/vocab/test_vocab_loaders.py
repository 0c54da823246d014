"""Vocabulary loaders on tiny synthetic tokenizers: byte maps, detection, added tokens, EOS, width, errors.

The real tokenizers (Llama-3, Qwen3, Mistral, Gemma-3, GPT-2) are in test_real_tokenizers.py.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from tokenizers import AddedToken, Tokenizer, decoders, models, normalizers, pre_tokenizers

from structgen.errors import VocabularyError
from structgen.vocab.loaders import bytes_to_unicode, unicode_to_bytes, vocabulary_from_file, vocabulary_from_tokenizer
from structgen.vocab.vocabulary import Vocabulary

# ---------------------------------------------------------------------------------------------
# GPT-2 byte map (tokenizers.md §10.1)


@pytest.mark.parametrize(
    ("byte", "char"),
    [
        (0x20, "Ġ"),
        (0x0A, "Ċ"),
        (0x09, "ĉ"),
        (0x00, "Ā"),
        (0x7F, "ġ"),
        (0xA0, "ł"),
        (0xAD, "Ń"),
        (0xE6, "æ"),
        (0x41, "A"),
    ],
)
def test_byte_map_spot_values(byte: int, char: str) -> None:
    assert bytes_to_unicode()[byte] == char
    assert unicode_to_bytes()[char] == byte


def test_byte_map_is_a_bijection_onto_the_tokenizers_alphabet() -> None:
    table = bytes_to_unicode()
    assert sorted(table) == list(range(256))
    assert len(set(table.values())) == 256
    assert all(unicode_to_bytes()[table[b]] == b for b in range(256))
    assert set(table.values()) == set(pre_tokenizers.ByteLevel.alphabet())


# ---------------------------------------------------------------------------------------------
# tiny tokenizers built with the `tokenizers` library


def byte_level_tokenizer() -> Tokenizer:
    """A byte-level BPE over the 256 byte characters plus a few merges and added tokens."""
    alphabet = sorted(pre_tokenizers.ByteLevel.alphabet(), key=lambda c: unicode_to_bytes()[c])
    vocab = {c: i for i, c in enumerate(alphabet)}  # id == byte value
    merges = [("Ġ", "h"), ("Ġh", "i"), ("æ", "Ĺ")]
    for a, b in merges:
        vocab[a + b] = len(vocab)
    tok = Tokenizer(models.BPE(vocab=vocab, merges=merges))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    tok.add_special_tokens([AddedToken("<|im_end|>", special=True), AddedToken("<|endoftext|>", special=True)])
    tok.add_tokens([AddedToken("<tool_call>", special=False), AddedToken("héllo wörld", special=False)])
    return tok


def sentencepiece_tokenizer(*, dummy_prefix: bool = True) -> Tokenizer:
    """A SentencePiece-style BPE with byte fallback, Llama-2/Mistral decoder pipeline."""
    pieces = ["<unk>", "<s>", "</s>", *(f"<0x{b:02X}>" for b in range(256)), "▁", "H", "e", "l", "o", "w", "r", "d"]
    pieces += ["▁H", "▁He", "▁Hel", "▁Hell", "▁Hello", "▁w", "▁wo", "▁wor", "▁worl", "▁world", "ll"]
    vocab = {p: i for i, p in enumerate(pieces)}
    merges = [("▁", "H"), ("▁H", "e"), ("▁He", "l"), ("▁Hel", "l"), ("▁Hell", "o")]
    merges += [("▁", "w"), ("▁w", "o"), ("▁wo", "r"), ("▁wor", "l"), ("▁worl", "d"), ("l", "l")]
    tok = Tokenizer(models.BPE(vocab=vocab, merges=merges, unk_token="<unk>", byte_fallback=True, fuse_unk=True))
    steps = [normalizers.Replace(" ", "▁")]
    if dummy_prefix:
        steps.insert(0, normalizers.Prepend("▁"))
    tok.normalizer = normalizers.Sequence(steps)
    dec = [decoders.Replace("▁", " "), decoders.ByteFallback(), decoders.Fuse()]
    if dummy_prefix:
        dec.append(decoders.Strip(" ", 1, 0))
    tok.decoder = decoders.Sequence(dec)
    tok.add_special_tokens([AddedToken(p, special=True) for p in ("<unk>", "<s>", "</s>")])
    return tok


def ids_of(tok: Tokenizer, text: str) -> list[int]:
    return tok.encode(text, add_special_tokens=False).ids


def joined(vocab: Vocabulary, ids: list[int]) -> bytes:
    return b"".join(vocab.token_bytes[i] for i in ids)


def test_byte_level_tokens_are_exact_bytes() -> None:
    tok = byte_level_tokenizer()
    vocab = vocabulary_from_tokenizer(tok)
    assert vocab.kind == "byte_level"
    assert vocab.num_tokens == vocab.size == tok.get_vocab_size(with_added_tokens=True)
    assert vocab.token_bytes[0x20] == b" " and vocab.token_bytes[0x0A] == b"\n"
    assert vocab.token_bytes[tok.token_to_id("Ġhi")] == b" hi"
    # a lone lead byte: the decoder gives U+FFFD, the table keeps the byte (tokenizers.md §10.2)
    assert tok.decode([0xE6]) == "\ufffd"
    assert vocab.token_bytes[0xE6] == b"\xe6"
    assert tok.decode([tok.token_to_id("Ġhi"), 0x0A]) == " hi\n"
    for text in ["hi hi\n", "你好 😀 æ", "a\tb  c", "<tool_call>x</tool_call> héllo wörld"]:
        assert joined(vocab, ids_of(tok, text)) == text.encode()


def test_added_tokens_special_and_not() -> None:
    tok = byte_level_tokenizer()
    vocab = vocabulary_from_tokenizer(tok)
    im_end, eot = tok.token_to_id("<|im_end|>"), tok.token_to_id("<|endoftext|>")
    tool, hello = tok.token_to_id("<tool_call>"), tok.token_to_id("héllo wörld")
    assert vocab.token_bytes[im_end] == b"<|im_end|>"  # visible text kept ...
    assert {im_end, eot} <= vocab.special_ids  # ... but never text
    assert im_end not in set(vocab.text_token_ids().tolist())
    # non-special added tokens are ordinary text with their literal bytes (not byte-level decoded)
    assert vocab.token_bytes[hello] == "héllo wörld".encode()
    assert vocab.token_bytes[tool] == b"<tool_call>"
    assert not {tool, hello} & vocab.special_ids
    assert ids_of(tok, "héllo wörld") == [hello]
    assert vocab.eos_ids == {im_end, eot}


def test_sentencepiece_pieces_and_byte_fallback() -> None:
    tok = sentencepiece_tokenizer()
    vocab = vocabulary_from_tokenizer(tok)
    assert vocab.kind == "sentencepiece"
    hello, world = tok.token_to_id("▁Hello"), tok.token_to_id("▁world")
    # the decoder strips the dummy-prefix space; the table keeps it (tokenizers.md §10.3)
    assert tok.decode([hello, world]) == "Hello world"
    assert tok.decode([world]) == "world"
    assert vocab.token_bytes[world] == b" world"
    assert vocab.token_bytes[tok.token_to_id("<0xE4>")] == b"\xe4"
    ni = [tok.token_to_id(p) for p in ("<0xE4>", "<0xBD>", "<0xA0>")]
    assert tok.decode(ni) == "你" and joined(vocab, ni) == "你".encode()
    for text in ["Hello world", "Hello  你好😀\n\tworld", "dlrow"]:
        ids = ids_of(tok, text)
        assert joined(vocab, ids) == b" " + text.encode()  # dummy prefix
    assert vocab.special_ids == {0, 1, 2}
    assert vocab.eos_ids == {2}


def test_sentencepiece_without_dummy_prefix() -> None:
    tok = sentencepiece_tokenizer(dummy_prefix=False)
    vocab = vocabulary_from_tokenizer(tok)
    assert vocab.kind == "sentencepiece"
    for text in ["Hello world", " world 😀"]:
        assert joined(vocab, ids_of(tok, text)) == text.encode()


def test_metaspace_decoder_is_sentencepiece() -> None:
    tok = Tokenizer(models.Unigram([("<unk>", 0.0), ("▁a", -1.0), ("a", -2.0), ("▁", -3.0), ("b", -2.0)], 0))
    tok.pre_tokenizer = pre_tokenizers.Metaspace()
    tok.decoder = decoders.Metaspace()
    vocab = vocabulary_from_tokenizer(tok)
    assert vocab.kind == "sentencepiece"
    assert vocab.token_bytes[1] == b" a" and vocab.token_bytes[3] == b" "


def test_no_decoder_is_literal_text() -> None:
    tok = Tokenizer(models.WordLevel({"ab": 0, "c": 1, "<unk>": 2}, unk_token="<unk>"))
    vocab = vocabulary_from_tokenizer(tok)
    assert vocab.kind == "other"
    assert vocab.token_bytes == (b"ab", b"c", b"<unk>")


def test_byte_level_without_decoder_uses_the_pre_tokenizer() -> None:
    tok = byte_level_tokenizer()
    tok.decoder = None
    assert vocabulary_from_tokenizer(tok).kind == "byte_level"


def test_wordpiece_is_refused() -> None:
    tok = Tokenizer(models.WordPiece({"[UNK]": 0, "a": 1, "##b": 2}, unk_token="[UNK]"))
    tok.decoder = decoders.WordPiece()
    with pytest.raises(VocabularyError, match="WordPiece"):
        vocabulary_from_tokenizer(tok)


def test_unknown_decoder_is_refused() -> None:
    tok = Tokenizer(models.BPE(vocab={"a": 0, "b</w>": 1}, merges=[]))
    tok.decoder = decoders.BPEDecoder(suffix="</w>")
    with pytest.raises(VocabularyError, match="BPEDecoder"):
        vocabulary_from_tokenizer(tok)


def test_holes_in_the_id_space_are_never_text() -> None:
    tok = Tokenizer(models.WordLevel({"a": 0, "b": 2, "<unk>": 3}, unk_token="<unk>"))
    vocab = vocabulary_from_tokenizer(tok)
    assert vocab.num_tokens == 4
    assert vocab.token_bytes[1] == b"" and 1 in vocab.special_ids


# ---------------------------------------------------------------------------------------------
# EOS set and logits width


def test_eos_override() -> None:
    tok = byte_level_tokenizer()
    im_end = tok.token_to_id("<|im_end|>")
    vocab = vocabulary_from_tokenizer(tok, eos_ids=im_end)
    assert vocab.eos_ids == {im_end}
    assert vocabulary_from_tokenizer(tok, eos_ids=[0x0A]).eos_ids == {0x0A}
    with pytest.raises(VocabularyError, match="outside"):
        vocabulary_from_tokenizer(tok, eos_ids=[10**6])


def test_known_stop_tokens_count_only_when_special() -> None:
    tok = byte_level_tokenizer()
    tok.add_tokens([AddedToken("</s>", special=False)])
    vocab = vocabulary_from_tokenizer(tok)
    assert tok.token_to_id("</s>") not in vocab.eos_ids


def test_padded_logits_width() -> None:
    tok = byte_level_tokenizer()
    n = tok.get_vocab_size(with_added_tokens=True)
    vocab = vocabulary_from_tokenizer(tok, size=n + 37)
    assert vocab.size == n + 37 and vocab.num_tokens == n
    assert int(vocab.text_token_ids().max()) < n


def test_narrower_width_drops_only_special_tail() -> None:
    tok = sentencepiece_tokenizer()
    tok.add_special_tokens([AddedToken("<image>", special=True)])
    n = tok.get_vocab_size(with_added_tokens=True)
    vocab = vocabulary_from_tokenizer(tok, size=n - 1)
    assert vocab.size == vocab.num_tokens == n - 1
    with pytest.raises(VocabularyError, match="text tokens"):
        vocabulary_from_tokenizer(tok, size=n - 2)
    with pytest.raises(VocabularyError, match="positive"):
        vocabulary_from_tokenizer(tok, size=0)


# ---------------------------------------------------------------------------------------------
# files


def test_from_file_equals_from_tokenizer(tmp_path: Path) -> None:
    for tok in (byte_level_tokenizer(), sentencepiece_tokenizer()):
        tok.save(str(tmp_path / "tokenizer.json"))
        a = vocabulary_from_tokenizer(tok)
        for path in (tmp_path, tmp_path / "tokenizer.json", str(tmp_path)):
            b = vocabulary_from_file(path)
            assert (a.token_bytes, a.special_ids, a.eos_ids, a.size, a.kind) == (
                b.token_bytes,
                b.special_ids,
                b.eos_ids,
                b.size,
                b.kind,
            )
            assert a.fingerprint == b.fingerprint
        assert Vocabulary.from_file(str(tmp_path)).fingerprint == Vocabulary.from_tokenizer(tok).fingerprint


def test_from_file_reads_tokenizer_and_generation_config(tmp_path: Path) -> None:
    tok = byte_level_tokenizer()
    tok.save(str(tmp_path / "tokenizer.json"))
    eot = tok.token_to_id("<|endoftext|>")
    (tmp_path / "tokenizer_config.json").write_text(json.dumps({"eos_token": {"content": "<|endoftext|>"}}))
    (tmp_path / "generation_config.json").write_text(json.dumps({"eos_token_id": [0x0A]}))
    vocab = vocabulary_from_file(tmp_path)
    assert {eot, 0x0A} <= vocab.eos_ids
    assert 0x0A not in vocab.special_ids


def test_from_file_gpt2_encoder_dir(tmp_path: Path) -> None:
    enc = {c: b for b, c in bytes_to_unicode().items()}
    enc["Ġhi"] = 256
    enc["<|endoftext|>"] = 257
    (tmp_path / "encoder.json").write_text(json.dumps(enc))
    (tmp_path / "vocab.bpe").write_text("#version: 0.2\nĠ h\nĠh i\n")
    vocab = vocabulary_from_file(tmp_path)
    assert vocab.kind == "byte_level" and vocab.size == 258
    assert vocab.token_bytes[256] == b" hi" and vocab.token_bytes[0x0A] == b"\n"
    assert vocab.special_ids == vocab.eos_ids == {257}


@pytest.mark.parametrize(
    ("files", "match"),
    [
        ({}, "neither tokenizer.json"),
        ({"tokenizer.json": "{not json"}, "cannot read"),
        ({"tokenizer.json": "[]"}, "not a tokenizer.json"),
    ],
)
def test_from_file_errors(tmp_path: Path, files: dict[str, str], match: str) -> None:
    for name, text in files.items():
        (tmp_path / name).write_text(text)
    with pytest.raises(VocabularyError, match=match):
        vocabulary_from_file(tmp_path)


def test_from_file_missing_path(tmp_path: Path) -> None:
    with pytest.raises(VocabularyError, match="no tokenizer file"):
        vocabulary_from_file(tmp_path / "nope.json")


def test_from_file_config_may_name_a_model_vocabulary_token(tmp_path: Path) -> None:
    """A config's eos_token that is only a model-vocabulary entry becomes special, as transformers makes it."""
    tok = Tokenizer(models.WordLevel({"a": 0, "</s>": 1, "<unk>": 2}, unk_token="<unk>"))
    tok.save(str(tmp_path / "tokenizer.json"))
    assert vocabulary_from_file(tmp_path).eos_ids == frozenset()
    (tmp_path / "tokenizer_config.json").write_text(json.dumps({"eos_token": "</s>"}))
    vocab = vocabulary_from_file(tmp_path)
    assert vocab.eos_ids == {1} and 1 in vocab.special_ids
