"""pando-rag in team mode, with real pando processes: two "machines" (two working directories, no
shared ``.pando/``) on one PostgreSQL database. The indexer runs only on the instance holding the
team lease; a session written on the other machine reaches it by NOTIFY and is indexed there; on
the other machine the rag methods say where the service runs."""

from __future__ import annotations

import time

import pytest

from pando_core.testing.instances import InstanceError

pytest.importorskip("psycopg")

pytestmark = [pytest.mark.slow, pytest.mark.timeout(240)]

ENV = {"PANDO_RAG__SESSION_DEBOUNCE": "0.2", "PANDO_RAG__KB_WATCH": "false"}


def until(fn, what, timeout=90.0):
    """Poll *fn* until it gives a truthy value (bounded); instance errors count as not yet."""
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


def test_a_session_written_on_another_machine_is_indexed_by_the_lease_holder(pando_instance, postgres_url, tmp_path):
    env = dict(ENV, PANDO_DATABASE__URL=postgres_url)
    machines = []
    for name in ("alpha", "beta"):
        workdir = tmp_path / name
        workdir.mkdir()
        machines.append(pando_instance(["rag"], env, workdir))
    alpha, beta = machines
    holder = until(
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
    until(lambda: holder.eval(search) == [f"session-{session_id}"], "the other machine's session indexed on the holder")
    error = other.eval(
        "from pando_core.errors import PandoError\n"
        "try:\n    app.call_primary('rag.search_events', {'query': 'pool'})\n    result = None\n"
        "except PandoError as exc:\n    result = str(exc)\n"
    )
    assert error and "service owner" in error, error
