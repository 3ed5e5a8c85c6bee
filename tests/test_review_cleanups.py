"""Review mends: providers closed in one loop, the snapshot kind probed once, one one-line helper."""

from __future__ import annotations

import asyncio
import subprocess

import pytest

from pando_core.services import snapshots as snapshots_mod
from pando_core.services.snapshots import SnapshotService


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


def test_ipc_is_primary_follows_the_role(make_app):
    app = make_app()
    assert app.ipc_is_primary is (app.role == "primary")


@pytest.mark.parametrize("make_git", [True, False])
def test_snapshot_kind_is_probed_once(tmp_path, monkeypatch, make_git):
    workdir = tmp_path / "w"
    workdir.mkdir()
    if make_git:
        subprocess.run(["git", "init", "-q"], cwd=workdir, check=True)
    (workdir / "a.txt").write_text("a\n")
    probes = []
    real = snapshots_mod._Git.probe
    monkeypatch.setattr(snapshots_mod._Git, "probe", staticmethod(lambda wd: probes.append(wd) or real(wd)))
    service = SnapshotService(workdir, store_dir=tmp_path / "store")
    kinds = {service.take(label).kind for label in ("start", "end", "again")}
    assert kinds == {"git" if make_git else "files"}
    assert len(probes) == 1


def test_one_line_helper_is_shared():
    from pando_core.agent.providers import retry
    from pando_core.errors import one_line
    from pando_core.noninteractive import short

    assert short is one_line and retry.one_line is one_line
    assert one_line("a \n b\t c") == "a b c"
    assert one_line("x" * 150) == "x" * 99 + "…"
    assert one_line("y" * 400, 300) == "y" * 299 + "…"
