"""Suite-wide setup.

hypothesis is imported here, in the main thread, before any test starts a server thread: pytest
rewrites the asserts of modules it imports lazily, and on CPython 3.11 parsing while another thread
runs can fail with "SystemError: AST constructor recursion depth mismatch" (CPython gh-106905).
"""

import hypothesis  # noqa: F401
import hypothesis.strategies  # noqa: F401
