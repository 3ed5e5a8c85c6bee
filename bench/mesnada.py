"""pando-mesnada: spawn overhead, throughput with max_parallel = 8 (local vs Dask), re-adoption time.

1. Spawn overhead: from ``spawn`` to the child process running (it writes its start time), minus a
   bare ``subprocess.Popen`` of the same command, medians over the same run. Target <= 20 ms added.
2. 200 trivial tasks (a 20 ms sleep) with max_parallel = 8 on the local backend and on a Dask
   cluster on loopback (a scheduler and two workers of 4 threads, started and stopped here):
   tasks/s and the largest number of children ever running at once (must be <= 8).
3. Re-adoption: a primary process running three tasks that print every 100 ms is SIGKILLed; a
   secondary process is promoted by the core and its orchestrator re-adopts the tasks. Measured:
   the time from the kill until the new primary has recorded output of all three tasks.

``--json`` prints the figures as one JSON object. Needs ``pip install 'pando-mesnada[dask]'`` for
part 2's Dask half (skipped with a note otherwise).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import socket
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

CHILD = "date +%s%N > {out}"  # the child: records when it runs (ns), nothing else


def _workdir(prefix: str) -> Path:
    return Path(tempfile.mkdtemp(prefix=f"pando-bench-mesnada-{prefix}-"))


def _primary(workdir: Path):
    from pando_mesnada.store import component

    from pando_core.db import core_component
    from pando_core.runtime import bootstrap

    return bootstrap(workdir, components=[core_component(), component()])


def _wait_file(path: Path, timeout: float = 30.0) -> int:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            text = path.read_text().strip()
            if text:
                return int(text)
        except OSError:
            pass
        time.sleep(0.0005)
    raise RuntimeError(f"{path} never written")


def spawn_overhead(rounds: int) -> dict:
    from pando_mesnada.orchestrator import Orchestrator

    workdir = _workdir("spawn")
    runtime = _primary(workdir)
    orchestrator = Orchestrator(runtime.store, workdir, {"command": "sh -c {prompt}", "default_engine": "command",
                                                           "max_parallel": 1000})  # fmt: skip
    bare, mesnada = [], []
    try:
        for index in range(rounds):
            out = workdir / f"bare-{index}"
            start = time.time_ns()
            proc = subprocess.Popen(["sh", "-c", CHILD.format(out=out)], start_new_session=True)
            bare.append((_wait_file(out) - start) / 1e6)
            proc.wait()
            out = workdir / f"mesnada-{index}"
            start = time.time_ns()
            orchestrator.spawn({"prompt": CHILD.format(out=out)})
            mesnada.append((_wait_file(out) - start) / 1e6)
        _drain(orchestrator, 60)
    finally:
        orchestrator.close()
        runtime.cleanup()
        shutil.rmtree(workdir, ignore_errors=True)
    bare_median, mesnada_median = statistics.median(bare), statistics.median(mesnada)
    return {"bare_popen_ms_median": round(bare_median, 2), "mesnada_spawn_ms_median": round(mesnada_median, 2),
            "added_ms_median": round(mesnada_median - bare_median, 2),
            "ratio": round(mesnada_median / bare_median, 2), "target_added_ms": 20}  # fmt: skip


def _drain(orchestrator, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        orchestrator.tick()
        if not orchestrator.list({"status": ["pending", "running"]}):
            return
        time.sleep(0.01)
    raise RuntimeError("tasks did not finish in time")


def _peak(marks: Path) -> int:
    events = []
    for line in marks.read_text().splitlines():
        kind, stamp = line.split()
        events.append((int(stamp), 1 if kind == "start" else -1))
    running = peak = 0
    for _, delta in sorted(events, key=lambda e: (e[0], e[1])):
        running += delta
        peak = max(peak, running)
    return peak


def throughput(backend: str, tasks: int, scheduler: str = "") -> dict:
    from pando_mesnada.orchestrator import Orchestrator

    workdir = _workdir(backend)
    runtime = _primary(workdir)
    marks = workdir / "marks"
    body = f"echo start $(date +%s%N) >> {marks}; sleep 0.02; echo end $(date +%s%N) >> {marks}"
    config = {"command": "sh -c {prompt}", "default_engine": "command", "max_parallel": 8, "backend": backend,
              "scheduler": scheduler, "poll_interval": 0.01}  # fmt: skip
    orchestrator = Orchestrator(runtime.store, workdir, config)
    try:
        start = time.monotonic()
        for _ in range(tasks):
            orchestrator.spawn({"prompt": body})
        _drain(orchestrator, 600)
        elapsed = time.monotonic() - start
        failed = orchestrator.list({"status": ["failed", "cancelled"]})
    finally:
        orchestrator.close()
        runtime.cleanup()
    peak = _peak(marks)
    shutil.rmtree(workdir, ignore_errors=True)
    return {"tasks": tasks, "seconds": round(elapsed, 2), "tasks_per_s": round(tasks / elapsed, 1),
            "max_running_at_once": peak, "failed": len(failed)}  # fmt: skip


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def dask_cluster():
    dask = shutil.which("dask") or str(Path(sys.executable).with_name("dask"))
    port = _free_port()
    address = f"tcp://127.0.0.1:{port}"
    quiet = {"stdout": subprocess.DEVNULL, "stderr": subprocess.DEVNULL}
    procs = [subprocess.Popen([dask, "scheduler", "--host", "127.0.0.1", "--port", str(port), "--no-dashboard", "--no-show"], **quiet)]
    for index, host in ((1, "127.0.0.2"), (2, "127.0.0.3")):
        procs.append(subprocess.Popen([dask, "worker", address, "--host", host, "--nthreads", "4", "--no-nanny",
                                       "--no-dashboard", "--name", f"w{index}"], **quiet))  # fmt: skip
    from distributed import Client

    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            with Client(address, timeout="5s", set_as_default=False) as client:
                if len(client.scheduler_info()["workers"]) == 2:
                    return address, procs
        except OSError:
            pass
        time.sleep(0.1)
    stop_cluster(procs)
    raise RuntimeError("the Dask cluster did not start")


def stop_cluster(procs) -> None:
    for proc in reversed(procs):  # workers first, then the scheduler
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()


# -- re-adoption: two real processes --------------------------------------------------------------

def _role(workdir: Path, spawn: int) -> None:
    """A process acting as a pando with the orchestrator: spawns *spawn* tasks if primary; as a
    secondary, waits to be promoted, then adopts and runs the orchestrator loop."""
    import threading

    from pando_mesnada.orchestrator import Orchestrator

    runtime = _primary(workdir)
    promoted = threading.Event()

    def loop() -> None:
        orchestrator = Orchestrator(runtime.store, workdir, {"command": "sh -c {prompt}", "default_engine": "command",
                                                               "poll_interval": 0.02})  # fmt: skip
        orchestrator.adopt()
        if spawn:
            body = "for i in $(seq 1 100); do echo line $i; sleep 0.1; done"
            for _ in range(spawn):
                orchestrator.spawn({"prompt": body})
            print("SPAWNED", flush=True)
        while True:
            orchestrator.tick()
            time.sleep(0.02)

    if runtime.role == "primary":
        threading.Thread(target=loop, daemon=True).start()
    else:
        print("SECONDARY", flush=True)
        runtime.on_promoted(lambda _rt: promoted.set())
        promoted.wait(120)
        threading.Thread(target=loop, daemon=True).start()
    time.sleep(120)


def readoption(pando_env: dict) -> dict:
    workdir = _workdir("adopt")
    me = str(Path(__file__).resolve())
    first = subprocess.Popen([sys.executable, me, "--role", str(workdir), "--spawn", "3"], stdout=subprocess.PIPE, text=True)
    assert first.stdout.readline().strip() == "SPAWNED"
    second = subprocess.Popen([sys.executable, me, "--role", str(workdir), "--spawn", "0"], stdout=subprocess.PIPE, text=True)
    assert second.stdout.readline().strip() == "SECONDARY"
    time.sleep(0.5)  # let the tasks print and the first primary record some output (not a sync point)
    db = workdir / ".pando" / "pando.db"
    killed_ms = time.time() * 1000
    os.kill(first.pid, signal.SIGKILL)
    first.wait()
    deadline = time.monotonic() + 30
    result = None
    while time.monotonic() < deadline:
        with sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=5) as conn:
            rows = conn.execute("SELECT status, updated_at FROM mesnada_tasks").fetchall()
        if len(rows) == 3 and all(status == "running" and updated > killed_ms for status, updated in rows):
            result = max(updated for _, updated in rows) - killed_ms
            break
        time.sleep(0.005)
    second.kill()
    second.wait()
    # the children are still running (that is the point); stop them
    for spec in (workdir / ".pando" / "mesnada" / "run").glob("*.json.child"):
        try:
            os.killpg(int(spec.read_text()), signal.SIGKILL)
        except (ProcessLookupError, ValueError):
            pass
    shutil.rmtree(workdir, ignore_errors=True)
    if result is None:
        raise RuntimeError("the new primary did not record output of the three tasks")
    return {"tasks": 3, "readoption_ms": round(result, 1)}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=30, help="spawns measured for the overhead")
    parser.add_argument("--tasks", type=int, default=200, help="tasks for the throughput part")
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--role", help=argparse.SUPPRESS)
    parser.add_argument("--spawn", type=int, default=0, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.role:
        _role(Path(args.role), args.spawn)
        return 0
    figures: dict = {"spawn": spawn_overhead(args.rounds), "local": throughput("local", args.tasks)}
    try:
        import distributed  # noqa: F401
    except ImportError:
        figures["dask"] = "skipped: pip install 'pando-mesnada[dask]'"
    else:
        address, procs = dask_cluster()
        try:
            figures["dask"] = throughput("dask", args.tasks, address)
        finally:
            stop_cluster(procs)
    figures["readoption"] = readoption(dict(os.environ))
    if args.json:
        print(json.dumps(figures))
    else:
        s = figures["spawn"]
        print(f"spawn: bare Popen {s['bare_popen_ms_median']} ms, mesnada spawn {s['mesnada_spawn_ms_median']} ms"
              f" (median): +{s['added_ms_median']} ms, x{s['ratio']} (target <= +20 ms)")  # fmt: skip
        for name in ("local", "dask"):
            f = figures[name]
            if isinstance(f, str):
                print(f"{name}: {f}")
            else:
                print(f"{name}: {f['tasks']} tasks in {f['seconds']} s = {f['tasks_per_s']} tasks/s,"
                      f" at most {f['max_running_at_once']} running at once (max_parallel 8), {f['failed']} failed")  # fmt: skip
        print(f"re-adoption after SIGKILL of the primary: {figures['readoption']['readoption_ms']} ms until the new"
              " primary recorded output of all 3 running tasks")  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
