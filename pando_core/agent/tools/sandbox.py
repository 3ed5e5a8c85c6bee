"""The bash tool's sandbox: each command runs under bubblewrap (`bwrap`) when it is there.

What a sandboxed command sees: the whole file system read-only; the working directory, the
`[tools] writable_paths` and a private `/tmp` (one per session, removed when pando exits)
writable; pando's own `.pando/` directory read-only even inside the working directory (its
database, lock and bus token are not the model's to change); the `[tools] hidden_paths` (credentials in `$HOME`) replaced by an empty directory or an
empty file; a fresh `/dev` and `/proc` in its own process namespace (so the environment of pando
itself, which holds the provider keys, cannot be read from `/proc`); and no network unless
`[tools] network = true` or every simple command of the line matches a `[tools] network_commands`
pattern. The sandbox lives as long as one call: processes left in the background end with it
(files in its /tmp stay for the session's next calls).

The git repository the working directory belongs to stays usable (`git commit` works from a
subdirectory or a worktree: its git directories are writable too), but its `hooks/` and `config`
are read-only everywhere: a hook or a `core.fsmonitor` planted there would run outside the
sandbox the next time the user runs git.

`sandbox = "auto"` (the default) uses bubblewrap when it is installed and works here, and says once
on stderr when it does not; `"bwrap"` makes a missing or refusing bubblewrap an error of every
bash call; `"off"` runs commands as they are. :func:`probe` is what `pando doctor` reports.
"""

from __future__ import annotations

import atexit
import contextlib
import functools
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from pando_core.config import DEFAULT_HIDDEN_PATHS

MODES = ("auto", "bwrap", "off")
PROBE_TIMEOUT_S = 10.0
INSTALL_HINT = "install bubblewrap (apt-get install bubblewrap, dnf install bubblewrap)"


class SandboxUnavailable(RuntimeError):
    """`sandbox = "bwrap"` but bubblewrap is missing or refuses to run here."""


@dataclass(frozen=True)
class Probe:
    """Whether bubblewrap can sandbox commands on this machine."""

    path: str | None  # the bwrap executable, None when not installed
    version: str | None
    works: bool
    problem: str  # why it does not work ("" when it does)


@dataclass(frozen=True)
class SandboxSettings:
    """The `[tools]` keys of the sandbox (declared in pando_core.config)."""

    mode: str = "auto"
    writable_paths: tuple[str, ...] = ()
    network: bool = False
    network_commands: tuple[str, ...] = ()
    hidden_paths: tuple[str, ...] = DEFAULT_HIDDEN_PATHS

    @classmethod
    def from_config(cls, config: Mapping[str, Any]) -> SandboxSettings:
        mode = str(config.get("sandbox") or "auto").lower()
        if mode not in MODES:
            mode = "auto"  # the config loader already rejects other values; be safe for direct callers
        hidden = config.get("hidden_paths")
        return cls(
            mode=mode,
            writable_paths=tuple(str(p) for p in config.get("writable_paths") or ()),
            network=bool(config.get("network", False)),
            network_commands=tuple(str(p) for p in config.get("network_commands") or ()),
            hidden_paths=DEFAULT_HIDDEN_PATHS if hidden is None else tuple(str(p) for p in hidden),
        )


@functools.lru_cache(maxsize=4)
def probe(bwrap: str | None = None) -> Probe:
    """Find bubblewrap and run `true` under the same options bash gets (cached per process)."""
    path = bwrap or shutil.which("bwrap")
    if not path:
        return Probe(None, None, False, f"bubblewrap (bwrap) is not installed; {INSTALL_HINT}")
    version = None
    try:
        out = subprocess.run([path, "--version"], capture_output=True, text=True, timeout=PROBE_TIMEOUT_S)
        version = (out.stdout.strip().split() or [None])[-1]
        trial = subprocess.run(
            [path, *_base_args(network=False), "--", "true"],
            capture_output=True,
            text=True,
            timeout=PROBE_TIMEOUT_S,
            stdin=subprocess.DEVNULL,
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        return Probe(path, version, False, f"bubblewrap ({path}) could not be run: {exc}")
    if trial.returncode != 0:
        reason = " ".join(trial.stderr.split()) or f"exit code {trial.returncode}"
        return Probe(
            path,
            version,
            False,
            f"bubblewrap refuses to run here ({reason}); the kernel may not allow unprivileged user "
            "namespaces (sysctl kernel.unprivileged_userns_clone=1, or "
            "kernel.apparmor_restrict_unprivileged_userns=0 on Ubuntu)",
        )
    return Probe(path, version, True, "")


def _base_args(*, network: bool, tmp: str | None = None) -> list[str]:
    args = [
        "--ro-bind", "/", "/",
        "--dev", "/dev",
        "--proc", "/proc",
        *(["--bind", tmp, "/tmp"] if tmp else ["--tmpfs", "/tmp"]),
        "--unshare-pid",
        "--die-with-parent",
    ]  # fmt: skip
    if not network:
        args.append("--unshare-net")
    return args


def _expand(path: str, base: str) -> str:
    expanded = os.path.expandvars(os.path.expanduser(path))
    return os.path.realpath(os.path.join(base, expanded))


def git_paths(root: str) -> tuple[list[str], list[str]]:
    """(writable, read-only) paths for the git repository holding `root`: its git directory and,
    for a worktree, the main repository's; read-only: their hooks and config."""
    directory = root
    for _ in range(64):  # bounded walk up to /
        dot_git = os.path.join(directory, ".git")
        if os.path.exists(dot_git):
            break
        parent = os.path.dirname(directory)
        if parent == directory:
            return [], []
        directory = parent
    else:
        return [], []
    git_dirs = [os.path.realpath(dot_git)]
    if os.path.isfile(dot_git):  # a worktree or submodule: "gitdir: PATH"
        try:
            with open(dot_git, encoding="utf-8") as handle:
                text = handle.read().strip()
        except OSError:
            return [], []
        if not text.startswith("gitdir:"):
            return [], []
        git_dir = os.path.realpath(os.path.join(directory, text[len("gitdir:") :].strip()))
        git_dirs = [git_dir]
        try:
            with open(os.path.join(git_dir, "commondir"), encoding="utf-8") as handle:
                git_dirs.append(os.path.realpath(os.path.join(git_dir, handle.read().strip())))
        except OSError:
            pass
    writable = [d for d in git_dirs if os.path.isdir(d)]
    read_only = [
        os.path.join(d, name)
        for d in writable
        for name in ("hooks", "config", "config.worktree")
        if os.path.exists(os.path.join(d, name))
    ]
    return writable, read_only


def every_command_matches(command: str, patterns: Iterable[str]) -> bool:
    """True when each simple command of the line (wrappers included, as written) matches a pattern."""
    patterns = list(patterns)
    if not patterns:
        return False
    from .shell_safety import simple_command_texts

    texts = simple_command_texts(command)
    if not texts:
        return False  # not understood (or empty): no network
    from .command_patterns import matches_any

    return all(matches_any(text, patterns) for text in texts)


_warned: set[str] = set()


def warn_once(message: str) -> None:
    """Print `message` on stderr the first time this process meets it."""
    if message in _warned:
        return
    _warned.add(message)
    print(f"pando: warning: {message}", file=sys.stderr, flush=True)


class Sandbox:
    """Builds the bwrap command line around one bash call."""

    def __init__(self, settings: SandboxSettings | None = None) -> None:
        self.settings = settings or SandboxSettings(mode="off")

    def active_probe(self) -> Probe | None:
        """The working bubblewrap to use, or None to run unsandboxed.

        Raises SandboxUnavailable for `mode = "bwrap"` when it cannot be used; warns once for `auto`."""
        if self.settings.mode == "off":
            return None
        found = probe()
        if found.works:
            return found
        if self.settings.mode == "bwrap":
            raise SandboxUnavailable(f'[tools] sandbox = "bwrap" but {found.problem}')
        warn_once(f"bash commands are not sandboxed: {found.problem} (or set [tools] sandbox = \"off\")")
        return None

    def network_for(self, command: str) -> bool:
        return self.settings.network or every_command_matches(command, self.settings.network_commands)

    def wrap(
        self,
        argv: list[str],
        found: Probe,
        *,
        command: str,
        workdir: str,
        cwd: str,
        private: Iterable[str] = (),
        tmp: str | None = None,
    ) -> tuple[list[str], list[str]]:
        """`argv` run under bubblewrap, and the paths mounted over (for :func:`forget_mount_points`);
        `private` are pando's own temp paths the call must write; `tmp` the host directory seen as
        /tmp (default: an empty tmpfs)."""
        assert found.path is not None
        root = os.path.realpath(workdir)
        args = [found.path, *_base_args(network=self.network_for(command), tmp=tmp)]
        writable = [root]
        for path in self.settings.writable_paths:
            real = _expand(path, root)
            if os.path.exists(real) and real not in writable:
                writable.append(real)
        repository, protected = git_paths(root)
        writable += [p for p in repository if not _under(p, writable)]
        writable += [os.path.realpath(p) for p in private]
        for path in writable:
            args += ["--bind", path, path]
        own_state = os.path.join(root, ".pando")
        for path in [*protected, *([own_state] if os.path.isdir(own_state) else [])]:
            args += ["--ro-bind", path, path]
        for path in self.settings.hidden_paths:
            real = _expand(path, root)
            if os.path.isdir(real):
                args += ["--tmpfs", real]
            elif os.path.exists(real):
                args += ["--ro-bind", "/dev/null", real]
        if repository:
            # the workdir is a mount point in the sandbox: git would stop looking for .git there
            args += ["--setenv", "GIT_DISCOVERY_ACROSS_FILESYSTEM", "1"]
        args += ["--setenv", "TMPDIR", "/tmp", "--chdir", cwd, "--", *argv]
        targets = [args[i + 1] for i, arg in enumerate(args) if arg == "--tmpfs"]
        targets += [args[i + 2] for i, arg in enumerate(args) if arg in ("--bind", "--ro-bind")]
        return args, [t for t in targets if t not in ("/", "/tmp")]


HINTS = (
    (
        ("Read-only file system",),
        "(bash runs in a sandbox: only the working directory, /tmp and [tools] writable_paths are writable)",
    ),
    (
        (
            "Network is unreachable",
            "Temporary failure in name resolution",
            "Could not resolve host",
            "Connection refused",  # nothing of the host, its loopback included, is reachable
        ),
        "(bash runs in a sandbox without network, the host's loopback included: [tools] network or "
        "network_commands give it)",
    ),
)


def hint_for(output: str, network: bool) -> str | None:
    """A line telling the model why a sandboxed command failed the way it did, if it is plain."""
    for needles, hint in HINTS:
        if "network" in hint and network:
            continue
        if any(needle in output for needle in needles):
            return hint
    return None


def session_tmp() -> str:
    """A new host directory to be one session's private /tmp (removed by :func:`remove_tmp` or
    when the process exits)."""
    path = tempfile.mkdtemp(prefix="pando-sandbox-tmp-")
    _session_tmps.add(path)
    return path


def remove_tmp(path: str | None) -> None:
    if path:
        _session_tmps.discard(path)
        shutil.rmtree(path, ignore_errors=True)


def forget_mount_points(tmp: str, targets: Iterable[str]) -> None:
    """bwrap made empty directories (and files) in the session's /tmp to mount the paths under
    /tmp on (a workdir in /tmp, pando's own temp directory): remove them once the call is over."""
    host_tmp = os.path.realpath("/tmp")
    for target in sorted(targets, key=len, reverse=True):
        if not target.startswith(host_tmp + "/"):
            continue
        path = os.path.join(tmp, os.path.relpath(target, host_tmp))
        with contextlib.suppress(OSError):
            if os.path.isfile(path) and not os.path.islink(path) and os.path.getsize(path) == 0:
                os.remove(path)
        while path != tmp and path.startswith(tmp + "/"):
            try:
                os.rmdir(path)
            except OSError:
                break  # not empty (or gone): the model's own files stay
            path = os.path.dirname(path)


_session_tmps: set[str] = set()
atexit.register(lambda: [remove_tmp(path) for path in list(_session_tmps)])


def _under(path: str, roots: Iterable[str]) -> bool:
    return any(path == r or path.startswith(r.rstrip("/") + "/") for r in roots)


def describe(settings: SandboxSettings) -> dict[str, Any]:
    """The sandbox state for `pando doctor`: mode, bubblewrap found / version / working, in effect."""
    found = probe()
    if settings.mode == "off":
        state, problem = "off", ""
    elif found.works:
        state, problem = "on", ""
    else:
        state, problem = ("error" if settings.mode == "bwrap" else "unsandboxed"), found.problem
    return {
        "mode": settings.mode,
        "state": state,  # on | off | unsandboxed (auto without a working bwrap) | error (bwrap mode)
        "bwrap": found.path,
        "bwrap_version": found.version,
        "bwrap_works": found.works,
        "problem": problem or None,
        "network": settings.network,
        "network_commands": list(settings.network_commands),
        "writable_paths": list(settings.writable_paths),
        "hidden_paths": list(settings.hidden_paths),
    }
