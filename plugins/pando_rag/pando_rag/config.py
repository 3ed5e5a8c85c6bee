"""The ``[rag]`` section: declared once here (light imports only: plugin.py loads it at every start)
and read into a typed ``RagConfig`` by the service."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pando_core.config import ConfigSection, Field

EMBEDDERS = ("wordllama", "openai", "ollama")

SECTION = ConfigSection(
    "rag",
    {
        "kb_path": Field("str", ".pando/kb", "knowledge-base folder of markdown files (relative to the working directory)"),
        "kb_auto_import": Field("bool", True, "import the knowledge-base folder when a primary starts"),
        "kb_watch": Field("bool", True, "watch the knowledge-base folder on the primary and re-import changed files"),
        "kb_max_file_mb": Field("float", 8.0, "markdown files larger than this are skipped (MB)"),
        "auto_index_sessions": Field("bool", True, "index every session's transcript as one event"),
        "session_debounce": Field("float", 1.2, "seconds of quiet before a session's transcript is re-indexed"),
        "embedder": Field("str", "wordllama", "wordllama (offline, default), openai or ollama", choices=EMBEDDERS),
        "model": Field("str", "", "embedding model (default per embedder)"),
        "provider": Field("str", "", "a [providers.NAME] whose base_url and key the openai embedder uses"),
        "base_url": Field("str", "", "embedding server URL (openai: ...; ollama: http://localhost:11434)"),
        "api_key": Field("str", "", "key for the openai embedder (default: the provider's, or OPENAI_API_KEY)", secret=True),
        "dimensions": Field("int", 256, "wordllama: 64, 128 or 256 dimensions"),
        "batch_size": Field("int", 64, "texts per embedding request"),
        "embed_timeout": Field("float", 90.0, "seconds one embedding request may take"),
        "chroma_url": Field("str", "", "a chroma server (http://HOST:PORT) instead of the local store, for teams"),
        "chroma_namespace": Field("str", "", "on a chroma server: this working directory's collection prefix (default: from its path)"),
        "chunk_size": Field("int", 800, "knowledge-base chunk size (characters)"),
        "chunk_overlap": Field("int", 100, "characters shared by consecutive chunks"),
        "enrich": Field("bool", False, "append matching remembrances to every user prompt"),
        "enrich_kb_results": Field("int", 3, "knowledge-base hits the enricher may add"),
        "enrich_events_results": Field("int", 3, "session-event hits the enricher may add"),
        "enrich_code_results": Field("int", 5, "code hits the enricher may add"),
        "enrich_code_project": Field("str", "", "code project the enricher searches ('' = none)"),
        "enrich_events_subject": Field("str", "", "event subject the enricher searches ('' = all)"),
        "enrich_events_last_days": Field("int", 30, "only events of the last N days"),
        "min_score": Field("float", 0.45, "cosine similarity a hit needs to be added by the enricher"),
    },
    "remembrances: knowledge base, session memory and code index",
)


@dataclass(frozen=True)
class RagConfig:
    workdir: Path
    kb_path: Path
    kb_auto_import: bool
    kb_watch: bool
    kb_max_bytes: int
    auto_index_sessions: bool
    session_debounce: float
    embedder: str
    model: str
    base_url: str
    api_key: str
    dimensions: int
    batch_size: int
    embed_timeout: float
    chroma_url: str
    chroma_namespace: str
    chunk_size: int
    chunk_overlap: int
    enrich: bool
    enrich_kb_results: int
    enrich_events_results: int
    enrich_code_results: int
    enrich_code_project: str
    enrich_events_subject: str
    enrich_events_last_days: int
    min_score: float

    @classmethod
    def from_app(cls, app: Any) -> RagConfig:
        values = dict(SECTION.defaults())
        values.update(app.config.section("rag") or {})
        base_url, api_key = values["base_url"], values["api_key"]
        if values["provider"]:
            # the named provider account supplies what [rag] leaves empty
            provider = (app.config.section("providers") or {}).get(values["provider"]) or {}
            base_url = base_url or provider.get("base_url", "")
            api_key = api_key or provider.get("api_key", "")
        return cls.from_dict(values, workdir=Path(app.workdir), base_url=base_url, api_key=api_key)

    @classmethod
    def from_dict(cls, values: dict[str, Any], *, workdir: Path, base_url: str | None = None, api_key: str | None = None) -> RagConfig:
        merged = dict(SECTION.defaults())
        merged.update(values)
        kb_path = Path(merged["kb_path"]).expanduser()
        return cls(
            workdir=workdir,
            kb_path=kb_path if kb_path.is_absolute() else workdir / kb_path,
            kb_auto_import=bool(merged["kb_auto_import"]),
            kb_watch=bool(merged["kb_watch"]),
            kb_max_bytes=int(float(merged["kb_max_file_mb"]) * 1024 * 1024),
            auto_index_sessions=bool(merged["auto_index_sessions"]),
            session_debounce=max(0.0, float(merged["session_debounce"])),
            embedder=merged["embedder"],
            model=merged["model"],
            base_url=merged["base_url"] if base_url is None else base_url,
            api_key=merged["api_key"] if api_key is None else api_key,
            dimensions=int(merged["dimensions"]),
            batch_size=max(1, int(merged["batch_size"])),
            embed_timeout=float(merged["embed_timeout"]),
            chroma_url=merged["chroma_url"].strip(),
            chroma_namespace=merged["chroma_namespace"].strip(),
            chunk_size=max(50, int(merged["chunk_size"])),
            chunk_overlap=max(0, int(merged["chunk_overlap"])),
            enrich=bool(merged["enrich"]),
            enrich_kb_results=int(merged["enrich_kb_results"]),
            enrich_events_results=int(merged["enrich_events_results"]),
            enrich_code_results=int(merged["enrich_code_results"]),
            enrich_code_project=merged["enrich_code_project"],
            enrich_events_subject=merged["enrich_events_subject"],
            enrich_events_last_days=int(merged["enrich_events_last_days"]),
            min_score=float(merged["min_score"]),
        )
