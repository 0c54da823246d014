"""End-to-end diffusion decoding with a tiny random-weight ModernBERT masked LM (no trained diffusion
LM is installable here): every constrained output matches its regex / schema / grammar."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")
regex_mod = pytest.importorskip("regex")

from structgen.decoding.diffusion.adapters import MaskedLMAdapter, tiny_masked_diffusion_model  # noqa: E402
from structgen.decoding.diffusion.dingo import MASKED, Dingo, Free, TokenDFA  # noqa: E402
from structgen.decoding.diffusion.loop import generate_diffusion, num_transfer_tokens  # noqa: E402
from structgen.decoding.diffusion.protocol import DiffusionModel  # noqa: E402
from structgen.vocab.vocabulary import Vocabulary  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
MULTI = [
    b"12",
    b"ab",
    b'{"',
    b'":',
    b'",',
    b'"}',
    b"true",
    b"null",
    b"int",
    b"return",
    b"main",
    b"()",
    b".com",
    b"name",
]


@pytest.fixture(scope="module")
def vocab() -> Vocabulary:
    chars = [bytes([c]) for c in range(32, 127)] + [b"\n"]
    return Vocabulary.from_bytes([b"<pad>", b"<eos>", b"<mask>", *chars, *MULTI], eos_ids=[1], special_ids=[0, 2])


@pytest.fixture(scope="module")
def model(vocab: Vocabulary) -> MaskedLMAdapter:
    torch.set_num_threads(1)
    return tiny_masked_diffusion_model(vocab.size, 2, seed=0, hidden=32, layers=1)


def test_protocol_and_schedule(model: MaskedLMAdapter) -> None:
    assert isinstance(model, DiffusionModel)
    assert num_transfer_tokens(10, 4) == [3, 3, 2, 2]
    out = model.logits(torch.tensor([[3, 4, 2, 2]]))
    assert out.shape == (1, 4, model.vocab_size)


REGEXES = [
    r"[a-z]{3,8}@[a-z]{2,5}\.(com|org)",
    r"(true|false|null)",
    r"-?[0-9]{1,4}(\.[0-9]{1,2})?",
    r"[A-Z][a-z]+ [0-9]{2}",
]


@pytest.mark.parametrize("pattern", REGEXES)
def test_dingo_outputs_match_regex(model, vocab, pattern: str) -> None:
    for seed, remasking, temp in [(0, "low_confidence", 0.0), (1, "random", 1.0)]:
        r = generate_diffusion(
            model,
            vocab,
            [3, 4, 5],
            regex=pattern,
            gen_length=16,
            block_length=8,
            steps=8,
            remasking=remasking,
            temperature=temp,
            seed=seed,
        )
        assert r.valid and r.failures == 0
        assert regex_mod.fullmatch(pattern, r.text), (pattern, r.text)


def test_baselines_run_on_same_model(model, vocab) -> None:
    pattern = REGEXES[0]
    d = generate_diffusion(model, vocab, [3, 4, 5], regex=pattern, gen_length=16, block_length=16, steps=16)
    g = generate_diffusion(
        model, vocab, [3, 4, 5], regex=pattern, gen_length=16, block_length=16, steps=16, method="greedy"
    )
    u = generate_diffusion(model, vocab, [3, 4, 5], gen_length=16, block_length=16, steps=16)
    assert d.valid and u.valid is None and g.valid in (True, False)
    assert not regex_mod.fullmatch(pattern, u.text)  # the random model alone does not produce it


def test_json_schema_path(model, vocab) -> None:
    jsonschema = pytest.importorskip("jsonschema")
    schema = {
        "type": "object",
        "properties": {"name": {"type": "string", "maxLength": 6}, "ok": {"type": "boolean"}, "n": {"type": "integer"}},
        "required": ["name", "ok", "n"],
    }
    r = generate_diffusion(model, vocab, [3], json_schema=schema, gen_length=48, block_length=16, steps=24)
    assert r.valid
    jsonschema.validate(json.loads(r.text), schema)


def _lark_parses(parser, text: str) -> bool:
    import lark

    try:
        parser.parse(text)
    except lark.exceptions.LarkError:
        return False
    return True


def test_grammar_path_json(model, vocab) -> None:
    import lark

    text = (ROOT / "grammars" / "json.lark").read_text()
    parser = lark.Lark(text, parser="lalr")
    for seed in range(3):
        r = generate_diffusion(model, vocab, [3, 4], grammar=text, gen_length=16, block_length=4, steps=16, seed=seed)
        assert r.valid and r.failures == 0 and not r.info.get("stuck"), r.text
        assert _lark_parses(parser, r.text), r.text
        json.loads(r.text)


def test_grammar_path_c_like(model, vocab) -> None:
    """Exact slot-bounded gaps: the random model can no longer grow an identifier past the point where
    the remaining slots close ``(){}`` (every run of the Σ*-gap version got stuck here)."""
    import lark

    text = (ROOT / "grammars" / "c_like.lark").read_text()
    parser = lark.Lark(text, parser="earley")  # structgen lexes longest-match, as Lark's dynamic Earley lexer
    for seed, remasking in [(0, "low_confidence"), (1, "random"), (2, "low_confidence")]:
        r = generate_diffusion(
            model,
            vocab,
            [3 + seed, 4],
            grammar=text,
            gen_length=16,
            block_length=4,
            steps=16,
            seed=seed,
            remasking=remasking,
            temperature=float(seed % 2),
        )
        assert r.valid and r.failures == 0 and not r.info.get("stuck"), (seed, r.text)
        assert _lark_parses(parser, r.text), (seed, r.text)


def test_dp_on_regex_engine_tables(vocab) -> None:
    """The regex engine's token index and the byte-DFA walk give the same DINGO tables."""
    import structgen

    c = structgen.compile(vocab, regex=r'\{"a":[0-9]{1,3}\}')
    a = TokenDFA.from_engine(c.engine, vocab)
    b = TokenDFA.from_byte_dfa(c.engine.dfa, vocab)
    reach = list(c.engine.index.reachable_states())
    assert np.array_equal(a.table[reach], b.table[reach])
    d = Dingo(a)
    rng = np.random.default_rng(0)
    rows = [Free(np.log(rng.dirichlet(np.ones(vocab.size)))) for _ in range(3)] + [MASKED] * 5
    res = d.decode_block(d.start, rows, remaining=0)
    assert res.ok


class _RandomModel:
    """A stand-in DiffusionModel returning fresh random logits at every call (invariant test)."""

    def __init__(self, vocab_size: int, mask_token_id: int, seed: int) -> None:
        self.vocab_size = vocab_size
        self.mask_token_id = mask_token_id
        self.gen = torch.Generator().manual_seed(seed)

    def logits(self, input_ids):
        return torch.randn((*input_ids.shape, self.vocab_size), generator=self.gen) * 4


def test_invariant_random_model_many_seeds(vocab) -> None:
    """Design note §9.6: with DINGO every step succeeds and every finished answer matches the regex."""
    pattern = r"[a-z]{2,5}(,[0-9]{1,2}){1,3}"
    for seed in range(20):
        m = _RandomModel(vocab.size, 2, seed)
        r = generate_diffusion(
            m,
            vocab,
            [3],
            regex=pattern,
            gen_length=16,
            block_length=8,
            steps=16,
            remasking="random" if seed % 2 else "low_confidence",
            seed=seed,
        )
        assert r.failures == 0 and r.valid, (seed, r.text)
        assert regex_mod.fullmatch(pattern, r.text), (seed, r.text)
