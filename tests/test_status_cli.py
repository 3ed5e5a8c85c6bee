"""`pando status` and `pando instances` against a real primary in another process."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from tests.support.primary import primary_holder


@pytest.mark.slow
def test_status_and_instances(pando_workdir, pando_env):
    with primary_holder(pando_workdir, pando_env) as holder:
        role, pid, instance_id = holder.role, holder.pid, holder.instance_id
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
    # the primary left: its registry entry went with it, and status now finds no one else
    after = subprocess.run(
        [sys.executable, "-m", "pando_core", "--plugins", "none", "instances"],
        cwd=pando_workdir, env=pando_env, capture_output=True, text=True, timeout=60,
    )
    assert after.stdout.strip() == "no pando instance is running here"
