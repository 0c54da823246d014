"""DfaStepper against a host loop over the same tables."""

from __future__ import annotations

import pytest
import torch
from structgen.kernels import DfaStepper


def random_dfa(states: int, vocab: int, seed: int, density: float = 0.2) -> tuple[torch.Tensor, torch.Tensor]:
    """Tables like the token index's: next_state (S, V) with 0 = dead, masks = packed (next != 0)."""
    g = torch.Generator().manual_seed(seed)
    nxt = torch.randint(1, states, (states, vocab), generator=g, dtype=torch.int32)
    nxt = torch.where(torch.rand(states, vocab, generator=g) < density, nxt, torch.zeros_like(nxt))
    nxt[0] = 0  # the dead state goes nowhere
    nxt[states - 1] = 0  # a state with no way forward (an accepting end without EOS here)
    words = (vocab + 31) // 32
    allowed = torch.zeros(states, words * 32, dtype=torch.int64)
    allowed[:, :vocab] = (nxt != 0).to(torch.int64)
    packed = (allowed.reshape(states, words, 32) << torch.arange(32)).sum(-1)
    masks = torch.where(packed >= 2**31, packed - 2**32, packed).to(torch.int32)
    return masks, nxt


def host_greedy_loop(
    nxt: torch.Tensor, logits_seq: list[torch.Tensor], states: list[int]
) -> tuple[list[list[int]], list[list[int]]]:
    table = nxt.tolist()
    tokens_out, states_out = [], []
    for logits in logits_seq:
        row_tokens, row_states = [], []
        for b, s in enumerate(states):
            allowed = [t for t, n in enumerate(table[s]) if n != 0] if s > 0 else []
            if not allowed:
                row_tokens.append(-1)
                row_states.append(0)
                continue
            best = max(allowed, key=lambda t: (logits[b, t].item(), -t))  # first maximum
            row_tokens.append(best)
            row_states.append(table[s][best])
        tokens_out.append(row_tokens)
        states_out.append(row_states)
        states = row_states
    return tokens_out, states_out


def run_stepper(stepper: DfaStepper, logits_seq, states, **kwargs):
    tokens_out, states_out, lps = [], [], []
    for logits in logits_seq:
        tokens, logprobs, states = stepper.step(logits, states, **kwargs)
        tokens_out.append(tokens.cpu().tolist())
        states_out.append(states.cpu().tolist())
        lps.append(logprobs.cpu())
    return tokens_out, states_out, lps


@pytest.mark.parametrize("backend", ["reference", "triton"])
def test_greedy_steps_equal_the_host_loop(backend: str, triton_device: str) -> None:
    device = triton_device if backend == "triton" else "cpu"
    masks, nxt = random_dfa(states=7, vocab=173, seed=1)
    g = torch.Generator().manual_seed(2)
    logits_seq = [torch.randn(5, 180, generator=g) for _ in range(6)]  # 7 padding columns
    start = [1, 2, 3, 0, 6]  # includes the dead state and a state with an empty mask
    want_tokens, want_states = host_greedy_loop(nxt, logits_seq, start)
    stepper = DfaStepper(masks.to(device), nxt.to(device), backend=backend)
    got_tokens, got_states, _ = run_stepper(
        stepper,
        [x.to(device) for x in logits_seq],
        torch.tensor(start, dtype=torch.int32, device=device),
        temperature=0.0,
    )
    assert got_tokens == want_tokens
    assert got_states == want_states


@pytest.mark.parametrize("backend", ["reference", "triton"])
def test_sampled_steps_follow_the_tables(backend: str, triton_device: str) -> None:
    device = triton_device if backend == "triton" else "cpu"
    masks, nxt = random_dfa(states=5, vocab=90, seed=3, density=0.4)
    stepper = DfaStepper(masks.to(device), nxt.to(device), seed=7, backend=backend)
    g = torch.Generator().manual_seed(4)
    seen = set()
    for step in range(5):
        # fresh states each step (plus the dead state and the empty one) so no run gets stuck
        states = torch.tensor([1 + step % 3, 2, 0, 4], dtype=torch.int64, device=device)
        logits = torch.randn(4, 96, generator=g).to(device)
        tokens, logprobs, new_states = stepper.step(logits, states, temperature=1.0, top_k=20, top_p=0.95)
        for s, t, n, lp in zip(states.tolist(), tokens.tolist(), new_states.tolist(), logprobs.tolist()):
            if t < 0:
                assert s == 0 or nxt[s].count_nonzero() == 0
                assert n == 0 and lp == float("-inf")
            else:
                assert nxt[s, t].item() != 0 and n == nxt[s, t].item() and lp <= 0
                seen.add(t)
    assert new_states.dtype == torch.int64
    assert len(seen) > 3  # it samples, it does not always take the argmax


def test_seed_advances_in_place() -> None:
    masks, nxt = random_dfa(states=4, vocab=64, seed=5)
    stepper = DfaStepper(masks, nxt, seed=3, backend="reference")
    seed_before = stepper.seed.clone()
    stepper.step(torch.randn(2, 64), torch.tensor([1, 2]))
    # the reference path keeps its own generator; the device seed only moves on the Triton path
    assert torch.equal(stepper.seed, seed_before)


def test_triton_stepper_bumps_its_device_seed(triton_device: str) -> None:
    masks, nxt = random_dfa(states=4, vocab=64, seed=5)
    stepper = DfaStepper(masks.to(triton_device), nxt.to(triton_device), seed=3, backend="triton")
    ptr = stepper.seed.data_ptr()
    stepper.step(torch.randn(2, 64, device=triton_device), torch.tensor([1, 2], device=triton_device))
    assert stepper.seed.item() == 4 and stepper.seed.data_ptr() == ptr  # same storage: graph-replay safe


@pytest.mark.parametrize(
    ("masks", "nxt", "needle"),
    [
        (torch.zeros(3, 2, dtype=torch.int64), torch.zeros(3, 40, dtype=torch.int32), "int32"),
        (torch.zeros(3, 2, dtype=torch.int32), torch.zeros(4, 40, dtype=torch.int32), "3 states"),
        (torch.zeros(3, 1, dtype=torch.int32), torch.zeros(3, 40, dtype=torch.int32), "40 tokens"),
        (torch.zeros(3, 2, dtype=torch.int32), torch.zeros(3, 40, dtype=torch.float32), "torch.float32"),
    ],
)
def test_bad_tables_raise_value_error(masks, nxt, needle: str) -> None:
    with pytest.raises(ValueError, match=needle):
        DfaStepper(masks, nxt)


def test_bad_step_input_raises_value_error() -> None:
    masks, nxt = random_dfa(states=4, vocab=64, seed=5)
    stepper = DfaStepper(masks, nxt)
    with pytest.raises(ValueError, match=r"\(2,\)"):
        stepper.step(torch.randn(2, 64), torch.tensor([1, 2, 3]))
    with pytest.raises(ValueError, match="60 columns"):
        stepper.step(torch.randn(2, 60), torch.tensor([1, 2]))


@pytest.mark.gpu
def test_cuda_graph_captures_a_decode_loop(cuda_device: str) -> None:
    masks, nxt = random_dfa(states=50, vocab=32001, seed=9)
    stepper = DfaStepper(masks.to(cuda_device), nxt.to(cuda_device), seed=1, backend="triton")
    logits = torch.randn(8, 32064, device=cuda_device)
    states = torch.ones(8, dtype=torch.int64, device=cuda_device)
    out_tokens = torch.empty(4, 8, dtype=torch.int64, device=cuda_device)
    stepper.step(logits, states, temperature=0.0)  # warm up: compile the kernels outside the capture
    torch.cuda.synchronize()
    graph = torch.cuda.CUDAGraph()
    with torch.cuda.graph(graph):
        s = states
        for i in range(4):
            tok, _, s = stepper.step(logits, s, temperature=0.0)
            out_tokens[i].copy_(tok)
    graph.replay()
    torch.cuda.synchronize()
    want_tokens, _ = host_greedy_loop(nxt, [logits.cpu()] * 4, [1] * 8)
    assert out_tokens.cpu().tolist() == want_tokens
