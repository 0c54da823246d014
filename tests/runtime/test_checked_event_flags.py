"""event_flags (the per-vocabulary candidate tables of the checked engine) against a per-token
reference: a byte-by-byte reading of each token from every lexical mode."""

from __future__ import annotations

import numpy as np

from structgen.assets import load_vocabulary
from structgen.runtime.bitmask import unpack_bitmask
from structgen.runtime.checked_engine import ESC, LIT, NUM, OUT, STR, event_flags

_NUM = set(b"0123456789.eE+-")


def _reference(tok: bytes, mode: int) -> tuple[bool, bool, bool]:
    """(completes the scalar open before the token, completes one it opens, closes a container)."""
    cur = new = cc = False
    inside = False
    for b in tok:
        ev = False
        if mode == STR:
            if b == ord('"'):
                ev, mode = True, OUT
            elif b == ord("\\"):
                mode = ESC
        elif mode == ESC:
            mode = STR
        elif mode == NUM and b in _NUM:
            pass
        elif mode == LIT and ord("a") <= b <= ord("z"):
            ev = b in b"el"
        else:
            if mode in (NUM, LIT):  # the scalar ends at this byte, which is then read outside
                ev = True
            cur |= ev and not inside
            new |= ev and inside
            ev, mode = False, OUT
            if b in b"]}":
                cc = True
            elif b == ord('"'):
                mode, inside = STR, True
            elif b in b"-0123456789":
                mode, inside = NUM, True
            elif b in b"tfn":
                mode, inside = LIT, True
        cur |= ev and not inside
        new |= ev and inside
    return cur, new, cc


def test_event_flags_match_reference() -> None:
    vocab = load_vocabulary("llama3")
    flags = event_flags(vocab)
    unpacked = [[unpack_bitmask(w, vocab.size) for w in per_mode] for per_mode in flags]
    rng = np.random.default_rng(0)
    tricky = [i for i, t in enumerate(vocab.token_bytes) if any(c in t for c in b'"\\]}') or t[:1] in b"tfn-0123456789"]
    sample = sorted(set(rng.choice(vocab.num_tokens, 3000, replace=False).tolist()) | set(tricky[::7]))
    special = set(vocab.special_ids)
    for i in sample:
        tok = vocab.token_bytes[i]
        for mi, mode in enumerate((OUT, STR, ESC, NUM, LIT)):
            want = (False, False, False) if i in special else _reference(tok, mode)
            got = tuple(bool(unpacked[k][mi][i]) for k in range(3))
            assert got == want, (i, tok, mode)
