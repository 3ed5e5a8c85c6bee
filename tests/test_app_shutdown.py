"""App shutdown: every provider closed in one event loop; the App's IPC role."""

from __future__ import annotations

import asyncio
from types import SimpleNamespace


class _Closable:
    def __init__(self, log: list, fail: bool = False) -> None:
        self.log, self.fail = log, fail

    async def aclose(self) -> None:
        self.log.append((self, id(asyncio.get_running_loop())))
        if self.fail:
            raise RuntimeError("boom")


def test_shutdown_closes_every_provider_in_one_loop(make_app):
    app = make_app()
    log: list = []
    providers = [_Closable(log, fail=True), _Closable(log), object()]  # one fails, one has no aclose
    app._providers.update({f"p{i}": p for i, p in enumerate(providers)})
    app.shutdown()
    assert [entry[0] for entry in log] == providers[:2]
    assert len({loop for _, loop in log}) == 1
    assert app._providers == {}


def test_aclose_providers_runs_in_the_callers_loop(make_app):
    app = make_app()
    log: list = []
    app._providers["p"] = _Closable(log)

    async def scenario():
        await app.aclose_providers()
        return id(asyncio.get_running_loop())

    loop_id = asyncio.run(scenario())
    assert [entry[1] for entry in log] == [loop_id]
    assert app._providers == {}


def test_shutdown_without_providers_starts_no_loop(make_app, monkeypatch):
    app = make_app()
    calls = []
    monkeypatch.setattr("pando_core.app.asyncio.run", lambda *a, **k: calls.append(a))
    app.shutdown()
    assert calls == []


def test_the_role_follows_the_runtime(make_app):
    app = make_app()
    assert app.role == "primary"  # the only instance holds the lock
    runtime, app.runtime = app.runtime, SimpleNamespace(role="secondary")
    try:
        assert app.role == "secondary"
    finally:
        app.runtime = runtime
