"""`pando status` and `pando instances` against a real primary in another process."""

from __future__ import annotations

import json
import subprocess
import sys


def test_status_and_instances(pando_workdir, pando_env):
    holder = subprocess.Popen(
        [sys.executable, "-c", "import os, sys; from pando_core.runtime import bootstrap; rt = bootstrap(sys.argv[1]); "
         "print(rt.role, os.getpid(), rt.instance_id, flush=True); sys.stdin.read(); rt.cleanup()", str(pando_workdir)],
        env=pando_env, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
    )
    try:
        role, pid, instance_id = holder.stdout.readline().split()
        assert role == "primary"

        def pando(*args):
            return subprocess.run(
                [sys.executable, "-m", "pando_core", "--plugins", "none", *args],
                cwd=pando_workdir, env=pando_env, capture_output=True, text=True, timeout=60,
            )

        status = pando("status", "--json")
        assert status.returncode == 0, status.stderr
        data = json.loads(status.stdout)
        assert data["role"] == "secondary"
        assert data["primary_pid"] == int(pid)
        assert data["epoch"] == 1 and data["failover"] is True
        assert data["endpoints"]["transport"] in ("ipc", "tcp") and data["endpoints"]["rpc"]
        assert data["instance_id"] != instance_id
        text = pando("status")
        assert f"primary:     pid {pid}, epoch 1" in text.stdout

        rows = json.loads(pando("instances", "--json").stdout)
        assert [(r["instance_id"], r["role"], r["is_primary"]) for r in rows] == [(instance_id, "primary", True)]
    finally:
        holder.stdin.close()
        holder.wait(timeout=10)
    # the primary left: its registry entry went with it, and status now finds no one else
    after = subprocess.run(
        [sys.executable, "-m", "pando_core", "--plugins", "none", "instances"],
        cwd=pando_workdir, env=pando_env, capture_output=True, text=True, timeout=60,
    )
    assert after.stdout.strip() == "no pando instance is running here"
