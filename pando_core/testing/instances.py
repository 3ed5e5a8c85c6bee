"""Real pando processes for tests: a primary and a secondary on one working directory.

``PandoInstance`` starts ``python -m pando_core.testing.instances`` on a working directory with
chosen plugins. The child builds a real App (so it becomes the primary, or a secondary of the one
already there) and then obeys JSON lines on its stdin: run a snippet of Python with ``app`` in
scope and answer its ``result`` (a JSON value), or exit. Tests drive both sides of the
multi-instance contract this way, and SIGKILL a primary to watch the failover::

    primary, secondary = pando_pair(plugins=["notes"])
    secondary.eval("result = app.call_primary('notes.count')")
    primary.kill()                        # SIGKILL: the secondary is promoted
    secondary.wait_for("result = app.role", "primary")

Plugins are named as installed (entry points) or as ``[name=]module:attribute`` importable by the
child (put a test plugin's directory on ``PYTHONPATH`` through ``env``).
"""

from __future__ import annotations

import json
import os
import queue
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

READY_TIMEOUT_S = 30.0


class InstanceError(RuntimeError):
    """The instance answered with an error, died, or did not answer in time."""


class PandoInstance:
    """One real pando process driven over stdin/stdout (see the module docstring)."""

    def __init__(
        self,
        workdir: Path,
        *,
        plugins: list[str] | None = None,
        env: dict[str, str] | None = None,
        log_path: Path | None = None,
    ) -> None:
        self.workdir = Path(workdir)
        self.plugins = list(plugins or [])
        self.env = dict(os.environ if env is None else env)
        self.log_path = Path(log_path) if log_path else None
        self.proc: subprocess.Popen | None = None
        self.info: dict[str, Any] = {}
        self._lines: queue.Queue = queue.Queue()
        self._next_id = 0

    # -- lifecycle -----------------------------------------------------------------------------------

    def start(self, timeout: float = READY_TIMEOUT_S) -> PandoInstance:
        installed = [p for p in self.plugins if ":" not in p]
        objects = [p for p in self.plugins if ":" in p]
        command = [sys.executable, "-m", "pando_core.testing.instances", "--workdir", str(self.workdir)]
        command += ["--plugins", ",".join(installed) or "none"]
        for spec in objects:
            command += ["--object", spec]
        stderr = open(self.log_path, "ab") if self.log_path else subprocess.DEVNULL  # noqa: SIM115
        try:
            self.proc = subprocess.Popen(
                command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=stderr, env=self.env, cwd=self.workdir
            )
        finally:
            if stderr is not subprocess.DEVNULL:
                stderr.close()
        threading.Thread(target=self._read, name="pando-instance-reader", daemon=True).start()
        self.info = self._answer(None, timeout)
        return self

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    @property
    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def kill(self) -> None:
        """SIGKILL: no clean-up at all, as a crash."""
        if self.alive:
            os.kill(self.pid, signal.SIGKILL)
            self.proc.wait(timeout=10)

    def stop(self, timeout: float = 15.0) -> None:
        """Ask the instance to shut down cleanly; kill it if it does not."""
        if not self.alive:
            return
        try:
            self._send({"op": "exit"}, timeout)
        except InstanceError:
            pass
        try:
            self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.kill()

    # -- requests ------------------------------------------------------------------------------------

    def eval(self, code: str, timeout: float = 30.0) -> Any:
        """Run *code* in the instance (``app`` in scope); answer what it assigned to ``result``."""
        return self._send({"op": "eval", "code": code}, timeout)

    @property
    def role(self) -> str:
        return self.eval("result = app.role")

    def wait_for(self, code: str, expected: Any, timeout: float = 10.0, interval: float = 0.05) -> Any:
        """Run *code* until its result equals *expected* (or the deadline: InstanceError)."""
        deadline = time.monotonic() + timeout
        last: Any = None
        while True:
            last = self.eval(code, timeout=max(1.0, deadline - time.monotonic()))
            if last == expected:
                return last
            if time.monotonic() >= deadline:
                raise InstanceError(f"{code!r} gave {last!r}, not {expected!r}, within {timeout}s")
            time.sleep(interval)

    def _send(self, request: dict[str, Any], timeout: float) -> Any:
        if not self.alive:
            raise InstanceError(f"the instance (pid {self.proc.pid if self.proc else '?'}) is not running")
        self._next_id += 1
        request = dict(request, id=self._next_id)
        try:
            self.proc.stdin.write((json.dumps(request) + "\n").encode("utf-8"))
            self.proc.stdin.flush()
        except (BrokenPipeError, OSError) as exc:
            raise InstanceError(f"the instance (pid {self.pid}) is gone: {exc}") from exc
        return self._answer(self._next_id, timeout)

    def _answer(self, request_id: int | None, timeout: float) -> Any:
        deadline = time.monotonic() + timeout
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise InstanceError(f"no answer from the instance (pid {self.pid}) within {timeout}s")
            try:
                line = self._lines.get(timeout=min(remaining, 0.2))
            except queue.Empty:
                if not self.alive and self._lines.empty():
                    raise InstanceError(f"the instance (pid {self.pid}) exited with {self.proc.returncode}") from None
                continue
            if line is None:
                raise InstanceError(f"the instance (pid {self.pid}) closed its output (exit {self.proc.poll()})")
            message = json.loads(line)
            if message.get("id") != request_id:
                continue
            if not message.get("ok"):
                raise InstanceError(message.get("error", "failed"))
            return message.get("result")

    def _read(self) -> None:
        assert self.proc is not None and self.proc.stdout is not None
        for raw in self.proc.stdout:
            self._lines.put(raw.decode("utf-8", "replace"))
        self._lines.put(None)


# -- the child ---------------------------------------------------------------------------------------


def _serve(workdir: Path, plugins: list[str], objects: list[str]) -> int:
    import contextlib
    import importlib
    import traceback

    from pando_core.app import App, AppOptions
    from pando_core.context import PandoContext, set_current

    extra = {}
    for spec in objects:  # "name=module:attribute", or "module:attribute" named after the module
        name, _, where = spec.rpartition("=")
        module_name, _, attribute = where.partition(":")
        target: Any = importlib.import_module(module_name)
        for part in filter(None, attribute.split(".")):
            target = getattr(target, part)
        extra[name or module_name.rsplit(".", 1)[-1]] = target
    out = sys.stdout
    sys.stdout = sys.stderr  # only answers on the real stdout
    context = PandoContext(workdir, requested_plugins=plugins, extra_plugins=extra)
    set_current(context)
    app = App.create(context, AppOptions(startup_mode="instance"))

    def answer(message: dict[str, Any]) -> None:
        out.write(json.dumps(message, default=str) + "\n")
        out.flush()

    answer({"id": None, "ok": True, "result": {"role": app.role, "pid": os.getpid(), "instance_id": app.instance_id}})
    try:
        for line in sys.stdin:
            request = json.loads(line)
            if request.get("op") == "exit":
                answer({"id": request.get("id"), "ok": True, "result": None})
                break
            scope: dict[str, Any] = {"app": app, "result": None}
            try:
                exec(compile(request.get("code", ""), "<pando-instance>", "exec"), scope)  # noqa: S102 - test driver
                answer({"id": request.get("id"), "ok": True, "result": scope.get("result")})
            except Exception as exc:  # noqa: BLE001 - handed back to the test
                answer({"id": request.get("id"), "ok": False, "error": f"{type(exc).__name__}: {exc}"})
                traceback.print_exc()
    finally:
        with contextlib.suppress(Exception):
            app.shutdown()
    return 0


def main(argv: list[str] | None = None) -> int:
    import argparse

    parser = argparse.ArgumentParser(prog="python -m pando_core.testing.instances")
    parser.add_argument("--workdir", required=True)
    parser.add_argument("--plugins", default="none", help="installed plugins, comma-separated ('none')")
    parser.add_argument("--object", action="append", default=[], help="module:attribute of a plugin object")
    args = parser.parse_args(argv)
    plugins = [] if args.plugins in ("", "none") else [p.strip() for p in args.plugins.split(",") if p.strip()]
    return _serve(Path(args.workdir), plugins, args.object)


if __name__ == "__main__":
    sys.exit(main())
