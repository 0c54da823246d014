"""Code-point ranges -> UTF-8 byte-range sequences (the algorithm of Rust's ``utf8-ranges``).

A range of scalar values ``[lo, hi]`` is split into sequences of byte ranges such that a byte string
is the UTF-8 encoding of a code point in the range iff it matches exactly one sequence. Every
sequence has the length of the encodings it covers, and each position is a contiguous byte range.
That makes partial characters ordinary intermediate automaton states, which tokens that end in
the middle of a multi-byte character need.

Code-point sets are represented everywhere as sorted, disjoint, non-adjacent tuples of inclusive
``(lo, hi)`` pairs; helpers for them live here too.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from functools import lru_cache

MAX_CODEPOINT = 0x10FFFF
SURROGATES = (0xD800, 0xDFFF)

Ranges = tuple[tuple[int, int], ...]
ByteSeq = tuple[tuple[int, int], ...]  # one (lo, hi) byte range per position

UNIVERSE: Ranges = ((0, SURROGATES[0] - 1), (SURROGATES[1] + 1, MAX_CODEPOINT))


def normalize(ranges: Iterable[tuple[int, int]]) -> Ranges:
    """Sort, merge overlapping/adjacent ranges and drop surrogates (they have no UTF-8 encoding)."""
    items = sorted((lo, hi) for lo, hi in ranges if lo <= hi)
    out: list[tuple[int, int]] = []
    for lo, hi in items:
        if out and lo <= out[-1][1] + 1:
            if hi > out[-1][1]:
                out[-1] = (out[-1][0], hi)
        else:
            out.append((lo, hi))
    return (
        intersect(tuple(out), UNIVERSE)
        if any(lo <= SURROGATES[1] and hi >= SURROGATES[0] for lo, hi in out)
        else tuple(out)
    )


def intersect(a: Ranges, b: Ranges) -> Ranges:
    """Intersection of two normalized range sets."""
    out: list[tuple[int, int]] = []
    i = j = 0
    while i < len(a) and j < len(b):
        lo = max(a[i][0], b[j][0])
        hi = min(a[i][1], b[j][1])
        if lo <= hi:
            out.append((lo, hi))
        if a[i][1] < b[j][1]:
            i += 1
        else:
            j += 1
    return tuple(out)


def complement(a: Ranges) -> Ranges:
    """All Unicode scalar values (surrogates excluded) not in ``a``."""
    out: list[tuple[int, int]] = []
    prev = 0
    for lo, hi in a:
        if lo > prev:
            out.append((prev, lo - 1))
        prev = hi + 1
    if prev <= MAX_CODEPOINT:
        out.append((prev, MAX_CODEPOINT))
    return intersect(tuple(out), UNIVERSE)


def union(*sets: Ranges) -> Ranges:
    return normalize(r for s in sets for r in s)


def subtract(a: Ranges, b: Ranges) -> Ranges:
    return intersect(a, complement(b))


def contains(a: Ranges, cp: int) -> bool:
    lo_i, hi_i = 0, len(a)
    while lo_i < hi_i:
        mid = (lo_i + hi_i) // 2
        if a[mid][1] < cp:
            lo_i = mid + 1
        elif a[mid][0] > cp:
            hi_i = mid
        else:
            return True
    return False


def _encode(cp: int) -> bytes:
    return chr(cp).encode("utf-8")


def utf8_sequences(lo: int, hi: int) -> Iterator[ByteSeq]:
    """Byte-range sequences matching exactly the UTF-8 encodings of code points in ``[lo, hi]``."""
    stack = [(lo, hi)]
    while stack:
        s, e = stack.pop()
        while True:
            if s > e:
                break
            if s <= SURROGATES[1] and e >= SURROGATES[0]:
                # split around the surrogate block, which has no encoding
                if e > SURROGATES[1]:
                    stack.append((SURROGATES[1] + 1, e))
                e = SURROGATES[0] - 1
                if s >= SURROGATES[0]:
                    break
                continue
            split = False
            for boundary in (0x7F, 0x7FF, 0xFFFF):
                if s <= boundary < e:
                    stack.append((boundary + 1, e))
                    e = boundary
                    split = True
                    break
            if split:
                continue
            if e <= 0x7F:
                yield ((s, e),)
                break
            for i in range(1, 4):
                m = (1 << (6 * i)) - 1
                if (s & ~m) != (e & ~m):
                    if (s & m) != 0:
                        stack.append(((s | m) + 1, e))
                        e = s | m
                        split = True
                        break
                    if (e & m) != m:
                        stack.append((e & ~m, e))
                        e = (e & ~m) - 1
                        split = True
                        break
            if split:
                continue
            bs, be = _encode(s), _encode(e)
            yield tuple(zip(bs, be))
            break


@lru_cache(maxsize=4096)
def ranges_to_sequences(ranges: Ranges) -> tuple[ByteSeq, ...]:
    """All byte sequences of a code-point set, in increasing order of first byte."""
    seqs: list[ByteSeq] = []
    for lo, hi in ranges:
        seqs.extend(utf8_sequences(lo, hi))
    seqs.sort()
    return tuple(seqs)
