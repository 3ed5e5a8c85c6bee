"""The knowledge base: markdown documents, chunked, embedded and searchable.

A document's key is its path relative to the folder it was imported from (``/``-separated); its
chunks are ``"{path}#{i}"``.  ``sync_directory`` imports a folder: a file whose mtime (seconds)
equals the stored one is skipped; binary, non-UTF-8, oversized files and symlinks that leave the
folder are skipped with a one-line reason each; ``delete_missing`` removes documents from that
folder whose file is gone.  Documents added by the agent are mirrored into ``[rag] kb_path``, and a
key that would land outside it is refused.
"""

from __future__ import annotations

import json
import os
import posixpath
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pando_core.errors import NotFoundError, ValidationError

from .chunking import chunk_text
from .engine import checked_limit, checked_query

# texts embedded per request while importing many files
IMPORT_BATCH_CHUNKS = 512


def checked_key(file_path: Any) -> str:
    """A document key that stays inside its folder: relative, no ``..``, no empty parts."""
    if not isinstance(file_path, str) or not file_path.strip():
        raise ValidationError("file_path must be a non-empty relative path")
    key = file_path.replace("\\", "/").strip()
    if key.startswith("/") or (len(key) > 1 and key[1] == ":"):
        raise ValidationError(f"file_path {file_path!r} must be relative to the knowledge-base folder")
    normal = posixpath.normpath(key)
    if normal in (".", "") or normal == ".." or normal.startswith("../") or "\x00" in normal:
        raise ValidationError(f"file_path {file_path!r} leaves the knowledge-base folder")
    return normal


def inside(root: Path, candidate: Path) -> bool:
    try:
        candidate.resolve().relative_to(root.resolve())
    except ValueError:
        return False
    return True


@dataclass
class Prepared:
    path: str
    content: str
    metadata: dict[str, Any]
    chunks: list[str]
    source_path: str | None = None
    source_mtime: int | None = None


@dataclass
class SyncStats:
    scanned: int = 0
    added: int = 0
    updated: int = 0
    unchanged: int = 0
    deleted: int = 0
    skipped: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {
            "scanned": self.scanned,
            "added": self.added,
            "updated": self.updated,
            "unchanged": self.unchanged,
            "deleted": self.deleted,
            "skipped": list(self.skipped),
        }


class KnowledgeBase:
    def __init__(self, engine) -> None:  # noqa: ANN001
        self.engine = engine
        self.catalog = engine.catalog

    # -- writing ----------------------------------------------------------------------------

    def prepare(self, path: str, content: str, metadata: dict | None = None, source_path: str | None = None, source_mtime: int | None = None) -> Prepared:
        if not isinstance(content, str):
            raise ValidationError("content must be a string")
        if metadata is not None and not isinstance(metadata, dict):
            raise ValidationError("metadata must be an object")
        config = self.engine.config
        return Prepared(path, content, dict(metadata or {}), chunk_text(content, config.chunk_size, config.chunk_overlap), source_path, source_mtime)

    def write_documents(self, docs: list[Prepared]) -> dict[str, str]:
        """Store prepared documents (embedding first, then one transaction): ``{path: added|updated}``."""
        texts = [chunk for doc in docs for chunk in doc.chunks]
        vectors = self.engine.embed(texts).tolist() if texts else []
        ids, documents, metadatas, stale = [], [], [], []
        for doc in docs:
            for i, chunk in enumerate(doc.chunks):
                ids.append(f"{doc.path}#{i}")
                documents.append(chunk)
                metadatas.append(self._chunk_metadata(doc.path, i, doc.source_path, doc.source_mtime))
        now = int(time.time())

        def apply(conn) -> dict[str, str]:  # noqa: ANN001
            outcome = {}
            for doc in docs:
                old = [row[0] for row in conn.execute("SELECT id FROM kb_chunks WHERE path = ?", (doc.path,))]
                stale.extend(old)
                existed = conn.execute("SELECT 1 FROM kb_documents WHERE path = ?", (doc.path,)).fetchone() is not None
                conn.execute("DELETE FROM kb_chunks WHERE path = ?", (doc.path,))
                conn.execute(
                    "INSERT INTO kb_documents(path, content, metadata, source_path, source_mtime, chunks, created_at, updated_at) "
                    "VALUES (?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT(path) DO UPDATE SET content = excluded.content, "
                    "metadata = excluded.metadata, source_path = excluded.source_path, source_mtime = excluded.source_mtime, "
                    "chunks = excluded.chunks, updated_at = excluded.updated_at",
                    (doc.path, doc.content, json.dumps(doc.metadata), doc.source_path, doc.source_mtime, len(doc.chunks), now, now),
                )
                conn.executemany(
                    "INSERT INTO kb_chunks(id, path, chunk_index, content) VALUES (?, ?, ?, ?)",
                    [(f"{doc.path}#{i}", doc.path, i, chunk) for i, chunk in enumerate(doc.chunks)],
                )
                outcome[doc.path] = "updated" if existed else "added"
            return outcome

        # the stale ids are only known inside the transaction; collect them there, delete after the upsert
        with self.engine.lock:
            with self.catalog.transaction() as conn:
                outcome = apply(conn)
                # the catalog's old chunk ids are exactly the ids chroma may already hold
                self.engine.vectors.upsert("kb", ids, vectors, documents, metadatas, known=set(stale))
                self.engine.vectors.delete("kb", [i for i in stale if i not in set(ids)])
        return outcome

    def _chunk_metadata(self, path: str, index: int, source_path: str | None, source_mtime: int | None) -> dict:
        meta: dict[str, Any] = {"file_path": path, "chunk_index": index}
        if source_path:
            meta["source_path"] = source_path
        if source_mtime is not None:
            meta["source_mtime_unix"] = source_mtime
        return meta

    def vector_metadata(self, chunk_id: str) -> dict:
        row = self.catalog.one(
            "SELECT c.path, c.chunk_index, d.source_path, d.source_mtime FROM kb_chunks c JOIN kb_documents d ON d.path = c.path WHERE c.id = ?",
            (chunk_id,),
        )
        return self._chunk_metadata(row["path"], row["chunk_index"], row["source_path"], row["source_mtime"])

    def add(self, file_path: str, content: str, metadata: dict | None = None, *, mirror: bool = False) -> dict:
        key = checked_key(file_path)
        target = self._mirror_target(key) if mirror else None
        if target is not None:
            # the key the watcher and the next import will give the mirrored file ("x" -> "x.md")
            key = target.relative_to(self.engine.config.kb_path).as_posix()
        # the lock spans the document and its mirror file: a directory sync (delete_missing) checks
        # under it that a source is missing before deleting, so it never sees one half-written
        with self.engine.lock:
            outcome = self.write_documents([self.prepare(key, content, metadata, str(target) if target else None, None)])
            if target is not None:
                target.parent.mkdir(parents=True, exist_ok=True)
                target.write_text(content, encoding="utf-8")
                # remember the mirror's mtime so the watcher and the next import see it as unchanged
                mtime = int(target.stat().st_mtime)
                self.catalog.conn.execute("UPDATE kb_documents SET source_mtime = ? WHERE path = ?", (mtime, key))
        doc = self.get(key)
        return {"file_path": key, "status": outcome[key], "chunks": doc["chunks"], "mirrored_to": str(target) if target else None}

    def _mirror_target(self, key: str) -> Path:
        root = self.engine.config.kb_path
        target = root / key
        if root.exists() and not inside(root, target.parent if target.parent.exists() else root):
            raise ValidationError(f"file_path {key!r} would be written outside {root}")
        if not target.name.lower().endswith(".md"):
            target = target.with_name(target.name + ".md")
        if not inside(root, target):
            raise ValidationError(f"file_path {key!r} would be written outside {root}")
        return target

    def delete(self, file_path: str, *, mirror: bool = False) -> dict:
        key = checked_key(file_path)
        with self.engine.lock:
            row = self.catalog.one("SELECT source_path FROM kb_documents WHERE path = ?", (key,))
            if row is None:
                return {"file_path": key, "deleted": False}
            ids = [r["id"] for r in self.catalog.rows("SELECT id FROM kb_chunks WHERE path = ?", (key,))]
            with self.catalog.transaction() as conn:
                conn.execute("DELETE FROM kb_chunks WHERE path = ?", (key,))
                conn.execute("DELETE FROM kb_documents WHERE path = ?", (key,))
                self.engine.vectors.delete("kb", ids)
        if mirror:
            target = self._mirror_target(key)
            if target.is_file() and not target.is_symlink():
                target.unlink()
        return {"file_path": key, "deleted": True}

    # -- reading ----------------------------------------------------------------------------

    def get(self, file_path: str) -> dict:
        key = checked_key(file_path)
        with self.engine.lock:
            row = self.catalog.one("SELECT * FROM kb_documents WHERE path = ?", (key,))
        if row is None:
            raise NotFoundError(f"no knowledge-base document {key!r}")
        row["metadata"] = json.loads(row["metadata"])
        row["file_path"] = row.pop("path")
        return row

    def list(self, limit: int | None = 100, offset: int = 0) -> list[dict]:
        limit = checked_limit(limit, 100, 10_000)
        with self.engine.lock:
            return self.catalog.rows(
                "SELECT path AS file_path, chunks, length(content) AS size, source_path, updated_at FROM kb_documents "
                "ORDER BY path LIMIT ? OFFSET ?",
                (limit, max(0, int(offset or 0))),
            )

    def count(self) -> int:
        with self.engine.lock:
            return self.catalog.scalar("SELECT count(*) FROM kb_documents")

    def search(self, query: str, limit: int | None = 5, legs: str = "hybrid") -> list[dict]:
        query = checked_query(query)
        limit = checked_limit(limit, 5, 50)
        hits = self.engine.hybrid("kb", query, limit, legs=legs)
        with self.engine.lock:
            rows = {
                row["id"]: row
                for row in self.catalog.rows(
                    f"SELECT id, path, chunk_index, content FROM kb_chunks WHERE id IN ({','.join('?' * len(hits))})",
                    [hit.id for hit in hits],
                )
            } if hits else {}
        out = []
        for rank, hit in enumerate((h for h in hits if h.id in rows), start=1):
            row = rows[hit.id]
            out.append(
                {
                    "source": "kb",
                    "file_path": row["path"],
                    "chunk_index": row["chunk_index"],
                    "content": row["content"],
                    "score": round(hit.score, 6),
                    "similarity": round(hit.similarity, 4),
                    "rank": rank,
                }
            )
        return out

    # -- folders ------------------------------------------------------------------------------

    def read_source(self, root: Path, path: Path) -> tuple[str | None, str | None]:
        """``(text, None)`` or ``(None, reason it is skipped)`` for one file of a folder."""
        if path.is_symlink() and not inside(root, path):
            return None, "a symlink that leaves the folder"
        try:
            size = path.stat().st_size
        except OSError as exc:
            return None, f"cannot be read ({exc.strerror})"
        if size > self.engine.config.kb_max_bytes:
            return None, f"{size / 1048576:.1f} MB, over the [rag] kb_max_file_mb limit"
        try:
            raw = path.read_bytes()
        except OSError as exc:
            return None, f"cannot be read ({exc.strerror})"
        if b"\x00" in raw[:8192]:
            return None, "binary content"
        try:
            return raw.decode("utf-8"), None
        except UnicodeDecodeError as exc:
            return None, f"not UTF-8 (byte {exc.start})"

    def markdown_files(self, root: Path) -> list[Path]:
        found = []
        for directory, subdirs, files in os.walk(root):
            subdirs[:] = sorted(d for d in subdirs if not d.startswith("."))
            found.extend(Path(directory) / name for name in sorted(files) if name.lower().endswith(".md"))
        return found

    def sync_directory(
        self,
        directory: str | Path | None = None,
        *,
        delete_missing: bool = False,
        progress: Callable[[int, int, str], None] | None = None,
        stop: Callable[[], bool] | None = None,
    ) -> dict:
        root = Path(directory).expanduser() if directory else self.engine.config.kb_path
        if not root.is_absolute():
            root = self.engine.config.workdir / root
        if not root.is_dir():
            raise NotFoundError(f"{root} is not a folder")
        root = root.resolve()
        stats = SyncStats()
        with self.engine.lock:
            stored = {row["path"]: row for row in self.catalog.rows("SELECT path, source_path, source_mtime FROM kb_documents")}
        seen: set[str] = set()
        batch: list[Prepared] = []
        batch_chunks = 0
        files = self.markdown_files(root)

        def flush() -> None:
            nonlocal batch, batch_chunks
            if batch:
                for outcome in self.write_documents(batch).values():
                    setattr(stats, outcome, getattr(stats, outcome) + 1)
            batch, batch_chunks = [], 0

        for done, path in enumerate(files, start=1):
            if stop is not None and stop():
                break
            key = path.relative_to(root).as_posix()
            stats.scanned += 1
            seen.add(key)
            if progress:
                progress(done, len(files), key)
            try:
                mtime = int(path.stat().st_mtime)
            except OSError:
                continue
            previous = stored.get(key)
            if previous is not None and previous["source_mtime"] == mtime and previous["source_path"] == str(path):
                stats.unchanged += 1
                continue
            text, reason = self.read_source(root, path)
            if text is None:
                stats.skipped.append(f"{key}: {reason}")
                continue
            if not text.strip():
                stats.unchanged += 1
                continue
            doc = self.prepare(key, text, {"source_path": str(path)}, str(path), mtime)
            batch.append(doc)
            batch_chunks += len(doc.chunks)
            if batch_chunks >= IMPORT_BATCH_CHUNKS:
                flush()
        flush()
        if delete_missing and not (stop is not None and stop()):
            for key, row in stored.items():
                source = row["source_path"]
                if key not in seen and source and inside(root, Path(source)) and not Path(source).exists():
                    with self.engine.lock:
                        if Path(source).exists():
                            continue  # written since by an add that mirrors it
                        self.delete(key)
                    stats.deleted += 1
        return stats.as_dict()

    def sync_file(self, root: Path, path: Path) -> str:
        """The watcher's per-file step: ``added``/``updated``/``unchanged``/``deleted``/``skipped: …``."""
        key = path.relative_to(root).as_posix()
        if path.is_dir():
            return "unchanged"
        if not path.exists():
            return "deleted" if self.delete(key)["deleted"] else "unchanged"
        with self.engine.lock:
            row = self.catalog.one("SELECT source_mtime FROM kb_documents WHERE path = ?", (key,))
        mtime = int(path.stat().st_mtime)
        if row is not None and row["source_mtime"] == mtime:
            return "unchanged"
        text, reason = self.read_source(root, path)
        if text is None:
            return f"skipped: {reason}"
        if not text.strip():
            return "unchanged"
        return self.write_documents([self.prepare(key, text, {"source_path": str(path)}, str(path), mtime)])[key]
