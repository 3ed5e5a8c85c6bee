"""``pando rag ...``: every command asks the primary (``rag.*`` bus methods), so it works the same
from a secondary; with no pando running, the command's own process is the primary for its run."""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import typer

LONG_CALL = 3600.0


def _fail(message: str, code: int = 1) -> None:
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(code)


def _with_app(work: Callable[[Any], Any]) -> Any:
    """Run ``work(app)`` in an App for this command; any Pando error is one line on stderr."""
    from pando_core.app import App, AppOptions
    from pando_core.context import current
    from pando_core.errors import PandoError, one_line

    try:
        with App.running(current(), AppOptions(startup_mode="rag")) as app:
            return work(app)
    except PandoError as exc:
        _fail(one_line(exc, 300), getattr(exc, "exit_code", 1))
    except KeyboardInterrupt:
        _fail("interrupted", 130)


def _call(app: Any, method: str, params: dict | None = None, timeout: float | None = None) -> Any:
    return app.call_primary(method, params or {}, timeout=timeout)


def _print_json(value: Any) -> None:
    typer.echo(json.dumps(value, ensure_ascii=False, indent=2))


def _snippet(text: str, width: int = 100) -> str:
    line = " ".join((text or "").split())
    return line if len(line) <= width else line[: width - 1] + "…"


def _follow_job(app: Any, job: dict, status_method: str, label: str) -> dict:
    """Poll a job to its end, with a progress bar on a terminal."""
    job_id = job["job_id"]
    deadline = time.monotonic() + LONG_CALL
    bar = None
    if sys.stderr.isatty():
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

        bar = Progress(TextColumn(label), BarColumn(), MofNCompleteColumn(), TextColumn("{task.description}"), transient=True)
        bar.start()
        task = bar.add_task("", total=None)
    try:
        while job["status"] in ("queued", "running") and time.monotonic() < deadline:
            time.sleep(0.1)
            job = _call(app, status_method, {"job_id": job_id})
            if bar is not None:
                bar.update(task, completed=job.get("done", 0), total=job.get("total") or None, description=_snippet(job.get("item", ""), 40))
    finally:
        if bar is not None:
            bar.stop()
    if job["status"] in ("queued", "running"):
        _fail(f"{label}: still running after {LONG_CALL:.0f} s (job {job_id})")
    if job["status"] == "failed":
        _fail(f"{label}: {job.get('error', 'failed')}")
    return job


def build_cli() -> typer.Typer:
    cli = typer.Typer(help="Remembrances: knowledge base, session memory and code index, searched offline.", no_args_is_help=True)
    kb = typer.Typer(help="The knowledge base: markdown documents.", no_args_is_help=True)
    events = typer.Typer(help="Remembered events and session transcripts.", no_args_is_help=True)
    code = typer.Typer(help="The code index: tree-sitter symbols of source trees.", no_args_is_help=True)
    cli.add_typer(kb, name="kb")
    cli.add_typer(events, name="events")
    cli.add_typer(code, name="code")

    @cli.command("status")
    def status(as_json: bool = typer.Option(False, "--json", help="print JSON")) -> None:
        """The store, the embedder, counts per collection and the watcher."""
        info = _with_app(lambda app: _call(app, "rag.status"))
        if as_json:
            _print_json(info)
            return
        embedder = info["embedder"]
        typer.echo(f"store:      {info['store']}{' (team server)' if info['team_mode'] else ''}")
        typer.echo(f"embedder:   {embedder['kind']} {embedder['model']} ({embedder['dimension']} dimensions)")
        if info["needs_reindex"]:
            typer.echo("            the embedder changed since the last index: run `pando rag reindex`")
        labels = {"kb": "kb chunks", "events": "events", "code": "symbols"}
        for kind, counts in info["collections"].items():
            typer.echo(f"{labels.get(kind, kind) + ':':11} {counts['rows']} stored, {counts['vectors']} vectors in {counts['collection']}")
        watcher = info["kb"]["watching"] or ("stopped: " + info["kb"]["watch_error"] if info["kb"]["watch_error"] else "not running (only a long-lived pando watches)")
        typer.echo(f"kb:         {info['kb']['documents']} documents; folder {info['kb']['path']}; watcher: {watcher}")

    @kb.command("import")
    def kb_import(
        directory: Path = typer.Argument(None, help="folder of markdown files (default: [rag] kb_path)"),
        delete_missing: bool = typer.Option(False, "--delete-missing", help="remove documents whose file is gone"),
        as_json: bool = typer.Option(False, "--json", help="print JSON"),
    ) -> None:
        """Import every *.md file of a folder; unchanged files (same mtime) are skipped."""
        path = str(directory.expanduser().resolve()) if directory else None

        def work(app: Any) -> dict:
            job = _call(app, "rag.kb_import_path", {"path": path, "delete_missing": delete_missing, "background": True})
            return _follow_job(app, job, "rag.job_status", "importing")["result"]

        stats = _with_app(work)
        if as_json:
            _print_json(stats)
            return
        typer.echo(f"{stats['scanned']} scanned: {stats['added']} added, {stats['updated']} updated, {stats['unchanged']} unchanged, {stats['deleted']} deleted, {len(stats['skipped'])} skipped")
        for line in stats["skipped"]:
            typer.echo(f"  skipped {line}")

    @kb.command("add")
    def kb_add(
        file: Path = typer.Argument(..., help="a markdown file ('-' reads stdin)"),
        key: str = typer.Option("", "--as", help="document path in the knowledge base (default: the file's name)"),
    ) -> None:
        """Add or update one document; it is also written to the knowledge-base folder."""
        if str(file) == "-":
            content, name = sys.stdin.read(), key
            if not name:
                _fail("--as NAME is needed when the document comes from stdin", 2)
        else:
            try:
                content = file.read_text(encoding="utf-8")
            except (OSError, UnicodeDecodeError) as exc:
                _fail(f"cannot read {file}: {exc.__class__.__name__}: {getattr(exc, 'strerror', None) or exc}")
            name = key or file.name
        result = _with_app(lambda app: _call(app, "rag.kb_add_document", {"file_path": name, "content": content}, LONG_CALL))
        typer.echo(f"{result['status']} {result['file_path']} ({result['chunks']} chunks)")

    @kb.command("list")
    def kb_list(limit: int = typer.Option(100, "--limit", min=1), as_json: bool = typer.Option(False, "--json", help="print JSON")) -> None:
        """The documents of the knowledge base."""
        docs = _with_app(lambda app: _call(app, "rag.kb_list", {"limit": limit}))
        if as_json:
            _print_json(docs)
            return
        for doc in docs:
            typer.echo(f"{doc['file_path']}\t{doc['chunks']} chunks\t{doc['size']} chars")
        if not docs:
            typer.echo("(no documents: `pando rag kb import DIR`)")

    @kb.command("get")
    def kb_get(file_path: str = typer.Argument(...), as_json: bool = typer.Option(False, "--json", help="print JSON")) -> None:
        """Print one document."""
        doc = _with_app(lambda app: _call(app, "rag.kb_get_document", {"file_path": file_path}))
        if as_json:
            _print_json(doc)
        else:
            typer.echo(doc["content"])

    @kb.command("delete")
    def kb_delete(file_path: str = typer.Argument(...)) -> None:
        """Delete one document (and its file in the knowledge-base folder)."""
        result = _with_app(lambda app: _call(app, "rag.kb_delete_document", {"file_path": file_path}))
        typer.echo(f"deleted {result['file_path']}" if result["deleted"] else f"{result['file_path']} was not in the knowledge base")

    @cli.command("search")
    def search(
        query: str = typer.Argument(...),
        in_kb: bool = typer.Option(False, "--kb", help="search the knowledge base"),
        in_events: bool = typer.Option(False, "--events", help="search events (all subjects)"),
        in_code: bool = typer.Option(False, "--code", help="search indexed code"),
        project: list[str] = typer.Option([], "--project", help="code project to search (repeatable; default all)"),
        limit: int = typer.Option(10, "--limit", min=1, max=50),
        as_json: bool = typer.Option(False, "--json", help="print JSON"),
    ) -> None:
        """Hybrid search (meaning + keywords); with no --kb/--events/--code, the KB and sessions."""
        chosen = in_kb or in_events or in_code
        params = {
            "query": query,
            "limit": limit,
            "include_kb": in_kb or not chosen,
            "include_sessions": in_events or not chosen,
            "include_code": in_code or bool(project),
            "project_ids": project,
        }
        if in_events:
            params["subject"] = ""
        results = _with_app(lambda app: _call(app, "rag.search", params))
        if as_json:
            _print_json(results)
            return
        for item in results:
            where = item.get("file_path") if item["source"] == "kb" else item.get("name_path") and f"{item['file_path']}:{item['start_line']} {item['name_path']}" or item.get("id")
            text = item.get("content") or item.get("signature") or ""
            typer.echo(f"{item['rank']:>2}. [{item['source']}] {where}  score {item['score']:.4f}  similarity {item['similarity']:.2f}")
            typer.echo(f"    {_snippet(text)}")
        if not results:
            typer.echo("(nothing found)")

    @events.command("list")
    def events_list(
        subject: str = typer.Option("", "--subject", help="only this subject (e.g. session)"),
        limit: int = typer.Option(20, "--limit", min=1),
        as_json: bool = typer.Option(False, "--json", help="print JSON"),
    ) -> None:
        """The newest events."""
        rows = _with_app(lambda app: _call(app, "rag.events_list", {"subject": subject or None, "limit": limit}))
        if as_json:
            _print_json(rows)
            return
        for row in rows:
            typer.echo(f"{row['event_at']}  {row['subject']}  {row['id']}  {_snippet(row['content'], 70)}")
        if not rows:
            typer.echo("(no events)")

    @code.command("index")
    def code_index(
        path: Path = typer.Argument(Path("."), help="the source tree (default: here)"),
        name: str = typer.Option("", "--name", help="project name (default: the folder's name)"),
        language: list[str] = typer.Option([], "--language", help="only these languages (repeatable)"),
        as_json: bool = typer.Option(False, "--json", help="print JSON"),
    ) -> None:
        """Index a source tree's symbols; unchanged files (same sha256) are skipped."""
        params = {"project_path": str(path.expanduser().resolve()), "project_name": name or None, "languages": language}

        def work(app: Any) -> dict:
            return _follow_job(app, _call(app, "rag.code_index_project", params), "rag.code_index_status", "indexing")

        job = _with_app(work)
        if as_json:
            _print_json(job)
            return
        typer.echo(f"{job['project_id']}: {job['total']} files, {job['indexed']} indexed, {job['skipped']} unchanged, {job['failed']} failed, {job['symbols']} symbols")
        for warning in job.get("warnings", []):
            typer.echo(f"  {warning}")

    def _project_option() -> Any:
        return typer.Option(..., "--project", "-p", help="project id (see `pando rag code list`)")

    @code.command("list")
    def code_list(as_json: bool = typer.Option(False, "--json", help="print JSON")) -> None:
        """The indexed projects."""
        rows = _with_app(lambda app: _call(app, "rag.code_list_projects"))
        if as_json:
            _print_json(rows)
            return
        for row in rows:
            typer.echo(f"{row['project_id']}\t{row['files']} files\t{row['symbols']} symbols\t{row['status']}\t{row['root_path']}")
        if not rows:
            typer.echo("(no projects: `pando rag code index PATH`)")

    @code.command("search")
    def code_search(query: str = typer.Argument(...), project: str = _project_option(), limit: int = typer.Option(10, "--limit", min=1), as_json: bool = typer.Option(False, "--json", help="print JSON")) -> None:
        """Search a project's symbols by meaning and keywords."""
        rows = _with_app(lambda app: _call(app, "rag.code_hybrid_search", {"project_id": project, "query": query, "limit": limit}))
        if as_json:
            _print_json(rows)
            return
        for row in rows:
            typer.echo(f"{row['file_path']}:{row['start_line']}  {row['symbol_type']} {row['name_path']}  similarity {row['similarity']:.2f}\n    {row['signature']}")

    @code.command("symbol")
    def code_symbol(
        pattern: str = typer.Argument(..., help="name or Class/method (a leading / means exact)"),
        project: str = _project_option(),
        body: bool = typer.Option(False, "--body", help="print the source"),
        substring: bool = typer.Option(False, "--substring", help="match anywhere in the name path"),
        as_json: bool = typer.Option(False, "--json", help="print JSON"),
    ) -> None:
        """Find symbols by name path."""
        rows = _with_app(lambda app: _call(app, "rag.code_find_symbol", {"project_id": project, "name_path_pattern": pattern, "include_body": body, "substring_matching": substring}))
        if as_json:
            _print_json(rows)
            return
        for row in rows:
            typer.echo(f"{row['file_path']}:{row['start_line']}-{row['end_line']}  {row['symbol_type']} {row['name_path']}\n    {row['signature']}")
            if body:
                typer.echo(row["source_code"])
        if not rows:
            typer.echo("(no symbol matches)")

    @code.command("overview")
    def code_overview(file_path: str = typer.Argument(..., help="file relative to the project root"), project: str = _project_option(), as_json: bool = typer.Option(False, "--json", help="print JSON")) -> None:
        """The top-level symbols of one file."""
        rows = _with_app(lambda app: _call(app, "rag.code_get_symbols_overview", {"project_id": project, "relative_path": file_path}))
        if as_json:
            _print_json(rows)
            return
        for row in rows:
            typer.echo(f"{row['start_line']:>5}  {row['symbol_type']:10} {row['name_path']}  {row['signature']}")

    @cli.command("reindex")
    def reindex() -> None:
        """Embed everything again with the configured embedder (after changing it)."""

        def work(app: Any) -> dict:
            job = _call(app, "rag.reindex", {"background": True})
            return _follow_job(app, job, "rag.job_status", "re-embedding")["result"]

        done = _with_app(work)
        typer.echo("re-embedded " + ", ".join(f"{n} {kind}" for kind, n in done.items()))

    return cli
