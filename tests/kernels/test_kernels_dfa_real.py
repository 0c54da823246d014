"""DfaStepper on the tables of a real regex constraint and a real tokenizer, against the host Matcher.

This test (not structgen.kernels) uses structgen: it builds the tables the way an engine would
hand them over (``TokenIndex.mask`` / ``next_states`` per token-reachable DFA state, indexed by the
DFA's own state ids, 0 = dead) and checks every step against ``Matcher``.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from structgen.kernels import DfaStepper

from structgen import assets

REGEX = r'\{"name": "[a-z]{1,8}", "age": [0-9]{1,3}\}'


@pytest.fixture(scope="module")
def tables():
    if not assets.tokenizer_available("gpt2"):
        pytest.skip("tokenizer 'gpt2' not fetched: run `python -m structgen.assets fetch --tokenizers-only`")
    from structgen.compile.compiler import compile as compile_constraint

    vocab = assets.load_vocabulary("gpt2")
    engine = compile_constraint(vocab, regex=REGEX).engine
    index = engine.index
    n_states = engine.dfa.num_states
    width = index.mask(engine.initial_state()).shape[0]
    masks = np.zeros((n_states, width), dtype=np.int32)
    nxt = np.zeros((n_states, vocab.num_tokens), dtype=np.int32)
    for s in index.reachable_states():
        masks[s] = index.mask(s)
        nxt[s] = index.next_states(s)
    return vocab, engine, torch.from_numpy(masks), torch.from_numpy(nxt)


@pytest.mark.parametrize("backend", ["reference", "triton"])
def test_greedy_walk_matches_the_host_matcher(tables, backend: str, triton_device: str) -> None:
    from structgen.runtime.matcher import Matcher

    vocab, engine, masks, nxt = tables
    device = triton_device if backend == "triton" else "cpu"
    stepper = DfaStepper(masks.to(device), nxt.to(device), backend=backend)
    batch, width = 2, 32 * masks.shape[1] + 16  # logits padded past the vocabulary
    matchers = [Matcher(engine, vocab) for _ in range(batch)]
    states = torch.full((batch,), engine.initial_state(), dtype=torch.int64, device=device)
    g = torch.Generator().manual_seed(0)
    steps = 0
    while steps < 30:
        logits = torch.randn(batch, width, generator=g)
        tokens, _, states = stepper.step(logits.to(device), states, temperature=0.0)
        tokens = tokens.cpu().tolist()
        for b, m in enumerate(matchers):
            allowed = np.flatnonzero(
                np.unpackbits(np.asarray(engine.token_mask(m.state)).view(np.uint8), bitorder="little")
            )
            allowed = allowed[allowed < vocab.num_tokens]
            if allowed.size == 0:
                assert tokens[b] == -1 and states[b].item() == 0
                continue
            want = int(allowed[torch.argmax(logits[b, torch.from_numpy(allowed)]).item()])
            assert tokens[b] == want
            assert m.accept_token(want)
            assert m.state == states[b].item()
        steps += 1
        if all(t == -1 for t in tokens):
            break
    assert all(m.is_accepting() for m in matchers)  # the walk ended in a complete match
