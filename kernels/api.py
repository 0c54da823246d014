"""The public entry points of ``structgen.kernels`` (re-exported by the package; see its docstring)."""

from __future__ import annotations

from typing import Literal

import torch

from ._checks import IndicesLike, check_apply_args
from .cpu import apply_token_bitmask_cpu_
from .dfa import DfaStepper
from .reference import (
    apply_token_bitmask_reference_,
    sample_masked_reference,
    sampling_distribution,
    unpack_bitmask,
)

__all__ = [
    "DfaStepper",
    "apply_token_bitmask_",
    "apply_token_bitmask_reference_",
    "sample_masked",
    "sample_masked_reference",
    "sampling_distribution",
    "triton_available",
    "unpack_bitmask",
]

ApplyBackend = Literal["auto", "triton", "torch", "reference"]
SampleBackend = Literal["auto", "triton", "reference"]


def triton_available(device: torch.device | str) -> bool:
    """Whether the Triton kernels can run on tensors of ``device`` in this process.

    CUDA devices need an importable triton; CPU tensors need the Triton interpreter, i.e.
    ``TRITON_INTERPRET=1`` set before triton was imported.
    """
    from ._triton_support import triton_runs_on

    return triton_runs_on(torch.device(device))


def _pick(backend: str, device: torch.device, choices: tuple[str, ...], cpu_default: str) -> str:
    if backend not in choices:
        raise ValueError(f"backend must be one of {choices}, got {backend!r}")
    if backend == "auto":
        if device.type == "cuda" and triton_available(device):
            return "triton"
        return cpu_default
    if backend == "triton" and not triton_available(device):
        raise ValueError(
            f"backend 'triton' cannot run on {device}: "
            + (
                "triton is not importable"
                if device.type == "cuda"
                else "CPU tensors need the Triton interpreter (set TRITON_INTERPRET=1 before importing triton)"
            )
        )
    return backend


def apply_token_bitmask_(
    logits: torch.Tensor,
    bitmask: torch.Tensor,
    indices: IndicesLike = None,
    vocab_size: int | None = None,
    *,
    backend: ApplyBackend = "auto",
) -> torch.Tensor:
    """Set every disallowed logit to ``-inf`` in place and return ``logits``.

    ``logits``: ``(B, L)`` float32/float16/bfloat16, any strides. ``bitmask``: ``(R, ceil(V/32))`` int32
    on the same device, bit 1 = allowed (token ``t`` in word ``t // 32``, bit ``t % 32``). ``indices``: rows
    to mask (list or integer tensor); logits row ``r`` uses bitmask row ``r``, as in xgrammar. ``vocab_size``
    (``V``, default ``min(L, 32 * W)``): columns ``[V, L)`` are padding and always masked.
    Semantics: :func:`apply_token_bitmask_reference_`. ``backend="auto"`` runs the Triton kernel on CUDA
    and the vectorized torch path elsewhere (faster than the reference on CPU; see docs/benchmarks.md).
    Bad shapes, dtypes or devices raise ``ValueError`` naming both values.
    """
    lg, bm, args = check_apply_args(logits, bitmask, indices, vocab_size)
    chosen = _pick(backend, lg.device, ("auto", "triton", "torch", "reference"), "torch")
    if chosen == "triton":
        from .triton_kernels import apply_token_bitmask_triton_

        apply_token_bitmask_triton_(lg, bm, args)
    elif chosen == "torch":
        apply_token_bitmask_cpu_(lg, bm, args)
    else:
        apply_token_bitmask_reference_(lg, bm, args.indices, args.vocab_size)
    return lg


def sample_masked(
    logits: torch.Tensor,
    bitmask: torch.Tensor | None = None,
    temperature: float | torch.Tensor = 1.0,
    top_k: int | torch.Tensor = 0,
    top_p: float | torch.Tensor = 1.0,
    *,
    generator: torch.Generator | None = None,
    seed: int | torch.Tensor | None = None,
    vocab_size: int | None = None,
    bitmask_rows: torch.Tensor | None = None,
    backend: SampleBackend = "auto",
) -> tuple[torch.Tensor, torch.Tensor]:
    """Mask, scale, truncate and sample one token per row; returns ``(token_ids (B,) int64, logprobs (B,) float32)``.

    The distribution is :func:`sampling_distribution`'s: temperature ``<= 0`` is greedy (first maximum),
    top-k/top-p are applied jointly to the masked distribution, and ``logprobs`` are the masked
    log-probabilities at the sampling temperature before truncation. Rows with no allowed token return
    ``-1`` and ``-inf``. ``temperature``, ``top_k``, ``top_p`` are scalars or ``(B,)`` tensors.
    ``bitmask_rows[b]`` (optional ``(B,)`` integer tensor) picks the bitmask row of logits row ``b``.

    Randomness: the Triton kernel (CUDA) uses a counter-based hash keyed by ``seed`` (an int, or an int64
    tensor on the device so that a CUDA graph can replay it with fresh values); without ``seed`` one is
    drawn from ``generator`` (or torch's default CPU generator). The reference path (CPU) draws with
    ``torch.multinomial(generator=...)``. The two paths draw from the same distribution, not the same samples.
    """
    chosen = _pick(
        backend,
        logits.device if isinstance(logits, torch.Tensor) else torch.device("cpu"),
        ("auto", "triton", "reference"),
        "reference",
    )
    if chosen == "triton":
        from .triton_kernels import sample_masked_triton

        return sample_masked_triton(
            logits,
            bitmask,
            temperature,
            top_k,
            top_p,
            generator=generator,
            seed=seed,
            vocab_size=vocab_size,
            bitmask_rows=bitmask_rows,
        )
    if generator is None and seed is not None:
        generator = torch.Generator(device=logits.device)
        generator.manual_seed(int(seed))
    return sample_masked_reference(
        logits,
        bitmask,
        temperature,
        top_k,
        top_p,
        generator=generator,
        vocab_size=vocab_size,
        bitmask_rows=bitmask_rows,
    )
