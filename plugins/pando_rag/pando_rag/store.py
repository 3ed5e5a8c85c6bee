"""The vector store: chromadb collections, one per kind, named for the embedder.

Local: a ``PersistentClient`` in ``.pando/rag/chroma/``, opened by the primary's rag service only
(two processes on one persistent directory hang chroma).  Team mode: ``[rag] chroma_url`` points at
a ``chroma run`` server and an ``HttpClient`` is used instead.  Collections are
``pando_<kind>_<embedder slug>`` with cosine space, so changing the embedder starts new collections
instead of mixing dimensions.  We always hand chroma our own vectors: its default embedding
function downloads a model.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from pando_core.errors import PandoError, UnavailableError

KINDS = ("kb", "events", "code")


class VectorStore:
    def __init__(self, client: Any, embedder_slug: str, location: str, namespace: str = "") -> None:
        self.client = client
        self.embedder_slug = embedder_slug
        self.namespace = namespace
        self.location = location
        self._collections: dict[str, Any] = {}

    @classmethod
    def open(cls, directory: Path, embedder_slug: str, chroma_url: str = "", namespace: str = "") -> VectorStore:
        import chromadb
        from chromadb.config import Settings

        settings = Settings(anonymized_telemetry=False)
        if chroma_url:
            parsed = urlparse(chroma_url)
            if parsed.scheme not in ("http", "https") or not parsed.hostname:
                raise PandoError(f"[rag] chroma_url must look like http://HOST:PORT, not {chroma_url!r}")
            port = parsed.port or (443 if parsed.scheme == "https" else 8000)
            try:
                client = chromadb.HttpClient(host=parsed.hostname, port=port, ssl=parsed.scheme == "https", settings=settings)
                client.heartbeat()
            except Exception as exc:  # noqa: BLE001 - chroma raises many kinds; the user needs one line
                raise UnavailableError(f"chroma server {chroma_url} cannot be reached: {str(exc).splitlines()[0][:120]}") from None
            return cls(client, embedder_slug, chroma_url, namespace)
        directory.mkdir(parents=True, exist_ok=True, mode=0o700)
        client = chromadb.PersistentClient(path=str(directory), settings=settings)
        return cls(client, embedder_slug, str(directory))

    def name(self, kind: str) -> str:
        middle = f"{self.namespace}_" if self.namespace else ""
        return f"pando_{kind}_{middle}{self.embedder_slug}"[:63]

    def collection(self, kind: str) -> Any:
        if kind not in self._collections:
            self._collections[kind] = self.client.get_or_create_collection(
                self.name(kind), embedding_function=None, configuration={"hnsw": {"space": "cosine"}}
            )
        return self._collections[kind]

    def upsert(self, kind: str, ids: list[str], vectors: Any, documents: list[str], metadatas: list[dict], known: set[str] | None = None) -> None:
        """Put vectors under ids.  ``known`` (when the caller knows which ids exist) lets the new
        ones go through chroma's ``add``, several times faster than its ``upsert``."""
        if not ids:
            return
        collection = self.collection(kind)
        if known is None:
            collection.upsert(ids=ids, embeddings=vectors, documents=documents, metadatas=metadatas)
            return
        fresh = [i for i, item in enumerate(ids) if item not in known]
        again = [i for i, item in enumerate(ids) if item in known]
        for positions, write in ((fresh, collection.add), (again, collection.upsert)):
            if positions:
                write(
                    ids=[ids[i] for i in positions],
                    embeddings=[vectors[i] for i in positions],
                    documents=[documents[i] for i in positions],
                    metadatas=[metadatas[i] for i in positions],
                )

    def delete(self, kind: str, ids: list[str]) -> None:
        if ids:
            self.collection(kind).delete(ids=ids)

    def query(self, kind: str, vector: Any, limit: int, where: dict | None = None) -> list[tuple[str, float]]:
        """``(id, cosine similarity)`` pairs, most similar first."""
        collection = self.collection(kind)
        answer = collection.query(query_embeddings=[vector], n_results=max(1, limit), where=where or None, include=["distances"])
        ids, distances = answer["ids"][0], answer["distances"][0]
        return [(i, 1.0 - float(d)) for i, d in zip(ids, distances, strict=True)]

    def vectors(self, kind: str, ids: list[str]) -> dict[str, Any]:
        if not ids:
            return {}
        got = self.collection(kind).get(ids=ids, include=["embeddings"])
        return dict(zip(got["ids"], got["embeddings"], strict=True))

    def count(self, kind: str) -> int:
        return self.collection(kind).count()

    def drop(self, kind: str) -> None:
        self._collections.pop(kind, None)
        try:
            self.client.delete_collection(self.name(kind))
        except Exception:  # noqa: BLE001 - absent already
            pass

    def close(self) -> None:
        self._collections.clear()
        # PersistentClient keeps a process-wide system cache per path: clear it so the files are let go
        try:
            from chromadb.api.shared_system_client import SharedSystemClient

            SharedSystemClient.clear_system_cache()
        except Exception:  # noqa: BLE001 - best effort on an older chromadb
            pass
