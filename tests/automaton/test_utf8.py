"""Code-point ranges -> UTF-8 byte-range sequences, checked against Python's encoder."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from structgen.automaton.utf8 import MAX_CODEPOINT, complement, normalize, utf8_sequences


def _matches(seq: tuple[tuple[int, int], ...], data: bytes) -> bool:
    return len(seq) == len(data) and all(lo <= b <= hi for (lo, hi), b in zip(seq, data))


@settings(max_examples=200, deadline=None)
@given(st.integers(0, MAX_CODEPOINT), st.integers(0, 5000), st.integers(0, MAX_CODEPOINT))
def test_sequences_cover_exactly_the_range(lo: int, span: int, probe: int) -> None:
    hi = min(MAX_CODEPOINT, lo + span)
    seqs = list(utf8_sequences(lo, hi))
    for cp in {lo, hi, probe, (lo + hi) // 2, max(0, lo - 1), min(MAX_CODEPOINT, hi + 1)}:
        if 0xD800 <= cp <= 0xDFFF:
            enc = chr(cp).encode("utf-8", "surrogatepass")
            assert not any(_matches(s, enc) for s in seqs)
            continue
        enc = chr(cp).encode("utf-8")
        hits = sum(_matches(s, enc) for s in seqs)
        assert hits == (1 if lo <= cp <= hi else 0), (hex(lo), hex(hi), hex(cp))


def test_full_range_sequences() -> None:
    seqs = list(utf8_sequences(0, MAX_CODEPOINT))
    # the classic minimal set: ASCII, 2-byte, 4 three-byte pieces around E0/ED, 3 four-byte pieces
    assert ((0x00, 0x7F),) in seqs
    assert ((0xC2, 0xDF), (0x80, 0xBF)) in seqs
    assert ((0xE0, 0xE0), (0xA0, 0xBF), (0x80, 0xBF)) in seqs
    assert ((0xED, 0xED), (0x80, 0x9F), (0x80, 0xBF)) in seqs
    assert ((0xF4, 0xF4), (0x80, 0x8F), (0x80, 0xBF), (0x80, 0xBF)) in seqs
    assert len(seqs) == 9


def test_set_helpers() -> None:
    assert normalize([(5, 9), (1, 3), (4, 4)]) == ((1, 9),)
    assert normalize([(0xD000, 0xE000)]) == ((0xD000, 0xD7FF), (0xE000, 0xE000))
    assert complement(((0, 0x60), (0x62, MAX_CODEPOINT))) == ((0x61, 0x61),)
