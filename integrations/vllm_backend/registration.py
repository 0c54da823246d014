"""Select structgen as vLLM's structured-output backend.

vLLM (0.32 CPU build and 0.33, read from their source) has no registry for structured-output backends:
``StructuredOutputsConfig.backend`` is a closed ``Literal`` ("auto", "xgrammar", "guidance", "outlines",
"lm-format-enforcer") and ``StructuredOutputManager.grammar_init`` builds one of those four classes. So
:func:`use_structgen_backend` installs structgen in the current process in two places:

* ``SamplingParams._validate_structured_outputs`` (front end): compiles the request with structgen, so a
  schema, regex or grammar structgen cannot enforce is rejected up front with a ``VLLMValidationError``
  (HTTP 400 in ``vllm serve``), and marks the request's backend ``"structgen"``;
* ``StructuredOutputManager.grammar_init`` (engine core): builds a :class:`StructgenBackend` the first time a
  structured request arrives, in place of the backend vLLM would have built.

Requests keep using vLLM's ordinary ``SamplingParams(structured_outputs=StructuredOutputsParams(...))`` and
the OpenAI ``response_format``. Both patches must run in every process that validates requests or runs the
engine core: call :func:`use_structgen_backend` before creating the engine with
``VLLM_ENABLE_V1_MULTIPROCESSING=0`` (engine core in process), or register :func:`vllm_plugin` under vLLM's
``vllm.general_plugins`` entry point group, which vLLM loads in each of its processes, and set
``STRUCTGEN_VLLM_BACKEND=1``.
"""

from __future__ import annotations

import os
from typing import Any

from vllm.exceptions import VLLMValidationError
from vllm.sampling_params import SamplingParams
from vllm.v1.structured_output import StructuredOutputManager
from vllm.v1.structured_output.request import get_structured_output_key

from structgen import CompileError

from .backend import StructgenBackend, backend_options, vocabulary_for
from .core import BackendOptions, compile_request

BACKEND_NAME = "structgen"
ENV_FLAG = "STRUCTGEN_VLLM_BACKEND"

_originals: dict[str, Any] = {}
_options: BackendOptions | None = None


def is_installed() -> bool:
    """Whether :func:`use_structgen_backend` is in effect in this process."""
    return bool(_originals)


def use_structgen_backend(options: BackendOptions | None = None) -> None:
    """Make structgen the structured-output backend of the vLLM engines of this process (idempotent)."""
    global _options
    _options = options
    if _originals:
        return
    _originals["validate"] = SamplingParams._validate_structured_outputs
    _originals["grammar_init"] = StructuredOutputManager.grammar_init
    SamplingParams._validate_structured_outputs = _validate_structured_outputs  # type: ignore[method-assign]
    StructuredOutputManager.grammar_init = _grammar_init  # type: ignore[method-assign]


def restore_vllm_backends() -> None:
    """Undo :func:`use_structgen_backend` (engines created afterwards use vLLM's own backends)."""
    if not _originals:
        return
    SamplingParams._validate_structured_outputs = _originals.pop("validate")  # type: ignore[method-assign]
    StructuredOutputManager.grammar_init = _originals.pop("grammar_init")  # type: ignore[method-assign]


def vllm_plugin() -> None:
    """Entry point for vLLM's ``vllm.general_plugins`` group: installs structgen when ``STRUCTGEN_VLLM_BACKEND=1``."""
    if os.environ.get(ENV_FLAG, "") == "1":
        use_structgen_backend()


def _validate_structured_outputs(
    self: SamplingParams, model_config: Any, structured_outputs_config: Any, tokenizer: Any
) -> None:
    so = self.structured_outputs
    if structured_outputs_config is None or so is None:
        return
    if getattr(model_config, "is_diffusion", False):
        raise VLLMValidationError("structured outputs are not supported for diffusion language models")
    if tokenizer is None:
        raise VLLMValidationError("structured outputs need a tokenizer (they cannot be used with skip_tokenizer_init)")
    so.__post_init__()  # exactly one constraint kind
    request_type, spec = get_structured_output_key(so)
    vocab = vocabulary_for(tokenizer, model_config.get_vocab_size())
    options = backend_options(structured_outputs_config, _options)
    try:
        compile_request(vocab, request_type.name.lower(), spec, options)  # cached: the engine core reuses it
    except CompileError as e:
        raise VLLMValidationError(f"structgen cannot compile this {request_type.name.lower()} constraint: {e}") from e
    so._backend = BACKEND_NAME
    so._backend_was_auto = False


def _grammar_init(self: StructuredOutputManager, request: Any) -> None:
    if request.structured_output_request is not None and self.backend is None:
        self.backend = StructgenBackend(
            self.vllm_config,
            tokenizer=self.tokenizer,
            vocab_size=self.vllm_config.model_config.get_vocab_size(),
            options=_options,
        )
        if hasattr(self, "backend_name"):  # vLLM 0.33 checks every request against the engine's backend
            self.backend_name = request.sampling_params.structured_outputs._backend
    _originals["grammar_init"](self, request)
