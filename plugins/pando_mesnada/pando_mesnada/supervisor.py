"""The per-task supervisor: a small process that watches one task's child and records its end.

The orchestrator starts the child itself (``os.posix_spawn``, a session of its own, through a
``sh`` wrapper that writes the exit code to ``SPEC.json.code``), then this supervisor as ``python
-S supervisor.py SPEC.json``, also in a session of its own, so both outlive the pando that spawned
them (a SIGKILL of the primary, or a short-lived ``pando mesnada spawn`` that has exited). Nothing
waits for the supervisor's start-up: the child is already running.

The supervisor watches the child (pid plus start time), enforces the timeout and, on SIGTERM
(cancel, pause), stops the child's process group: SIGTERM, then SIGKILL after the grace period.
When the child has ended it writes the outcome to ``SPEC.json.end.json``; a running orchestrator
records it and removes the file. If none does within ``handoff_wait`` seconds, no pando is
watching: the supervisor loads site-packages and pando and records the end itself through the
normal write path, bootstrapping as a pando instance (a secondary when a pando is running, the
primary when none is) -- so the end is recorded even when no pando was open.
"""

import _signal
import json
import os
import sys
import time

_stop_requested = False


def _on_sigterm(signum, frame):  # noqa: ARG001 - signal handler signature
    global _stop_requested
    _stop_requested = True


def _start_time(pid):
    """The kernel's start time of *pid*, None when it is gone or a zombie (see runner.py)."""
    try:
        with open(f"/proc/{pid}/stat") as handle:
            data = handle.read()
    except OSError:
        return None
    fields = data[data.rindex(")") + 2 :].split()
    return None if fields[0] in ("Z", "X") else fields[19]


def _running(spec):
    # no start time: the child had ended and been reaped before its launch was recorded
    return spec["child_start"] is not None and _start_time(spec["child_pid"]) == spec["child_start"]


def _wait_gone(spec, wait):
    deadline = time.monotonic() + wait
    while _running(spec):
        if time.monotonic() >= deadline:
            return False
        time.sleep(0.02)
    return True


def _stop_group(spec, grace):
    """SIGTERM the child's process group, SIGKILL it if still there after *grace* seconds."""
    pid = spec["child_pid"]
    for sig, wait in ((_signal.SIGTERM, grace), (_signal.SIGKILL, 5.0)):
        try:
            os.killpg(pid, sig)
        except ProcessLookupError:
            pass
        if _wait_gone(spec, wait):
            break
    try:  # the leader is gone; members that ignored SIGTERM may still be there
        os.killpg(pid, _signal.SIGKILL)
    except ProcessLookupError:
        pass


def _exit_code(spec):
    try:
        with open(spec["code_file"]) as handle:
            return int(handle.read().strip())
    except (OSError, ValueError):
        return None  # the wrapper itself was killed: no code written


def watch(spec):
    """Until the child ended; the outcome (status, exit code, error)."""
    timeout = spec.get("timeout")
    deadline = time.monotonic() + timeout if timeout else None
    reason = None
    while _running(spec):
        if _stop_requested:
            reason = "stopped"
        elif deadline is not None and time.monotonic() >= deadline:
            reason = "timeout"
        if reason:
            _stop_group(spec, float(spec.get("grace", 5.0)))
            break
        time.sleep(0.05)
    code = _exit_code(spec)
    if reason == "timeout":
        with open(spec["log_file"], "a", encoding="utf-8") as handle:
            handle.write(f"\n[mesnada] timed out after {timeout:g}s: stopped\n")
        return {"status": "failed", "exit_code": code, "error": f"timed out after {timeout:g}s"}
    if reason == "stopped" or _stop_requested:
        return {"status": "cancelled", "exit_code": code, "error": "stopped"}
    if code == 0:
        return {"status": "completed", "exit_code": 0, "error": None}
    if code is None:
        return {"status": "failed", "exit_code": None, "error": "killed by a signal"}
    if code > 128:
        return {"status": "failed", "exit_code": code, "error": f"exit code {code} (signal {code - 128})"}
    return {"status": "failed", "exit_code": code, "error": f"exit code {code}"}


def main(argv):
    _signal.signal(_signal.SIGTERM, _on_sigterm)
    _signal.signal(_signal.SIGINT, _signal.SIG_IGN)
    _signal.signal(_signal.SIGHUP, _signal.SIG_IGN)
    spec_file = argv[1]
    with open(spec_file, encoding="utf-8") as handle:
        spec = json.load(handle)
    spec["spec_file"] = spec_file
    outcome = watch(spec)
    outcome["finished_at"] = time.time()
    outcome["attempt"] = spec.get("attempt")
    end_file = spec_file + ".end.json"
    with open(end_file + ".tmp", "w") as handle:
        json.dump(outcome, handle)
    os.replace(end_file + ".tmp", end_file)
    deadline = time.monotonic() + float(spec.get("handoff_wait", 2.0))
    while time.monotonic() < deadline:
        if not os.path.exists(end_file):
            return 0  # a running orchestrator recorded it
        time.sleep(0.02)
    # no pando is watching: site-packages, pando, the database
    here = os.path.dirname(os.path.abspath(__file__))
    sys.path[:] = [p for p in sys.path if os.path.abspath(p or ".") != here]
    if sys.flags.no_site:
        import site

        site.main()
    from pando_mesnada.recording import record_end

    record_end(spec, outcome)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
