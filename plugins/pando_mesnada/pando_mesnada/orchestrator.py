"""The orchestrator: the queue, the operations on tasks, and the watch over running ones.

One orchestrator acts at a time: the primary's (run by the plugin's service), or, when no pando is
running, a task supervisor's for the moment it is the primary. Everything it knows is in the
database, so a new primary picks up where the last one stopped: ``adopt()`` keeps every running
task whose supervisor is still alive (pid plus start time) and fails the others ("interrupted").

The queue is enforced: at most ``max_parallel`` tasks run at once; pending tasks whose
dependencies all completed start by priority (highest first), then age. A task whose dependency
failed, was cancelled or deleted fails too, naming it.
"""

from __future__ import annotations

import logging
import shutil
import threading
import time
from pathlib import Path
from typing import Any

from pando_core.errors import ValidationError

from . import engines, personas
from .model import (
    CANCELLED,
    COMPLETED,
    ENDED,
    FAILED,
    ISOLATIONS,
    PAUSED,
    PENDING,
    RUNNING,
    STATUSES,
    TERMINAL,
    new_task_id,
    parse_timeout,
    read_log_tail,
)
from .recording import pending_end
from .runner import LocalRunner, Paths

log = logging.getLogger("pando.mesnada")

DEFAULTS: dict[str, Any] = {
    "max_parallel": 5,
    "default_engine": "pando",
    "default_model": "",
    "default_timeout": "",
    "isolation": "none",
    "backend": "local",
    "scheduler": "",
    "dependency_log_lines": 100,
    "stop_grace": 5.0,
    "poll_interval": 0.25,
    "dask_worker_retries": 0,
    "command": "",
}
MAX_WAIT_CHUNK = 30.0  # one mesnada.wait call waits at most this long (callers loop)


def _now_ms() -> int:
    return int(time.time() * 1000)


class Orchestrator:
    def __init__(
        self,
        store: Any,
        workdir: Path,
        config: dict[str, Any] | None = None,
        *,
        data_dir: Path | None = None,
        publish: Any = None,
        mcp_available: bool = False,
        plugins: list[str] | None = None,
        queue_only: bool = False,
    ) -> None:
        self.store = store
        # team mode, away from the lease holder: spawn records the task, the holder starts it
        self.queue_only = queue_only
        self.workdir = Path(workdir)
        self.config = {**DEFAULTS, **{k: v for k, v in (config or {}).items() if v is not None}}
        self.paths = Paths(data_dir or self.workdir / ".pando" / "mesnada").ensure()
        self._publish = publish
        self.mcp_available = mcp_available
        # a supervisor that records an end itself starts pando with the same plugins as this one
        self.plugins = plugins
        self._lock = threading.RLock()  # one scheduling decision at a time
        self._recorded_sizes: dict[str, int] = {}
        self.wake = threading.Event()
        self.runner = None if queue_only else self._make_runner()
        self.max_running_seen = 0

    # -- construction ------------------------------------------------------------------------------

    @classmethod
    def for_app(cls, app: Any, *, queue_only: bool = False) -> Orchestrator:
        loaded = list(app.plugins.loaded())
        return cls(
            app.store,
            app.workdir,
            app.config.section("mesnada"),
            data_dir=Path(app.data_dir("mesnada")),
            # queue_only: this instance hears its own commits in the change feed, which publishes
            publish=None if queue_only else app.events.publish,
            mcp_available="mcp" in loaded,  # pando-mcp serves `pando mcp-server` to the sub-agents
            plugins=loaded,
            queue_only=queue_only,
        )

    @classmethod
    def for_runtime(cls, runtime: Any, context: Any) -> Orchestrator:
        try:
            config = context.config.section("mesnada")
        except Exception:  # noqa: BLE001 - the plugin was not selected in that context: defaults
            config = {}
        return cls(runtime.store, context.workdir, config)

    def _make_runner(self) -> Any:
        backend = self.config["backend"]
        if backend == "local":
            # a supervisor waits a few passes of the orchestrator before recording its end itself
            env = {"PANDO_PLUGINS": ",".join(self.plugins)} if self.plugins else {}
            return LocalRunner(self.paths, handoff_wait=max(1.0, 8 * float(self.config["poll_interval"])), env=env)
        if backend == "dask":
            from .dask_backend import DaskRunner

            return DaskRunner(self.paths, self.config, self)
        raise ValidationError(f"[mesnada] backend {backend!r}: use \"local\" or \"dask\"")

    def close(self) -> None:
        if self.runner is not None:
            self.runner.close()

    def publish(self, topic: str, task: dict[str, Any]) -> None:
        if self._publish is not None:
            try:
                self._publish(topic, {"task": task})
            except Exception:  # noqa: BLE001 - an event listener never breaks the orchestrator
                log.debug("publishing %s failed", topic, exc_info=True)

    # -- spawn ---------------------------------------------------------------------------------------

    def spawn(self, params: dict[str, Any]) -> dict[str, Any]:
        task = self._new_task(params)
        created = self.store.mesnada.create(task=task)
        self.publish("mesnada.task.created", created)
        if not self.queue_only:
            self.schedule()
        if params.get("background", True) is False:
            return self.wait(created["id"], params.get("wait_timeout"))["task"]
        return self.get(created["id"])

    def _new_task(self, params: dict[str, Any], task_id: str | None = None) -> dict[str, Any]:
        if not isinstance(params, dict):
            raise ValidationError("mesnada.spawn takes an object of parameters")
        prompt = params.get("prompt")
        if not isinstance(prompt, str) or not prompt.strip():
            raise ValidationError("a task needs a prompt (a non-empty string)")
        task_id = task_id or new_task_id()
        engine = engines.canonical(params.get("engine"), self.config["default_engine"])
        model = params.get("model") or self.config["default_model"] or None
        work_dir = self._work_dir(params.get("work_dir"))
        tags = params.get("tags") or []
        if not isinstance(tags, list) or not all(isinstance(t, str) and t for t in tags):
            raise ValidationError("tags must be a list of non-empty strings")
        try:
            timeout = parse_timeout(params["timeout"] if "timeout" in params else self.config["default_timeout"])
        except ValueError as exc:
            raise ValidationError(str(exc)) from None
        priority = params.get("priority", 0)
        if isinstance(priority, bool) or not isinstance(priority, int):
            raise ValidationError("priority must be an integer")
        isolation = params.get("isolation") or self.config["isolation"]
        if isolation not in ISOLATIONS:
            raise ValidationError(f"isolation {isolation!r}: use \"none\" or \"worktree\"")
        if isolation == "worktree":
            from .worktrees import repository_root

            repository_root(Path(work_dir))
        persona = params.get("persona") or None
        if persona:
            personas.resolve(persona, self.paths.personas)  # an unknown one is refused now
        dependencies = params.get("dependencies") or []
        if not isinstance(dependencies, list) or not all(isinstance(d, str) for d in dependencies):
            raise ValidationError("dependencies must be a list of task ids")
        if dependencies:
            self._check_dependencies(task_id, dependencies)
        lines = params.get("dependency_log_lines", self.config["dependency_log_lines"])
        if isinstance(lines, bool) or not isinstance(lines, int) or lines < 0:
            raise ValidationError("dependency_log_lines must be a non-negative integer")
        extra_args = params.get("extra_args") or []
        if not isinstance(extra_args, list) or not all(isinstance(a, str) for a in extra_args):
            raise ValidationError("extra_args must be a list of strings")
        task = {
            "id": task_id,
            "prompt": prompt,
            "work_dir": work_dir,
            "status": PENDING,
            "engine": engine,
            "model": model,
            "persona": persona,
            "tags": list(dict.fromkeys(tags)),
            "dependencies": list(dict.fromkeys(dependencies)),
            "priority": priority,
            "timeout_seconds": timeout,
            "isolation": isolation,
            "backend": self.config["backend"],
            "include_dependency_logs": bool(params.get("include_dependency_logs", False)),
            "dependency_log_lines": lines,
            "extra": {"extra_args": extra_args},
            "log_file": str(self.paths.log_file(task_id)),
        }
        self._command(task, prompt)  # an engine that cannot run is refused now, not when it starts
        return task

    def _work_dir(self, raw: Any) -> str:
        if raw is not None and not isinstance(raw, str):
            raise ValidationError("work_dir must be a path")
        path = Path(raw or ".")
        if not path.is_absolute():
            path = self.workdir / path
        if not path.is_dir():
            raise ValidationError(f"work_dir {raw or '.'} does not exist (or is not a directory)")
        return str(path.resolve())

    def _check_dependencies(self, task_id: str, dependencies: list[str]) -> None:
        graph: dict[str, list[str]] = {}
        for dep in dependencies:
            if dep == task_id:
                raise ValidationError(f"task {task_id} cannot depend on itself")
            found = self.store.mesnada.find(id=dep)
            if found is None:
                raise ValidationError(f"unknown dependency {dep!r}")
        # a relaunch may change an existing task's dependencies: refuse a cycle through it
        for row in self.store.mesnada.list():
            graph[row["id"]] = row["dependencies"]
        graph[task_id] = dependencies
        seen: set[str] = set()
        stack = list(dependencies)
        while stack:
            current = stack.pop()
            if current == task_id:
                raise ValidationError(f"dependency cycle: {task_id} would depend on itself through {', '.join(dependencies)}")
            if current in seen:
                continue
            seen.add(current)
            stack.extend(graph.get(current, []))

    def _command(self, task: dict[str, Any], prompt: str) -> engines.EngineCommand:
        mcp = {}
        if task["engine"] != "pando" and self.mcp_available:
            mcp = {"pando": engines.pando_mcp_server(self.workdir)}
        return engines.build(
            task["engine"],
            task_id=task["id"],
            prompt=prompt,
            work_dir=task["work_dir"],
            workdir=self.workdir,
            model=task["model"],
            mcp_servers=mcp,
            mcp_dir=self.paths.mcp_dir(task["id"]),
            extra_args=(task.get("extra") or {}).get("extra_args"),
            config=self.config,
        )

    # -- the queue -----------------------------------------------------------------------------------

    def schedule(self) -> list[str]:
        """Start as many ready tasks as free slots allow; returns the ids started."""
        started: list[str] = []
        with self._lock:
            running = len(self.store.mesnada.list(status=[RUNNING]))
            free = int(self.config["max_parallel"]) - running
            for task in self.store.mesnada.queue():
                state = self._dependencies_state(task)
                if state == "wait":
                    continue
                if state != "ready":
                    self._finish(task, FAILED, {"error": state})
                    continue
                if free <= 0:
                    break
                if self._start(task):
                    started.append(task["id"])
                    free -= 1
            self.max_running_seen = max(self.max_running_seen, int(self.config["max_parallel"]) - free)
        return started

    def _dependencies_state(self, task: dict[str, Any]) -> str:
        for dep in task["dependencies"]:
            row = self.store.mesnada.find(id=dep)
            if row is None:
                return f"dependency {dep} was deleted"
            if row["status"] in (FAILED, CANCELLED):
                return f"dependency {dep} {row['status']}"
            if row["status"] != COMPLETED:
                return "wait"
        return "ready"

    def _prompt_for(self, task: dict[str, Any]) -> str:
        prompt = task["prompt"]
        if task["persona"]:
            prompt = personas.apply(personas.resolve(task["persona"], self.paths.personas), prompt)
        if task["include_dependency_logs"] and task["dependencies"]:
            parts = [prompt, "", "===LAST TASK RESULTS==="]
            for dep in task["dependencies"]:
                row = self.store.mesnada.find(id=dep)
                if row is not None:
                    lines = task["dependency_log_lines"]
                    parts += [f"--- {dep} ---", read_log_tail(row["log_file"], lines, limit=lines * 400 + 1)]
            prompt = "\n".join(parts)
        return prompt

    def _start(self, task: dict[str, Any]) -> bool:
        fields: dict[str, Any] = {}
        if not Path(task["log_file"]).parent.is_dir():
            # queued on another machine of a team (its .pando/ is not here): log in ours
            task = {**task, "log_file": str(self.paths.log_file(task["id"]))}
            fields["log_file"] = task["log_file"]
        try:
            if task["isolation"] == "worktree":
                from .worktrees import create_worktree

                made = create_worktree(Path(task["work_dir"]), self.paths.worktrees, task["id"])
                task = {**task, "work_dir": made["work_dir"], "worktree": made["worktree"]}
                task["extra"] = {**task["extra"], "base_commit": made["base_commit"]}
                fields.update(work_dir=made["work_dir"], worktree=made["worktree"], branch=made["branch"], extra=task["extra"])
            command = self._command(task, self._prompt_for(task))
            Path(task["log_file"]).touch()
            fields.update(self.runner.launch(task, command, self.workdir, float(self.config["stop_grace"])))
        except Exception as exc:  # noqa: BLE001 - the task fails with the reason; the queue goes on
            self._finish(task, FAILED, {"error": f"could not start: {exc}"})
            return False
        try:
            started = self.store.mesnada.mark_started(id=task["id"], fields=fields)
        except ValidationError:  # cancelled meanwhile
            self.runner.stop({**task, **fields})
            return False
        self.publish("mesnada.task.started", started)
        return True

    def _finish(self, task: dict[str, Any], status: str, fields: dict[str, Any], attempt: int | None = None) -> dict:
        done = self.store.mesnada.finish(id=task["id"], status=status, fields=fields, attempt=attempt)
        self._recorded_sizes.pop(task["id"], None)
        shutil.rmtree(self.paths.mcp_dir(task["id"]), ignore_errors=True)  # the per-task MCP config
        self.publish("mesnada.task.finished", done)
        return done

    # -- watching running tasks ----------------------------------------------------------------------

    def adopt(self) -> dict[str, list[str]]:
        """After a start or a promotion: keep every running task whose process is alive, fail
        the others as interrupted. Returns both lists."""
        adopted, interrupted = [], []
        for task in self.store.mesnada.list(status=[RUNNING]):
            if self._settle(task):
                interrupted.append(task["id"])
            else:
                adopted.append(task["id"])
        return {"adopted": adopted, "interrupted": interrupted}

    def _settle(self, task: dict[str, Any]) -> bool:
        """Record the end of a running task whose supervisor ended; True when it did."""
        end = pending_end(self.paths.spec_file(task["id"]))
        if end is not None and end.get("attempt") in (None, task["attempt"]):
            from .recording import end_fields

            spec = {"log_file": task["log_file"], "task_id": task["id"], "worktree": task.get("worktree"),
                    "base_commit": (task.get("extra") or {}).get("base_commit")}  # fmt: skip
            self._finish(task, end["status"], end_fields(spec, end), attempt=task["attempt"])
            Path(str(self.paths.spec_file(task["id"])) + ".end.json").unlink(missing_ok=True)
            return True
        if self.runner.alive(task):
            return False
        current = self.store.mesnada.find(id=task["id"])
        if current is None or current["status"] != RUNNING or current["completed_at"] is not None:
            return True  # its supervisor recorded the end meanwhile
        if pending_end(self.paths.spec_file(task["id"])) is not None:
            return self._settle(current)
        self._finish(
            current,
            FAILED,
            {"error": "interrupted: its process is gone and its end was not recorded",
             "output_tail": read_log_tail(task["log_file"])},
            attempt=current["attempt"],
        )  # fmt: skip
        return True

    def tick(self) -> None:
        """One pass: record ends, tail the logs of running tasks, start what may start."""
        self.runner.reap()
        for task in self.store.mesnada.list(status=[RUNNING, CANCELLED, PAUSED]):
            if task["status"] != RUNNING:
                if task["completed_at"] is None and task["status"] == CANCELLED and not self.runner.alive(task):
                    self._finish(task, CANCELLED, {"output_tail": read_log_tail(task["log_file"])}, task["attempt"])
                continue
            if self._settle(task):
                continue
            self._record_output(task)
        self.schedule()

    def _record_output(self, task: dict[str, Any]) -> None:
        try:
            size = Path(task["log_file"]).stat().st_size
        except OSError:
            return
        if self._recorded_sizes.get(task["id"]) == size:
            return
        self._recorded_sizes[task["id"]] = size
        updated = self.store.mesnada.record_output(id=task["id"], output_tail=read_log_tail(task["log_file"]), log_bytes=size)
        self.publish("mesnada.task.progress", updated)

    # -- other operations ----------------------------------------------------------------------------

    def get(self, task_id: str) -> dict[str, Any]:
        if not isinstance(task_id, str):
            raise ValidationError("id must be a task id")
        return self.store.mesnada.get(id=task_id)

    def list(self, params: dict[str, Any]) -> list[dict[str, Any]]:
        status = params.get("status")
        if isinstance(status, str):
            status = [status]
        for value in status or []:
            if value not in STATUSES:
                raise ValidationError(f"unknown status {value!r}: use {', '.join(STATUSES)}")
        tags = params.get("tags")
        if isinstance(tags, str):
            tags = [tags]
        limit = params.get("limit")
        if limit is not None and (isinstance(limit, bool) or not isinstance(limit, int) or limit < 0):
            raise ValidationError("limit must be a non-negative integer")
        return self.store.mesnada.list(status=status, tags=tags, limit=limit, offset=int(params.get("offset") or 0))

    def wait(self, task_id: str, timeout: Any = None) -> dict[str, Any]:
        """Until the task is terminal or *timeout* (seconds) passed: ``{task, timeout}``."""
        return self.wait_multiple([task_id], True, timeout) | {"task": self.get(task_id)}

    def wait_multiple(self, ids: list[str], wait_all: bool = True, timeout: Any = None) -> dict[str, Any]:
        try:
            seconds = parse_timeout(timeout)
        except ValueError as exc:
            raise ValidationError(str(exc)) from None
        seconds = min(seconds or MAX_WAIT_CHUNK, MAX_WAIT_CHUNK)
        deadline = time.monotonic() + seconds
        for task_id in ids:
            self.get(task_id)  # unknown ids fail at once
        while True:
            tasks = [self.get(task_id) for task_id in ids]
            done = [t for t in tasks if t["status"] in TERMINAL]
            if (wait_all and len(done) == len(tasks)) or (not wait_all and done):
                return {"tasks": tasks, "timeout": False}
            if time.monotonic() >= deadline:
                return {"tasks": tasks, "timeout": True}
            time.sleep(0.05)

    def cancel(self, task_id: str) -> dict[str, Any]:
        task = self.get(task_id)
        if task["status"] in TERMINAL:
            raise ValidationError(f"task {task_id} is already {task['status']}")
        return self._stop(task, CANCELLED)

    def pause(self, task_id: str) -> dict[str, Any]:
        task = self.get(task_id)
        if task["status"] not in (RUNNING, PENDING):
            raise ValidationError(f"task {task_id} is {task['status']}: only a pending or running task can be paused")
        return self._stop(task, PAUSED)

    def _stop(self, task: dict[str, Any], status: str) -> dict[str, Any]:
        with self._lock:
            if task["status"] == PENDING:
                return self._finish(task, status, {"error": status if status == CANCELLED else None})
            updated = self.store.mesnada.update(id=task["id"], fields={"status": status, "error": status})
            self.runner.stop(task)
        self.publish("mesnada.task.progress", updated)
        return updated

    def resume(self, task_id: str, prompt: str | None = None) -> dict[str, Any]:
        """A new task that continues a paused (or ended) one, pointing at its log."""
        task = self.get(task_id)
        if task["status"] not in TERMINAL:
            raise ValidationError(f"task {task_id} is {task['status']}: pause it before resuming")
        text = (
            f"Continue the work of task {task_id}, which was stopped. Its log is {task['log_file']}.\n\n"
            f"The original task:\n{task['prompt']}\n\n{prompt or 'Continue where it stopped.'}"
        )
        return self.spawn({**self._params_of(task), "prompt": text, "dependencies": []})

    def retry(self, task_id: str) -> dict[str, Any]:
        task = self.get(task_id)
        if task["status"] == PENDING:
            self.schedule()
            return self.get(task_id)
        if task["status"] not in (FAILED, CANCELLED):
            raise ValidationError(f"task {task_id} is {task['status']}: only a failed or cancelled task can be retried")
        params = self._params_of(task)
        params["prompt"] = f"{task['prompt']}\n\n(This is a retry of {task_id}, which ended {task['status']}: {task['error'] or ''})"
        new = self._new_task(params)
        new["log_file"] = task["log_file"]  # one log for the whole story
        new_id = new["id"]
        self._separator(task["log_file"], f"RETRY as {new_id} of {task_id}")
        new["extra"] = {**new["extra"], "retry_of": task_id}
        created = self.store.mesnada.create(task={**new, "retry_of": task_id})
        self.publish("mesnada.task.created", created)
        self.schedule()
        return self.get(new_id)

    def relaunch(self, task_id: str, overrides: dict[str, Any] | None = None) -> dict[str, Any]:
        """The same task (same id) back to pending, with *overrides* of its parameters."""
        task = self.get(task_id)
        if task["status"] == RUNNING:
            raise ValidationError(f"task {task_id} is running: cancel it first")
        params = {**self._params_of(task), **(overrides or {})}
        fresh = self._new_task(params, task_id=task_id)
        fields = {k: fresh[k] for k in ("prompt", "work_dir", "engine", "model", "persona", "tags", "dependencies",
                                         "priority", "timeout_seconds", "isolation", "include_dependency_logs",
                                         "dependency_log_lines")}  # fmt: skip
        fields.update(status=PENDING, exit_code=None, error=None, started_at=None, completed_at=None, pid=None,
                      pid_start=None, child_pid=None)  # fmt: skip
        self._separator(task["log_file"], f"RELAUNCH of {task_id}")
        updated = self.store.mesnada.update(id=task_id, fields=fields)
        self.publish("mesnada.task.created", updated)
        self.schedule()
        return self.get(task_id)

    def _params_of(self, task: dict[str, Any]) -> dict[str, Any]:
        work_dir = task["work_dir"]
        if task.get("worktree"):  # a new task gets a worktree of its own
            work_dir = str(self.workdir)
        return {
            "prompt": task["prompt"], "engine": task["engine"], "model": task["model"], "work_dir": work_dir,
            "tags": task["tags"], "timeout": task["timeout_seconds"], "persona": task["persona"],
            "dependencies": task["dependencies"], "priority": task["priority"], "isolation": task["isolation"],
            "include_dependency_logs": task["include_dependency_logs"],
            "dependency_log_lines": task["dependency_log_lines"], "extra_args": task["extra"].get("extra_args", []),
        }  # fmt: skip

    @staticmethod
    def _separator(log_file: str, what: str) -> None:
        stamp = time.strftime("%Y-%m-%d %H:%M:%S")
        with open(log_file, "a", encoding="utf-8") as handle:
            handle.write(f"\n=== {what} at {stamp} ===\n")

    def delete(self, task_id: str) -> dict[str, Any]:
        task = self.get(task_id)
        if task["status"] == RUNNING:
            self.runner.stop(task)
        self.store.mesnada.delete(id=task_id)
        return {"deleted": task_id}

    def purge(self, task_id: str) -> dict[str, Any]:
        """Delete the task and its files; an unknown id is not an error (purging twice is fine)."""
        task = self.store.mesnada.find(id=task_id)
        if task is not None:
            if task["status"] == RUNNING:
                self.runner.stop(task)
            self.store.mesnada.delete(id=task_id)
            Path(task["log_file"]).unlink(missing_ok=True)
            if task.get("worktree"):
                from .worktrees import remove_worktree

                remove_worktree(task["worktree"])
        shutil.rmtree(self.paths.mcp_dir(task_id), ignore_errors=True)
        for suffix in (".json", ".json.code", ".json.child", ".json.end.json", ".prompt", ".supervisor.log"):
            (self.paths.run / f"{task_id}{suffix}").unlink(missing_ok=True)
        return {"purged": task_id, "existed": task is not None}

    def set_progress(self, task_id: str, percentage: Any = None, description: Any = None) -> dict[str, Any]:
        if percentage is not None and (isinstance(percentage, bool) or not isinstance(percentage, int | float)):
            raise ValidationError("percentage must be a number from 0 to 100")
        updated = self.store.mesnada.set_progress(
            id=task_id, percentage=None if percentage is None else int(percentage),
            description=None if description is None else str(description),
        )  # fmt: skip
        self.publish("mesnada.task.progress", updated)
        return updated

    def stats(self) -> dict[str, Any]:
        stats = self.store.mesnada.stats()
        stats["max_parallel"] = int(self.config["max_parallel"])
        stats["backend"] = self.config["backend"]
        return stats


__all__ = ["DEFAULTS", "ENDED", "Orchestrator"]
