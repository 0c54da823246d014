"""Token choice from (masked) logits: greedy, temperature, top-k, top-p, seeded per row.

Masked logits carry ``-inf`` on forbidden tokens; every transform here keeps them at ``-inf`` so the
sampled token is always an allowed one. Each row draws from its own ``torch.Generator`` so a row's
samples do not depend on which other rows share the batch (row ``i`` of a batch seeded ``s`` uses
seed ``s + i``, the same stream a single-row call seeded ``s + i`` would use).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch


@dataclass(frozen=True, slots=True)
class SamplingParams:
    """How a token is chosen from a row of logits.

    Attributes:
        temperature: 0 means greedy (argmax, ties to the lowest id); otherwise logits are divided by it.
        top_k: keep only the ``top_k`` most likely tokens (0 or None: all).
        top_p: nucleus sampling: keep the smallest set of tokens whose probability reaches ``top_p``.
    """

    temperature: float = 1.0
    top_k: int | None = None
    top_p: float | None = None

    def __post_init__(self) -> None:
        if self.temperature < 0:
            raise ValueError(f"temperature must be >= 0, got {self.temperature}")
        if self.top_k is not None and self.top_k < 0:
            raise ValueError(f"top_k must be >= 0, got {self.top_k}")
        if self.top_p is not None and not 0.0 < self.top_p <= 1.0:
            raise ValueError(f"top_p must be in (0, 1], got {self.top_p}")

    @property
    def greedy(self) -> bool:
        return self.temperature == 0.0


def make_generators(seed: int | None, n: int, device: torch.device | str = "cpu") -> list[torch.Generator]:
    """One generator per row: ``seed + i`` (a random base seed when ``seed`` is None)."""
    base = int(torch.randint(0, 2**62, (1,)).item()) if seed is None else int(seed)
    gens = []
    for i in range(n):
        g = torch.Generator(device=device)
        g.manual_seed(base + i)
        gens.append(g)
    return gens


def process_logits(logits: torch.Tensor, params: SamplingParams) -> torch.Tensor:
    """Temperature, top-k and top-p applied to ``logits`` (B, V) float; returns new float32 logits."""
    x = logits.float()  # (B, V)
    if params.temperature not in (0.0, 1.0):
        x = x / params.temperature
    if params.top_k:
        k = min(int(params.top_k), x.shape[-1])
        kth = torch.topk(x, k, dim=-1).values[:, -1:]  # (B, 1)
        x = x.masked_fill(x < kth, float("-inf"))
    if params.top_p is not None and params.top_p < 1.0:
        sorted_x, order = torch.sort(x, dim=-1, descending=True)  # (B, V)
        probs = torch.softmax(sorted_x, dim=-1)
        # drop a token when the mass strictly before it already reaches top_p (the top token is kept)
        before = torch.cumsum(probs, dim=-1) - probs
        drop_sorted = before >= params.top_p
        drop = torch.zeros_like(drop_sorted).scatter(-1, order, drop_sorted)
        x = x.masked_fill(drop, float("-inf"))
    return x


def sample_rows(
    logits: torch.Tensor,
    params: SamplingParams,
    generators: list[torch.Generator] | None = None,
) -> torch.Tensor:
    """One token id per row of ``logits`` (B, V); rows whose logits are all ``-inf`` give -1."""
    dead = torch.isneginf(logits).all(dim=-1)  # (B,)
    if params.greedy:
        out = torch.argmax(logits, dim=-1)
    else:
        x = process_logits(logits, params)
        probs = torch.softmax(x, dim=-1)  # (B, V)
        probs = torch.nan_to_num(probs, nan=0.0)
        out = torch.empty(logits.shape[0], dtype=torch.long, device=logits.device)
        for i in range(logits.shape[0]):
            if dead[i]:
                out[i] = -1
                continue
            g = generators[i] if generators is not None else None
            out[i] = torch.multinomial(probs[i], 1, generator=g)[0]
    return torch.where(dead, torch.full_like(out, -1), out)
