"""The per-task supervisor: a small process that runs one task's child and records its end.

Started by the orchestrator as ``python -S supervisor.py SPEC.json`` in a session of its own, it
outlives the pando that spawned it (a SIGKILL of the primary, or a short-lived ``pando mesnada
spawn`` that has exited). It imports only the standard library until the child has ended, so it
adds little to the spawn time; then it loads site-packages and pando and records the end through
the normal write path: it bootstraps as a pando instance (a secondary when a pando is running, the
primary when none is), so the end is recorded even when no pando was open at that moment.

The child runs in its own process group with stdout and stderr going straight to the task's log
file. SIGTERM (cancel, pause) stops the child's group: SIGTERM, then SIGKILL after the grace
period. A timeout does the same. Before touching the database the supervisor writes the outcome to
``SPEC.end.json``, which any orchestrator records if the supervisor could not.
"""

import json
import os
import signal
import subprocess
import sys
import time

_stop_requested = False


def _on_sigterm(signum, frame):  # noqa: ARG001 - signal handler signature
    global _stop_requested
    _stop_requested = True


def _stop_group(proc, grace):
    """SIGTERM the child's process group, SIGKILL it if still there after *grace* seconds."""
    for sig, wait in ((signal.SIGTERM, grace), (signal.SIGKILL, 5.0)):
        try:
            os.killpg(proc.pid, sig)
        except ProcessLookupError:
            pass
        try:
            proc.wait(timeout=wait)
            break
        except subprocess.TimeoutExpired:
            continue
    # the leader is gone; members that ignored SIGTERM may still be there
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass


def run(spec):
    """Run the child of *spec*; return the outcome (status and fields to record)."""
    env = dict(os.environ)
    env.update(spec.get("env") or {})
    env.pop("PYTHONNOUSERSITE", None)
    stdin = open(spec["stdin_file"], "rb") if spec.get("stdin_file") else subprocess.DEVNULL  # noqa: SIM115
    with open(spec["log_file"], "ab", buffering=0) as log:
        started = time.time()
        try:
            proc = subprocess.Popen(
                spec["argv"], cwd=spec["cwd"], env=env, stdin=stdin, stdout=log, stderr=subprocess.STDOUT,
                start_new_session=True, close_fds=True,
            )  # fmt: skip
        except OSError as exc:
            log.write(f"[mesnada] could not start {spec['argv'][0]}: {exc}\n".encode())
            return {"status": "failed", "exit_code": None, "error": f"could not start {spec['argv'][0]}: {exc.strerror or exc}"}
        finally:
            if stdin is not subprocess.DEVNULL:
                stdin.close()
        with open(spec["spec_file"] + ".child", "w") as handle:
            handle.write(str(proc.pid))
        timeout = spec.get("timeout")
        deadline = started + timeout if timeout else None
        reason = None
        while True:
            try:
                proc.wait(timeout=0.1)
                break
            except subprocess.TimeoutExpired:
                pass
            if _stop_requested:
                reason = "stopped"
            elif deadline is not None and time.time() >= deadline:
                reason = "timeout"
            if reason:
                _stop_group(proc, float(spec.get("grace", 5.0)))
                break
        code = proc.returncode
        if reason == "timeout":
            log.write(f"\n[mesnada] timed out after {timeout:g}s: stopped\n".encode())
    if reason == "timeout":
        return {"status": "failed", "exit_code": code, "error": f"timed out after {timeout:g}s"}
    if reason == "stopped":
        return {"status": "cancelled", "exit_code": code, "error": "stopped"}
    if code == 0:
        return {"status": "completed", "exit_code": 0, "error": None}
    if code is not None and code < 0:
        return {"status": "failed", "exit_code": code, "error": f"killed by signal {-code}"}
    return {"status": "failed", "exit_code": code, "error": f"exit code {code}"}


def main(argv):
    signal.signal(signal.SIGTERM, _on_sigterm)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGHUP, signal.SIG_IGN)
    spec_file = argv[1]
    with open(spec_file) as handle:
        spec = json.load(handle)
    spec["spec_file"] = spec_file
    outcome = run(spec)
    outcome["finished_at"] = time.time()
    outcome["attempt"] = spec.get("attempt")
    end_file = spec_file + ".end.json"
    with open(end_file + ".tmp", "w") as handle:
        json.dump(outcome, handle)
    os.replace(end_file + ".tmp", end_file)
    # now the heavy part: site-packages, pando, the database
    sys.path[:] = [p for p in sys.path if os.path.abspath(p or ".") != os.path.dirname(os.path.abspath(__file__))]
    if sys.flags.no_site:
        import site

        site.main()
    from pando_mesnada.recording import record_end

    record_end(spec, outcome)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
