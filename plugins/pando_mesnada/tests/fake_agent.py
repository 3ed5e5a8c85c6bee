"""A fake agent CLI for the tests, installed on PATH under each engine's name.

It records how it was called (argv, cwd, start and end times) to ``$FAKE_AGENT_RECORDS/<pid>.json``
and acts on directives in its prompt, one per line: ``say:TEXT``, ``sleep:SECONDS``, ``exit:CODE``,
``ignore-term``, ``flood:MEGABYTES``, ``write:FILE=TEXT``, ``grandchild`` (starts a long sleep
child in the same process group and records its pid), ``wait-file:PATH`` (waits, at most 60 s,
until the test creates PATH).
"""

import json
import os
import signal
import subprocess
import sys
import time


def prompt_of(argv):
    for flag in ("-p", "--prompt"):
        if flag in argv[:-1]:
            value = argv[argv.index(flag) + 1]
            return sys.stdin.read() if value == "-" else value
    return argv[-1] if argv else ""


def main():
    started = time.time()
    argv = sys.argv[1:]
    prompt = prompt_of(argv)
    record = {"argv": argv, "cwd": os.getcwd(), "prompt": prompt, "started": started, "pid": os.getpid(),
              "engine": os.path.basename(sys.argv[0]), "env": {k: os.environ.get(k) for k in ("NO_COLOR", "OPENCODE_CONFIG", "GEMINI_CLI_SYSTEM_SETTINGS_PATH")}}
    records = os.environ.get("FAKE_AGENT_RECORDS")
    path = os.path.join(records, f"{os.getpid()}.json") if records else None

    def save():
        if path:
            with open(path + ".tmp", "w") as handle:
                json.dump(record, handle)
            os.replace(path + ".tmp", path)

    save()
    code = 0
    for line in prompt.splitlines():
        key, _, value = line.strip().partition(":")
        if key == "say":
            print(value, flush=True)
        elif key == "sleep":
            time.sleep(float(value))
        elif key == "exit":
            code = int(value)
        elif key == "ignore-term":
            signal.signal(signal.SIGTERM, signal.SIG_IGN)
        elif key == "flood":
            block = (b"x" * 1023 + b"\n") * 1024
            for _ in range(int(value)):
                sys.stdout.buffer.write(block)
            sys.stdout.buffer.write(b"flood done\n")
            sys.stdout.flush()
        elif key == "write":
            name, _, text = value.partition("=")
            with open(name, "w") as handle:
                handle.write(text + "\n")
        elif key == "grandchild":
            child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
            record["grandchild"] = child.pid
            save()
        elif key == "stderr":
            print(value, file=sys.stderr, flush=True)
        elif key == "wait-file":  # until the test creates this file (at most 60 s)
            deadline = time.monotonic() + 60
            while not os.path.exists(value) and time.monotonic() < deadline:
                time.sleep(0.05)
    record["ended"] = time.time()
    save()
    sys.exit(code)


if __name__ == "__main__":
    main()
