"""``pando lsp status`` of a running pando: a real pando process (``pando_instance``) that has
started a real python-lsp-server and a server that crashes, read by ``pando lsp status`` in
another process; after a SIGKILL of that pando, its stale status is dropped."""

from __future__ import annotations

import json
import os
import signal
import time


def _status(run_pando):
    done = run_pando("--plugins", "lsp", "lsp", "status", "--json")
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def _wait_for(run_pando, check, what, timeout=30.0):
    deadline = time.monotonic() + timeout
    while True:
        shown = _status(run_pando)
        if check(shown):
            return shown
        assert time.monotonic() < deadline, f"pando lsp status never showed {what}: {shown}"
        time.sleep(0.2)


def _pid_alive(pid):
    try:
        data = open(f"/proc/{pid}/stat").read()
    except OSError:
        return False
    return data[data.rindex(")") + 2] not in "ZX"


def test_status_shows_a_running_pandos_servers_and_a_crashed_ones_last_error(
    pando_instance, run_pando, pando_workdir, lsp_config, pylsp_table, fake_table, tmp_path
):
    crashing = fake_table("crashing_server.py", [".crash"], str(tmp_path / "starts"))
    (pando_workdir / ".pando.toml").write_text(lsp_config(60000, pylsp_table, crashing))
    (pando_workdir / "bad.py").write_text("print(missing_name)\n")
    (pando_workdir / "x.crash").write_text("boom\n")
    assert _status(run_pando)["running"] == []
    pando = pando_instance(plugins=["lsp"])
    checked = pando.eval(
        "from pathlib import Path\n"
        "report = app.lsp.run(app.lsp.check(Path('bad.py')), 90)\n"
        "crashed = app.lsp.run(app.lsp.check(Path('x.crash')), 30)\n"
        "result = [[d['message'] for d in report.diagnostics], crashed.notice]",
        timeout=120,
    )
    assert checked[0] == ["undefined name 'missing_name'"] and "crashing_server" in checked[1]

    (process,) = _status(run_pando)["running"]
    assert process["pid"] == pando.pid and process["mode"] == "instance"
    servers = {row["name"]: row for row in process["servers"]}
    assert servers["pylsp"]["state"] == "running" and _pid_alive(servers["pylsp"]["pid"])
    assert servers["pylsp"]["open_files"] == 1 and servers["pylsp"]["last_error"] is None
    assert servers["crashing_server"]["state"] == "exited"
    assert servers["crashing_server"]["last_error"] == (
        "crashing_server failed to start: crashing_server exited (exit code 3: crashing_server: fatal: cannot go on)"
    )

    # the real server dies under the running pando: its state and exit are seen from outside
    os.kill(servers["pylsp"]["pid"], signal.SIGKILL)
    shown = _wait_for(run_pando, lambda s: s["running"][0]["servers"][0]["state"] == "exited", "pylsp exited")
    assert shown["running"][0]["servers"][0]["last_error"] == "pylsp exited (exit code -9)"
    text = run_pando("--plugins", "lsp", "lsp", "status")
    assert text.returncode == 0, text.stderr
    assert f"pando pid {pando.pid} (instance)" in text.stdout
    assert "last error: pylsp exited (exit code -9)" in text.stdout
    assert "last error: crashing_server failed to start" in text.stdout
    assert "no running pando" not in text.stdout

    # a pando that dies without its shutdown leaves a file that no longer counts
    pando.kill()
    gone = _status(run_pando)
    assert gone["running"] == [] and {row["name"] for row in gone["configured"]} == {"pylsp", "crashing_server"}
    assert list((pando_workdir / ".pando" / "lsp" / "running").glob("*.json")) == []
    assert "no running pando on this directory" in run_pando("--plugins", "lsp", "lsp", "status").stdout


def test_a_clean_shutdown_removes_its_status(pando_instance, run_pando, pando_workdir, lsp_config, pylsp_table):
    (pando_workdir / ".pando.toml").write_text(lsp_config(60000, pylsp_table))
    (pando_workdir / "ok.py").write_text("x = 1\n")
    pando = pando_instance(plugins=["lsp"])
    pando.eval("from pathlib import Path\nresult = app.lsp.run(app.lsp.check(Path('ok.py')), 90).answered", timeout=120)
    assert [p["pid"] for p in _status(run_pando)["running"]] == [pando.pid]
    pando.stop()
    assert _status(run_pando)["running"] == []
