"""The whole constrained decode step for DFA constraints, on the device and without host syncs."""

from __future__ import annotations

import torch

from ._checks import check_logits


class DfaStepper:
    """Mask from state, sample, next state: tensors in, tensors out, no host synchronization.

    ``state_masks``: ``(S, W)`` int32, row ``s`` = the packed bitmask of tokens allowed in DFA state ``s``.
    ``next_state``: ``(S, V)`` int32/int64, ``next_state[s, t]`` = the state after token ``t``; state ``0``
    is the dead state (its mask must be empty, and every step from it yields token ``-1``). These are the
    tables of a regex/JSON constraint whose token automaton is a DFA (the token index builds them); they
    are plain tensors so this package depends on nothing else in structgen.

    :meth:`step` launches a fixed sequence of kernels whose shapes depend only on the batch, and keeps
    its random seed in a device tensor that it bumps in place, so a decode loop calling it can be
    captured in a CUDA graph and replayed. CFG constraints cannot use it: a pushdown/Earley state is
    unbounded, so there is no finite ``(state, token) -> state`` table; they fill masks on the host and
    use :func:`structgen.kernels.apply_token_bitmask_` / :func:`structgen.kernels.sample_masked`.
    """

    def __init__(
        self,
        state_masks: torch.Tensor,
        next_state: torch.Tensor,
        *,
        seed: int = 0,
        backend: str = "auto",
    ) -> None:
        if not isinstance(state_masks, torch.Tensor) or not isinstance(next_state, torch.Tensor):
            raise ValueError(
                f"state_masks and next_state must be tensors, got {type(state_masks).__name__} and {type(next_state).__name__}"
            )
        if state_masks.dtype != torch.int32 or state_masks.dim() != 2:
            raise ValueError(
                f"state_masks must be (S, W) int32, got shape {tuple(state_masks.shape)} {state_masks.dtype}"
            )
        if next_state.dtype not in (torch.int32, torch.int64) or next_state.dim() != 2:
            raise ValueError(
                f"next_state must be (S, V) int32/int64, got shape {tuple(next_state.shape)} {next_state.dtype}"
            )
        if state_masks.device != next_state.device:
            raise ValueError(f"state_masks are on {state_masks.device} but next_state is on {next_state.device}")
        if state_masks.shape[0] != next_state.shape[0]:
            raise ValueError(
                f"state_masks have {state_masks.shape[0]} states (shape {tuple(state_masks.shape)}) "
                f"but next_state has {next_state.shape[0]} (shape {tuple(next_state.shape)})"
            )
        if next_state.shape[1] > 32 * state_masks.shape[1]:
            raise ValueError(
                f"next_state covers {next_state.shape[1]} tokens but state_masks rows hold only "
                f"{32 * state_masks.shape[1]} bits ({state_masks.shape[1]} words)"
            )
        from .api import _pick

        self.device = state_masks.device
        self.backend = _pick(backend, self.device, ("auto", "triton", "reference"), "reference")
        self.state_masks = state_masks.contiguous()  # (S, W) int32
        self.next_state = next_state.contiguous()  # (S, V) int32/int64
        self.num_states = int(state_masks.shape[0])
        self.vocab_size = int(next_state.shape[1])
        self.seed = torch.tensor([seed], dtype=torch.int64, device=self.device)  # (1,) bumped in place per step
        self._generator = torch.Generator(device=self.device)
        self._generator.manual_seed(seed)

    def step(
        self,
        logits: torch.Tensor,
        states: torch.Tensor,
        temperature: float | torch.Tensor = 1.0,
        top_k: int | torch.Tensor = 0,
        top_p: float | torch.Tensor = 1.0,
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """One step for a batch: ``logits (B, L)``, ``states (B,)`` -> ``(tokens (B,) int64, logprobs (B,), next_states (B,))``.

        Columns ``>= V`` of the logits (padding) are never sampled. A row in the dead state 0, a state
        out of range, or a state with no allowed token gives token ``-1``, log-probability ``-inf`` and
        next state ``0``; nothing raises and nothing is read back to the host.
        """
        lg = check_logits(logits)
        if not isinstance(states, torch.Tensor) or states.dim() != 1 or states.shape[0] != lg.shape[0]:
            shape = tuple(states.shape) if isinstance(states, torch.Tensor) else type(states).__name__
            raise ValueError(
                f"states must be a ({lg.shape[0]},) integer tensor to match logits {tuple(lg.shape)}, got {shape}"
            )
        if states.device != lg.device or lg.device != self.device:
            raise ValueError(
                f"states are on {states.device} and logits on {lg.device}, but the tables are on {self.device}"
            )
        if lg.shape[1] < self.vocab_size:
            raise ValueError(f"logits have {lg.shape[1]} columns but the tables cover {self.vocab_size} tokens")
        st = states.to(torch.int64)
        live = (st > 0) & (st < self.num_states)  # (B,) bool
        rows = torch.where(live, st, torch.zeros_like(st))  # (B,) int64, dead/out-of-range -> 0
        if self.backend == "triton":
            from .triton_kernels import sample_masked_triton

            tokens, logprobs = sample_masked_triton(
                lg,
                self.state_masks,
                temperature,
                top_k,
                top_p,
                seed=self.seed,
                vocab_size=self.vocab_size,
                bitmask_rows=rows,
            )
            self.seed.add_(1)
        else:
            from .reference import sample_masked_reference

            tokens, logprobs = sample_masked_reference(
                lg,
                self.state_masks,
                temperature,
                top_k,
                top_p,
                generator=self._generator,
                vocab_size=self.vocab_size,
                bitmask_rows=rows,
            )
        ok = live & (tokens >= 0)
        tokens = torch.where(ok, tokens, torch.full_like(tokens, -1))
        logprobs = torch.where(ok, logprobs, torch.full_like(logprobs, float("-inf")))
        nxt = self.next_state[rows, tokens.clamp(0, self.vocab_size - 1)]  # (B,)
        nxt = torch.where(ok, nxt, torch.zeros_like(nxt)).to(states.dtype)
        return tokens, logprobs, nxt
