"""Byte-level deterministic automata: the compiled form of every regex and every grammar lexer."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

DEAD = 0  # state 0 of every ByteDFA is the dead (sink) state


@dataclass(frozen=True, eq=False)
class ByteDFA:
    """A complete DFA over bytes. State 0 is dead; every other state is live (can reach acceptance).

    Attributes:
        transitions: ``(S, 256)`` int32, ``transitions[s, b]`` is the next state (0 = dead).
        accepting: ``(S,)`` bool.
        start: the start state (0 when the language is empty).
        pattern: the source text, for messages.
    """

    transitions: np.ndarray  # (S, 256) int32
    accepting: np.ndarray  # (S,) bool
    start: int
    pattern: str = ""

    @property
    def num_states(self) -> int:
        return int(self.transitions.shape[0])

    def step(self, state: int, data: bytes) -> int:
        """Run ``data`` from ``state``; 0 if it dies."""
        t = self.transitions
        for b in data:
            state = int(t[state, b])
            if state == DEAD:
                return DEAD
        return state

    def matches(self, data: bytes) -> bool:
        """Whole-string match."""
        s = self.step(self.start, data)
        return s != DEAD and bool(self.accepting[s])


@dataclass(frozen=True, eq=False)
class LexerDFA:
    """A DFA for several terminals at once (a grammar's lexer), tagged per terminal.

    Terminal sets are Python int bitsets (bit i = terminal i), so any number of terminals fits.

    Attributes:
        dfa: the combined automaton; state 0 dead, ``dfa.start`` is the lexeme start.
        alive: ``alive[s]`` = bitset of terminals that some continuation from ``s`` can still complete.
        accepts: ``accepts[s]`` = bitset of terminals whose regex matches the lexeme read so far.
        names: terminal names, index i = bit i.
    """

    dfa: ByteDFA
    alive: tuple[int, ...]
    accepts: tuple[int, ...]
    names: tuple[str, ...]
