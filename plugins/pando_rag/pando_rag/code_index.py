"""The code index: projects, files and their tree-sitter symbols, searchable by meaning and by name.

``index_project`` returns a job id at once; the job walks the project (skipping dot folders and
``node_modules``, ``vendor``, ``dist``, ``build``, ``__pycache__``, ``target``), skips files whose
sha256 is unchanged, replaces a changed file's symbols and embeds ``name_path``, docstring,
signature and the start of the source.  Jobs run one at a time on the engine's own worker; their
state (total, indexed, skipped, failed, progress, warnings) is kept in memory.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import time
import uuid
from pathlib import Path

from pando_core.errors import NotFoundError, ValidationError

from .code_parser import EXTENSIONS, parse_symbols
from .engine import checked_limit, checked_query

SKIPPED_DIRS = {"node_modules", "vendor", "dist", "build", "__pycache__", "target"}
MAX_FILE_BYTES = 2 * 1024 * 1024
EMBED_BATCH = 64


def project_id_for(name: str) -> str:
    text = re.sub(r"[/\\ .]+", "_", name)
    text = re.sub(r"[^A-Za-z0-9_-]", "", text)
    text = re.sub(r"_+", "_", text).strip("_")
    if not text:
        raise ValidationError(f"cannot make a project id of {name!r}")
    return text


def _embed_text(row: dict) -> str:
    return f"{row['name_path']}\n{row['doc_string']}\n{row['signature']}\n{row['source_code'][:800]}"


class CodeIndex:
    def __init__(self, engine) -> None:  # noqa: ANN001
        self.engine = engine
        self.catalog = engine.catalog

    def vector_metadata(self, symbol_id: str) -> dict:
        row = self.catalog.one("SELECT * FROM code_symbols WHERE id = ?", (symbol_id,))
        return self._metadata(row)

    @staticmethod
    def _metadata(row: dict) -> dict:
        return {
            "project_id": row["project_id"],
            "file_path": row["file_path"],
            "language": row["language"],
            "symbol_type": row["symbol_type"],
            "name": row["name"],
            "name_path": row["name_path"],
            "lines": f"{row['start_line']}-{row['end_line']}",
        }

    # -- indexing -----------------------------------------------------------------------------

    def index_project(self, project_path: str, project_name: str | None = None, languages: list[str] | None = None) -> dict:
        root = Path(project_path).expanduser()
        if not root.is_absolute():
            root = self.engine.config.workdir / root
        if not root.is_dir():
            raise NotFoundError(f"{root} is not a folder")
        root = root.resolve()
        project_id = project_id_for(project_name or root.name)
        wanted = set(languages or [])
        unknown = wanted - set(EXTENSIONS.values())
        if unknown:
            raise ValidationError(f"unknown languages {sorted(unknown)}; known: {sorted(set(EXTENSIONS.values()))}")
        with self.engine.lock:
            self.catalog.conn.execute(
                "INSERT INTO code_projects(project_id, name, root_path, status) VALUES (?, ?, ?, 'in_progress') "
                "ON CONFLICT(project_id) DO UPDATE SET root_path = excluded.root_path, status = 'in_progress'",
                (project_id, project_name or root.name, str(root)),
            )
        return self.engine.jobs.start("code_index", lambda job: self._run_job(job, root, wanted), project_id=project_id, indexed=0, skipped=0, failed=0, symbols=0, warnings=[])

    def status(self, job_id: str) -> dict:
        return self.engine.jobs.get(job_id)

    def _files(self, root: Path, wanted: set[str]) -> list[tuple[Path, str]]:
        found = []
        for directory, subdirs, files in os.walk(root):
            subdirs[:] = sorted(d for d in subdirs if not d.startswith(".") and d not in SKIPPED_DIRS)
            for name in sorted(files):
                language = EXTENSIONS.get(os.path.splitext(name)[1].lower())
                if language and (not wanted or language in wanted or (language == "tsx" and "typescript" in wanted)):
                    found.append((Path(directory) / name, language))
        return found

    def _run_job(self, job: dict, root: Path, wanted: set[str]) -> None:
        project_id = job["project_id"]
        try:
            files = self._files(root, wanted)
            job["total"] = len(files)
            stats: dict[str, int] = {}
            for done, (path, language) in enumerate(files, start=1):
                if self.engine.jobs.closing.is_set():
                    job["status"] = "cancelled"
                    break
                rel = path.relative_to(root).as_posix()
                try:
                    outcome = self._index_file(project_id, root, rel, language)
                except Exception as exc:  # noqa: BLE001 - one bad file does not stop the job
                    job["failed"] += 1
                    if len(job["warnings"]) < 100:
                        job["warnings"].append(f"{rel}: {str(exc).splitlines()[0][:160] if str(exc) else type(exc).__name__}")
                else:
                    job["indexed" if outcome is not None else "skipped"] += 1
                    job["symbols"] += outcome or 0
                    stats[language] = stats.get(language, 0) + 1
                job.progress(done, len(files), rel)
            else:
                job["status"] = "completed"
            if job["status"] == "completed":
                self._forget_missing(project_id, {p.relative_to(root).as_posix() for p, _ in files})
            with self.engine.lock:
                self.catalog.conn.execute(
                    "UPDATE code_projects SET status = ?, last_indexed_at = ?, language_stats = ? WHERE project_id = ?",
                    (job["status"], int(time.time()), json.dumps(stats), project_id),
                )
        except BaseException:
            with self.engine.lock:
                self.catalog.conn.execute("UPDATE code_projects SET status = 'failed' WHERE project_id = ?", (project_id,))
            raise
        return {"indexed": job["indexed"], "skipped": job["skipped"], "failed": job["failed"], "symbols": job["symbols"]}

    def _forget_missing(self, project_id: str, present: set[str]) -> None:
        with self.engine.lock:
            stored = [r["file_path"] for r in self.catalog.rows("SELECT file_path FROM code_files WHERE project_id = ?", (project_id,))]
        for rel in stored:
            if rel not in present:
                self._replace_symbols(project_id, rel, None, [], None)

    def _index_file(self, project_id: str, root: Path, rel: str, language: str, *, force: bool = False) -> int | None:
        """Symbols written for one file, or None when its hash is unchanged."""
        path = root / rel
        if path.stat().st_size > MAX_FILE_BYTES:
            raise ValidationError(f"over {MAX_FILE_BYTES // 1048576} MB, not indexed")
        source = path.read_bytes()
        digest = hashlib.sha256(source).hexdigest()
        with self.engine.lock:
            stored = self.catalog.scalar("SELECT file_hash FROM code_files WHERE project_id = ? AND file_path = ?", (project_id, rel))
        if stored == digest and not force:
            return None
        symbols = parse_symbols(language, source)
        ids = [str(uuid.uuid4()) for _ in symbols]
        rows = [
            {
                "id": ids[i],
                "project_id": project_id,
                "file_path": rel,
                "language": language,
                "symbol_type": s.symbol_type,
                "name": s.name,
                "name_path": s.name_path,
                "parent_id": ids[s.parent_index] if s.parent_index is not None else None,
                "start_line": s.start_line,
                "end_line": s.end_line,
                "signature": s.signature,
                "doc_string": s.doc_string,
                "source_code": s.source_code,
            }
            for i, s in enumerate(symbols)
        ]
        vectors = []
        for start in range(0, len(rows), EMBED_BATCH):
            vectors.extend(self.engine.embed([_embed_text(r) for r in rows[start : start + EMBED_BATCH]]).tolist())
        self._replace_symbols(project_id, rel, language, rows, digest, vectors)
        return len(rows)

    def _replace_symbols(self, project_id: str, rel: str, language: str | None, rows: list[dict], digest: str | None, vectors: list | None = None) -> None:
        with self.engine.lock:
            old = [r["id"] for r in self.catalog.rows("SELECT id FROM code_symbols WHERE project_id = ? AND file_path = ?", (project_id, rel))]
            with self.catalog.transaction() as conn:
                conn.execute("DELETE FROM code_symbols WHERE project_id = ? AND file_path = ?", (project_id, rel))
                if digest is None:
                    conn.execute("DELETE FROM code_files WHERE project_id = ? AND file_path = ?", (project_id, rel))
                else:
                    conn.executemany(
                        "INSERT INTO code_symbols(id, project_id, file_path, language, symbol_type, name, name_path, parent_id, "
                        "start_line, end_line, signature, doc_string, source_code) VALUES (:id, :project_id, :file_path, :language, "
                        ":symbol_type, :name, :name_path, :parent_id, :start_line, :end_line, :signature, :doc_string, :source_code)",
                        rows,
                    )
                    conn.execute(
                        "INSERT INTO code_files(project_id, file_path, language, file_hash, symbols_count, indexed_at) VALUES (?, ?, ?, ?, ?, ?) "
                        "ON CONFLICT(project_id, file_path) DO UPDATE SET language = excluded.language, file_hash = excluded.file_hash, "
                        "symbols_count = excluded.symbols_count, indexed_at = excluded.indexed_at",
                        (project_id, rel, language, digest, len(rows), int(time.time())),
                    )
                if rows:
                    self.engine.vectors.upsert("code", [r["id"] for r in rows], vectors, [_embed_text(r)[:2000] for r in rows], [self._metadata(r) for r in rows])
                self.engine.vectors.delete("code", old)

    def reindex_file(self, project_id: str, file_path: str) -> dict:
        project = self._project(project_id)
        root = Path(project["root_path"])
        target = (root / file_path).resolve()
        try:
            rel = target.relative_to(root).as_posix()
        except ValueError:
            raise ValidationError(f"{file_path!r} is outside project {project_id}") from None
        language = EXTENSIONS.get(target.suffix.lower())
        if language is None:
            raise ValidationError(f"{file_path!r} is not a file of a language the index knows")
        if not target.is_file():
            self._replace_symbols(project_id, rel, None, [], None)
            return {"file_path": rel, "symbols": 0, "removed": True}
        return {"file_path": rel, "symbols": self._index_file(project_id, root, rel, language, force=True)}

    # -- reading ------------------------------------------------------------------------------

    def _project(self, project_id: str) -> dict:
        with self.engine.lock:
            row = self.catalog.one("SELECT * FROM code_projects WHERE project_id = ?", (project_id,))
        if row is None:
            raise NotFoundError(f"no code project {project_id!r} (see `pando rag code index`)")
        row["language_stats"] = json.loads(row["language_stats"])
        return row

    def list_projects(self) -> list[dict]:
        with self.engine.lock:
            rows = self.catalog.rows(
                "SELECT p.*, (SELECT count(*) FROM code_files f WHERE f.project_id = p.project_id) AS files, "
                "(SELECT count(*) FROM code_symbols s WHERE s.project_id = p.project_id) AS symbols FROM code_projects p ORDER BY project_id"
            )
        for row in rows:
            row["language_stats"] = json.loads(row["language_stats"])
        return rows

    def project_stats(self, project_id: str) -> dict:
        project = self._project(project_id)
        with self.engine.lock:
            project["files"] = self.catalog.scalar("SELECT count(*) FROM code_files WHERE project_id = ?", (project_id,))
            project["symbols"] = self.catalog.scalar("SELECT count(*) FROM code_symbols WHERE project_id = ?", (project_id,))
            project["symbol_types"] = {r["symbol_type"]: r["n"] for r in self.catalog.rows("SELECT symbol_type, count(*) AS n FROM code_symbols WHERE project_id = ? GROUP BY symbol_type", (project_id,))}
        return project

    def delete_project(self, project_id: str) -> dict:
        self._project(project_id)
        with self.engine.lock:
            ids = [r["id"] for r in self.catalog.rows("SELECT id FROM code_symbols WHERE project_id = ?", (project_id,))]
            with self.catalog.transaction() as conn:
                conn.execute("DELETE FROM code_projects WHERE project_id = ?", (project_id,))
                self.engine.vectors.delete("code", ids)
        return {"project_id": project_id, "deleted": True, "symbols": len(ids)}

    @staticmethod
    def _present(row: dict, include_body: bool = True) -> dict:
        out = {
            "source": "code",
            "id": row["id"],
            "project_id": row["project_id"],
            "file_path": row["file_path"],
            "language": row["language"],
            "symbol_type": row["symbol_type"],
            "name": row["name"],
            "name_path": row["name_path"],
            "start_line": row["start_line"],
            "end_line": row["end_line"],
            "signature": row["signature"],
            "doc_string": row["doc_string"],
        }
        if include_body:
            out["source_code"] = row["source_code"]
        return out

    def _filters(self, project_id: str, languages: list[str] | None, symbol_types: list[str] | None) -> tuple[dict, str, tuple]:
        where: list[dict] = [{"project_id": project_id}]
        clauses, params = ["t.project_id = ?"], [project_id]
        for key, values in (("language", languages), ("symbol_type", symbol_types)):
            if values:
                if not isinstance(values, list) or not all(isinstance(v, str) for v in values):
                    raise ValidationError(f"{key}s must be a list of strings")
                where.append({key: {"$in": values}})
                clauses.append(f"t.{key} IN ({','.join('?' * len(values))})")
                params.extend(values)
        return (where[0] if len(where) == 1 else {"$and": where}), " AND ".join(clauses), tuple(params)

    def hybrid_search(self, project_id: str, query: str, limit: int | None = 20, languages: list[str] | None = None, symbol_types: list[str] | None = None) -> list[dict]:
        query = checked_query(query)
        limit = checked_limit(limit, 20, 100)
        self._project(project_id)
        vector_where, clauses, params = self._filters(project_id, languages, symbol_types)
        hits = self.engine.hybrid("code", query, limit, vector_where=vector_where, keyword_where=clauses, keyword_params=params)
        if not hits:
            return []
        with self.engine.lock:
            rows = {r["id"]: r for r in self.catalog.rows(f"SELECT * FROM code_symbols WHERE id IN ({','.join('?' * len(hits))})", [h.id for h in hits])}
        out = []
        for h in hits:
            if h.id in rows:
                item = self._present(rows[h.id])
                item["source_code"] = item["source_code"][:1500]
                item.update(score=round(h.score, 6), similarity=round(h.similarity, 4))
                out.append(item)
        return out

    def find_symbol(
        self,
        project_id: str,
        name_path_pattern: str,
        relative_path: str | None = None,
        symbol_types: list[str] | None = None,
        languages: list[str] | None = None,
        include_body: bool = False,
        depth: int = 0,
        substring_matching: bool = False,
        limit: int | None = 50,
    ) -> list[dict]:
        if not isinstance(name_path_pattern, str) or not name_path_pattern.strip():
            raise ValidationError("name_path_pattern must be a non-empty string")
        limit = checked_limit(limit, 50, 500)
        self._project(project_id)
        _, clauses, params = self._filters(project_id, languages, symbol_types)
        pattern = name_path_pattern.strip()
        if pattern.startswith("/"):
            clauses += " AND t.name_path = ?"
            params += (pattern[1:],)
        elif substring_matching:
            clauses += " AND instr(t.name_path, ?) > 0"
            params += (pattern,)
        else:
            clauses += " AND (t.name = ? OR t.name_path = ? OR t.name_path LIKE ? ESCAPE '\\')"
            escaped = pattern.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
            params += (pattern, pattern, f"%/{escaped}")
        if relative_path:
            clauses += " AND t.file_path LIKE ? ESCAPE '\\'"
            params += (relative_path.replace("%", "\\%").replace("_", "\\_") + "%",)
        with self.engine.lock:
            rows = self.catalog.rows(f"SELECT * FROM code_symbols t WHERE {clauses} ORDER BY t.file_path, t.start_line LIMIT ?", (*params, limit))
            out = []
            for row in rows:
                item = self._present(row, include_body)
                if depth and depth > 0:
                    item["children"] = self._children(row["id"], depth, include_body)
                out.append(item)
        return out

    def _children(self, parent_id: str, depth: int, include_body: bool) -> list[dict]:
        rows = self.catalog.rows("SELECT * FROM code_symbols WHERE parent_id = ? ORDER BY start_line", (parent_id,))
        out = []
        for row in rows:
            item = self._present(row, include_body)
            if depth > 1:
                item["children"] = self._children(row["id"], depth - 1, include_body)
            out.append(item)
        return out

    def symbols_overview(self, project_id: str, relative_path: str, max_results: int | None = 200) -> list[dict]:
        limit = checked_limit(max_results, 200, 2000)
        self._project(project_id)
        with self.engine.lock:
            rows = self.catalog.rows(
                "SELECT * FROM code_symbols WHERE project_id = ? AND file_path = ? AND parent_id IS NULL ORDER BY start_line LIMIT ?",
                (project_id, relative_path.replace("\\", "/"), limit),
            )
        return [self._present(row, include_body=False) for row in rows]

    def search_pattern(
        self,
        project_id: str,
        pattern: str,
        case_sensitive: bool = False,
        is_regex: bool = False,
        languages: list[str] | None = None,
        symbol_types: list[str] | None = None,
        limit: int | None = 50,
    ) -> list[dict]:
        if not isinstance(pattern, str) or not pattern:
            raise ValidationError("pattern must be a non-empty string")
        limit = checked_limit(limit, 50, 500)
        self._project(project_id)
        _, clauses, params = self._filters(project_id, languages, symbol_types)
        if is_regex:
            try:
                matcher = re.compile(pattern, 0 if case_sensitive else re.IGNORECASE)
            except re.error as exc:
                raise ValidationError(f"pattern is not a valid regular expression: {exc}") from None
        else:
            needle = pattern if case_sensitive else pattern.lower()
            glob = "*" + "".join(f"[{c}]" if c in "*?[" else c for c in pattern) + "*"
            matcher = None
            if case_sensitive:
                clauses += " AND t.source_code GLOB ?"
                params += (glob,)
        out = []
        with self.engine.lock:
            cursor = self.catalog.conn.execute(f"SELECT * FROM code_symbols t WHERE {clauses} ORDER BY t.file_path, t.start_line", params)
            for raw in cursor:
                row = dict(raw)
                source = row["source_code"]
                if matcher is not None:
                    found = matcher.search(source)
                    if not found:
                        continue
                    offset = found.start()
                else:
                    offset = source.find(pattern) if case_sensitive else source.lower().find(needle)
                    if offset < 0:
                        continue
                item = self._present(row, include_body=False)
                item["match_line"] = row["start_line"] + source.count("\n", 0, offset)
                item["match"] = source.splitlines()[source.count("\n", 0, offset)][:300] if source else ""
                out.append(item)
                if len(out) >= limit:
                    break
        return out

