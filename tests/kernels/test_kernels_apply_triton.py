"""The Triton apply kernel against the torch reference: natively on CUDA, interpreted on the CPU.

Interpreted runs use reduced shapes (a few rows, vocabularies cut to a few thousand tokens with
the same remainder mod 32 as the real ones) plus one full-size row per real vocabulary.
"""

from __future__ import annotations

import pytest
import torch
from _kernel_helpers import DTYPES, VOCABS, random_bitmask
from structgen.kernels import apply_token_bitmask_, apply_token_bitmask_reference_


def reduced(vocab: int, device: str) -> int:
    return vocab if device == "cuda" else 2048 + vocab % 32 + 32 * (vocab % 3)


def check(logits: torch.Tensor, bm: torch.Tensor, indices=None, vocab_size=None) -> None:
    want, got = logits.clone(), logits.clone()
    apply_token_bitmask_reference_(want, bm, indices, vocab_size)
    apply_token_bitmask_(got, bm, indices, vocab_size, backend="triton")
    assert torch.equal(want.cpu(), got.cpu())


@pytest.mark.parametrize("vocab", VOCABS)
@pytest.mark.parametrize("dtype", DTYPES)
def test_triton_apply_equals_reference(triton_device: str, vocab: int, dtype: torch.dtype) -> None:
    v = reduced(vocab, triton_device)
    rows = 4
    bm = random_bitmask(rows, v, seed=v).to(triton_device)
    bm[1] = -1  # all allowed
    bm[2] = 0  # none allowed
    logits = torch.randn(rows, v + 45, generator=torch.Generator().manual_seed(v)).to(dtype).to(triton_device)
    check(logits, bm, vocab_size=v)  # padded logits: columns >= v masked
    check(logits[:, :v], bm)  # exact width
    check(logits, bm, [3, 0], v)
    check(logits, bm, torch.tensor([2, 2, 1], device=triton_device), v)  # device indices, duplicates


@pytest.mark.parametrize("vocab", VOCABS)
def test_triton_apply_full_size_row(triton_device: str, vocab: int) -> None:
    bm = random_bitmask(1, vocab, seed=11).to(triton_device)
    logits = torch.randn(1, vocab + 7, generator=torch.Generator().manual_seed(1)).to(torch.bfloat16).to(triton_device)
    check(logits, bm, vocab_size=vocab)


@pytest.mark.parametrize("dtype", DTYPES)
def test_triton_apply_strided_logits(triton_device: str, dtype: torch.dtype) -> None:
    v = 1000
    bm = random_bitmask(3, v, seed=3).to(triton_device)
    storage = torch.randn(6, 2 * v + 2).to(dtype).to(triton_device)
    original = storage.clone()
    view = storage[::2, 1 : 2 * v + 1 : 2]
    want = view.clone()
    apply_token_bitmask_reference_(want, bm)
    apply_token_bitmask_(view, bm, backend="triton")
    assert torch.equal(view.cpu(), want.cpu())
    storage[::2, 1 : 2 * v + 1 : 2] = original[::2, 1 : 2 * v + 1 : 2]
    assert torch.equal(storage.cpu(), original.cpu())  # nothing outside the view was written


def test_triton_unit_case_from_the_design_note(triton_device: str) -> None:
    bm = torch.tensor([[-2147483647, 129]], dtype=torch.int32, device=triton_device)
    for width, vocab_size in [(40, None), (48, None), (48, 40)]:
        logits = torch.zeros(1, width, device=triton_device)
        apply_token_bitmask_(logits, bm, vocab_size=vocab_size, backend="triton")
        assert torch.isfinite(logits[0]).nonzero().flatten().tolist() == [0, 31, 32, 39]


def test_triton_out_of_range_device_indices_are_skipped(triton_device: str) -> None:
    # device indices are not range-checked on the host (that would synchronize): the kernel skips them
    bm = torch.zeros(2, 2, dtype=torch.int32, device=triton_device)
    logits = torch.zeros(2, 40, device=triton_device)
    from structgen.kernels._checks import ApplyArgs
    from structgen.kernels.triton_kernels import apply_token_bitmask_triton_

    apply_token_bitmask_triton_(logits, bm, ApplyArgs(40, torch.tensor([5, -1, 1], device=triton_device)))
    assert torch.isfinite(logits[0]).all() and torch.isinf(logits[1]).all()


@pytest.mark.parametrize("block", [32, 256, 4096])
def test_triton_block_sizes(triton_device: str, block: int) -> None:
    from structgen.kernels._checks import check_apply_args
    from structgen.kernels.triton_kernels import apply_token_bitmask_triton_

    v = 1001
    bm = random_bitmask(2, v, seed=block).to(triton_device)
    logits = torch.randn(2, v + 40).to(triton_device)
    want = logits.clone()
    apply_token_bitmask_reference_(want, bm, None, v)
    lg, b, args = check_apply_args(logits, bm, None, v)
    apply_token_bitmask_triton_(lg, b, args, block=block)
    assert torch.equal(want.cpu(), logits.cpu())


@pytest.mark.gpu
def test_native_cuda_apply_large_batch(cuda_device: str) -> None:
    for vocab in VOCABS:
        bm = random_bitmask(64, vocab, seed=vocab).to(cuda_device)
        logits = torch.randn(64, vocab + 256, device=cuda_device, dtype=torch.bfloat16)
        check(logits, bm, vocab_size=vocab)
        xgr = pytest.importorskip("xgrammar")
        ours, theirs = logits[:, :vocab].clone(), logits[:, :vocab].clone()
        apply_token_bitmask_(ours, bm)
        xgr.apply_token_bitmask_inplace(theirs, bm)
        assert torch.equal(ours, theirs)
