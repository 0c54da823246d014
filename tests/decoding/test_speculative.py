"""Speculative constrained decoding: greedy identity, validity, matcher state, draft filtering, jump-forward.

A tiny random-weight Llama (float64, so batched and incremental forwards agree to ~1e-15 and argmax
never flips on rounding) over the real SmolLM2 tokenizer; a second tiny Llama as draft model.
"""

from __future__ import annotations

import json

import pytest

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")
jsonschema = pytest.importorskip("jsonschema")
regex_mod = pytest.importorskip("regex")

import structgen  # noqa: E402
from structgen import assets  # noqa: E402
from structgen.api.loading import wrap  # noqa: E402
from structgen.decoding.speculative import (  # noqa: E402
    NGramTable,
    apply_jump,
    make_tokenize_bytes,
    ngram_draft,
    plan_jump,
    position_masks,
    speculative_generate,
)

PERSON = r'\{"name": "[a-z]{1,8}", "age": [0-9]{1,3}\}'
CASES = [
    ("regex", PERSON),
    ("regex", r"(yes|no|maybe) because [a-z]{2,6}\."),
    (
        "json_schema",
        {
            "type": "object",
            "properties": {
                "id": {"type": "integer", "minimum": 0, "maximum": 999},
                "tag": {"enum": ["red", "green", "blue"]},
                "ok": {"type": "boolean"},
            },
            "required": ["id", "tag", "ok"],
        },
    ),
    (
        "json_schema",
        {
            "type": "object",
            "properties": {
                "name": {"type": "string", "maxLength": 6},
                "items": {"type": "array", "items": {"type": "integer", "minimum": 0, "maximum": 9}, "maxItems": 3},
            },
            "required": ["name", "items"],
        },
    ),
]
MAX_NEW = 32


def _tiny(vocab_size: int, seed: int):
    torch.manual_seed(seed)
    config = transformers.LlamaConfig(
        vocab_size=vocab_size,
        hidden_size=64,
        intermediate_size=128,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=1024,
    )
    return transformers.LlamaForCausalLM(config).double().eval()


@pytest.fixture(scope="module")
def tok():
    return transformers.AutoTokenizer.from_pretrained(assets.model_dir("smollm2"))


@pytest.fixture(scope="module")
def loaded(tok):
    return wrap(_tiny(len(tok), 0), tok)


@pytest.fixture(scope="module")
def drafter(tok):
    return _tiny(len(tok), 1)


@pytest.fixture(scope="module")
def compiled(loaded):
    out = []
    for kind, value in CASES:
        out.append(structgen.compile(loaded.vocab, **{kind: value}))
    return out


@pytest.fixture(scope="module")
def prompt(tok):
    return tok.encode('Reply with JSON like {"name": "bob", "age": 42} or yes/no: ', add_special_tokens=False)


def _valid(kind: str, value, text: str) -> bool:
    if kind == "regex":
        return regex_mod.fullmatch(value, text) is not None
    try:
        jsonschema.validate(json.loads(text), value)
    except (ValueError, jsonschema.ValidationError):
        return False
    return True


@pytest.mark.parametrize("case", range(len(CASES)))
def test_greedy_identical_with_each_mode(loaded, drafter, compiled, prompt, case):
    kind, value = CASES[case]
    c = compiled[case]
    run = lambda **kw: speculative_generate(loaded, prompt, c.matcher(), max_new_tokens=MAX_NEW, **kw)  # noqa: E731
    plain = run(mode=())
    assert plain.forward_passes == len(plain.token_ids)
    for label, res in {
        "ngram": run(mode={"ngram"}, ngram_table=NGramTable()),
        "jump_verify": run(mode={"jump_forward", "ngram"}, jump_verify=True, ngram_table=NGramTable()),
        "draft": run(mode={"draft"}, draft_model=drafter),
    }.items():
        assert res.token_ids == plain.token_ids, label
        assert res.stop_reason == plain.stop_reason, label
    # jump-forward (unverified) changes tokenization by design; on top of it the drafts stay lossless
    jf = run(mode={"jump_forward"})
    for label, res in {
        "jf+ngram": run(mode={"jump_forward", "ngram"}, ngram_table=NGramTable()),
        "jf+draft": run(mode={"jump_forward", "draft"}, draft_model=drafter),
    }.items():
        assert res.token_ids == jf.token_ids, label
    assert jf.jumped > 0 and jf.forward_passes < plain.forward_passes
    for res in (plain, jf):
        if res.stop_reason in ("eos", "complete"):
            assert _valid(kind, value, res.text), res.text


def test_self_draft_accepts_everything(loaded, compiled, prompt):
    c = compiled[0]
    res = speculative_generate(loaded, prompt, c.matcher(), mode={"draft"}, draft_model=loaded, max_new_tokens=MAX_NEW)
    plain = speculative_generate(loaded, prompt, c.matcher(), mode=(), max_new_tokens=MAX_NEW)
    assert res.token_ids == plain.token_ids
    assert res.accepted == res.drafted > 0
    assert res.forward_passes < plain.forward_passes / 2


def test_matcher_after_speculation_equals_fresh_matcher(loaded, drafter, compiled, prompt):
    for i, c in list(enumerate(compiled))[::2]:
        for kw in (
            {"mode": {"jump_forward", "ngram"}},
            {"mode": {"draft"}, "draft_model": drafter, "temperature": 1.0},
        ):
            gen = torch.Generator().manual_seed(i)
            m = c.matcher()
            res = speculative_generate(loaded, prompt, m, max_new_tokens=MAX_NEW, generator=gen, **kw)
            fresh = c.matcher()
            assert fresh.accept_tokens(res.token_ids) == len(res.token_ids)
            assert m.state == fresh.state
            assert m.num_accepted == fresh.num_accepted
            assert (m.mask_words() == fresh.mask_words()).all()
            if res.stop_reason in ("eos", "complete"):
                assert _valid(*CASES[i], res.text), res.text


def test_sampled_outputs_validate(loaded, drafter, compiled, prompt):
    for i, c in list(enumerate(compiled))[1:]:
        for seed in range(1):
            gen = torch.Generator().manual_seed(seed)
            res = speculative_generate(
                loaded,
                prompt,
                c.matcher(),
                mode={"jump_forward", "ngram", "draft"},
                draft_model=drafter,
                max_new_tokens=MAX_NEW,
                temperature=0.8,
                top_p=0.95,
                generator=gen,
            )
            assert res.stop_reason in ("eos", "complete", "length")
            if res.stop_reason != "length":
                assert _valid(*CASES[i], res.text), res.text


def test_invalid_ngram_draft_is_truncated_before_target(loaded, compiled, tok):
    c = structgen.compile(loaded.vocab, regex=r"[0-9]{3}-[0-9]{4}")
    m = c.matcher()
    digits = tok.encode("123", add_special_tokens=False)  # SmolLM2 splits digits: three tokens
    assert m.accept_tokens(digits) == len(digits)
    dash, letter, seven = (tok.encode(s, add_special_tokens=False)[0] for s in ("-", "x", "7"))
    # the prompt has "123" followed by "-", "x": prompt lookup proposes [-, x, ...]; x is cut
    ids = digits + [dash, letter, letter] + digits
    assert ngram_draft(m, ids, 5) == [dash]
    # the table's most frequent candidate after "3" is "x" (invalid): the valid "-" is drafted instead
    table = NGramTable()
    three = digits[-1]
    table.observe([three, letter, three, letter, three, dash])
    assert table.candidates([three])[0] == letter
    assert ngram_draft(m, [three], 1, table) == [dash]
    kept, masks = position_masks(m, [dash, letter, seven])
    assert kept == [dash] and len(masks) == 2
    # end to end the output still matches, whatever the prompt proposes
    res = speculative_generate(loaded, ids, c.matcher(), mode={"ngram"}, ngram_table=NGramTable(), max_new_tokens=10)
    assert res.accepted <= res.drafted
    assert regex_mod.fullmatch(r"[0-9]{3}-[0-9]{4}", res.text), res.text


def test_jump_forward_retokenization_is_canonical(loaded, tok):
    c = structgen.compile(loaded.vocab, regex=PERSON)
    m = c.matcher()
    tokenize = make_tokenize_bytes(loaded.vocab, tok)
    out: list[int] = []

    def jump() -> None:
        plan = plan_jump(m, out, tokenize)
        assert plan is not None
        assert apply_jump(m, plan)
        if plan.n_replace:
            del out[len(out) - plan.n_replace :]
        out.extend(plan.tokens)

    def text() -> str:
        return b"".join(loaded.vocab.token_bytes[t] for t in out).decode()

    jump()  # from the start everything up to the name's first letter is forced
    assert '{"name": "'.startswith(text()) and text()
    assert out == tok.encode(text(), add_special_tokens=False)
    # the model writes the rest of the forced prefix and a name token by token (non-canonical joins)
    for ch in '{"name": "'[len(text()) :] + 'bob"':
        t = tok.convert_tokens_to_ids(tok.tokenize(ch))[0]
        assert m.accept_token(t)
        out.append(t)
    model_part = out[:-1]  # the closing quote may be re-tokenized with what follows
    jump()  # forces ', "age": ' after the closing quote: the boundary is re-tokenized together with it
    assert text().startswith('{"name": "bob", "age":')
    assert out[: len(model_part)] == model_part
    tail = out[len(model_part) :]
    tail_text = b"".join(loaded.vocab.token_bytes[t] for t in tail).decode()
    assert tail_text.startswith('", "age":')
    assert tail == tok.encode(tail_text, add_special_tokens=False)
    fresh = c.matcher()
    assert fresh.accept_tokens(out) == len(out) and fresh.state == m.state


def test_unknown_mode_and_missing_draft_model_raise(loaded, compiled, prompt):
    with pytest.raises(ValueError, match="unknown speculation mode"):
        speculative_generate(loaded, prompt, compiled[0].matcher(), mode={"medusa"})
    with pytest.raises(ValueError, match="draft_model"):
        speculative_generate(loaded, prompt, compiled[0].matcher(), mode={"draft"})
