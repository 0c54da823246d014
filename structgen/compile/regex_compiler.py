"""Regex (or choices) × vocabulary -> RegexEngine. ``structgen.compile(vocab, regex=...)`` calls this."""

from __future__ import annotations

from structgen.automaton.lexer import compile_regex_dfa
from structgen.errors import InvalidRegex
from structgen.limits import DEFAULT_LIMITS, Limits
from structgen.runtime.regex_engine import RegexEngine
from structgen.vocab.vocabulary import Vocabulary

__all__ = ["compile_regex_engine"]


def compile_regex_engine(pattern: str, vocab: Vocabulary, limits: Limits | None = None, flags: str = "") -> RegexEngine:
    """Compile ``pattern`` (whole-output match, Python ``re`` subset) against ``vocab``.

    The DFA is built and minimized eagerly; token masks are computed lazily per state and cached.
    Raises ``InvalidRegex`` (also for a pattern that matches no string), ``UnsupportedRegex`` or ``LimitExceeded``.
    """
    limits = limits or DEFAULT_LIMITS
    dfa = compile_regex_dfa(pattern, limits, flags)
    if dfa.start == 0:  # state 0 is the dead state: not even the empty continuation completes
        raise InvalidRegex("the pattern matches no string (e.g. contradictory lookaheads)", pattern, None)
    return RegexEngine(dfa, vocab, limits)
