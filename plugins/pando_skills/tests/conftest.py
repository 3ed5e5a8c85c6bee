"""Shared fixtures of the pando_skills tests: SKILL.md writer, git repositories, a loopback catalog server."""

from __future__ import annotations

import json
import subprocess
import threading
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

import pytest


def write_skill(
    directory: Path, front: str | None = "name: demo\ndescription: Demo", body: str = "Body.\n"
) -> Path:
    """Create `directory/SKILL.md` (front=None → no front matter at all)."""
    directory.mkdir(parents=True, exist_ok=True)
    text = body if front is None else f"---\n{front}\n---\n{body}"
    path = directory / "SKILL.md"
    path.write_text(text, encoding="utf-8")
    return path


@pytest.fixture
def make_skill() -> Callable[..., Path]:
    return write_skill


@pytest.fixture
def dirs(tmp_path: Path) -> tuple[Path, Path]:
    """(workdir, home), both empty temporary directories."""
    workdir = tmp_path / "work"
    home = tmp_path / "home"
    workdir.mkdir()
    home.mkdir()
    return workdir, home


def git(*args: str, cwd: Path) -> str:
    result = subprocess.run(
        [
            "git",
            "-c",
            "user.name=Test",
            "-c",
            "user.email=test@example.com",
            "-c",
            "init.defaultBranch=main",
            *args,
        ],
        cwd=cwd,
        check=True,
        capture_output=True,
        text=True,
        timeout=30,
    )
    return result.stdout.strip()


def make_repo(path: Path, files: dict[str, str]) -> str:
    """A git repository at `path` with `files` committed; returns the commit id."""
    path.mkdir(parents=True, exist_ok=True)
    for rel, content in files.items():
        target = path / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(content, encoding="utf-8")
    git("init", "-q", cwd=path)
    git("add", "-A", cwd=path)
    git("commit", "-q", "-m", "skills", cwd=path)
    return git("rev-parse", "HEAD", cwd=path)


@pytest.fixture
def repo_factory() -> Callable[[Path, dict[str, str]], str]:
    return make_repo


class CatalogServer:
    """A real HTTP server on 127.0.0.1 (random port) implementing the catalog API."""

    def __init__(self) -> None:
        self.skills: list[dict[str, Any]] = []
        self.requests: list[str] = []
        self.search_status = 200
        self.search_body: bytes | None = None  # raw override
        self.detail_enabled = True
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def _send(self, status: int, body: bytes, content_type: str = "application/json") -> None:
                self.send_response(status)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def do_GET(self) -> None:  # noqa: N802
                server.requests.append(self.path)
                parts = urlsplit(self.path)
                if parts.path == "/api/search":
                    if server.search_body is not None:
                        self._send(server.search_status, server.search_body)
                        return
                    query = parse_qs(parts.query)
                    q = query.get("q", [""])[0].lower()
                    limit = int(query.get("limit", ["10"])[0])
                    hits = [
                        s
                        for s in server.skills
                        if q in s.get("name", "").lower() or q in s.get("description", "").lower()
                    ]
                    payload = {"query": q, "searchType": "fuzzy", "skills": hits[:limit], "count": len(hits)}
                    self._send(server.search_status, json.dumps(payload).encode())
                    return
                if parts.path.startswith("/api/skills/") and server.detail_enabled:
                    ident = unquote(parts.path[len("/api/skills/") :])
                    if ident.endswith("/content"):
                        for skill in server.skills:
                            if skill["id"] == ident.removesuffix("/content") and "content" in skill:
                                self._send(200, skill["content"].encode(), "text/markdown")
                                return
                    for skill in server.skills:
                        if skill["id"] == ident:
                            self._send(200, json.dumps(skill).encode())
                            return
                self._send(404, b'{"error": "not found"}')

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(
            target=self.httpd.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True
        )

    def __enter__(self) -> CatalogServer:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
        self.thread.join(timeout=5)


@pytest.fixture
def catalog_server() -> Iterator[CatalogServer]:
    with CatalogServer() as server:
        yield server


@pytest.fixture
def closed_port_url() -> str:
    """A loopback URL where nothing listens (bind, read the port, close)."""
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}"
