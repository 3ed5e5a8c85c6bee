"""Real pando processes on one working directory.

- a primary and a secondary (``pando_pair``): the primary's rag service indexes the secondary's
  session; the secondary writes and searches through ``call_primary``; after the primary is
  SIGKILLed the promoted secondary's service opens the same store, intact;
- a short-lived ``pando rag ...`` command with no pando running is its own primary and exits;
- team mode: a session written on another "machine" is indexed by the team lease holder.
"""

import json
import time

import pytest

from pando_core.testing.instances import InstanceError

ENV = {"PANDO_RAG__SESSION_DEBOUNCE": "0.2", "PANDO_RAG__KB_WATCH": "false"}


def _until(fn, what, timeout=90.0):
    """Poll ``fn`` until it gives a truthy value; errors count as not yet (the last one is shown)."""
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        try:
            value = fn()
        except InstanceError as exc:
            value, last = None, exc
        if value:
            return value
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what} (last error: {last})")


def test_secondary_session_indexed_search_from_secondary_and_failover(pando_pair):
    primary, secondary = pando_pair(plugins=["rag"], env=ENV)
    added = secondary.eval(
        "result = app.call_primary('rag.kb_add_document', {'file_path': 'pool.md', 'content': 'Connection pools reuse database sockets.'}, timeout=120)",
        timeout=130,
    )
    assert added["status"] == "added"
    assert primary.eval("result = app.services.get('rag') is not None")
    assert secondary.eval("result = app.services.get('rag') is None")
    session_id = secondary.eval(
        "s = app.store.sessions.create(title='Leaky pool')\n"
        "for text in ['the connection pool leaks sockets under load', 'raise the pool limit']:\n"
        "    app.store.messages.create(session_id=s['id'], role='user', parts=[{'type': 'text', 'data': {'text': text}}])\n"
        "result = s['id']"
    )
    search = "result = [e['id'] for e in app.call_primary('rag.search_events', {'query': 'pool leaks sockets', 'subject': 'session'})]"
    _until(lambda: secondary.eval(search) == [f"session-{session_id}"], "the secondary's session to be indexed by the primary")
    # one more message: the same event is updated, not a second one added
    secondary.eval(f"app.store.messages.create(session_id={session_id!r}, role='assistant', parts=[{{'type': 'text', 'data': {{'text': 'done: limit raised'}}}}])")
    count = "result = [e['metadata']['message_count'] for e in app.call_primary('rag.events_list', {'subject': 'session'})]"
    _until(lambda: secondary.eval(count) == [3], "the session event to be updated in place")

    primary.kill()
    secondary.wait_for("result = app.role", "primary", timeout=30)
    status = _until(lambda: secondary.eval("result = app.call_primary('rag.status', timeout=60)", timeout=70), "the rag service on the new primary")
    assert status["collections"]["kb"]["rows"] == status["collections"]["kb"]["vectors"] == 1
    assert status["events"]["sessions"] == 1
    hits = secondary.eval("result = app.call_primary('rag.kb_search_documents', {'query': 'database sockets'})")
    assert hits[0]["file_path"] == "pool.md"
    assert secondary.eval("result = app.services.get('rag') is not None")


def test_a_cli_command_with_no_pando_running_is_its_own_primary(run_pando, pando_workdir):
    docs = pando_workdir / "docs"
    docs.mkdir()
    (docs / "retry.md").write_text("Retries use exponential backoff with jitter.", encoding="utf-8")
    (docs / "bad.md").write_bytes(b"\xff\xfe\x00binary")
    result = run_pando("--plugins", "rag", "rag", "kb", "import", str(docs), timeout=180)
    assert result.returncode == 0, result.stderr
    assert "1 added" in result.stdout and "skipped bad.md: binary content" in result.stdout
    search = run_pando("--plugins", "rag", "rag", "search", "backoff with jitter", "--kb", "--json", timeout=180)
    assert search.returncode == 0, search.stderr
    assert json.loads(search.stdout)[0]["file_path"] == "retry.md"
    listing = run_pando("--plugins", "rag", "rag", "kb", "list", "--json", timeout=180)
    assert [d["file_path"] for d in json.loads(listing.stdout)] == ["retry.md"]
    status = run_pando("--plugins", "rag", "rag", "status", "--json", timeout=180)
    assert json.loads(status.stdout)["collections"]["kb"]["vectors"] == 1


def test_cli_errors_are_one_line(run_pando, pando_workdir):
    long_query = run_pando("--plugins", "rag", "rag", "search", "x" * 100_000, timeout=180)
    assert long_query.returncode != 0
    assert long_query.stderr.strip().startswith("error:") and "100,000 characters" in long_query.stderr
    assert len(long_query.stderr.strip().splitlines()) == 1
    missing = run_pando("--plugins", "rag", "rag", "kb", "get", "nope.md", timeout=180)
    assert missing.returncode != 0 and missing.stderr.strip() == "error: no knowledge-base document 'nope.md'"
    folder = run_pando("--plugins", "rag", "rag", "kb", "import", str(pando_workdir / "absent"), timeout=180)
    assert folder.returncode != 0 and "is not a folder" in folder.stderr and len(folder.stderr.strip().splitlines()) == 1


def test_cli_code_index_and_queries(run_pando, pando_workdir):
    src = pando_workdir / "src"
    src.mkdir()
    (src / "shapes.py").write_text(
        'class Circle:\n    """A round shape."""\n\n    def area(self) -> float:\n        """Pi r squared."""\n        return 3.14\n', encoding="utf-8"
    )
    indexed = run_pando("--plugins", "rag", "rag", "code", "index", str(src), "--name", "shapes", timeout=180)
    assert indexed.returncode == 0, indexed.stderr
    assert indexed.stdout.startswith("shapes: 1 files, 1 indexed, 0 unchanged, 0 failed, 2 symbols")
    again = run_pando("--plugins", "rag", "rag", "code", "index", str(src), "--name", "shapes", timeout=180)
    assert "0 indexed, 1 unchanged" in again.stdout
    symbol = run_pando("--plugins", "rag", "rag", "code", "symbol", "Circle/area", "-p", "shapes", "--json", timeout=180)
    [row] = json.loads(symbol.stdout)
    assert (row["signature"], row["start_line"], row["end_line"]) == ("def area(self) -> float", 4, 6)
    overview = run_pando("--plugins", "rag", "rag", "code", "overview", "shapes.py", "-p", "shapes", "--json", timeout=180)
    assert [r["name"] for r in json.loads(overview.stdout)] == ["Circle"]
    search = run_pando("--plugins", "rag", "rag", "search", "round shape area", "--code", "--json", timeout=180)
    assert json.loads(search.stdout)[0]["source"] == "code"


@pytest.mark.timeout(240)
def test_a_session_written_on_another_machine_is_indexed_by_the_lease_holder(pando_instance, postgres_url, tmp_path):
    """Team mode: two "machines" (two working directories, no shared ``.pando/``) on one PostgreSQL
    database. The indexer runs only on the team lease holder; a session written on the other
    machine reaches it by NOTIFY and is indexed there; the other machine's rag calls name the owner."""
    pytest.importorskip("psycopg")
    env = dict(ENV, PANDO_DATABASE__URL=postgres_url)
    machines = []
    for name in ("alpha", "beta"):
        workdir = tmp_path / name
        workdir.mkdir()
        machines.append(pando_instance(["rag"], env, workdir))
    alpha, beta = machines
    holder = _until(
        lambda: next((m for m in machines if m.eval("result = app.runs_services")), None), "a lease holder", 30
    )
    other = beta if holder is alpha else alpha
    assert other.eval("result = app.runs_services") is False
    session_id = other.eval(
        "s = app.store.sessions.create(title='Leaky pool')\n"
        "app.store.messages.create(session_id=s['id'], role='user', parts=[{'type': 'text', 'data': {'text': 'the connection pool leaks sockets under load'}}])\n"
        "result = s['id']"
    )
    search = "result = [e['id'] for e in app.call_primary('rag.search_events', {'query': 'pool leaks sockets', 'subject': 'session'})]"
    # written at once: the holder's indexer is still opening its store (the embedder loads), and
    # the change must be kept until it is open
    _until(lambda: holder.eval(search) == [f"session-{session_id}"], "the other machine's session indexed on the holder")
    error = other.eval(
        "from pando_core.errors import PandoError\n"
        "try:\n    app.call_primary('rag.search_events', {'query': 'pool'})\n    result = None\n"
        "except PandoError as exc:\n    result = str(exc)\n"
    )
    assert error and "service owner" in error, error
