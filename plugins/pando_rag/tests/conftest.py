"""Shared fixtures: a real engine (real chromadb, real catalog) with the real offline embedder, or
with the deterministic embedder for exact-ranking tests."""

from __future__ import annotations

import hashlib
import re

import numpy as np
import pytest
from pando_rag.config import RagConfig
from pando_rag.embedders import Embedder


class HashingEmbedder(Embedder):
    """Deterministic bag-of-words vectors (each word hashed to a dimension): texts sharing words are
    similar, and the ranking of a query is exactly predictable.  Only for ranking unit tests."""

    kind = "hashing"
    model = "test"

    def __init__(self, dimension: int = 64) -> None:
        self.dimension = dimension

    def _embed(self, texts):
        out = np.zeros((len(texts), self.dimension), dtype=np.float32)
        for row, text in enumerate(texts):
            for word in re.findall(r"\w+", text.lower()):
                out[row, int(hashlib.md5(word.encode()).hexdigest(), 16) % self.dimension] += 1.0
        return out


@pytest.fixture(scope="session")
def wordllama_embedder():
    from pando_rag.embedders import WordLlamaEmbedder

    return WordLlamaEmbedder()


@pytest.fixture
def rag_config(tmp_path):
    def make(**values):
        return RagConfig.from_dict(values, workdir=tmp_path)

    return make


@pytest.fixture
def make_engine(tmp_path, rag_config):
    from pando_rag.engine import RagEngine

    engines = []

    def make(embedder=None, data_dir=None, **values):
        engine = RagEngine(rag_config(**values), data_dir or tmp_path / ".pando" / "rag", embedder=embedder)
        engines.append(engine)
        return engine

    yield make
    for engine in engines:
        engine.close()


@pytest.fixture
def hashing_embedder():
    return HashingEmbedder()
