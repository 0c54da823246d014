"""Build a :class:`~structgen.vocab.vocabulary.Vocabulary` from a real tokenizer.

Every token id gets the exact bytes the model emits when it samples that id. The bytes are
read off the tokenizer's own tables, never from ``tokenizer.decode([id])`` (lossy: replacement
characters, stripped leading spaces, cleaned-up punctuation spaces). Three families are mapped:

``byte_level``
    GPT-2 style byte-level BPE (GPT-2, Llama-3, Qwen2/3, ...): each vocabulary character stands
    for one byte through GPT-2's ``bytes_to_unicode`` table, inverted here. Detected by a
    ``ByteLevel`` decoder (or, without a decoder, a ``ByteLevel`` pre-tokenizer).
``sentencepiece``
    SentencePiece-style pieces (Mistral-7B, Llama-2, Gemma): the decoder's ``Replace`` step
    (normally ``▁`` → space) is applied and ``<0xNN>`` byte-fallback pieces become the byte
    ``0xNN``. The dummy-prefix space that the decoder strips from the start of a whole text is
    kept: ``▁world`` is ``b" world"``. Detected by a decoder ``Sequence`` holding ``ByteFallback``
    or a ``Replace`` of ``▁``, or a ``Metaspace`` decoder.
``other``
    No decoder (or only ``Fuse``/``Strip``): tokens are their literal UTF-8 text.

Added tokens are matched on raw text before the model runs, so an added token that is not in
the model's vocabulary is its literal UTF-8 content. Special added tokens keep their visible
text in ``token_bytes`` but go into ``special_ids``: text constraints never allow them.

The EOS set is the tokenizer's ``eos_token`` plus the usual chat stop tokens when they are
special tokens of this tokenizer (``<|eot_id|>``, ``<|im_end|>``, ...), unless ``eos_ids`` is
given. ``size`` is the model's logits width (default: the tokenizer's length); ids at or beyond
the tokenizer's length are padding and never allowed.

Tokenizers whose tokens cannot be mapped to exact bytes (WordPiece, which inserts spaces
between tokens while decoding; unknown decoders) raise :class:`~structgen.errors.VocabularyError`.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

from structgen.errors import VocabularyError
from structgen.vocab.vocabulary import Vocabulary

__all__ = [
    "KNOWN_STOP_TOKENS",
    "bytes_to_unicode",
    "unicode_to_bytes",
    "vocabulary_from_file",
    "vocabulary_from_tokenizer",
]

# Chat and document stop tokens of common model families. They join the EOS set only when the
# tokenizer has them as *special* tokens: Qwen3 and Gemma-3 have "</s>" as an ordinary text token.
KNOWN_STOP_TOKENS: tuple[str, ...] = (
    "<|eot_id|>",
    "<|eom_id|>",
    "<|end_of_text|>",
    "<|im_end|>",
    "<|endoftext|>",
    "<end_of_turn>",
    "</s>",
    "<eos>",
)

_BYTE_FALLBACK = re.compile(r"<0x([0-9A-Fa-f]{2})>")
_SPIECE_SPACE = "\u2581"  # ▁
# Decoder steps that do not change the bytes of a single token: Fuse joins tokens, Strip removes
# the dummy-prefix space at the start of a whole text (a property of the text, not of the token).
_NEUTRAL_DECODERS = frozenset({"Fuse", "Strip"})


@lru_cache(maxsize=1)
def bytes_to_unicode() -> dict[int, str]:
    """GPT-2's byte → printable character table used by byte-level BPE vocabularies.

    Bytes ``!``..``~``, ``¡``..``¬`` and ``®``..``ÿ`` map to the character with the same code point;
    the other 68 bytes map, in increasing order, to U+0100, U+0101, ... (space → ``Ġ``, ``\\n`` → ``Ċ``).
    """
    keep = [*range(0x21, 0x7F), *range(0xA1, 0xAD), *range(0xAE, 0x100)]
    table = {b: chr(b) for b in keep}
    n = 0
    for b in range(256):
        if b not in table:
            table[b] = chr(0x100 + n)
            n += 1
    return table


@lru_cache(maxsize=1)
def unicode_to_bytes() -> dict[str, int]:
    """The inverse of :func:`bytes_to_unicode`."""
    return {c: b for b, c in bytes_to_unicode().items()}


@lru_cache(maxsize=1)
def _byte_level_translation() -> dict[int, int]:
    """``str.translate`` table: a byte-level character → the code point equal to its byte.

    Code points below 256 that are *not* byte-level characters (raw space, control characters) map
    to U+FFFF, so that ``.encode("latin-1")`` fails on them exactly as on any other foreign character.
    """
    table = {ord(c): b for c, b in unicode_to_bytes().items()}
    for x in range(256):
        table.setdefault(x, 0xFFFF)
    return table


@dataclass(frozen=True)
class _Scheme:
    """How one tokenizer writes token bytes as vocabulary strings."""

    kind: str  # "byte_level" | "sentencepiece" | "other"
    replacements: tuple[tuple[str, str], ...] = ()  # sentencepiece: (pattern, content) of decoder Replace steps
    byte_fallback: bool = False

    def token_bytes(self, piece: str) -> bytes:
        """Exact bytes of a model-vocabulary string (not of an added token: those are literal)."""
        if self.kind == "byte_level":
            try:
                return piece.translate(_byte_level_translation()).encode("latin-1")
            except UnicodeEncodeError:
                # A character outside the byte map: a token stored verbatim (e.g. a special token
                # placed in the model vocabulary). It is its literal text.
                return piece.encode("utf-8")
        if self.kind == "sentencepiece":
            if self.byte_fallback and piece.startswith("<0x"):
                m = _BYTE_FALLBACK.fullmatch(piece)
                if m:
                    return bytes([int(m.group(1), 16)])
            for pattern, content in self.replacements:
                piece = piece.replace(pattern, content)
            return piece.encode("utf-8")
        return piece.encode("utf-8")


def _flatten_decoders(decoder: Mapping[str, Any] | None) -> list[Mapping[str, Any]]:
    if not decoder:
        return []
    if decoder.get("type") == "Sequence":
        out: list[Mapping[str, Any]] = []
        for d in decoder.get("decoders", ()):
            out.extend(_flatten_decoders(d))
        return out
    return [decoder]


def _flatten_pretokenizers(pre: Mapping[str, Any] | None) -> list[Mapping[str, Any]]:
    if not pre:
        return []
    if pre.get("type") == "Sequence":
        out: list[Mapping[str, Any]] = []
        for p in pre.get("pretokenizers", ()):
            out.extend(_flatten_pretokenizers(p))
        return out
    return [pre]


def _detect_scheme(data: Mapping[str, Any]) -> _Scheme:
    """Read the token-to-bytes scheme off a parsed ``tokenizer.json``."""
    model = data.get("model") or {}
    model_type = model.get("type")
    decoders = _flatten_decoders(data.get("decoder"))
    types = [d.get("type") for d in decoders]
    if model_type == "WordPiece" or "WordPiece" in types:
        raise VocabularyError(
            "WordPiece tokenizers cannot be mapped to exact bytes: their decoder inserts spaces between "
            f"tokens and strips '##' (model {model_type!r}, decoders {types})"
        )
    if "ByteLevel" in types or (
        not decoders and any(p.get("type") == "ByteLevel" for p in _flatten_pretokenizers(data.get("pre_tokenizer")))
    ):
        others = [t for t in types if t not in _NEUTRAL_DECODERS | {"ByteLevel"}]
        if others:
            raise VocabularyError(f"byte-level tokenizer with decoder steps {others} that structgen cannot map exactly")
        return _Scheme("byte_level")

    replacements: list[tuple[str, str]] = []
    byte_fallback = False
    sentencepiece = False
    for d in decoders:
        t = d.get("type")
        if t == "Replace":
            pattern = (d.get("pattern") or {}).get("String")
            if pattern is None:
                raise VocabularyError(f"decoder Replace with a regex pattern {d.get('pattern')!r} is not supported")
            replacements.append((pattern, d.get("content", "")))
            sentencepiece = sentencepiece or pattern == _SPIECE_SPACE
        elif t == "ByteFallback":
            byte_fallback = sentencepiece = True
        elif t == "Metaspace":
            replacements.append((d.get("replacement", _SPIECE_SPACE), " "))
            sentencepiece = True
        elif t not in _NEUTRAL_DECODERS:
            raise VocabularyError(f"tokenizer decoder {t!r} cannot be mapped to exact token bytes (decoders {types})")
    if sentencepiece:
        return _Scheme("sentencepiece", tuple(replacements), byte_fallback)
    if replacements:
        return _Scheme("other", tuple(replacements))
    return _Scheme("other")


def _model_pieces(model: Mapping[str, Any]) -> dict[int, str]:
    """id → vocabulary string of the tokenizer model (BPE / WordLevel dict, Unigram list)."""
    vocab = model.get("vocab")
    if isinstance(vocab, Mapping):
        return {int(i): str(s) for s, i in vocab.items()}
    if isinstance(vocab, list):  # Unigram: [[piece, score], ...], id = position
        return {i: str(entry[0]) for i, entry in enumerate(vocab)}
    raise VocabularyError(f"tokenizer model {model.get('type')!r} has no readable vocabulary")


@dataclass
class _Table:
    """Token bytes and special ids read from one tokenizer, before EOS and width are settled."""

    token_bytes: list[bytes]
    special: set[int]
    kind: str
    by_content: dict[str, int]  # added-token content → id (where special tokens are looked up by name)
    by_piece: Mapping[str, int] = field(default_factory=dict)  # model-vocabulary string → id

    def id_of(self, content: str) -> int | None:
        """The id of a token named in a config: an added token, else a model-vocabulary entry."""
        i = self.by_content.get(content)
        return i if i is not None else self.by_piece.get(content)

    def id_of_special(self, content: str) -> int | None:
        i = self.by_content.get(content)
        return i if i is not None and i in self.special else None


def _table_from_json(data: Mapping[str, Any], n_tokens: int | None = None) -> _Table:
    """Token bytes of every id of a parsed ``tokenizer.json`` (``n_tokens`` extends the table)."""
    scheme = _detect_scheme(data)
    model = data.get("model") or {}
    pieces = _model_pieces(model)
    added = {int(a["id"]): a for a in data.get("added_tokens") or ()}
    top = max([*pieces, *added], default=-1) + 1
    n = max(top, n_tokens or 0)
    token_bytes = [b""] * n
    special: set[int] = set()
    for i, piece in pieces.items():
        token_bytes[i] = scheme.token_bytes(piece)
    by_content: dict[str, int] = {}
    for i, a in added.items():
        content = str(a["content"])
        by_content.setdefault(content, i)
        if pieces.get(i) != content:
            # Matched on raw text before the model: the literal content is what it stands for.
            token_bytes[i] = content.encode("utf-8")
        if a.get("special"):
            special.add(i)
    # Ids that no table names (holes) stand for nothing: never allow them.
    holes = set(range(n)) - pieces.keys() - added.keys()
    special |= holes
    vocab = model.get("vocab")
    by_piece = vocab if isinstance(vocab, Mapping) else {p: i for i, p in pieces.items()}
    return _Table(token_bytes, special, scheme.kind, by_content, by_piece)


def _as_ids(value: Any) -> list[int]:
    if value is None:
        return []
    if isinstance(value, int):
        return [value]
    return [int(v) for v in value]


def _finish(
    table: _Table,
    *,
    eos_token_ids: Iterable[int],
    size: int | None,
    eos_ids: Any,
    name: str,
) -> Vocabulary:
    """Settle the EOS set and the logits width, and build the Vocabulary."""
    token_bytes = table.token_bytes
    special = set(table.special)
    if eos_ids is not None:
        eos = set(_as_ids(eos_ids))
        bad = sorted(i for i in eos if not 0 <= i < len(token_bytes))
        if bad:
            raise VocabularyError(f"eos_ids {bad} are outside the tokenizer's {len(token_bytes)} tokens")
    else:
        eos = {i for i in eos_token_ids if 0 <= i < len(token_bytes)}
        for content in KNOWN_STOP_TOKENS:
            i = table.id_of_special(content)
            if i is not None:
                eos.add(i)
    if size is None:
        size = len(token_bytes)
    if size <= 0:
        raise VocabularyError(f"size {size} must be positive")
    if size < len(token_bytes):
        # A logits layer narrower than the tokenizer can never emit the missing ids; that is only
        # plausible when they are all special (e.g. an image placeholder token added at the end).
        dropped = range(size, len(token_bytes))
        text = [i for i in dropped if i not in special]
        if text:
            raise VocabularyError(
                f"size {size} is smaller than the tokenizer's {len(token_bytes)} tokens and would drop "
                f"{len(text)} text tokens (first id {text[0]}): is this the tokenizer of that model?"
            )
        if eos_ids is not None and any(i >= size for i in eos):
            raise VocabularyError(f"eos_ids {sorted(i for i in eos if i >= size)} are beyond the logits width {size}")
        token_bytes = token_bytes[:size]
        special = {i for i in special if i < size}
        eos = {i for i in eos if i < size}
    return Vocabulary(
        token_bytes=tuple(token_bytes),
        special_ids=frozenset(special),
        eos_ids=frozenset(eos),
        size=size,
        kind=table.kind,
        name=name,
    )


# ---------------------------------------------------------------------------------------------
# transformers / tokenizers objects


def vocabulary_from_tokenizer(tokenizer: Any, *, size: int | None = None, eos_ids: Any = None) -> Vocabulary:
    """The vocabulary of a transformers tokenizer (or a ``tokenizers.Tokenizer``).

    Args:
        tokenizer: a transformers tokenizer backed by ``tokenizers`` (``PreTrainedTokenizerFast``,
            transformers 5's ``TokenizersBackend``), a slow GPT-2/SentencePiece tokenizer, or a bare
            ``tokenizers.Tokenizer``.
        size: the model's logits width; defaults to ``len(tokenizer)``.
        eos_ids: stop token ids replacing the default EOS set (an int or an iterable of ints).

    Raises:
        VocabularyError: the tokenizer's tokens cannot be mapped to exact bytes.
    """
    backend = _backend_of(tokenizer)
    if backend is not None:
        table = _table_from_json(_backend_data(backend), _tokenizer_len(tokenizer, backend))
    else:
        table = _table_from_slow(tokenizer)
    table.special |= _special_ids_of(tokenizer, table)
    eos_id = getattr(tokenizer, "eos_token_id", None)
    return _finish(
        table,
        eos_token_ids=_as_ids(eos_id),
        size=size,
        eos_ids=eos_ids,
        name=str(getattr(tokenizer, "name_or_path", "") or type(tokenizer).__name__),
    )


def _backend_of(tokenizer: Any) -> Any:
    """The ``tokenizers.Tokenizer`` behind ``tokenizer`` (or itself), or None for slow tokenizers."""
    if hasattr(tokenizer, "to_str") and hasattr(tokenizer, "get_vocab_size"):
        return tokenizer
    backend = getattr(tokenizer, "backend_tokenizer", None)
    if backend is not None and hasattr(backend, "to_str"):
        return backend
    return None


def _backend_data(backend: Any) -> dict[str, Any]:
    """The parts of ``backend.to_str()`` that the byte mapping reads, without serializing the merges
    (a quarter of the time on a 262k-token vocabulary)."""

    def state(component: Any) -> Any:
        return json.loads(component.__getstate__()) if component is not None else None

    return {
        "model": {"type": type(backend.model).__name__, "vocab": backend.get_vocab(with_added_tokens=False)},
        "decoder": state(backend.decoder),
        "pre_tokenizer": state(backend.pre_tokenizer),
        "added_tokens": [
            {"id": i, "content": t.content, "special": t.special} for i, t in backend.get_added_tokens_decoder().items()
        ],
    }


def _tokenizer_len(tokenizer: Any, backend: Any) -> int:
    if tokenizer is backend:
        return int(backend.get_vocab_size(with_added_tokens=True))
    return len(tokenizer)


def _special_ids_of(tokenizer: Any, table: _Table) -> set[int]:
    """Special ids the transformers layer knows beyond the backend's flags (bos/eos/unk/pad, ...)."""
    out: set[int] = set()
    for i in getattr(tokenizer, "all_special_ids", None) or ():
        if i is not None and 0 <= int(i) < len(table.token_bytes):
            out.add(int(i))
    decoder = getattr(tokenizer, "added_tokens_decoder", None)
    if isinstance(decoder, Mapping):
        for i, tok in decoder.items():
            if getattr(tok, "special", False) and 0 <= int(i) < len(table.token_bytes):
                out.add(int(i))
    return out


def _table_from_slow(tokenizer: Any) -> _Table:
    """Slow (pure Python) tokenizers: GPT-2's byte table or a SentencePiece model."""
    n = len(tokenizer)
    try:
        pieces = tokenizer.convert_ids_to_tokens(list(range(n)))
    except Exception as exc:  # a tokenizer without id → token access cannot be mapped at all
        raise VocabularyError(f"cannot read the tokens of {type(tokenizer).__name__}: {exc}") from exc
    if getattr(tokenizer, "byte_decoder", None) is not None:
        scheme = _Scheme("byte_level")
    elif getattr(tokenizer, "sp_model", None) is not None:
        scheme = _Scheme("sentencepiece", ((_SPIECE_SPACE, " "),), byte_fallback=True)
    else:
        raise VocabularyError(
            f"{type(tokenizer).__name__} is neither backed by `tokenizers` nor a GPT-2/SentencePiece tokenizer; "
            "load it with use_fast=True or pass a tokenizer.json to Vocabulary.from_file"
        )
    added = getattr(tokenizer, "added_tokens_decoder", None) or {}
    token_bytes: list[bytes] = []
    special: set[int] = set()
    by_content: dict[str, int] = {}
    for i, piece in enumerate(pieces):
        if i in added:
            content = str(getattr(added[i], "content", piece))
            by_content.setdefault(content, i)
            token_bytes.append(content.encode("utf-8"))
        elif piece is None:
            token_bytes.append(b"")
            special.add(i)
        else:
            token_bytes.append(scheme.token_bytes(str(piece)))
    return _Table(token_bytes, special, scheme.kind, by_content)


# ---------------------------------------------------------------------------------------------
# files


def vocabulary_from_file(path: str | Path, *, size: int | None = None, eos_ids: Any = None) -> Vocabulary:
    """The vocabulary of a tokenizer on disk, without importing transformers.

    ``path`` is a ``tokenizer.json``, a directory holding one (its ``tokenizer_config.json`` and
    ``generation_config.json``, when present, name the special and EOS tokens), or a GPT-2 style
    directory with ``encoder.json`` + ``vocab.bpe`` (or ``vocab.json`` + ``merges.txt``).

    Raises:
        VocabularyError: no readable tokenizer at ``path``, or tokens that cannot be mapped exactly.
    """
    p = Path(path)
    if p.is_dir():
        if (p / "tokenizer.json").is_file():
            file = p / "tokenizer.json"
        else:
            for vocab_name, merges_name in (("encoder.json", "vocab.bpe"), ("vocab.json", "merges.txt")):
                if (p / vocab_name).is_file() and (p / merges_name).is_file():
                    return _gpt2_vocabulary(p, p / vocab_name, size=size, eos_ids=eos_ids)
            raise VocabularyError(
                f"{p} holds neither tokenizer.json nor a GPT-2 encoder.json + vocab.bpe (or vocab.json + merges.txt)"
            )
    elif p.is_file():
        file = p
    else:
        raise VocabularyError(f"no tokenizer file at {p}")
    try:
        data = json.loads(file.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise VocabularyError(f"cannot read {file} as a tokenizer.json: {exc}") from exc
    if not isinstance(data, Mapping) or "model" not in data:
        raise VocabularyError(f"{file} is not a tokenizer.json (no 'model' entry)")
    table = _table_from_json(data)
    config = _read_json(file.parent / "tokenizer_config.json")
    eos_token_ids = _config_specials(config, table)
    generation = _read_json(file.parent / "generation_config.json")
    eos_token_ids += _as_ids(generation.get("eos_token_id"))
    return _finish(table, eos_token_ids=eos_token_ids, size=size, eos_ids=eos_ids, name=str(p))


def _read_json(path: Path) -> dict[str, Any]:
    if not path.is_file():
        return {}
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise VocabularyError(f"cannot read {path}: {exc}") from exc
    return data if isinstance(data, dict) else {}


def _token_content(value: Any) -> str | None:
    """A special token named in tokenizer_config.json: a string or an AddedToken dict."""
    if isinstance(value, str):
        return value
    if isinstance(value, Mapping) and isinstance(value.get("content"), str):
        return str(value["content"])
    return None


def _config_specials(config: Mapping[str, Any], table: _Table) -> list[int]:
    """Mark the special tokens tokenizer_config.json names (as transformers does); return the EOS ids."""

    def lookup(value: Any) -> int | None:
        content = _token_content(value)
        return table.id_of(content) if content is not None else None

    for key in ("bos_token", "eos_token", "unk_token", "pad_token", "sep_token", "cls_token", "mask_token"):
        i = lookup(config.get(key))
        if i is not None:
            table.special.add(i)
    for key in ("additional_special_tokens", "extra_special_tokens"):
        extra = config.get(key) or ()
        for value in extra.values() if isinstance(extra, Mapping) else extra:
            i = lookup(value)
            if i is not None:
                table.special.add(i)
    for key, value in (config.get("added_tokens_decoder") or {}).items():
        if isinstance(value, Mapping) and value.get("special") and str(key).isdigit():
            i = int(key)
            if 0 <= i < len(table.token_bytes):
                table.special.add(i)
    eos = lookup(config.get("eos_token"))
    return [eos] if eos is not None else []


def _gpt2_vocabulary(directory: Path, vocab_file: Path, *, size: int | None, eos_ids: Any) -> Vocabulary:
    """GPT-2's original files: a byte-level vocabulary whose ``<|endoftext|>`` is EOS and special."""
    encoder = _read_json(vocab_file)
    if not encoder:
        raise VocabularyError(f"{vocab_file} is not a GPT-2 encoder (token → id JSON object)")
    endoftext = encoder.get("<|endoftext|>")
    # the tokenizer.json that transformers builds from these files
    data = {
        "model": {"type": "BPE", "vocab": encoder},
        "decoder": {"type": "ByteLevel"},
        "added_tokens": [] if endoftext is None else [{"id": endoftext, "content": "<|endoftext|>", "special": True}],
    }
    table = _table_from_json(data)
    return _finish(table, eos_token_ids=_as_ids(endoftext), size=size, eos_ids=eos_ids, name=str(directory))
