"""apply_token_bitmask_: the reference's semantics, the vectorized torch path, xgrammar parity, bad input.

Large vocabularies run here (torch paths only); the Triton kernel is in test_apply_triton.py.
"""

from __future__ import annotations

import pytest
import torch
from _kernel_helpers import DTYPES, NEG_INF, VOCABS, random_bitmask
from structgen.kernels import apply_token_bitmask_, apply_token_bitmask_reference_, unpack_bitmask


def naive_apply(logits: torch.Tensor, bitmask: torch.Tensor, indices=None, vocab_size=None) -> torch.Tensor:
    """The docstring's loop, literally (small shapes only)."""
    out = logits.clone()
    v = min(out.shape[1], 32 * bitmask.shape[1]) if vocab_size is None else vocab_size
    rows = range(out.shape[0]) if indices is None else indices
    bm = bitmask.tolist()
    for r in rows:
        for t in range(out.shape[1]):
            allowed = t < v and (bm[r][t // 32] >> (t % 32)) & 1 == 1
            if not allowed:
                out[r, t] = NEG_INF
    return out


def test_unit_case_from_the_design_note() -> None:
    # masks-and-speculation.md (d): V = 40, allowed {0, 31, 32, 39} <=> words [-2147483647, 129]
    bm = torch.tensor([[-2147483647, 129]], dtype=torch.int32)
    assert unpack_bitmask(bm, 40).nonzero()[:, 1].tolist() == [0, 31, 32, 39]
    for backend in ("reference", "torch", "auto"):
        logits = torch.zeros(1, 40)
        apply_token_bitmask_(logits, bm, backend=backend)
        assert torch.isfinite(logits[0]).nonzero().flatten().tolist() == [0, 31, 32, 39]
        padded = torch.zeros(1, 48)  # the design note's padded case: bits 40..47 are 0, so masked
        apply_token_bitmask_(padded, bm, backend=backend)
        assert torch.isfinite(padded[0]).nonzero().flatten().tolist() == [0, 31, 32, 39]
        explicit = torch.zeros(1, 48)  # vocab_size=40: columns 40..47 are padding -> masked (xgrammar leaves them)
        apply_token_bitmask_(explicit, bm, vocab_size=40, backend=backend)
        assert torch.isfinite(explicit[0]).nonzero().flatten().tolist() == [0, 31, 32, 39]


def test_reference_matches_the_naive_loop() -> None:
    logits = torch.randn(3, 77, generator=torch.Generator().manual_seed(1))
    bm = random_bitmask(3, 70, seed=2)  # 3 words = 96 bits; V defaults to 77, padding none
    for indices, vocab_size in [(None, None), ([2, 0], None), (None, 70), ([1], 65)]:
        got = logits.clone()
        apply_token_bitmask_reference_(got, bm, indices, vocab_size)
        assert torch.equal(got, naive_apply(logits, bm, indices, vocab_size))


def test_logits_wider_than_the_bitmask_mask_the_padding() -> None:
    bm = torch.full((2, 2), -1, dtype=torch.int32)  # 64 tokens, all allowed
    for backend in ("reference", "torch"):
        logits = torch.zeros(2, 100)
        apply_token_bitmask_(logits, bm, backend=backend)
        assert torch.isfinite(logits[:, :64]).all() and torch.isinf(logits[:, 64:]).all()


@pytest.mark.parametrize("vocab", VOCABS)
@pytest.mark.parametrize("dtype", DTYPES)
def test_torch_path_equals_reference(vocab: int, dtype: torch.dtype) -> None:
    rows = 4
    bm = random_bitmask(rows, vocab, seed=vocab)
    bm[1] = -1  # all allowed
    bm[2] = 0  # none allowed
    width = vocab + 67  # padded model vocabulary
    logits = torch.randn(rows, width, generator=torch.Generator().manual_seed(3)).to(dtype)
    for indices in (None, [3, 1], torch.tensor([2, 2, 0])):
        want, got = logits.clone(), logits.clone()
        apply_token_bitmask_reference_(want, bm, indices, vocab)
        apply_token_bitmask_(got, bm, indices, vocab, backend="torch")
        assert torch.equal(want, got)
        if indices is None:
            assert torch.isinf(got[2]).all()  # none allowed
            assert torch.isfinite(got[1, :vocab]).all() and torch.isinf(got[1, vocab:]).all()  # all allowed + padding


@pytest.mark.parametrize("dtype", DTYPES)
def test_strided_logits(dtype: torch.dtype) -> None:
    vocab = 1001
    bm = random_bitmask(3, vocab, seed=5)
    base = torch.randn(6, 2 * vocab + 3).to(dtype)
    for backend in ("reference", "torch"):
        storage = base.clone()
        view = storage[::2, 1 : 2 * vocab + 1 : 2]  # rows and columns strided
        want = view.clone()
        apply_token_bitmask_reference_(want, bm)
        apply_token_bitmask_(view, bm, backend=backend)
        assert torch.equal(view, want)
        untouched = storage.clone()
        untouched[::2, 1 : 2 * vocab + 1 : 2] = base[::2, 1 : 2 * vocab + 1 : 2]
        assert torch.equal(untouched, base)  # nothing outside the view was written


@pytest.mark.parametrize("vocab", VOCABS)
@pytest.mark.parametrize("dtype", DTYPES)
def test_bit_identical_to_xgrammar(vocab: int, dtype: torch.dtype) -> None:
    xgr = pytest.importorskip("xgrammar")
    bm = random_bitmask(3, vocab, seed=vocab + 1)
    bm[0] = -1
    logits = torch.randn(3, vocab, generator=torch.Generator().manual_seed(7)).to(dtype)
    for indices in (None, [2, 0]):
        ours, theirs = logits.clone(), logits.clone()
        apply_token_bitmask_(ours, bm, indices)
        xgr.apply_token_bitmask_inplace(theirs, bm, indices=indices)
        assert torch.equal(
            ours.view(torch.int16 if dtype != torch.float32 else torch.int32),
            theirs.view(torch.int16 if dtype != torch.float32 else torch.int32),
        )


def test_indices_name_rows_of_both_tensors_like_xgrammar() -> None:
    xgr = pytest.importorskip("xgrammar")
    bm = torch.zeros(3, 2, dtype=torch.int32)
    bm[1, 0] = 0b101  # row 1 allows tokens 0 and 2
    ours, theirs = torch.zeros(3, 40), torch.zeros(3, 40)
    apply_token_bitmask_(ours, bm, [1])
    xgr.apply_token_bitmask_inplace(theirs, bm, indices=[1])
    assert torch.equal(ours, theirs)
    assert torch.isfinite(ours[1]).nonzero().flatten().tolist() == [0, 2]
    assert torch.isfinite(ours[0]).all() and torch.isfinite(ours[2]).all()


def test_empty_indices_is_a_no_op() -> None:
    logits = torch.randn(2, 40)
    before = logits.clone()
    apply_token_bitmask_(logits, torch.zeros(2, 2, dtype=torch.int32), [])
    assert torch.equal(logits, before)


@pytest.mark.parametrize(
    ("logits", "bitmask", "kwargs", "needles"),
    [
        (torch.zeros(2, 40), torch.zeros(3, 2, dtype=torch.int32), {}, ["3 rows", "2"]),
        (torch.zeros(2, 40), torch.zeros(2, 2, dtype=torch.int64), {}, ["torch.int64", "torch.float32"]),
        (torch.zeros(2, 40, dtype=torch.int32), torch.zeros(2, 2, dtype=torch.int32), {}, ["torch.int32"]),
        (torch.zeros(40), torch.zeros(2, dtype=torch.int32), {}, ["(40,)"]),
        (torch.zeros(2, 40), torch.zeros(2, 2, dtype=torch.int32), {"vocab_size": 65}, ["65", "2"]),
        (torch.zeros(2, 40), torch.zeros(2, 2, dtype=torch.int32), {"vocab_size": 50}, ["50", "40"]),
        (torch.zeros(2, 40), torch.zeros(2, 2, dtype=torch.int32), {"indices": [0, 2]}, ["[2]", "2 rows"]),
        (torch.zeros(2, 40), torch.zeros(2, 2, dtype=torch.int32), {"indices": torch.zeros(1, 1)}, ["(1, 1)"]),
        (torch.zeros(2, 40), torch.zeros(2, 2, dtype=torch.int32), {"backend": "magic"}, ["magic"]),
    ],
)
def test_bad_input_raises_value_error_naming_both_values(logits, bitmask, kwargs, needles) -> None:
    with pytest.raises(ValueError) as info:
        apply_token_bitmask_(logits, bitmask, **kwargs)
    for needle in needles:
        assert needle in str(info.value)


def test_device_mismatch_names_both_devices() -> None:
    meta = torch.zeros(2, 2, dtype=torch.int32, device="meta")
    with pytest.raises(ValueError, match=r"meta.*cpu"):
        apply_token_bitmask_(torch.zeros(2, 40), meta)


def test_triton_backend_on_cpu_without_interpreter_is_a_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    import structgen.kernels._triton_support as support

    monkeypatch.setattr(support, "interpreter_active", lambda: False)
    with pytest.raises(ValueError, match="TRITON_INTERPRET"):
        apply_token_bitmask_(torch.zeros(1, 40), torch.zeros(1, 2, dtype=torch.int32), backend="triton")
