"""The compiled artifact: a constraint × a vocabulary, ready to hand out matchers."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from structgen.limits import Limits
from structgen.runtime.engine import TokenEngine
from structgen.runtime.matcher import Matcher
from structgen.spec.specs import Spec
from structgen.vocab.vocabulary import Vocabulary


@dataclass(frozen=True, eq=False)
class CompiledConstraint:
    """Immutable and shareable across threads of decoding; ``matcher()`` is cheap.

    Attributes:
        spec: what was compiled.
        vocab: the vocabulary it was compiled against.
        engine: the token engine (regex DFA, grammar, JSON Schema...).
        fingerprint: spec + options + vocabulary + structgen version.
        compile_seconds: wall time of the compile.
        info: engine facts for reports (automaton sizes, how each keyword is enforced...).
    """

    spec: Spec
    vocab: Vocabulary
    engine: TokenEngine
    fingerprint: str
    limits: Limits
    compile_seconds: float = 0.0
    info: dict[str, Any] = field(default_factory=dict)

    def matcher(self) -> Matcher:
        """A fresh matcher at the initial state."""
        return Matcher(self.engine, self.vocab, max_forced_bytes=self.limits.max_forced_bytes)
