"""GPU masking kernels and the torch references they are tested against (``structgen.kernels``).

Public entry points:

* :func:`apply_token_bitmask_` -- set disallowed logits to ``-inf`` in place (Triton on CUDA, a vectorized
  torch path elsewhere; :func:`apply_token_bitmask_reference_` defines the semantics).
* :func:`sample_masked` -- mask + temperature + top-k/top-p + sampling in one kernel, returning
  ``(token_ids, logprobs)`` without writing masked logits back (:func:`sample_masked_reference`).
* :class:`DfaStepper` -- the whole constrained step for DFA constraints on the device: mask from the
  state, sample, next state, with no host synchronization.

This package imports nothing from the rest of structgen: it takes plain tensors. Triton is imported
only when a Triton path runs. On CPU tensors the Triton kernels run only under the Triton
interpreter, which must be switched on (``TRITON_INTERPRET=1``) *before* ``triton`` is first
imported (triton 3.x decides interpreted vs compiled when its ``@jit`` decorators run).
"""

# A checkout's root on sys.path (``python -m ...`` or pytest run from it) makes this folder importable as
# the top-level ``kernels``, which shadows the PyPI package of that name (Hugging Face's kernel hub, which
# transformers imports). Under that name, hand the import over to the real package and define nothing.
if __name__ == "kernels":
    import importlib.machinery
    import importlib.util
    import os
    import sys

    _root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    _path = [p for p in sys.path if os.path.abspath(p or os.curdir) != _root]
    _spec = importlib.machinery.PathFinder.find_spec("kernels", _path)
    if _spec is None or _spec.loader is None:
        raise ImportError(
            f"no package 'kernels' outside {_root}: that folder is structgen's, import it as structgen.kernels"
        )
    _real = importlib.util.module_from_spec(_spec)
    sys.modules["kernels"] = _real  # the import statement returns sys.modules["kernels"]
    _spec.loader.exec_module(_real)
else:
    from .api import *  # noqa: F403  (the public entry points: api.__all__)
    from .api import __all__  # noqa: F401
