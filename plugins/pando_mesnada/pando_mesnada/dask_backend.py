"""``[mesnada] backend = "dask"``: tasks run as subprocesses on the workers of a Dask distributed
cluster (``scheduler = "tcp://HOST:PORT"``).

Each task is one Dask task (``run_on_worker``) that starts the engine's command in its own process
group on a worker and sends its output back line by line as worker events (``log_event``); the
primary subscribes to the task's topic (``subscribe_topic``) and appends the lines to the task's
log file as they come, so ``logs -f``, the output tail and progress work as for local tasks.
Cancel and timeout reach the worker process through a Dask ``Event``. A worker that dies while
running a task fails it with an error naming the worker (Dask would otherwise run it again on
another worker, or, with no other worker, leave it waiting; ``dask_worker_retries`` allows that
many reruns), and the task's processes on that machine end with it: the command runs under a small
guard process that kills its process group when the worker is gone. The end is recorded like a
local task's: an end file the orchestrator records.

``distributed`` is imported only here (``pip install 'pando-mesnada[dask]'``).
"""

from __future__ import annotations

import json
import logging
import os
import threading
import time
from pathlib import Path
from typing import Any

from pando_core.errors import UnavailableError, ValidationError

from .engines import EngineCommand
from .runner import Paths

log = logging.getLogger("pando.mesnada")

FLUSH_INTERVAL = 0.05  # seconds between batches of log lines sent from the worker
CANCEL_CHECK_INTERVAL = 0.2
WORKERS_CHECK_INTERVAL = 1.0  # how often the primary asks the scheduler which workers are alive

# Runs the task's command in the guard's own process group and ends that group once the worker
# (its parent) is gone: a worker killed with SIGKILL cannot stop what it started.
_GUARD = """
import os, signal, subprocess, sys, time
parent = int(sys.argv[1])
signal.signal(signal.SIGTERM, signal.SIG_IGN)  # a cancel's SIGTERM is for the command
child = subprocess.Popen(sys.argv[2:], restore_signals=True, preexec_fn=lambda: signal.signal(signal.SIGTERM, signal.SIG_DFL))
while True:
    try:
        code = child.wait(timeout=0.5)
    except subprocess.TimeoutExpired:
        if os.getppid() != parent:
            os.killpg(0, signal.SIGHUP)
            time.sleep(2)
            os.killpg(0, signal.SIGKILL)
        continue
    if code < 0:
        signal.signal(-code, signal.SIG_DFL)
        os.kill(os.getpid(), -code)
    sys.exit(code)
"""


def run_on_worker(spec: dict[str, Any]) -> dict[str, Any]:
    """Runs on a Dask worker: the task's command, its output streamed back as worker events."""
    import shutil
    import signal
    import subprocess
    import sys

    from distributed import Event, get_worker

    worker = get_worker()
    topic = spec["topic"]
    worker.log_event(topic, {"started": worker.address})
    if not os.path.isdir(spec["cwd"]):
        return {"exit_code": None, "reason": "error", "error": f"work_dir {spec['cwd']} does not exist on worker {worker.address}", "lines": 0}
    env = dict(os.environ)
    env.update(spec.get("env") or {})
    program = spec["argv"][0]
    if shutil.which(program, path=env.get("PATH")) is None and not os.access(os.path.join(spec["cwd"], program), os.X_OK):
        return {"exit_code": None, "reason": "error", "error": f"could not start {program} on {worker.address}: not found", "lines": 0}
    try:
        proc = subprocess.Popen(
            [sys.executable, "-c", _GUARD, str(os.getpid()), *spec["argv"]], cwd=spec["cwd"], env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
            stdin=subprocess.PIPE if spec.get("stdin_text") is not None else subprocess.DEVNULL, start_new_session=True,
        )  # fmt: skip
    except OSError as exc:
        return {"exit_code": None, "reason": "error", "error": f"could not start {spec['argv'][0]} on {worker.address}: {exc}", "lines": 0}
    if spec.get("stdin_text") is not None:
        threading.Thread(target=_feed, args=(proc, spec["stdin_text"]), daemon=True).start()
    pending: list[str] = []
    lock = threading.Lock()
    sent = 0

    def read() -> None:
        for raw in proc.stdout:
            with lock:
                pending.append(raw.decode("utf-8", "replace"))

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    cancel = Event(spec["cancel_event"])
    deadline = time.monotonic() + spec["timeout"] if spec.get("timeout") else None
    reason = None
    last_check = 0.0

    def flush() -> None:
        nonlocal sent
        with lock:
            batch = pending[:]
            pending.clear()
        if batch:
            worker.log_event(topic, {"lines": batch})
            sent += len(batch)

    while proc.poll() is None:
        time.sleep(FLUSH_INTERVAL)
        flush()
        now = time.monotonic()
        if deadline is not None and now >= deadline:
            reason = "timeout"
        elif now - last_check >= CANCEL_CHECK_INTERVAL:
            last_check = now
            if cancel.is_set():
                reason = "stopped"
        if reason:
            for sig, wait in ((signal.SIGTERM, spec["grace"]), (signal.SIGKILL, 5.0)):
                try:
                    os.killpg(proc.pid, sig)
                except ProcessLookupError:
                    pass
                try:
                    proc.wait(timeout=wait)
                    break
                except subprocess.TimeoutExpired:
                    continue
            try:
                os.killpg(proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            break
    reader.join(timeout=5)
    flush()
    return {"exit_code": proc.returncode, "reason": reason, "lines": sent, "worker": worker.address}


def _feed(proc: Any, text: str) -> None:
    try:
        proc.stdin.write(text.encode("utf-8"))
        proc.stdin.close()
    except OSError:
        pass


class DaskRunner:
    name = "dask"

    def __init__(self, paths: Paths, config: dict[str, Any], orchestrator: Any) -> None:
        address = (config.get("scheduler") or "").strip()
        if not address:
            raise ValidationError("[mesnada] backend = \"dask\" needs scheduler = \"tcp://HOST:PORT\"")
        try:
            from distributed import Client
        except ImportError:
            raise ValidationError("[mesnada] backend = \"dask\" needs the dask extra: pip install 'pando-mesnada[dask]'") from None
        self.paths = paths
        self.orchestrator = orchestrator
        self.retries = int(config.get("dask_worker_retries") or 0)
        try:
            self.client = Client(address, timeout="10s", set_as_default=False)
        except Exception as exc:  # noqa: BLE001 - any connection failure is one clear line
            raise UnavailableError(f"cannot reach the Dask scheduler at {address}: {exc}") from None
        self._lock = threading.Lock()
        self._runs: dict[str, dict[str, Any]] = {}  # task id -> future, topic, lines written, starts
        self._workers: set[str] = set()
        self._workers_checked = 0.0

    def launch(self, task: dict[str, Any], command: EngineCommand, workdir: Path, grace: float) -> dict[str, Any]:
        from distributed import Event

        attempt = task["attempt"] + 1
        task_id = task["id"]
        name = f"mesnada-{task_id}-{attempt}"
        Path(str(self.paths.spec_file(task_id)) + ".end.json").unlink(missing_ok=True)
        run = {"topic": name, "lines": 0, "starts": [], "died": None, "attempt": attempt,
               "cancel": Event(f"{name}-cancel", client=self.client), "log_file": task["log_file"]}  # fmt: skip
        for path, content in command.files.items():  # per-task MCP config: for workers that share this disk
            Path(path).parent.mkdir(parents=True, exist_ok=True)
            Path(path).write_text(content, encoding="utf-8")
        self.client.subscribe_topic(name, lambda event, task_id=task_id: self._on_event(task_id, event))
        spec = {"argv": command.argv, "cwd": task["work_dir"], "env": command.env, "stdin_text": command.stdin_text,
                "timeout": task["timeout_seconds"], "grace": grace, "topic": name, "cancel_event": f"{name}-cancel"}  # fmt: skip
        with self._lock:
            self._runs[task_id] = run
        run["future"] = self.client.submit(run_on_worker, spec, key=name, pure=False)
        run["future"].add_done_callback(lambda future, task_id=task_id: self._on_done(task_id, future))
        return {"pid": None, "pid_start": None}

    def _on_event(self, task_id: str, event: Any) -> None:
        message = event[1] if isinstance(event, tuple | list) else event
        run = self._runs.get(task_id)
        if run is None or not isinstance(message, dict):
            return
        if "lines" in message:
            with open(run["log_file"], "a", encoding="utf-8") as handle:
                handle.writelines(message["lines"])
            run["lines"] += len(message["lines"])
        elif "started" in message and message["started"] not in run["starts"]:
            retry = len(run["starts"])
            if 0 < retry <= self.retries:  # Dask runs it again because the last worker died: say so in the log
                with open(run["log_file"], "a", encoding="utf-8") as handle:
                    handle.write(f"--- the Dask worker {run['starts'][-1]} died while running the task; "
                                 f"running it again (retry {retry} of {self.retries}) on {message['started']} ---\n")  # fmt: skip
            run["starts"].append(message["started"])  # judged by alive(), off the client's event loop
            run["start_seen"] = time.monotonic()

    def _on_done(self, task_id: str, future: Any) -> None:
        run = self._runs.get(task_id)
        if run is None or run["died"]:
            return
        try:
            result = future.result()
        except Exception as exc:  # noqa: BLE001 - KilledWorker, a cancelled future, ...
            error = f"the Dask task failed: {type(exc).__name__}: {exc}"
            if type(exc).__name__ == "KilledWorker":  # the scheduler's own limit came before dask_worker_retries
                error = (f"the Dask scheduler gave up on the task after its workers died {len(run['starts'])} times "
                         "(distributed.scheduler.allowed-failures is lower than dask_worker_retries)")  # fmt: skip
            outcome = {"status": "failed", "exit_code": None, "error": error}
        else:
            deadline = time.monotonic() + 2.0  # the last lines may still be on their way
            while run["lines"] < result["lines"] and time.monotonic() < deadline:
                time.sleep(0.01)
            code, reason = result["exit_code"], result["reason"]
            if reason == "error":
                outcome = {"status": "failed", "exit_code": None, "error": result["error"]}
            elif reason == "timeout":
                timeout = self.orchestrator.get(task_id)["timeout_seconds"]
                outcome = {"status": "failed", "exit_code": code, "error": f"timed out after {timeout:g}s"}
            elif reason == "stopped":
                outcome = {"status": "cancelled", "exit_code": code, "error": "stopped"}
            elif code == 0:
                outcome = {"status": "completed", "exit_code": 0, "error": None}
            else:
                outcome = {"status": "failed", "exit_code": code, "error": f"exit code {code}"}
        self._write_end(task_id, outcome)

    def _write_end(self, task_id: str, outcome: dict[str, Any]) -> None:
        run = self._runs.get(task_id)
        outcome["attempt"] = run["attempt"] if run else None
        end = Path(str(self.paths.spec_file(task_id)) + ".end.json")
        try:
            end.with_suffix(".tmp").write_text(json.dumps(outcome))
            os.replace(end.with_suffix(".tmp"), end)
        except OSError:  # the working directory went away (closing): nothing left to record into
            log.debug("mesnada: could not write the end of %s", task_id, exc_info=True)
        if run is not None:
            run["ended"] = True  # only now: until then the task counts as alive
        self.orchestrator.wake.set()

    def alive(self, task: dict[str, Any]) -> bool:
        run = self._runs.get(task["id"])
        if run is None:
            return False
        if run["died"] is None and not run.get("ended"):
            lost = self._lost_worker(run)
            if lost is not None:
                run["died"] = f"the Dask worker {lost} died while running the task"
                if self.retries:
                    run["died"] += f" (no retries left: dask_worker_retries = {self.retries})"
                run["cancel"].set()
                run["future"].cancel()  # else a worker that joins later would run it again
                self._write_end(task["id"], {"status": "failed", "exit_code": None, "error": run["died"]})
        return not run.get("ended")

    def _lost_worker(self, run: dict[str, Any]) -> str | None:
        """The worker that ran the task's last allowed attempt, if it is gone."""
        starts = run["starts"]
        if len(starts) > 1 + self.retries:
            return starts[-2]  # Dask started it again on another worker: the one that ran it is gone
        if not starts or len(starts) <= self.retries or run["future"].done():
            return None  # not started yet, or Dask may still rerun it
        now = time.monotonic()
        if now - self._workers_checked >= WORKERS_CHECK_INTERVAL:
            try:
                self._workers = set(self.client.scheduler_info(n_workers=-1)["workers"])
            except Exception:  # noqa: BLE001 - the scheduler unreachable: judged on the next check
                log.debug("mesnada: asking the Dask scheduler for its workers failed", exc_info=True)
                return None
            self._workers_checked = now
        if self._workers_checked < run.get("start_seen", now):
            return None  # the list predates the start: a worker that joined since is not in it
        return starts[-1] if starts[-1] not in self._workers else None

    def stop(self, task: dict[str, Any]) -> None:
        run = self._runs.get(task["id"])
        if run is not None:
            run["cancel"].set()

    def child_pid(self, task_id: str) -> None:
        return None

    def reap(self) -> None:
        """Forget runs whose end was written and recorded (the orchestrator removed the end file)."""
        with self._lock:
            for task_id, run in list(self._runs.items()):
                end = Path(str(self.paths.spec_file(task_id)) + ".end.json")
                if run.get("ended") and run["future"].done() and not end.exists():
                    self.client.unsubscribe_topic(run["topic"])
                    self._runs.pop(task_id)

    def close(self) -> None:
        try:
            self.client.close(timeout=5)
        except Exception:  # noqa: BLE001 - closing goes on
            log.debug("closing the Dask client failed", exc_info=True)
