"""Adapters for serving frameworks and libraries, built only on the public ``structgen`` API.

Installed as ``structgen.integrations``.
"""
