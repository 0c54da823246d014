"""sample_masked: the distribution's definition, the samplers' statistics, the Triton kernel.

The Triton kernel draws with its own counter-based hash, so it is checked in two steps: token for
token against ``sample_masked_mirror`` (the same algorithm and random stream in torch) on a few rows,
then the mirror's empirical distribution against ``sampling_distribution`` by chi-square on many rows.
"""

from __future__ import annotations

import math

import pytest
import torch
from _kernel_helpers import DTYPES, VOCABS, random_bitmask
from structgen.kernels import sample_masked, sample_masked_reference, sampling_distribution
from structgen.kernels.reference import kernel_gumbel_noise, sample_masked_mirror

CONFIGS = [(1.0, 0, 1.0), (0.7, 5, 1.0), (1.3, 0, 0.8), (1.0, 6, 0.7), (2.0, 1, 1.0)]


def chi_square_pvalue(counts: torch.Tensor, probs: torch.Tensor) -> float:
    n = counts.sum().item()
    expected = probs.double() * n
    support = expected > 0
    assert counts[~support].sum().item() == 0, "a token outside the support was sampled"
    chi = (((counts.double() - expected) ** 2) / expected.clamp_min(1e-12))[support].sum()
    df = int(support.sum().item()) - 1
    if df == 0:
        return 1.0
    return torch.special.gammaincc(torch.tensor(df / 2.0, dtype=torch.float64), chi / 2).item()


def toy_row(vocab: int = 24, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    logits = torch.randn(1, vocab, generator=torch.Generator().manual_seed(seed)) * 1.5
    bm = torch.tensor([[0x00FFF0F7]], dtype=torch.int32)  # 17 of the first 24 tokens allowed
    return logits, bm


# --- the definition -------------------------------------------------------------------------------


def test_distribution_by_exact_enumeration() -> None:
    logits = torch.tensor([[2.0, 1.0, 1.0, 0.0, 3.0, -1.0]])
    bm = torch.tensor([[0b101111]], dtype=torch.int32)  # token 4 (the best) masked
    allowed = [0, 1, 2, 3, 5]
    w = {t: math.exp(logits[0, t].item() / 0.5) for t in allowed}
    z = sum(w.values())
    probs, logprobs = sampling_distribution(logits, bm, 0.5, 0, 1.0)
    for t in range(6):
        assert probs[0, t].item() == pytest.approx(w.get(t, 0.0) / z, rel=1e-5)
    assert logprobs[0, 4].item() == float("-inf")
    assert logprobs[0, 0].item() == pytest.approx(math.log(w[0] / z), rel=1e-5)
    # top_k=2: token 0 and the tie {1, 2} at rank 2: ties at the threshold are all kept
    probs, _ = sampling_distribution(logits, bm, 0.5, 2, 1.0)
    kept = w[0] + w[1] + w[2]
    assert probs[0].tolist() == pytest.approx([w[0] / kept, w[1] / kept, w[2] / kept, 0, 0, 0], rel=1e-5)
    # top_p: token t is kept iff the mass strictly above it is < p
    p0 = w[0] / z
    probs, _ = sampling_distribution(logits, bm, 0.5, 0, p0 * 0.999)
    assert probs[0].tolist() == pytest.approx([1, 0, 0, 0, 0, 0])
    probs, _ = sampling_distribution(logits, bm, 0.5, 0, p0 * 1.001)  # ties 1 and 2 both enter
    assert probs[0].tolist() == pytest.approx([w[0] / kept, w[1] / kept, w[2] / kept, 0, 0, 0], rel=1e-5)
    # greedy: the masked argmax, log-probabilities at T = 1
    probs, logprobs = sampling_distribution(logits, bm, 0.0, 0, 1.0)
    assert probs[0].tolist() == [1, 0, 0, 0, 0, 0]
    assert logprobs[0].exp()[allowed].sum().item() == pytest.approx(1.0)


def test_empty_rows_return_minus_one_and_minus_inf() -> None:
    logits = torch.randn(3, 40)
    bm = torch.tensor([[0, 0], [-1, -1], [0, 1 << 3]], dtype=torch.int32)
    logits[2, 35] = float("-inf")  # the only allowed token has a -inf logit: nothing to sample
    for temperature in (0.0, 1.0):
        tokens, lps = sample_masked_reference(logits, bm, temperature)
        assert tokens[0].item() == -1 and tokens[2].item() == -1 and tokens[1].item() >= 0
        assert lps[0].item() == float("-inf") and math.isfinite(lps[1].item())
        tokens, lps = sample_masked_mirror(logits, bm, temperature, 3, 0.9, seed=1)
        assert tokens.tolist()[0] == -1 and tokens.tolist()[2] == -1


# --- statistics (many rows, torch only) ---------------------------------------------------------


@pytest.mark.parametrize(("temperature", "top_k", "top_p"), CONFIGS)
def test_reference_sampler_chi_square(temperature: float, top_k: int, top_p: float) -> None:
    logits, bm = toy_row()
    n = 10000
    g = torch.Generator().manual_seed(1234)
    tokens, _ = sample_masked_reference(logits.expand(n, -1), bm.expand(n, -1), temperature, top_k, top_p, generator=g)
    probs, _ = sampling_distribution(logits, bm, temperature, top_k, top_p)
    assert chi_square_pvalue(torch.bincount(tokens, minlength=24), probs[0]) > 1e-3


@pytest.mark.parametrize(("temperature", "top_k", "top_p"), CONFIGS)
def test_kernel_algorithm_chi_square(temperature: float, top_k: int, top_p: float) -> None:
    logits, bm = toy_row(seed=1)
    n = 10000
    tokens, _ = sample_masked_mirror(logits.expand(n, -1), bm.expand(n, -1), temperature, top_k, top_p, seed=99)
    probs, _ = sampling_distribution(logits, bm, temperature, top_k, top_p)
    assert chi_square_pvalue(torch.bincount(tokens, minlength=24), probs[0]) > 1e-3


def test_kernel_noise_is_uniform_and_independent_across_rows() -> None:
    g = kernel_gumbel_noise(7, torch.arange(64), 4096, 0)  # (64, 4096)
    u = torch.exp(-torch.exp(-g.double()))  # back to uniforms
    counts = torch.histc(u.flatten(), bins=64, min=0, max=1)
    assert chi_square_pvalue(counts.long(), torch.full((64,), 1 / 64)) > 1e-3
    corr = torch.corrcoef(u[:8])  # rows are not shifted copies of each other
    assert (corr - torch.eye(8)).abs().max().item() < 0.05
    assert not torch.equal(
        kernel_gumbel_noise(7, torch.arange(2), 64, 1), kernel_gumbel_noise(7, torch.arange(2), 64, 0)
    )


def test_logprobs_are_the_masked_tempered_log_softmax() -> None:
    logits = torch.randn(5, 300, generator=torch.Generator().manual_seed(2))
    bm = random_bitmask(5, 300, seed=3)
    for fn in (sample_masked_reference, sample_masked_mirror):
        tokens, lps = fn(logits, bm, 0.8, 10, 0.9)
        _, want = sampling_distribution(logits, bm, 0.8, 10, 0.9)
        assert torch.allclose(lps, want.gather(1, tokens[:, None]).squeeze(1), atol=1e-5)


def test_per_row_parameters() -> None:
    logits = torch.randn(4, 100, generator=torch.Generator().manual_seed(4))
    bm = torch.full((4, 4), -1, dtype=torch.int32)
    temperature = torch.tensor([0.0, 1.0, 0.0, 0.5])
    top_k = torch.tensor([0, 1, 3, 0])
    for fn in (sample_masked_reference, sample_masked_mirror):
        tokens, _ = fn(logits, bm, temperature, top_k, 1.0)
        argmax = logits.argmax(dim=1)
        assert tokens[0] == argmax[0] and tokens[1] == argmax[1] and tokens[2] == argmax[2]


def test_sample_masked_dispatches_to_the_reference_on_cpu() -> None:
    logits, bm = toy_row()
    a, _ = sample_masked(logits, bm, 1.0, seed=5, backend="reference")
    b, _ = sample_masked(logits, bm, 1.0, seed=5)
    assert torch.equal(a, b)
    g, _ = sample_masked(logits, bm, 0.0)
    assert g.item() == torch.where(sampling_distribution(logits, bm, 0.0)[0] > 0)[1].item()


@pytest.mark.parametrize(
    ("kwargs", "needles"),
    [
        ({"bitmask": torch.zeros(3, 1, dtype=torch.int32)}, ["3 rows", "2"]),
        ({"bitmask": torch.zeros(2, 1, dtype=torch.int64)}, ["torch.int64"]),
        ({"temperature": torch.ones(3)}, ["(2,)", "(3,)"]),
        ({"vocab_size": 40}, ["40", "(2, 1)"]),
    ],
)
def test_sample_bad_input_raises_value_error(kwargs: dict, needles: list[str]) -> None:
    args = {"bitmask": torch.full((2, 1), -1, dtype=torch.int32)} | kwargs
    with pytest.raises(ValueError) as info:
        sample_masked(torch.randn(2, 32), **args)
    for needle in needles:
        assert needle in str(info.value)


# --- the Triton kernel --------------------------------------------------------------------------


def _kernel(triton_device: str, *args, block: int | None = None, **kwargs):
    from structgen.kernels.triton_kernels import sample_masked_triton

    return sample_masked_triton(*args, block=block, **kwargs)


@pytest.mark.parametrize(("temperature", "top_k", "top_p"), [(0.0, 0, 1.0), *CONFIGS])
def test_triton_sampler_equals_its_mirror(triton_device: str, temperature: float, top_k: int, top_p: float) -> None:
    rows, vocab = (6, 200) if triton_device == "cpu" else (64, 32001)
    logits = (torch.randn(rows, vocab, generator=torch.Generator().manual_seed(8)) * 2).to(triton_device)
    bm = random_bitmask(rows, vocab, seed=9).to(triton_device)
    bm[1] = 0
    seed = 2**40 + 17
    got, got_lp = _kernel(triton_device, logits, bm, temperature, top_k, top_p, seed=seed, block=256)
    want, want_lp = sample_masked_mirror(logits.cpu(), bm.cpu(), temperature, top_k, top_p, seed=seed)
    got = got.cpu()
    agree = (got == want).float().mean().item()
    assert agree == 1.0 if triton_device == "cpu" else agree >= 0.99  # GPU log() may differ by an ulp
    same = got == want
    assert torch.allclose(got_lp.cpu()[same], want_lp[same], atol=1e-4, equal_nan=False)
    assert got[1].item() == -1


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("vocab", VOCABS)
def test_triton_greedy_equals_reference(triton_device: str, dtype: torch.dtype, vocab: int) -> None:
    v = vocab if triton_device == "cuda" else 1024 + vocab % 32 + 32 * (vocab % 3)
    logits = torch.randn(3, v + 40, generator=torch.Generator().manual_seed(v)).to(dtype).to(triton_device)
    bm = random_bitmask(3, v, seed=v).to(triton_device)
    bm[2] = -1
    got, got_lp = _kernel(triton_device, logits, bm, 0.0, vocab_size=v, block=256)  # columns >= v are padding
    want, want_lp = sample_masked_reference(logits.cpu(), bm.cpu(), 0.0, vocab_size=v)
    assert torch.equal(got.cpu(), want)
    assert torch.allclose(got_lp.cpu(), want_lp, atol=1e-4)


def test_triton_split_rows_and_full_size_row(triton_device: str) -> None:
    # one row of the largest real vocabulary, split over several programs and combined
    vocab = 151669
    logits = torch.randn(1, 151936, generator=torch.Generator().manual_seed(0)).to(torch.bfloat16).to(triton_device)
    bm = random_bitmask(1, vocab, seed=1).to(triton_device)
    for temperature in (0.0, 1.0):
        got, got_lp = _kernel(triton_device, logits, bm, temperature, vocab_size=vocab, seed=3, block=4096)
        want, want_lp = sample_masked_mirror(logits.cpu(), bm.cpu(), temperature, vocab_size=vocab, seed=3)
        assert torch.equal(got.cpu(), want)
        assert torch.allclose(got_lp.cpu(), want_lp, atol=1e-3)


def test_triton_without_bitmask_and_with_bitmask_rows(triton_device: str) -> None:
    logits = torch.randn(4, 100, generator=torch.Generator().manual_seed(5)).to(triton_device)
    got, _ = _kernel(triton_device, logits, None, 0.0, vocab_size=90)
    assert torch.equal(got.cpu(), logits[:, :90].argmax(dim=1).cpu())
    table = random_bitmask(3, 100, seed=6).to(triton_device)  # 3 "states"
    rows = torch.tensor([2, 0, 2, 1], device=triton_device)
    got, _ = _kernel(triton_device, logits, table, 1.0, 0, 0.9, seed=11, bitmask_rows=rows, block=128)
    want, _ = sample_masked_mirror(logits.cpu(), table.cpu(), 1.0, 0, 0.9, seed=11, bitmask_rows=rows.cpu())
    assert torch.equal(got.cpu(), want)


def test_triton_device_seed_tensor(triton_device: str) -> None:
    logits = torch.randn(2, 64, generator=torch.Generator().manual_seed(5)).to(triton_device)
    seed = torch.tensor([42], dtype=torch.int64, device=triton_device)
    a, _ = _kernel(triton_device, logits, None, 1.0, seed=seed)
    b, _ = _kernel(triton_device, logits, None, 1.0, seed=42)
    assert torch.equal(a, b)
