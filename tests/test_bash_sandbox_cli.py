"""The bash sandbox end to end: the real `pando run --yolo` against the scripted model server, with
the real bubblewrap (the default `[tools] sandbox = "auto"`), and `pando doctor`."""

from __future__ import annotations

import json
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

from pando_core.testing.model_server import Reply
from pando_core.testing.pytest_plugin import write_model_config
from tests.support.sandboxing import LoopbackHttpServer, fetch_command, require_bwrap

FAKE_KEY = "-----BEGIN FAKE PRIVATE KEY----- pando-e2e"


def run_pando(workdir: Path, env: dict, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "pando_core", "--plugins", "none", *args],
        cwd=workdir,
        env=env,
        capture_output=True,
        text=True,
        timeout=90,
    )


def bash_outputs(model_server) -> list[str]:
    """What the model was told each bash call printed."""
    return [m["content"] for m in model_server.requests[-1]["messages"] if m["role"] == "tool"]


@pytest.fixture
def project(pando_workdir: Path, pando_env: dict):
    require_bwrap()
    home = Path(pando_env["HOME"])
    (home / ".ssh").mkdir(exist_ok=True)
    (home / ".ssh" / "id_rsa").write_text(FAKE_KEY + "\n")
    return pando_workdir, dict(pando_env)


def test_a_sandboxed_run_cannot_write_outside_or_read_keys_but_writes_the_workdir(project, model_server):
    workdir, env = project
    home = env["HOME"]
    # the home is writable here, so only the hidden ~/.ssh keeps the key from the model
    write_model_config(workdir, model_server.base_url, extra=f'\n[tools]\nwritable_paths = ["{home}"]\n')
    target = Path("/etc") / f"pando-e2e-{uuid.uuid4().hex}"
    model_server.script(
        Reply.tool("bash", {"command": f"touch {target}"}),
        Reply.tool("bash", {"command": "cat ~/.ssh/id_rsa"}),
        Reply.tool("bash", {"command": "echo from-the-agent > made.txt && cat made.txt"}),
        Reply.text("done"),
    )

    result = run_pando(workdir, env, "run", "--yolo", "-f", "json", "try things")

    data = json.loads(result.stdout)
    assert data["status"] == "success", (data, result.stderr)
    touched, key, made = bash_outputs(model_server)
    assert "Read-only file system" in touched
    assert not target.exists()
    assert FAKE_KEY not in json.dumps([r.body for r in model_server.received])
    assert "No such file" in key or "Exit code" in key
    assert "from-the-agent" in made
    assert (workdir / "made.txt").read_text() == "from-the-agent\n"
    assert "not sandboxed" not in result.stderr


@pytest.mark.parametrize("network", [False, True])
def test_network_follows_the_config(network, project, model_server, tmp_path):
    workdir, env = project
    served = tmp_path / "served"
    served.mkdir()
    (served / "index.html").write_text("loopback-page")
    server = LoopbackHttpServer(served)
    try:
        extra = f"\n[tools]\nnetwork = {'true' if network else 'false'}\n"
        write_model_config(workdir, model_server.base_url, extra=extra)
        model_server.script(Reply.tool("bash", {"command": fetch_command(server.url)}), Reply.text("done"))

        result = run_pando(workdir, env, "run", "--yolo", "-f", "json", "fetch it")
    finally:
        server.stop()
    data = json.loads(result.stdout)
    assert data["status"] == "success", (data, result.stderr)
    (output,) = bash_outputs(model_server)
    assert ("loopback-page" in output) is network, output


def test_curl_to_loopback_needs_the_network(project, model_server, tmp_path):
    workdir, env = project
    served = tmp_path / "served"
    served.mkdir()
    (served / "index.html").write_text("curl-page")
    server = LoopbackHttpServer(served)
    try:
        # curl is on the bash tool's banned list: the user lifts it, the sandbox still has no network
        write_model_config(
            workdir, model_server.base_url, extra='\n[tools]\nallowed_commands = ["curl"]\nnetwork_commands = ["curl -s *"]\n'
        )
        model_server.script(
            Reply.tool("bash", {"command": f"curl -sS --max-time 5 {server.url}"}),
            Reply.tool("bash", {"command": f"curl -s --max-time 5 {server.url}"}),
            Reply.text("done"),
        )
        result = run_pando(workdir, env, "run", "--yolo", "-f", "json", "curl it")
    finally:
        server.stop()
    assert json.loads(result.stdout)["status"] == "success", result.stderr
    refused, allowed = bash_outputs(model_server)
    assert "curl-page" not in refused and "Exit code" in refused
    assert "curl-page" in allowed


def test_bwrap_mode_without_bubblewrap_tells_the_model_and_doctor_fails(project, model_server, tmp_path):
    workdir, env = project
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "git").symlink_to("/usr/bin/git")
    env = dict(env, PATH=str(bin_dir))
    write_model_config(workdir, model_server.base_url, extra='\n[tools]\nsandbox = "bwrap"\nshell_path = "/bin/bash"\n')
    model_server.script(Reply.tool("bash", {"command": "echo should-not-run"}), Reply.text("done"))

    run_pando(workdir, env, "run", "--yolo", "-f", "json", "go")
    (output,) = bash_outputs(model_server)
    assert 'sandbox = "bwrap" but bubblewrap (bwrap) is not installed' in output
    assert "should-not-run" not in output.replace("echo should-not-run", "")

    doctor = run_pando(workdir, env, "doctor", "--json")
    assert doctor.returncode == 1, doctor.stderr
    sandbox = json.loads(doctor.stdout)["sandbox"]
    assert (sandbox["mode"], sandbox["state"], sandbox["bwrap"]) == ("bwrap", "error", None)
    assert "not installed" in sandbox["problem"]


def test_doctor_reports_a_working_sandbox(project):
    workdir, env = project
    (workdir / ".pando.toml").write_text('[tools]\nnetwork_commands = ["pip install *"]\n')

    doctor = run_pando(workdir, env, "doctor", "--json")
    assert doctor.returncode == 0, doctor.stderr
    sandbox = json.loads(doctor.stdout)["sandbox"]
    assert sandbox["state"] == "on"
    assert sandbox["bwrap_works"] is True
    assert sandbox["bwrap"].endswith("bwrap") and sandbox["bwrap_version"]
    assert sandbox["network_commands"] == ["pip install *"]
    assert "~/.ssh" in sandbox["hidden_paths"]

    text = run_pando(workdir, env, "doctor")
    assert "sandbox:     on: bash runs under bubblewrap" in text.stdout
    assert "pip install *" in text.stdout


def test_auto_without_bubblewrap_says_so_once(project, model_server, tmp_path):
    workdir, env = project
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    env = dict(env, PATH=str(bin_dir))
    write_model_config(workdir, model_server.base_url, extra='\n[tools]\nshell_path = "/bin/bash"\n')
    model_server.script(
        Reply.tool("bash", {"command": "echo first"}), Reply.tool("bash", {"command": "echo second"}), Reply.text("done")
    )

    result = run_pando(workdir, env, "run", "--yolo", "-f", "json", "go")

    assert json.loads(result.stdout)["status"] == "success", result.stderr
    assert [o.strip() for o in bash_outputs(model_server)] == ["first", "second"]
    assert result.stderr.count("bash commands are not sandboxed") == 1, result.stderr


def without_namespaces(*argv: str) -> list[str]:
    """`argv` run where creating namespaces is refused, as on a kernel without unprivileged user
    namespaces: a user namespace with no capabilities that may create no further one."""
    return ["bwrap", "--dev-bind", "/", "/", "--unshare-user", "--disable-userns", "--cap-drop", "ALL", "--", *argv]


def run_refused(workdir: Path, env: dict, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        without_namespaces(sys.executable, "-m", "pando_core", "--plugins", "none", *args),
        cwd=workdir,
        env=env,
        capture_output=True,
        text=True,
        timeout=90,
    )


def test_a_kernel_refusing_namespaces_is_reported(project, model_server):
    workdir, env = project
    doctor = run_refused(workdir, env, "doctor", "--json")
    assert doctor.returncode == 0, doctor.stderr
    sandbox = json.loads(doctor.stdout)["sandbox"]
    assert (sandbox["state"], sandbox["bwrap_works"]) == ("unsandboxed", False)
    assert "bubblewrap refuses to run here" in sandbox["problem"]
    assert "user namespaces" in sandbox["problem"]

    # auto: the run goes on unsandboxed and says why, once
    write_model_config(workdir, model_server.base_url)
    model_server.script(Reply.tool("bash", {"command": "echo ran"}), Reply.text("done"))
    result = run_refused(workdir, env, "run", "--yolo", "-f", "json", "go")
    assert json.loads(result.stdout)["status"] == "success", result.stderr
    assert result.stderr.count("bash commands are not sandboxed: bubblewrap refuses to run here") == 1
    assert bash_outputs(model_server) == ["ran"]

    # bwrap: doctor fails, and so does every bash call, saying why
    (workdir / ".pando.toml").write_text((workdir / ".pando.toml").read_text() + '\n[tools]\nsandbox = "bwrap"\n')
    assert run_refused(workdir, env, "doctor").returncode == 1
    model_server.script(Reply.tool("bash", {"command": "echo never"}), Reply.text("done"))
    run_refused(workdir, env, "run", "--yolo", "-f", "json", "go")
    (output,) = bash_outputs(model_server)
    assert 'sandbox = "bwrap" but bubblewrap refuses to run here' in output
