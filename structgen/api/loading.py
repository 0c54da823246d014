"""``structgen.load``: a transformers causal LM + its tokenizer + the matching structgen Vocabulary.

    model = structgen.load()                        # the bundled SmolLM2-135M-Instruct
    model = structgen.load("path/to/checkpoint")    # a transformers checkpoint directory
    model = structgen.load("path/to/model.gguf")    # a GGUF file (through transformers, gguf_file=)
    model = structgen.wrap(hf_model, hf_tokenizer)  # objects you already have

The vocabulary's ``size`` is the model's logits width (not ``len(tokenizer)``), and its EOS set is the
union of the generation config's, the model config's and the tokenizer's EOS ids (chat models such
as SmolLM2 stop on ``<|im_end|>``). A tokenizer that does not belong to the model is refused with a
:class:`~structgen.errors.GenerationError` before anything is generated.
"""

from __future__ import annotations

import dataclasses
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from structgen.errors import GenerationError
from structgen.vocab.vocabulary import Vocabulary

BUNDLED = ("smollm2",)

_cache: dict[tuple[str, str, str], LoadedModel] = {}
_wrapped: dict[tuple[int, int], LoadedModel] = {}
_lock = threading.Lock()


@dataclass(eq=False)
class LoadedModel:
    """What ``generate`` needs: the model, its tokenizer and the byte-level vocabulary.

    Attributes:
        model: a transformers causal LM (``model(input_ids, ...).logits``).
        tokenizer: its transformers tokenizer (chat template included when the model has one).
        vocab: the :class:`~structgen.Vocabulary`; ``vocab.size`` equals the logits width.
        name: a label (path or bundled name).
    """

    model: Any
    tokenizer: Any
    vocab: Vocabulary
    name: str = ""

    @property
    def eos_ids(self) -> frozenset[int]:
        return self.vocab.eos_ids

    @property
    def device(self) -> Any:
        return next(self.model.parameters()).device

    @property
    def pad_id(self) -> int:
        pad = getattr(self.tokenizer, "pad_token_id", None)
        if pad is None:
            pad = min(self.vocab.eos_ids) if self.vocab.eos_ids else 0
        return int(pad)

    def __repr__(self) -> str:
        return f"LoadedModel({self.name!r}, vocab={self.vocab.size}, eos={sorted(self.vocab.eos_ids)})"


def logits_width(model: Any) -> int:
    """The width of ``model``'s logits (output embedding rows, else ``config.vocab_size``)."""
    try:
        head = model.get_output_embeddings()
    except (AttributeError, NotImplementedError):
        head = None
    if head is not None and getattr(head, "weight", None) is not None:
        return int(head.weight.shape[0])
    size = getattr(getattr(model, "config", None), "vocab_size", None)
    if size is None:
        text_cfg = getattr(getattr(model, "config", None), "text_config", None)
        size = getattr(text_cfg, "vocab_size", None)
    if size is None:
        raise GenerationError(
            f"cannot tell the logits width of {type(model).__name__}: no output embeddings or vocab_size"
        )
    return int(size)


def _ids(value: Any) -> set[int]:
    if value is None:
        return set()
    if isinstance(value, int):
        return {int(value)}
    try:
        return {int(v) for v in value}
    except TypeError:
        return set()


def declared_eos_ids(model: Any, tokenizer: Any) -> set[int]:
    """EOS ids from the generation config, the model config and the tokenizer."""
    ids: set[int] = set()
    gen = getattr(model, "generation_config", None)
    ids |= _ids(getattr(gen, "eos_token_id", None))
    ids |= _ids(getattr(getattr(model, "config", None), "eos_token_id", None))
    ids |= _ids(getattr(tokenizer, "eos_token_id", None))
    return ids


def check_tokenizer_matches(model: Any, tokenizer: Any, width: int) -> None:
    """Refuse a tokenizer that cannot be the model's (raised before any generation)."""
    n = len(tokenizer)
    mname = getattr(getattr(model, "config", None), "name_or_path", "") or type(model).__name__
    tname = getattr(tokenizer, "name_or_path", "") or type(tokenizer).__name__
    if n > width:
        raise GenerationError(
            f"tokenizer/model mismatch: the tokenizer {tname!r} has {n} tokens but the model {mname!r} "
            f"produces logits over only {width}; token ids {width}..{n - 1} could never be generated. "
            "Pass the tokenizer that belongs to this model."
        )
    # models pad their logits to a multiple of 64/128 (Qwen: +267); a gap of thousands means another tokenizer
    gap = width - n
    if gap > max(1024, width // 50):
        raise GenerationError(
            f"tokenizer/model mismatch: the tokenizer {tname!r} has {n} tokens but the model {mname!r} "
            f"has {width} logits ({gap} unused, more than padding explains). Pass the tokenizer that "
            "belongs to this model, or structgen.wrap(..., check_vocab=False) if this is intended."
        )
    for eid in declared_eos_ids(model, None):
        if eid >= n:
            raise GenerationError(
                f"tokenizer/model mismatch: the model's EOS id {eid} is outside the tokenizer's {n} tokens"
            )


def build_vocabulary(model: Any, tokenizer: Any, *, check_vocab: bool = True) -> Vocabulary:
    """The structgen vocabulary for ``model`` × ``tokenizer`` (size = logits width, EOS = declared ∪ default)."""
    width = logits_width(model)
    if check_vocab:
        check_tokenizer_matches(model, tokenizer, width)
    vocab = Vocabulary.from_tokenizer(tokenizer, size=width)
    eos = (set(vocab.eos_ids) | declared_eos_ids(model, tokenizer)) & set(range(vocab.num_tokens))
    if eos != set(vocab.eos_ids):
        vocab = dataclasses.replace(
            vocab, eos_ids=frozenset(eos), special_ids=frozenset(vocab.special_ids | eos), _cache={}
        )
    return vocab


def wrap(model: Any, tokenizer: Any, *, check_vocab: bool = True, name: str = "") -> LoadedModel:
    """A :class:`LoadedModel` from a transformers model and tokenizer you already have (cached per pair)."""
    if isinstance(model, LoadedModel):
        return model
    if tokenizer is None:
        raise TypeError(f"a {type(model).__name__} needs its tokenizer: pass tokenizer= (or use structgen.load(path))")
    key = (id(model), id(tokenizer))
    with _lock:
        hit = _wrapped.get(key)
        if hit is not None and hit.model is model and hit.tokenizer is tokenizer:
            return hit
    vocab = build_vocabulary(model, tokenizer, check_vocab=check_vocab)
    loaded = LoadedModel(
        model, tokenizer, vocab, name or str(getattr(model, "name_or_path", "") or type(model).__name__)
    )
    with _lock:
        _wrapped[key] = loaded
        if len(_wrapped) > 16:
            _wrapped.pop(next(iter(_wrapped)))
    return loaded


def _resolve(path_or_name: str | Path | None) -> tuple[str, str | None]:
    """(directory, gguf file name or None)."""
    from structgen import assets

    if path_or_name is None or str(path_or_name) in BUNDLED:
        name = assets.DEFAULT_MODEL if path_or_name is None else str(path_or_name)
        d = assets.model_dir(name)
        if not (d / "config.json").exists():
            d = assets.fetch_model(name)
        return str(d), None
    p = Path(path_or_name).expanduser()
    if p.suffix == ".gguf":
        if not p.is_file():
            raise FileNotFoundError(f"GGUF file not found: {p}")
        return str(p.parent), p.name
    if p.is_dir():
        return str(p), None
    raise FileNotFoundError(
        f"{str(path_or_name)!r} is neither a checkpoint directory, a .gguf file nor a bundled model {list(BUNDLED)}"
    )


def load(
    path_or_name: str | Path | None = None,
    *,
    dtype: Any = None,
    device: str | None = None,
    check_vocab: bool = True,
) -> LoadedModel:
    """Load a causal LM with its tokenizer and vocabulary (cached per path, dtype and device).

    Args:
        path_or_name: a checkpoint directory, a ``.gguf`` file, or ``"smollm2"`` / ``None`` for the
            bundled SmolLM2-135M-Instruct (fetched and converted into the cache on first use).
        dtype: torch dtype (default float32, the safe choice on CPU).
        device: ``"cpu"``, ``"cuda"``... (default: CUDA when available, else CPU).
    """
    if isinstance(path_or_name, LoadedModel):
        return path_or_name
    import torch

    directory, gguf = _resolve(path_or_name)
    dtype = dtype or torch.float32
    device = device or ("cuda" if torch.cuda.is_available() else "cpu")
    key = (f"{directory}/{gguf or ''}", str(dtype), str(device))
    with _lock:
        hit = _cache.get(key)
    if hit is not None:
        return hit
    from transformers import AutoModelForCausalLM, AutoTokenizer

    kwargs: dict[str, Any] = {"gguf_file": gguf} if gguf else {}
    tokenizer = AutoTokenizer.from_pretrained(directory, **kwargs)
    model = AutoModelForCausalLM.from_pretrained(directory, dtype=dtype, **kwargs)
    model.to(device)  # type: ignore[arg-type]
    model.eval()
    vocab = build_vocabulary(model, tokenizer, check_vocab=check_vocab)
    loaded = LoadedModel(model, tokenizer, vocab, name=str(path_or_name or "smollm2"))
    with _lock:
        _cache[key] = loaded
    return loaded


def resolve_model(model: Any, tokenizer: Any = None) -> LoadedModel:
    """What ``generate`` accepts as ``model``: a LoadedModel, a path/name, None, or a transformers model."""
    if isinstance(model, LoadedModel):
        if tokenizer is not None and tokenizer is not model.tokenizer:
            return wrap(model.model, tokenizer)
        return model
    if model is None or isinstance(model, (str, Path)):
        if tokenizer is not None:
            loaded = load(model)
            return wrap(loaded.model, tokenizer)
        return load(model)
    return wrap(model, tokenizer)
