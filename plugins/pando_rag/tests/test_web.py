"""pando-rag in `pando serve`: a real server process with the plugin (real chromadb, the offline
embedder), a document added by the real CLI, then the counts and the search box over HTTP."""

from __future__ import annotations

import httpx
import pytest

from pando_core.testing.web import WebServerProcess

ENV = {"PANDO_RAG__KB_WATCH": "false"}


@pytest.mark.slow
def test_counts_and_search(run_pando, pando_workdir, pando_env, tmp_path):
    doc = tmp_path / "pools.md"
    doc.write_text("# Pools\n\nConnection pools reuse database sockets instead of opening new ones.\n")
    env = dict(pando_env, **ENV)
    with WebServerProcess(pando_workdir, env, plugins="rag", log_path=tmp_path / "serve.log") as server, \
            httpx.Client(base_url=server.url, timeout=180) as c:
        added = run_pando("--plugins", "rag", "rag", "kb", "add", str(doc), env=ENV, timeout=180)
        assert added.returncode == 0, added.stderr
        status = c.get("/api/rag/status").json()
        assert status["kb"]["documents"] == 1
        page = c.get("/rag").text
        assert 'id="kb-documents">1<' in page and 'name="q"' in page
        found = c.get("/rag", params={"q": "database connection pool"}).text
        assert "pools.md" in found and "reuse database sockets" in found
        assert c.get("/api/rag/search", params={"q": "database connection pool"}).json()[0]["file_path"] == "pools.md"
        assert c.get("/api/rag/search").status_code == 400
