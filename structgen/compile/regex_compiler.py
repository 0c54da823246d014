"""Regex (or choices) × vocabulary -> RegexEngine. ``structgen.compile(vocab, regex=...)`` calls this."""

from __future__ import annotations

from structgen.automaton.lexer import compile_regex_dfa
from structgen.limits import DEFAULT_LIMITS, Limits
from structgen.runtime.regex_engine import RegexEngine
from structgen.vocab.vocabulary import Vocabulary

__all__ = ["compile_regex_engine"]


def compile_regex_engine(pattern: str, vocab: Vocabulary, limits: Limits | None = None, flags: str = "") -> RegexEngine:
    """Compile ``pattern`` (whole-output match, Python ``re`` subset) against ``vocab``.

    The DFA is built and minimized eagerly; token masks are computed lazily per state and cached.
    Raises ``InvalidRegex``, ``UnsupportedRegex`` or ``LimitExceeded``.
    """
    limits = limits or DEFAULT_LIMITS
    dfa = compile_regex_dfa(pattern, limits, flags)
    return RegexEngine(dfa, vocab, limits)
