"""Embedders: text in, unit-length float32 vectors out.

``wordllama`` (the default) runs offline: its weights ship inside its wheel.  ``openai`` (any
OpenAI-compatible ``/v1/embeddings``) and ``ollama`` (``/api/embed``) are HTTP servers, called in
batches with a timeout; every failure is an ``EmbedderError`` with one line saying what went wrong.
Every embedder checks that a server keeps answering with the dimension it answered first, so
vectors of two sizes never meet in one collection.  Vectors are normalised here, so that a dot
product is the cosine similarity everywhere else.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import numpy as np

from pando_core.errors import PandoError, UnavailableError


class EmbedderError(UnavailableError):
    """The embedder could not embed (server down, bad answer, wrong dimension)."""


def _normalised(matrix: np.ndarray) -> np.ndarray:
    matrix = np.asarray(matrix, dtype=np.float32)
    if matrix.ndim == 1:
        matrix = matrix[None, :]
    norms = np.linalg.norm(matrix, axis=1, keepdims=True)
    norms[norms == 0] = 1.0
    return matrix / norms


def slug(text: str) -> str:
    """A collection-name-safe slug: lower case, [a-z0-9_], at most 40 characters."""
    return re.sub(r"[^a-z0-9]+", "_", text.lower()).strip("_")[:40] or "default"


class Embedder:
    """The interface: ``embed_documents(texts)`` and ``embed_query(text)``; ``dimension``; ``slug``."""

    kind = ""
    model = ""
    dimension: int | None = None
    batch_size = 64

    @property
    def slug(self) -> str:
        return slug(f"{self.kind}_{self.model}")

    def embed_documents(self, texts: list[str]) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dimension or 0), dtype=np.float32)
        batches = [self._embed(texts[i : i + self.batch_size]) for i in range(0, len(texts), self.batch_size)]
        return self._checked(np.vstack(batches), len(texts))

    def embed_query(self, text: str) -> np.ndarray:
        return self._checked(self._embed([text]), 1)[0]

    def _embed(self, texts: list[str]) -> np.ndarray:  # pragma: no cover - every embedder has one
        raise NotImplementedError

    def _checked(self, matrix: np.ndarray, expected: int) -> np.ndarray:
        if matrix.ndim != 2 or matrix.shape[0] != expected:
            raise EmbedderError(f"{self.kind} embedder returned {matrix.shape[0] if matrix.ndim else 0} vectors for {expected} texts")
        if self.dimension is None:
            self.dimension = int(matrix.shape[1])
        elif matrix.shape[1] != self.dimension:
            raise EmbedderError(
                f"{self.kind} embedder returned {matrix.shape[1]}-dimensional vectors, expected {self.dimension} "
                "(changed model? run `pando rag reindex`)"
            )
        return _normalised(matrix)

    def close(self) -> None:
        pass

    def describe(self) -> dict[str, Any]:
        return {"kind": self.kind, "model": self.model, "dimension": self.dimension, "slug": self.slug}


class WordLlamaEmbedder(Embedder):
    """Static token embeddings from the wordllama wheel: no network, no torch, ~20k sentences/s."""

    kind = "wordllama"

    def __init__(self, model: str = "", dimensions: int = 256, batch_size: int = 256) -> None:
        import wordllama
        from wordllama import WordLlama

        self.model = model or "l2_supercat"
        if dimensions not in (64, 128, 256):
            raise PandoError(f"[rag] dimensions must be 64, 128 or 256 for wordllama, not {dimensions}")
        # the wheel's own folder holds the weights and the tokenizer; disable_download keeps it offline
        self._model = WordLlama.load(
            self.model,
            cache_dir=Path(wordllama.__file__).parent,
            disable_download=True,
            trunc_dim=None if dimensions == 256 else dimensions,
        )
        self.dimension = dimensions
        self.batch_size = batch_size

    @property
    def slug(self) -> str:
        return slug(f"wordllama_{self.model}_{self.dimension}")

    def _embed(self, texts: list[str]) -> np.ndarray:
        return np.asarray(self._model.embed(texts, norm=True), dtype=np.float32)


class _HttpEmbedder(Embedder):
    def __init__(self, base_url: str, model: str, timeout: float, batch_size: int, headers: dict[str, str] | None = None) -> None:
        import httpx

        self.base_url = base_url.rstrip("/")
        self.model = model
        self.batch_size = batch_size
        self.timeout = timeout
        self._http = httpx.Client(timeout=httpx.Timeout(timeout, connect=min(timeout, 10.0)), headers=headers or {})

    def _post(self, path: str, body: dict[str, Any]) -> Any:
        import httpx

        url = self.base_url + path
        try:
            response = self._http.post(url, json=body)
        except httpx.TimeoutException:
            raise EmbedderError(f"{self.kind} embedder: {url} did not answer within {self.timeout:g} s") from None
        except httpx.HTTPError as exc:
            raise EmbedderError(f"{self.kind} embedder: cannot reach {url}: {exc.__class__.__name__}") from None
        if response.status_code >= 400:
            detail = " ".join(response.text.split())[:160]
            raise EmbedderError(f"{self.kind} embedder: {url} answered HTTP {response.status_code}: {detail}")
        try:
            return response.json()
        except ValueError:
            raise EmbedderError(f"{self.kind} embedder: {url} did not answer JSON") from None

    def _matrix(self, vectors: Any, expected: int) -> np.ndarray:
        try:
            matrix = np.asarray(vectors, dtype=np.float32)
        except (TypeError, ValueError):
            raise EmbedderError(f"{self.kind} embedder: the answer's vectors are not lists of numbers") from None
        if matrix.ndim != 2 or matrix.shape[0] != expected:
            raise EmbedderError(f"{self.kind} embedder: expected {expected} vectors, the server sent {len(vectors or [])}")
        return matrix

    def close(self) -> None:
        self._http.close()


class OpenAIEmbedder(_HttpEmbedder):
    """Any OpenAI-compatible ``POST {base}/v1/embeddings``."""

    kind = "openai"

    def __init__(self, base_url: str, api_key: str, model: str = "", timeout: float = 90.0, batch_size: int = 64) -> None:
        if not api_key:
            raise PandoError("[rag] embedder = openai needs an API key ([rag] api_key, a [rag] provider, or OPENAI_API_KEY)")
        base = (base_url or "https://api.openai.com").rstrip("/").removesuffix("/v1")
        super().__init__(base, model or "text-embedding-3-small", timeout, min(batch_size, 2048), {"Authorization": f"Bearer {api_key}"})

    def _embed(self, texts: list[str]) -> np.ndarray:
        answer = self._post("/v1/embeddings", {"model": self.model, "input": texts})
        try:
            rows = sorted(answer["data"], key=lambda row: row.get("index", 0))
            vectors = [row["embedding"] for row in rows]
        except (KeyError, TypeError, AttributeError):
            raise EmbedderError("openai embedder: the answer has no data[].embedding") from None
        return self._matrix(vectors, len(texts))


class OllamaEmbedder(_HttpEmbedder):
    """Ollama's batch ``POST /api/embed {model, input: [...]}``."""

    kind = "ollama"

    def __init__(self, base_url: str = "", model: str = "", timeout: float = 90.0, batch_size: int = 64) -> None:
        base = (base_url or "http://localhost:11434").rstrip("/").removesuffix("/v1").removesuffix("/api")
        super().__init__(base, model or "nomic-embed-text", timeout, batch_size)

    def _embed(self, texts: list[str]) -> np.ndarray:
        answer = self._post("/api/embed", {"model": self.model, "input": texts})
        if not isinstance(answer, dict) or "embeddings" not in answer:
            raise EmbedderError("ollama embedder: the answer has no embeddings")
        return self._matrix(answer["embeddings"], len(texts))


def create_embedder(config: Any) -> Embedder:
    """The embedder a ``RagConfig`` names."""
    import os

    if config.embedder == "wordllama":
        return WordLlamaEmbedder(config.model, config.dimensions)
    if config.embedder == "openai":
        key = config.api_key or os.environ.get("OPENAI_API_KEY", "")
        base = config.base_url or os.environ.get("OPENAI_BASE_URL", "")
        return OpenAIEmbedder(base, key, config.model, config.embed_timeout, config.batch_size)
    if config.embedder == "ollama":
        return OllamaEmbedder(config.base_url, config.model, config.embed_timeout, config.batch_size)
    raise PandoError(f"[rag] embedder must be one of wordllama, openai, ollama, not {config.embedder!r}")
