"""The Dask backend on a real cluster on loopback: ``dask scheduler`` and two ``dask worker``
processes started and stopped by pid (workers first). Output streamed to the primary's log file
while the task runs, max_parallel and dependencies, cancel and timeout reaching the worker's
process, and a worker killed under its task."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
from mesnada_testing import drive, ended, pid_alive

if not os.environ.get("CI"):
    pytest.importorskip("distributed", reason="the dask extra is not installed: pip install 'pando-mesnada[dask]'")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _dask() -> str:
    found = shutil.which("dask") or str(Path(sys.executable).with_name("dask"))
    assert Path(found).exists(), "the dask command is missing (pip install 'pando-mesnada[dask]')"
    return found


@pytest.fixture
def cluster(tmp_path, fake_engines, pando_env):
    from distributed import Client

    port = _free_port()
    address = f"tcp://127.0.0.1:{port}"
    env = {**os.environ, "DASK_DISTRIBUTED__WORKER__DAEMON": "False"}
    logs = tmp_path / "dask"
    logs.mkdir()
    procs = {}

    def start(name, args):
        out = open(logs / f"{name}.log", "wb")  # noqa: SIM115 - kept by the process
        procs[name] = subprocess.Popen([_dask(), *args], stdout=out, stderr=subprocess.STDOUT, env=env, cwd=str(tmp_path))

    start("scheduler", ["scheduler", "--host", "127.0.0.1", "--port", str(port), "--no-dashboard", "--no-show"])
    for index, host in ((1, "127.0.0.2"), (2, "127.0.0.3")):
        start(f"w{index}", ["worker", address, "--host", host, "--nthreads", "1", "--no-nanny", "--no-dashboard", "--name", f"w{index}"])
    deadline = time.monotonic() + 60
    client = None
    try:
        while time.monotonic() < deadline:
            try:
                client = client or Client(address, timeout="5s", set_as_default=False)
                if len(client.scheduler_info()["workers"]) == 2:
                    break
            except OSError:
                pass
            time.sleep(0.1)
        else:
            raise AssertionError("the Dask cluster did not come up: " + (logs / "scheduler.log").read_text()[-2000:])
        yield {"address": address, "procs": procs, "client": client}
    finally:
        if client is not None:
            client.close()
        for name in ("w1", "w2", "scheduler"):  # workers first, then the scheduler
            proc = procs.get(name)
            if proc is not None and proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
                try:
                    proc.wait(timeout=15)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait()


def test_tasks_run_on_workers_with_their_output_streamed_back(make_orchestrator, cluster, fake_engines):
    orchestrator = make_orchestrator(backend="dask", scheduler=cluster["address"], max_parallel=1)
    first = orchestrator.spawn({"prompt": "say:first line\nsleep:1.5\nsay:last line", "engine": "claude"})
    second = orchestrator.spawn({"prompt": "say:after first", "engine": "claude", "dependencies": [first["id"]],
                                 "include_dependency_logs": True})  # fmt: skip
    third = orchestrator.spawn({"prompt": "say:third\nsleep:0.2", "engine": "claude"})
    log = Path(first["log_file"])
    # the first line is in the primary's log while the task still runs on its worker
    drive(orchestrator, lambda: log.exists() and "first line" in log.read_text(), what="the streamed first line")
    assert orchestrator.get(first["id"])["status"] == "running" and "last line" not in log.read_text()
    tasks = drive(orchestrator, ended(orchestrator, first["id"], second["id"], third["id"]), timeout=60)
    assert [t["status"] for t in tasks] == ["completed"] * 3, [t["error"] for t in tasks]
    assert "last line" in tasks[0]["output_tail"] and tasks[0]["backend"] == "dask"
    runs = sorted(fake_engines.all(), key=lambda r: r["started"])
    for before, after in zip(runs, runs[1:], strict=False):  # max_parallel = 1 held on the cluster
        assert after["started"] >= before["ended"]
    assert "first line" in fake_engines.for_prompt("say:after first")["prompt"]


def test_cancel_and_timeout_reach_the_worker_process(make_orchestrator, cluster, fake_engines):
    orchestrator = make_orchestrator(backend="dask", scheduler=cluster["address"], stop_grace=0.5)
    cancelled = orchestrator.spawn({"prompt": "grandchild\nsay:working\nsleep:60", "engine": "claude"})
    timed = orchestrator.spawn({"prompt": "ignore-term\nsay:slow\nsleep:60", "engine": "claude", "timeout": "2s"})
    drive(orchestrator, lambda: "working" in Path(cancelled["log_file"]).read_text(), what="the first task to print")
    orchestrator.cancel(cancelled["id"])
    done_cancelled, done_timed = drive(orchestrator, ended(orchestrator, cancelled["id"], timed["id"]), timeout=60)
    assert done_cancelled["status"] == "cancelled"
    assert done_timed["status"] == "failed" and done_timed["error"] == "timed out after 2s"
    for needle in ("grandchild", "ignore-term"):
        run = fake_engines.for_prompt(needle)
        deadline = time.monotonic() + 10
        while pid_alive(run["pid"]) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not pid_alive(run["pid"])
    assert not pid_alive(fake_engines.for_prompt("grandchild")["grandchild"])


def test_a_worker_that_dies_fails_its_task_clearly(make_orchestrator, cluster, fake_engines):
    orchestrator = make_orchestrator(backend="dask", scheduler=cluster["address"])
    task = orchestrator.spawn({"prompt": "say:on a worker\nsleep:60", "engine": "claude"})
    drive(orchestrator, lambda: "on a worker" in Path(task["log_file"]).read_text(), what="the task to start")
    client = cluster["client"]
    where = {key: workers for key, workers in client.who_has().items() if task["id"] in str(key)}
    processing = client.processing()
    worker_address = next(address for address, keys in processing.items() if any(task["id"] in str(k) for k in keys))
    name = next(info["name"] for address, info in client.scheduler_info()["workers"].items() if address == worker_address)
    os.kill(cluster["procs"][name].pid, signal.SIGKILL)
    (done,) = drive(orchestrator, ended(orchestrator, task["id"]), timeout=60)
    assert done["status"] == "failed" and f"the Dask worker {worker_address} died" in done["error"], (done, where)


def test_an_unreachable_scheduler_is_one_clear_error(make_orchestrator, fake_engines):
    from pando_core.errors import UnavailableError

    with pytest.raises(UnavailableError, match="cannot reach the Dask scheduler at tcp://127.0.0.1:"):
        make_orchestrator(backend="dask", scheduler=f"tcp://127.0.0.1:{_free_port()}")


def test_the_only_worker_dying_fails_its_task_and_ends_its_process(make_orchestrator, cluster, fake_engines):
    """With no other worker Dask would leave the task waiting forever; its command would live on."""
    client = cluster["client"]
    w2 = cluster["procs"]["w2"]
    w2.send_signal(signal.SIGTERM)
    w2.wait(timeout=30)
    deadline = time.monotonic() + 30
    while len(client.scheduler_info(n_workers=-1)["workers"]) != 1:
        assert time.monotonic() < deadline, "the scheduler still lists the stopped worker"
        time.sleep(0.1)
    orchestrator = make_orchestrator(backend="dask", scheduler=cluster["address"])
    task = orchestrator.spawn({"prompt": "say:alone\nsleep:120", "engine": "claude"})
    drive(orchestrator, lambda: "alone" in Path(task["log_file"]).read_text(), what="the task to start")
    (record,) = drive(orchestrator, lambda: fake_engines.all(), what="the fake agent's record")
    os.kill(cluster["procs"]["w1"].pid, signal.SIGKILL)
    (done,) = drive(orchestrator, ended(orchestrator, task["id"]), timeout=60)
    assert done["status"] == "failed" and "the Dask worker tcp://127.0.0.2:" in done["error"], done
    drive(orchestrator, lambda: not pid_alive(record["pid"]), timeout=30, what="the command to end with its worker")


def _worker_running(cluster, task_id):
    """The name (w1, w2) and address of the worker whose processing list holds the task."""
    client = cluster["client"]
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        for address, keys in client.processing().items():
            if any(task_id in str(key) for key in keys):
                return client.scheduler_info(n_workers=-1)["workers"][address]["name"], address
        time.sleep(0.05)
    raise AssertionError(f"no worker is processing {task_id}")


def _runs_for(fake_engines, task_prompt, count):
    found = [r for r in fake_engines.all() if r["prompt"] == task_prompt]
    return found if len(found) >= count else None


def test_a_dead_workers_task_is_retried_elsewhere_per_dask_worker_retries(make_orchestrator, cluster, fake_engines, tmp_path):
    orchestrator = make_orchestrator(backend="dask", scheduler=cluster["address"], dask_worker_retries=1)
    go = tmp_path / "go"  # every attempt waits for it: the first one cannot finish before its worker dies
    prompt = f"say:attempt running\nwait-file:{go}\nsay:attempt finished"
    task = orchestrator.spawn({"prompt": prompt, "engine": "claude"})
    log = Path(task["log_file"])
    drive(orchestrator, lambda: "attempt running" in log.read_text(), what="the first attempt to print")
    name, address = _worker_running(cluster, task["id"])
    (first_run,) = fake_engines.all()
    os.kill(cluster["procs"][name].pid, signal.SIGKILL)  # the worker dies mid-task, for real
    runs = drive(orchestrator, lambda: _runs_for(fake_engines, prompt, 2), timeout=60, what="the rerun on the other worker")
    # the first attempt's command did not live on with nobody reading it: its guard ended it
    drive(orchestrator, lambda: not pid_alive(first_run["pid"]), timeout=30, what="the dead worker's command to end")
    assert orchestrator.get(task["id"])["status"] == "running"
    go.touch()
    (done,) = drive(orchestrator, ended(orchestrator, task["id"]), timeout=60)
    assert done["status"] == "completed" and done["exit_code"] == 0, done
    text = log.read_text()
    assert f"the Dask worker {address} died while running the task; running it again (retry 1 of 1)" in text
    assert text.count("attempt running") == 2 and text.count("attempt finished") == 1
    assert text.rstrip().endswith("attempt finished") and runs[1]["started"] > first_run["started"]


def test_a_task_whose_workers_die_beyond_its_retries_fails_clearly(make_orchestrator, cluster, fake_engines):
    orchestrator = make_orchestrator(backend="dask", scheduler=cluster["address"], dask_worker_retries=1)
    prompt = "say:doomed\nsleep:120"
    task = orchestrator.spawn({"prompt": prompt, "engine": "claude"})
    drive(orchestrator, lambda: "doomed" in Path(task["log_file"]).read_text(), what="the first attempt to print")
    first, _ = _worker_running(cluster, task["id"])
    os.kill(cluster["procs"][first].pid, signal.SIGKILL)
    drive(orchestrator, lambda: _runs_for(fake_engines, prompt, 2), timeout=60, what="the retry")
    second, second_address = _worker_running(cluster, task["id"])
    assert second != first
    os.kill(cluster["procs"][second].pid, signal.SIGKILL)
    (done,) = drive(orchestrator, ended(orchestrator, task["id"]), timeout=60)
    assert done["status"] == "failed", done
    assert done["error"] == f"the Dask worker {second_address} died while running the task (no retries left: dask_worker_retries = 1)"
    for run in fake_engines.all():
        drive(orchestrator, lambda run=run: not pid_alive(run["pid"]), timeout=30, what="every attempt's command to end")
