"""The rag engine: the catalog, the vector store and the embedder, and the one lock that keeps a
catalog row and its vector changing together.

Exactly one engine exists per working directory: the primary's rag service builds it (or, in team
mode, any primary talks to the shared chroma server through its own).  Embedding — the slow part —
runs outside the lock; writing a batch of rows and vectors runs inside it, in one SQLite
transaction that is rolled back when chroma refuses the vectors, so a failure leaves nothing
half-written.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pando_core.errors import ValidationError

from .catalog import Catalog
from .config import RagConfig
from .embedders import Embedder, create_embedder
from .jobs import JobRunner
from .search import cosines, rrf
from .store import KINDS, VectorStore

MAX_QUERY_CHARS = 10_000
# how many candidates each leg brings per result asked for
CANDIDATES_PER_RESULT = 3


@dataclass
class Hit:
    id: str
    score: float  # the fused RRF score: orders results
    similarity: float  # cosine similarity with the query: what thresholds compare


def server_namespace(config: RagConfig) -> str:
    """On a shared chroma server each working directory keeps its own collections (their ids are
    its document paths): ``[rag] chroma_namespace``, or the folder's name and a hash of its path."""
    if not config.chroma_url:
        return ""
    import hashlib
    import re

    if config.chroma_namespace:
        return re.sub(r"[^a-z0-9]+", "_", config.chroma_namespace.lower()).strip("_")[:16]
    digest = hashlib.sha256(str(config.workdir.resolve()).encode()).hexdigest()[:6]
    return re.sub(r"[^a-z0-9]+", "_", config.workdir.name.lower()).strip("_")[:8] + digest


def checked_query(query: Any, *, allow_empty: bool = False) -> str:
    if not isinstance(query, str):
        raise ValidationError("query must be a string")
    if not query.strip() and not allow_empty:
        raise ValidationError("query is empty")
    if len(query) > MAX_QUERY_CHARS:
        raise ValidationError(f"query is {len(query):,} characters long; at most {MAX_QUERY_CHARS:,} are accepted")
    return query


def checked_limit(value: Any, default: int, maximum: int = 100) -> int:
    if value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValidationError(f"limit must be a positive integer, not {value!r}")
    return min(value, maximum)


class RagEngine:
    def __init__(self, config: RagConfig, data_dir: Path, embedder: Embedder | None = None) -> None:
        from .code_index import CodeIndex
        from .kb import KnowledgeBase
        from .memory import EventLog

        self.config = config
        self.data_dir = Path(data_dir)
        self.lock = threading.RLock()
        self.embedder = embedder or create_embedder(config)
        self.data_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        self.catalog = Catalog(self.data_dir / "catalog.db")
        try:
            self.vectors = VectorStore.open(self.data_dir / "chroma", self.embedder.slug, config.chroma_url, server_namespace(config))
        except BaseException:
            self.catalog.close()
            raise
        self.jobs = JobRunner()
        self.kb = KnowledgeBase(self)
        self.events = EventLog(self)
        self.code = CodeIndex(self)
        self.opened_at = time.time()

    def close(self) -> None:
        self.jobs.close()
        with self.lock:
            self.vectors.close()
            self.catalog.close()
            self.embedder.close()

    # -- embedding and writing ----------------------------------------------------------------

    def embed(self, texts: list[str]) -> Any:
        return self.embedder.embed_documents(texts)

    def write(self, kind: str, apply_rows, ids: list[str], vectors: Any, documents: list[str], metadatas: list[dict], stale_ids: list[str] = ()) -> Any:  # noqa: ANN001
        """Run ``apply_rows(conn)`` and put the vectors in one step: the SQLite transaction commits
        only when chroma took the vectors.  Returns what ``apply_rows`` returned."""
        with self.lock:
            with self.catalog.transaction() as conn:
                result = apply_rows(conn)
                self.vectors.upsert(kind, ids, vectors, documents, metadatas)
                self.vectors.delete(kind, [i for i in stale_ids if i not in set(ids)])
            return result

    # -- hybrid search --------------------------------------------------------------------------

    def hybrid(
        self,
        kind: str,
        query: str,
        limit: int,
        *,
        vector_where: dict | None = None,
        keyword_where: str = "",
        keyword_params: tuple = (),
        legs: str = "hybrid",
    ) -> list[Hit]:
        """The best ``limit`` ids of ``kind`` for ``query``: vector and keyword legs fused by RRF
        (``legs`` = "vector" or "keyword" keeps one leg, for measuring)."""
        vector = self.embedder.embed_query(query)
        wanted = limit * CANDIDATES_PER_RESULT
        with self.lock:
            by_vector = self.vectors.query(kind, vector.tolist(), wanted, vector_where) if legs != "keyword" else []
            by_keyword = self.catalog.keyword(kind, query, wanted, keyword_where, keyword_params) if legs != "vector" else []
            fused = rrf([[i for i, _ in by_vector], [i for i, _ in by_keyword]])[:limit]
            similarity = dict(by_vector)
            missing = [i for i, _ in fused if i not in similarity]
            similarity.update(cosines(vector, self.vectors.vectors(kind, missing)))
        return [Hit(i, score, similarity.get(i, 0.0)) for i, score in fused]

    # -- status and re-embedding -------------------------------------------------------------------

    def counts(self) -> dict[str, dict[str, int]]:
        with self.lock:
            rows = {
                "kb": self.catalog.scalar("SELECT count(*) FROM kb_chunks"),
                "events": self.catalog.scalar("SELECT count(*) FROM events"),
                "code": self.catalog.scalar("SELECT count(*) FROM code_symbols"),
            }
            return {kind: {"rows": rows[kind], "vectors": self.vectors.count(kind), "collection": self.vectors.name(kind)} for kind in KINDS}

    def reindex(self, progress=None) -> dict[str, int]:  # noqa: ANN001
        """Embed every stored text again with the current embedder, into its own collections."""
        done: dict[str, int] = {}
        sources = {
            "kb": ("SELECT id, content AS text FROM kb_chunks", self.kb.vector_metadata),
            "events": ("SELECT id, content AS text FROM events", self.events.vector_metadata),
            "code": ("SELECT id, name_path || char(10) || doc_string || char(10) || signature || char(10) || substr(source_code, 1, 800) AS text FROM code_symbols", self.code.vector_metadata),
        }
        for kind, (sql, metadata) in sources.items():
            with self.lock:
                rows = self.catalog.rows(sql)
                self.vectors.drop(kind)
            done[kind] = 0
            for start in range(0, len(rows), 256):
                if self.jobs.closing.is_set():
                    return done
                batch = rows[start : start + 256]
                vectors = self.embed([row["text"] for row in batch])
                ids = [row["id"] for row in batch]
                with self.lock:
                    self.vectors.upsert(kind, ids, vectors.tolist(), [row["text"][:2000] for row in batch], [metadata(i) for i in ids])
                done[kind] += len(batch)
                if progress:
                    progress(kind, done[kind], len(rows))
        with self.lock:
            self.catalog.set_meta("embedder_slug", self.embedder.slug)
        return done

    def reconcile(self) -> dict[str, int]:
        """Remove vectors whose catalog row is gone: a process killed between chroma's write and
        the catalog's commit leaves them (and chroma's ``add`` would then keep the old vector)."""
        tables = {"kb": "kb_chunks", "events": "events", "code": "code_symbols"}
        removed = {}
        with self.lock:
            for kind, table in tables.items():
                if self.vectors.count(kind) == self.catalog.scalar(f"SELECT count(*) FROM {table}"):
                    continue
                stored = set(self.vectors.collection(kind).get(include=[])["ids"])
                known = {row[0] for row in self.catalog.conn.execute(f"SELECT id FROM {table}")}
                orphans = sorted(stored - known)
                self.vectors.delete(kind, orphans)
                removed[kind] = len(orphans)
        return removed

    def needs_reindex(self) -> bool:
        with self.lock:
            stored = self.catalog.get_meta("embedder_slug")
            if stored is None:
                self.catalog.set_meta("embedder_slug", self.embedder.slug)
                return False
            return stored != self.embedder.slug
