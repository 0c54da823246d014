"""The vLLM-independent half of the vLLM integration: request options -> compiled constraint, grammar state.

Nothing here imports vllm, so CI tests it with real tokenizers. ``structgen.integrations.vllm_backend.backend``
and ``.logits_processor`` wrap these objects in vLLM's own classes.

* :func:`compile_request` turns one vLLM structured-output request (the kind -- ``json``, ``json_object``,
  ``regex``, ``grammar``, ``choice``, ``structural_tag`` -- and the spec string vLLM keys it by) into a
  :class:`structgen.CompiledConstraint`.
* :class:`ConstraintState` has the semantics of vLLM's ``StructuredOutputGrammar``: ``accept_tokens``,
  ``validate_tokens``, ``rollback``, ``fill_bitmask``, ``is_terminated``, ``reset``, with the request's stop
  tokens (``SamplingParams.all_stop_token_ids``) allowed exactly when the output is complete.
* :func:`fill_bitmasks` and :func:`apply_bitmask` are the batched bitmask path: one ``(B, ceil(V/32))`` int32
  mask for the whole batch, applied to the logits with :func:`structgen.kernels.apply_token_bitmask_`
  (Triton on CUDA, vectorized torch elsewhere).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

import structgen
from structgen import CompileError, InvalidGrammar, InvalidSchema

if TYPE_CHECKING:
    import torch

#: Request kinds, named as the members of vLLM's ``StructuredOutputOptions`` (lower case).
REQUEST_KINDS = ("json", "json_object", "regex", "grammar", "choice", "structural_tag")


class UnsupportedStructuredOutput(CompileError):
    """A vLLM structured-output request structgen cannot enforce (structural tags, GBNF grammars)."""


@dataclass(frozen=True, slots=True)
class BackendOptions:
    """How vLLM requests are compiled.

    Attributes:
        json_style: structgen's JSON output style (``"default"``, ``"compact"``, ``"pretty"``, ``"flexible"``);
            vLLM's ``disable_any_whitespace=True`` maps to ``"compact"``.
        json_options: further ``structgen.compile`` JSON Schema options (``property_order``, ``lenient``, ...).
        limits: compile-time limits (``None``: structgen's defaults).
    """

    json_style: str = "default"
    json_options: tuple[tuple[str, Any], ...] = ()
    limits: structgen.Limits | None = None


def _load_json(text: str, what: str) -> Any:
    try:
        return json.loads(text)
    except json.JSONDecodeError as e:
        raise InvalidSchema(f"{what} is not valid JSON: {e.msg} at offset {e.pos}: {text[:80]!r}") from None


def _looks_like_gbnf(text: str) -> bool:
    return "::=" in text


def compile_request(
    vocab: structgen.Vocabulary, kind: str, spec: str, options: BackendOptions | None = None
) -> structgen.CompiledConstraint:
    """Compile one vLLM structured-output request against ``vocab``.

    ``kind`` is one of :data:`REQUEST_KINDS`; ``spec`` is the string vLLM keys the request by (a JSON Schema as
    JSON text, a regex, Lark text, the choices as a JSON list, ...). Raises a :class:`structgen.CompileError`:
    :class:`UnsupportedStructuredOutput` for structural tags and GBNF grammars, otherwise structgen's own errors.
    """
    options = options or BackendOptions()
    json_kw = {"style": options.json_style, **dict(options.json_options)}
    limits = options.limits
    match kind:
        case "json":
            schema = _load_json(spec, "the JSON Schema") if isinstance(spec, str) else spec
            return structgen.compile(vocab, json_schema=schema, limits=limits, **json_kw)
        case "json_object":
            return structgen.compile(vocab, json_schema={"type": "object"}, limits=limits, **json_kw)
        case "regex":
            return structgen.compile(vocab, regex=spec, limits=limits)
        case "grammar":
            if _looks_like_gbnf(spec):
                raise UnsupportedStructuredOutput(
                    f"structgen takes Lark grammars, and this looks like GBNF/EBNF ('::=' rules): {spec[:80]!r}; "
                    'write it in Lark syntax (rule: a | b, TERMINAL: /regex/ or "text")'
                )
            if not spec.strip():
                raise InvalidGrammar("the grammar is empty", spec)
            return structgen.compile(vocab, grammar=spec, limits=limits)
        case "choice":
            choices = _load_json(spec, "the choice list") if isinstance(spec, str) else spec
            if not isinstance(choices, list) or not choices:
                raise UnsupportedStructuredOutput(f"choice must be a non-empty JSON list of strings, got {spec[:80]!r}")
            return structgen.compile(vocab, choices=[str(c) for c in choices], limits=limits)
        case "structural_tag":
            raise UnsupportedStructuredOutput(
                "structural tags (free text with JSON-constrained tool calls after trigger strings) are not "
                "supported by the structgen backend; constrain the tool call arguments with a JSON Schema instead, "
                "or use vLLM's xgrammar/guidance backend for these requests"
            )
        case _:
            raise UnsupportedStructuredOutput(f"unknown structured-output kind {kind!r}; known: {REQUEST_KINDS}")


def request_from_params(params: dict[str, Any] | str) -> tuple[str, str]:
    """``(kind, spec)`` from a dict shaped like vLLM's ``StructuredOutputsParams`` (exactly one key set).

    Used by the logits processor, whose per-request constraint travels in ``SamplingParams.extra_args``;
    the dict may also come as JSON text (the OpenAI server's ``vllm_xargs`` take no nested dicts).
    Raises ``ValueError`` naming the keys when the dict is malformed.
    """
    if isinstance(params, str):
        try:
            params = json.loads(params)
        except json.JSONDecodeError as e:
            raise ValueError(f"structgen request text is not valid JSON: {e.msg} at offset {e.pos}") from None
    if not isinstance(params, dict):
        raise ValueError(f"structgen request must be a dict, got {type(params).__name__}")
    given = [k for k in REQUEST_KINDS if params.get(k) not in (None, False)]
    unknown = sorted(set(params) - set(REQUEST_KINDS))
    if unknown:
        raise ValueError(f"unknown structgen request key(s) {unknown}; known: {list(REQUEST_KINDS)}")
    if len(given) != 1:
        raise ValueError(f"a structgen request needs exactly one of {list(REQUEST_KINDS)}, got {given or 'none'}")
    kind = given[0]
    value = params[kind]
    if kind == "json_object":
        return kind, ""
    if kind in ("json", "choice", "structural_tag") and not isinstance(value, str):
        return kind, json.dumps(value)
    if not isinstance(value, str):
        raise ValueError(f"structgen {kind} must be a string, got {type(value).__name__}")
    return kind, value


class ConstraintState:
    """One request's grammar state with the semantics of vLLM's ``StructuredOutputGrammar``.

    The stop set is the request's stop tokens when given (vLLM passes ``all_stop_token_ids``) and the
    vocabulary's EOS ids otherwise. A stop token is allowed exactly when the output so far is complete; it
    terminates the state and counts as one step for ``rollback``. Tokens after termination are ignored, as
    in vLLM's xgrammar backend. Decode time never raises.
    """

    __slots__ = ("compiled", "matcher", "stop_ids", "num_processed_tokens", "_terminated", "_stop_words", "_eos_only")

    def __init__(self, compiled: structgen.CompiledConstraint, stop_token_ids: Iterable[int] | None = None) -> None:
        self.compiled = compiled
        self.matcher = compiled.matcher()
        vocab = compiled.vocab
        stops = {int(t) for t in stop_token_ids} if stop_token_ids else set(vocab.eos_ids)
        self.stop_ids = frozenset(t for t in stops if 0 <= t < vocab.size)
        self.num_processed_tokens = 0
        self._terminated = False
        width = (vocab.size + 31) // 32
        self._stop_words = _words(self.stop_ids, width)  # (W,) uint32
        self._eos_only = _words(vocab.eos_ids - self.stop_ids, width)  # EOS ids that are not stops here

    @property
    def error(self) -> str | None:
        """Why the last token was rejected (``None`` after an accepted one)."""
        return self.matcher.error

    def is_terminated(self) -> bool:
        """True once a stop token was accepted."""
        return self._terminated

    def is_accepting(self) -> bool:
        """True when the output so far is complete (a stop token is allowed)."""
        return not self._terminated and self.matcher.is_accepting()

    def _accept_one(self, token: int) -> bool:
        if token in self.stop_ids:
            if not self.matcher.is_accepting():
                self.matcher.error = f"stop token {token} before the constraint is complete"
                return False
            self._terminated = True
        elif token in self.compiled.vocab.eos_ids:
            self.matcher.error = f"EOS token {token} is not a stop token of this request"
            return False
        elif not self.matcher.accept_token(token):
            return False
        self.num_processed_tokens += 1
        return True

    def accept_tokens(self, tokens: Sequence[int]) -> bool:
        """Advance by ``tokens`` in order; False at the first rejected one (the accepted prefix stays)."""
        for token in tokens:
            if self._terminated:
                return True
            if not self._accept_one(int(token)):
                return False
        return True

    def validate_tokens(self, tokens: Sequence[int]) -> list[int]:
        """The longest prefix of ``tokens`` that would be accepted (stopping after a stop token); no state change."""
        accepted: list[int] = []
        for token in tokens:
            if self._terminated or token < 0 or not self._accept_one(int(token)):
                break
            accepted.append(int(token))
        if accepted:
            self.rollback(len(accepted))
        return accepted

    def rollback(self, num_tokens: int) -> None:
        """Undo the last ``num_tokens`` accepted tokens (a stop token counts as one)."""
        if num_tokens <= 0:
            return
        num_tokens = min(num_tokens, self.num_processed_tokens)
        self.num_processed_tokens -= num_tokens
        if self._terminated:
            self._terminated = False
            num_tokens -= 1
        if num_tokens:
            self.matcher.rollback(num_tokens)

    def reset(self) -> None:
        """Back to the initial state."""
        self.matcher.reset()
        self.num_processed_tokens = 0
        self._terminated = False

    def fill_words(self, row: np.ndarray) -> None:
        """Write the allowed tokens into ``row``, a ``(W,)`` int32 numpy view (stop bits per the stop set)."""
        if self._terminated:
            row[...] = 0
            return
        self.matcher.fill_bitmask(row.reshape(1, -1), 0)
        u = row.view(np.uint32)
        u &= ~self._eos_only
        if self.matcher.is_accepting():
            u |= self._stop_words
        else:
            u &= ~self._stop_words

    def fill_bitmask(self, bitmask: Any, index: int) -> None:
        """Write row ``index`` of ``bitmask`` (a ``(B, W)`` int32 torch tensor or numpy array)."""
        if isinstance(bitmask, np.ndarray):
            self.fill_words(bitmask[index])
            return
        if bitmask.device.type == "cpu":
            self.fill_words(bitmask[index].numpy())  # a view: writes land in the tensor
            return
        import torch

        row = np.empty(bitmask.shape[1], dtype=np.int32)
        self.fill_words(row)
        bitmask[index].copy_(torch.from_numpy(row))


def _words(ids: Iterable[int], width: int) -> np.ndarray:
    words = np.zeros(width, dtype=np.uint32)
    for t in ids:
        words[t >> 5] |= np.uint32(1) << np.uint32(t & 31)
    return words


def allocate_token_bitmask(num_rows: int, vocab_size: int) -> torch.Tensor:
    """A ``(num_rows, ceil(vocab_size/32))`` int32 CPU tensor, every token allowed (vLLM's layout and xgrammar's)."""
    import torch

    return torch.from_numpy(structgen.allocate_bitmask(num_rows, vocab_size))  # (B, W) int32


def fill_bitmasks(states: Sequence[ConstraintState | None], bitmask: Any) -> list[int]:
    """Fill row ``i`` of ``bitmask`` from ``states[i]``; rows whose state is ``None`` allow every token.

    Returns the indices of the constrained rows (the ``indices`` for :func:`apply_bitmask`).
    """
    rows: list[int] = []
    arr = bitmask if isinstance(bitmask, np.ndarray) else bitmask.numpy()
    for i, state in enumerate(states):
        if state is None:
            arr[i] = -1
        else:
            state.fill_words(arr[i])
            rows.append(i)
    return rows


def apply_bitmask(logits: torch.Tensor, bitmask: torch.Tensor, rows: Sequence[int], vocab_size: int) -> torch.Tensor:
    """Set the disallowed logits of ``rows`` to ``-inf`` in place (``bitmask`` moved to the logits' device)."""
    from structgen.kernels import apply_token_bitmask_

    if not rows:
        return logits
    if bitmask.device != logits.device:
        bitmask = bitmask.to(logits.device, non_blocking=True)
    return apply_token_bitmask_(logits, bitmask, list(rows), vocab_size=min(vocab_size, logits.shape[-1]))
