"""The fetch tool against a local http.server on 127.0.0.1."""

from __future__ import annotations

import asyncio
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from pando_core.agent.tools.base import PermissionDenied, ToolContext, ToolError, permission_requests
from pando_core.agent.tools.fetch import FetchTool, html_to_markdown, html_to_text
from tests.support.doubles import Asker

PAGE = """<!doctype html><html><head><title>Demo page</title><style>p{color:red}</style>
<script>var secret = "do not show";</script></head>
<body><h1>Hello</h1><p>First <b>bold</b> para with a <a href="/next">link</a>.</p>
<ul><li>one</li><li>two</li></ul><pre>code  block
  indented</pre></body></html>"""


@pytest.fixture
def server():
    release = threading.Event()

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args):  # keep test output quiet
            pass

        def _send(self, status: int, body: bytes, content_type: str) -> None:
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def do_GET(self):
            if self.path == "/page":
                self._send(200, PAGE.encode(), "text/html; charset=utf-8")
            elif self.path == "/json":
                self._send(200, b'{"ok": true}', "application/json")
            elif self.path == "/big":
                self._send(200, b"a" * (6 * 1024 * 1024), "text/plain")
            elif self.path == "/image":
                self._send(200, b"\x89PNG\r\n\x1a\n", "image/png")
            elif self.path == "/redirect":
                self.send_response(302)
                self.send_header("Location", "/page")
                self.send_header("Content-Length", "0")
                self.end_headers()
            elif self.path == "/slow":
                release.wait(10)
                try:
                    self._send(200, b"late", "text/plain")
                except OSError:
                    pass
            else:
                self._send(404, b"nope", "text/plain")

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    httpd.daemon_threads = True
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}"
    finally:
        release.set()
        httpd.shutdown()
        httpd.server_close()


@pytest.fixture(autouse=True)
def no_proxy(monkeypatch):
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy", "all_proxy"):
        monkeypatch.delenv(name, raising=False)


def fetch(tmp_path, asker=None, tool=None, **args):
    """Run the tool as the agent loop does: the core's permission check first, then the tool."""
    ctx = ToolContext(workdir=tmp_path, session_id="s", permissions=asker)
    tool = tool or FetchTool()

    async def call():
        for request in await permission_requests(tool, args, ctx):
            await ctx.ask(request)
        return await tool.run(args, ctx)

    return asyncio.run(call())


def test_fetch_html_as_text_markdown_and_html(server, tmp_path):
    asker = Asker()
    text = fetch(tmp_path, asker, url=f"{server}/page", format="text")
    assert "Hello" in text.content and "First bold para with a link." in text.content
    assert "do not show" not in text.content and "color:red" not in text.content
    assert "<" not in text.content
    assert [r.action for r in asker.requests] == ["fetch"]
    assert asker.requests[0].tool_name == "fetch"

    markdown = fetch(tmp_path, url=f"{server}/page").content
    assert "# Hello" in markdown
    assert "**bold**" in markdown
    assert f"[link]({server}/next)" in markdown
    assert "- one\n- two" in markdown
    assert "```\ncode  block\n  indented\n```" in markdown

    raw = fetch(tmp_path, url=f"{server}/page", format="html")
    assert raw.content == PAGE
    assert raw.metadata["status"] == 200


def test_fetch_non_html_redirect_and_errors(server, tmp_path):
    assert fetch(tmp_path, url=f"{server}/json").content == '{"ok": true}'
    assert "# Hello" in fetch(tmp_path, url=f"{server}/redirect").content
    with pytest.raises(ToolError, match="status code 404"):
        fetch(tmp_path, url=f"{server}/missing")
    with pytest.raises(ToolError, match="binary"):
        fetch(tmp_path, url=f"{server}/image")
    with pytest.raises(ToolError, match="http"):
        fetch(tmp_path, url="file:///etc/passwd")
    with pytest.raises(ToolError, match="format"):
        fetch(tmp_path, url=f"{server}/page", format="pdf")


def test_fetch_size_cap(server, tmp_path):
    result = fetch(tmp_path, url=f"{server}/big", format="text")
    assert result.metadata["truncated"] is True
    assert result.metadata["bytes"] == 5 * 1024 * 1024
    assert result.content.endswith("[Content truncated: the response exceeded 5 MB]")
    small = fetch(tmp_path, tool=FetchTool(max_bytes=1000), url=f"{server}/big")
    assert small.metadata["bytes"] == 1000


def test_fetch_timeout(server, tmp_path):
    started = time.monotonic()
    with pytest.raises(ToolError, match="timed out"):
        fetch(tmp_path, url=f"{server}/slow", timeout=0.3)
    assert time.monotonic() - started < 5


def test_fetch_permission_denied(server, tmp_path):
    with pytest.raises(PermissionDenied):
        fetch(tmp_path, Asker(False), url=f"{server}/page")


def test_html_converters_directly():
    html = "<p>a&amp;b</p><ol><li>x</li><li>y</li></ol><table><tr><th>k</th><td>v</td></tr></table>"
    assert html_to_text(html).splitlines()[0] == "a&b"
    markdown = html_to_markdown(html)
    assert "1. x\n2. y" in markdown
    assert "| k | v |" in markdown
