"""pytest fixtures for Pando and its plugin authors (registered through the ``pytest11`` entry point).

Fixtures:
- ``pando_env``: an isolated environment (HOME, XDG dirs, no PANDO_* leaking in) as a dict, also
  applied to ``os.environ`` for the test.
- ``pando_workdir``: a temporary working directory inside that environment.
- ``make_pando_context(plugins=..., extra_plugins=...)``: a ``PandoContext`` with exactly the
  named installed plugins and/or plugin objects registered directly (no installation needed).
- ``model_server``: a running ``ScriptedModelServer`` (real HTTP on loopback).
- ``make_app(plugins=..., extra_plugins=..., model_server=...)``: an ``App`` on a temporary
  working directory, configured to use the scripted model server.
- ``run_pando(*args, cwd=..., env=..., input=...)``: runs the real ``pando`` CLI in a subprocess.
- ``pando_instance(plugins=..., env=...)``: a real pando process on the working directory, driven
  with ``eval(code)`` (``app`` in scope), ``kill()`` (SIGKILL), ``stop()``; stopped after the test.
- ``pando_pair(plugins=..., secondary_plugins=..., env=...)``: a primary and then a secondary.
Heavy modules are imported inside the fixtures so that merely having Pando installed does not
slow down anyone's test session.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest


def _is_pando_setting(name: str) -> bool:
    """A variable pando reads as configuration; PANDO_TEST_* tell the test harness where tools are."""
    return name.startswith("PANDO_") and not name.startswith("PANDO_TEST_")


@pytest.fixture
def pando_env(tmp_path_factory, monkeypatch):
    home = tmp_path_factory.mktemp("home")
    env = {k: v for k, v in os.environ.items() if not _is_pando_setting(k)}
    env.update(
        HOME=str(home),
        XDG_CONFIG_HOME=str(home / ".config"),
        XDG_RUNTIME_DIR=str(home / ".run"),
        OPENAI_API_KEY="",
        ANTHROPIC_API_KEY="",
    )
    env.pop("OPENAI_BASE_URL", None)
    (home / ".run").mkdir(mode=0o700)
    for key in list(os.environ):
        if _is_pando_setting(key):
            monkeypatch.delenv(key)
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    monkeypatch.delenv("OPENAI_BASE_URL", raising=False)
    return env


@pytest.fixture
def pando_workdir(tmp_path, pando_env) -> Path:
    workdir = tmp_path / "work"
    workdir.mkdir()
    return workdir


@pytest.fixture
def make_pando_context(pando_workdir, pando_env):
    from pando_core.context import PandoContext, set_current

    def make(plugins: list[str] | None = None, extra_plugins: dict | None = None, workdir: Path | None = None):
        context = PandoContext(
            workdir or pando_workdir,
            requested_plugins=plugins if plugins is not None else [],
            extra_plugins=extra_plugins,
            env=pando_env,
        )
        set_current(context)
        return context

    yield make
    set_current(None)


@pytest.fixture
def model_server():
    from pando_core.testing.model_server import ScriptedModelServer

    server = ScriptedModelServer()
    server.start()
    try:
        yield server
    finally:
        server.stop()


def write_model_config(workdir: Path, base_url: str, model: str = "test-model", extra: str = "") -> Path:
    """Point a working directory's ``.pando.toml`` at an OpenAI-compatible server."""
    path = workdir / ".pando.toml"
    path.write_text(
        f'[agent]\nmodel = "scripted/{model}"\n\n'
        f'[providers.scripted]\ntype = "openai"\nbase_url = "{base_url}"\napi_key = "test"\n' + extra,
        encoding="utf-8",
    )
    return path


@pytest.fixture
def make_app(make_pando_context, pando_workdir):
    apps = []

    def make(plugins=None, extra_plugins=None, model_server=None, workdir=None, options=None, config: str = ""):
        from pando_core.app import App, AppOptions

        wd = workdir or pando_workdir
        if model_server is not None:
            write_model_config(wd, model_server.base_url, extra=config)
        elif config:
            (wd / ".pando.toml").write_text(config, encoding="utf-8")
        context = make_pando_context(plugins=plugins, extra_plugins=extra_plugins, workdir=wd)
        app = App.create(context, options or AppOptions(startup_mode="run"))
        apps.append(app)
        return app

    yield make
    for app in reversed(apps):
        app.shutdown()


@pytest.fixture
def run_pando(pando_env, pando_workdir):
    def run(*args: str, cwd: Path | None = None, env: dict | None = None, input: str | None = None, timeout: float = 120):
        full_env = dict(pando_env)
        full_env.update(env or {})
        return subprocess.run(
            [sys.executable, "-m", "pando_core", *args],
            cwd=cwd or pando_workdir,
            env=full_env,
            input=input,
            capture_output=True,
            text=True,
            timeout=timeout,
        )

    return run


@pytest.fixture
def pando_instance(pando_env, pando_workdir, tmp_path):
    """``pando_instance(plugins=[...], env={...}, workdir=...)`` -> a started ``PandoInstance``."""
    from pando_core.testing.instances import PandoInstance

    started: list = []

    def start(plugins: list[str] | None = None, env: dict | None = None, workdir: Path | None = None):
        merged = dict(pando_env)
        for key, value in (env or {}).items():
            if key == "PYTHONPATH":
                value = value + os.pathsep + merged.get("PYTHONPATH", "")
            merged[key] = value
        log = tmp_path / f"instance-{len(started)}.log"
        instance = PandoInstance(workdir or pando_workdir, plugins=plugins, env=merged, log_path=log)
        started.append(instance)
        return instance.start()

    yield start
    for instance in reversed(started):
        instance.kill()


@pytest.fixture
def pando_pair(pando_instance):
    """``primary, secondary = pando_pair(plugins=[...], secondary_plugins=None, env=None)``."""

    def start(plugins: list[str] | None = None, secondary_plugins: list[str] | None = None, env: dict | None = None):
        primary = pando_instance(plugins, env)
        if primary.info.get("role") != "primary":
            raise RuntimeError(f"the first instance is {primary.info.get('role')}, not the primary")
        secondary = pando_instance(plugins if secondary_plugins is None else secondary_plugins, env)
        if secondary.info.get("role") != "secondary":
            raise RuntimeError(f"the second instance is {secondary.info.get('role')}, not a secondary")
        return primary, secondary

    return start


@pytest.fixture(scope="session")
def postgres_server():
    """A real PostgreSQL server for the test session (Debian's binaries, loopback, stopped by pid
    at the end). Skipped where the binaries are missing, except under CI, which must have them."""
    from pando_core.testing.postgres import find_bindir, temporary_server

    if find_bindir() is None:
        if os.environ.get("CI"):
            pytest.fail("PostgreSQL server binaries not found; .ci/run installs them")
        pytest.skip("PostgreSQL server binaries not found (apt-get install postgresql)")
    with temporary_server() as server:
        yield server


@pytest.fixture
def postgres_url(postgres_server, request) -> str:
    """The SQLAlchemy URL of a new, empty database on :func:`postgres_server`, for this test."""
    import re

    name = "t_" + re.sub(r"[^a-z0-9]+", "_", request.node.name.lower())[:40] + f"_{os.getpid()}"
    return postgres_server.create_database(name)


def database_backend() -> str:
    """``sqlite`` (the default) or ``postgres``: which engine the database tests run on
    (``PANDO_TEST_DATABASE=postgres``; CI runs them on both)."""
    backend = os.environ.get("PANDO_TEST_DATABASE", "sqlite").strip().lower() or "sqlite"
    if backend in ("postgresql", "pg"):
        backend = "postgres"
    if backend not in ("sqlite", "postgres"):
        raise ValueError(f"PANDO_TEST_DATABASE must be sqlite or postgres, not {backend!r}")
    return backend


@pytest.fixture
def pando_database(tmp_path, request):
    """A new empty database on the backend ``PANDO_TEST_DATABASE`` selects: a SQLite file in
    ``tmp_path/.pando/`` or a fresh PostgreSQL database on :func:`postgres_server`."""
    if database_backend() == "postgres":
        from pando_core.db.postgres import PostgresDatabase

        database = PostgresDatabase(request.getfixturevalue("postgres_url"), writer_id="test")
    else:
        from pando_core.db import Database

        database = Database(tmp_path / ".pando" / "pando.db")
    yield database
    database.dispose()

