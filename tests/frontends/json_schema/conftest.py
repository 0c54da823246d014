from __future__ import annotations

import pytest


@pytest.fixture(scope="session")
def byte_vocab():
    from structgen.vocab.vocabulary import Vocabulary

    return Vocabulary.from_bytes(
        [bytes([i]) for i in range(256)] + [b'"name": ', b'{"', b"<eos>"], eos_ids=[258], name="bytes"
    )
