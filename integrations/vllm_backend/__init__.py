"""structgen inside vLLM (``structgen.integrations.vllm_backend``).

Two ways in, both on vLLM's v1 engine:

* **Logits processor** (vLLM's supported plugin surface)::

      from vllm import LLM, SamplingParams
      llm = LLM(model=path, logits_processors=["structgen.integrations.vllm_backend.logits_processor:StructgenLogitsProcessor"])
      params = SamplingParams(max_tokens=200, extra_args={"structgen": {"json": schema}})

  One request carries its constraint in ``extra_args["structgen"]`` (one of ``json``, ``json_object``,
  ``regex``, ``grammar``, ``choice``); the processor keeps a matcher per batch row, fills one
  ``(B, ceil(V/32))`` bitmask for the batch and applies it with ``structgen.kernels.apply_token_bitmask_``.

* **Structured-output backend**: :class:`~structgen.integrations.vllm_backend.backend.StructgenBackend`
  subclasses vLLM's ``StructuredOutputBackend``. vLLM picks backends from a closed list, so
  :func:`~structgen.integrations.vllm_backend.registration.use_structgen_backend` installs it into the
  ``StructuredOutputManager`` of the current process (ordinary ``structured_outputs=`` requests then run on
  structgen). See docs/integrations.md for what was run.

This package's ``core`` module imports no vllm; the other modules import vllm when they are imported.
"""

from __future__ import annotations

from .core import (
    REQUEST_KINDS,
    BackendOptions,
    ConstraintState,
    UnsupportedStructuredOutput,
    allocate_token_bitmask,
    apply_bitmask,
    compile_request,
    fill_bitmasks,
    request_from_params,
)

__all__ = [
    "REQUEST_KINDS",
    "BackendOptions",
    "ConstraintState",
    "UnsupportedStructuredOutput",
    "allocate_token_bitmask",
    "apply_bitmask",
    "compile_request",
    "fill_bitmasks",
    "request_from_params",
]
