"""The commands whose arguments a :class:`~.shell_commands.Spec` cannot describe: wrappers that
run another command (`env`, `xargs`, `timeout`, `nice`, `command`, `builtin`, `exec`, `stdbuf`,
`sh -c`), `cd`, `test`/`[`, `find`'s expressions, git's subcommands, `date`, `hostname`, `ps`.

A mixin of :class:`~.shell_safety._Checker`: each ``cmd_<name>`` checks one command's arguments
with the checker's `options`, `path`, `static` and `words`, and raises :class:`NotReadOnly` with
the reason when they are not read-only.
"""

from __future__ import annotations

import os
from typing import Any

from . import shell_commands as known
from .shell_syntax import Word, parse


class NotReadOnly(Exception):
    """Raised with the reason as soon as one part of a command is not read-only."""


class CommandRules:
    # provided by the checker
    options: Any
    path: Any
    static: Any
    words: Any
    script: Any
    assignment: Any

    def cmd_cd(self, args: list[Word], cwds: set[str], depth: int) -> set[str]:
        args = [a for a in args if a.value not in ("-L", "-P", "-e", "-@")]
        if not args:
            raise NotReadOnly("cd without a directory goes to the home directory")
        if len(args) > 1 or args[0].value == "-":
            raise NotReadOnly("cd to a directory only known when it runs")
        self.path(args[0], cwds, "cd")
        value = os.path.expanduser(args[0].value) if args[0].tilde else args[0].value
        return {os.path.realpath(os.path.join(cwd, value)) for cwd in cwds}

    def cmd_test(self, args: list[Word], cwds: set[str], depth: int) -> None:
        for word in args:
            text = word.value
            if text in ("-v", "-R"):  # test -v 'a[$(cmd)]' evaluates the subscript: it runs cmd
                raise NotReadOnly(f"test {text} can run commands through an array subscript")
            if word.static and (
                text in ("=", "==", "!=", "<", ">", "!", "(", ")", "]")
                or (text.startswith("-") and text[1:].isalpha())
            ):
                continue
            if word.static and text.lstrip("-").isdigit():
                continue
            self.path(word, cwds, "test")

    def cmd_find(self, args: list[Word], cwds: set[str], depth: int) -> None:
        index = 0
        while index < len(args) and args[index].value in ("-H", "-P"):  # -L follows links out
            index += 1
        while index < len(args) and not (args[index].value.startswith("-") or args[index].value in "()!,"):
            self.path(args[index], cwds, "find")
            index += 1
        while index < len(args):
            word = args[index]
            self.static(word, "find")
            primary = word.value
            if primary in known.FIND_TESTS:
                index += 1
            elif primary in known.FIND_TESTS_WITH_VALUE:
                if index + 1 >= len(args):
                    raise NotReadOnly(f"find {primary} without its value")
                self.static(args[index + 1], "find")
                index += 2
            elif primary in known.FIND_TESTS_WITH_PATH:
                if index + 1 >= len(args):
                    raise NotReadOnly(f"find {primary} without its value")
                self.path(args[index + 1], cwds, f"find {primary}")
                index += 2
            else:
                raise NotReadOnly(f"find {primary} is not known to be read-only")

    def cmd_git(self, args: list[Word], cwds: set[str], depth: int) -> None:
        index = 0
        while index < len(args):
            word = args[index]
            self.static(word, "git")
            text = word.value
            if text in known.GIT_GLOBAL_FLAGS:
                index += 1
            elif text == "-C":
                if index + 1 >= len(args):
                    raise NotReadOnly("git -C without a directory")
                target = args[index + 1]
                self.path(target, cwds, "git -C")
                cwds = {os.path.realpath(os.path.join(cwd, target.value)) for cwd in cwds}
                index += 2
            elif text in ("--version", "version"):
                self.options("git version", known.GIT["version"], args[index + 1 :], cwds)
                return None
            elif text.startswith("-"):
                reason = (
                    "overrides git's configuration"
                    if text.startswith("-c") or text.startswith("--config")
                    else "is not known to be read-only"
                )
                raise NotReadOnly(f"git {text} {reason}")
            else:
                break
        if index >= len(args):
            raise NotReadOnly("git without a subcommand")
        sub = args[index].value
        rest = args[index + 1 :]
        if sub in known.GIT:
            self.options(f"git {sub}", known.GIT[sub], rest, cwds)
            return None
        if sub in known.GIT_LISTING:
            operands = self.options(f"git {sub}", known.GIT_LISTING[sub], rest, cwds)
            listing = any(
                w.value == "--list"
                or (w.value.startswith("-") and not w.value.startswith("--") and "l" in w.value)
                for w in rest
            )
            if operands and not listing:
                raise NotReadOnly(f"git {sub} with a name creates a {sub} (list them with --list)")
            return None
        if sub == "remote":
            values = [w.value for w in rest]
            if values in ([], ["-v"], ["--verbose"]) or (
                values[:1] == ["get-url"] and all(w.static for w in rest)
            ):
                return None
            raise NotReadOnly("git remote " + " ".join(values) + " is not read-only (or reaches the network)")
        if sub == "stash" and [w.value for w in rest] == ["list"]:
            return None
        if sub == "worktree" and [w.value for w in rest][:1] == ["list"]:
            return None
        if sub == "config":
            return self.git_config(rest)
        raise NotReadOnly(f"git {sub} is not a git command known to be read-only")

    def git_config(self, rest: list[Word]) -> None:
        values = [w.value for w in rest]
        reads = {"--get", "--get-all", "--get-regexp", "--list", "-l"}
        scopes = {
            "--local",
            "--global",
            "--system",
            "--show-origin",
            "--show-scope",
            "--name-only",
            "-z",
            "--null",
            "--bool",
            "--int",
            "--path",
            "--includes",
            "--no-includes",
        }
        if not all(w.static for w in rest) or not reads.intersection(values):
            raise NotReadOnly("git config without --get/--list can change the configuration")
        operands = [v for v in values if v not in reads and v not in scopes]
        if any(v.startswith("-") for v in operands) or len(operands) > 2:
            raise NotReadOnly("git config with an option not known to be read-only")

    def cmd_env(self, args: list[Word], cwds: set[str], depth: int) -> set[str]:
        return self.env(args, cwds, depth)

    def env(self, args: list[Word], cwds: set[str], depth: int) -> set[str]:
        index = 0
        while index < len(args):
            word = args[index]
            self.static(word, "env")
            text = word.value
            if text in ("-i", "--ignore-environment", "-"):
                index += 1
            elif text in ("-u", "--unset"):
                index += 2
            elif text.startswith("--unset=") or (text.startswith("-u") and len(text) > 2):
                index += 1
            elif text == "--":
                index += 1
                break
            elif text.startswith("-"):
                raise NotReadOnly(f"env {text} is not known to be read-only (-S runs a command line)")
            elif "=" in text:
                self.assignment(word)
                index += 1
            else:
                break
        if index >= len(args):
            raise NotReadOnly("env without a command prints the environment (API keys and other secrets)")
        return self.words(args[index:], cwds, depth + 1)

    def cmd_printenv(self, args: list[Word], cwds: set[str], depth: int) -> None:
        raise NotReadOnly("printenv prints the environment (API keys and other secrets)")

    def cmd_xargs(self, args: list[Word], cwds: set[str], depth: int) -> None:
        flags = {"-0", "--null", "-r", "--no-run-if-empty", "-t", "--verbose", "-x", "--exit"}
        valued = {
            "-n",
            "--max-args",
            "-L",
            "--max-lines",
            "-P",
            "--max-procs",
            "-s",
            "--max-chars",
            "-d",
            "--delimiter",
        }
        index = 0
        while index < len(args) and args[index].value.startswith("-"):
            text = args[index].value
            option = text.split("=", 1)[0]
            if text in flags:
                index += 1
            elif option in valued:
                index += 1 if "=" in text or (len(option) == 2 and len(text) > 2) else 2
            elif text[:2] in valued and len(text) > 2:
                index += 1
            else:
                raise NotReadOnly(f"xargs {text} is not known to be read-only")
        command = args[index:] or [Word(raw="echo", value="echo")]
        # xargs adds words read from its input: operands that are only known when it runs
        self.words([*command, Word(raw="<input>", value="<input>", static=False)], cwds, depth + 1)

    def cmd_nice(self, args: list[Word], cwds: set[str], depth: int) -> set[str]:
        index = 0
        while index < len(args):
            text = args[index].value
            if text in ("-n", "--adjustment"):
                index += 2
            elif (
                text.startswith("--adjustment=")
                or (text.startswith("-") and text[1:].lstrip("-").isdigit())
                or (text.startswith("-n") and text[2:].lstrip("-").isdigit())
            ):
                index += 1
            elif text.startswith("-"):
                raise NotReadOnly(f"nice {text} is not known to be read-only")
            else:
                break
        return self.words(args[index:], cwds, depth + 1) if index < len(args) else set()

    def cmd_timeout(self, args: list[Word], cwds: set[str], depth: int) -> set[str]:
        index = 0
        while index < len(args) and args[index].value.startswith("-"):
            text = args[index].value
            if text in ("-s", "--signal", "-k", "--kill-after"):
                index += 2
            elif (
                text in ("--preserve-status", "--foreground", "-v", "--verbose")
                or text.startswith(("--signal=", "--kill-after="))
                or (text[:2] in ("-s", "-k") and len(text) > 2)
            ):
                index += 1
            else:
                raise NotReadOnly(f"timeout {text} is not known to be read-only")
        if index + 1 >= len(args):
            raise NotReadOnly("timeout without a command")
        self.static(args[index], "timeout")
        return self.words(args[index + 1 :], cwds, depth + 1)

    def cmd_stdbuf(self, args: list[Word], cwds: set[str], depth: int) -> set[str]:
        index = 0
        while index < len(args) and args[index].value.startswith("-"):
            text = args[index].value
            if text in ("-i", "-o", "-e"):
                index += 2
            elif text[:2] in ("-i", "-o", "-e") or text.startswith(("--input=", "--output=", "--error=")):
                index += 1
            else:
                raise NotReadOnly(f"stdbuf {text} is not known to be read-only")
        if index >= len(args):
            raise NotReadOnly("stdbuf without a command")
        return self.words(args[index:], cwds, depth + 1)

    def cmd_command(self, args: list[Word], cwds: set[str], depth: int) -> set[str]:
        values = [w.value for w in args]
        while values and values[0] == "-p":
            values, args = values[1:], args[1:]
        if values and values[0] in ("-v", "-V"):
            for word in args[1:]:
                self.static(word, "command")
            return set()
        if not args:
            return set()
        return self.words(args, cwds, depth + 1)

    def cmd_type(self, args: list[Word], cwds: set[str], depth: int) -> None:
        for word in args:
            self.static(word, "type")
            if word.value.startswith("-") and not set(word.value[1:]) <= set("afptP"):
                raise NotReadOnly(f"type {word.value} is not known to be read-only")

    def cmd_builtin(self, args: list[Word], cwds: set[str], depth: int) -> set[str]:
        if not args:
            return set()
        return self.words(args, cwds, depth + 1)

    def cmd_exec(self, args: list[Word], cwds: set[str], depth: int) -> set[str]:
        while args and args[0].value in ("-c", "-l", "-cl", "-lc"):
            args = args[1:]
        if args and args[0].value == "-a":
            args = args[2:]
        if not args:
            return set()  # `exec` with redirections only: they were checked
        if args[0].value.startswith("-"):
            raise NotReadOnly(f"exec {args[0].value} is not known to be read-only")
        return self.words(args, cwds, depth + 1)

    def shell_c(self, name: str, args: list[Word], cwds: set[str], depth: int) -> None:
        index = 0
        while index < len(args):
            text = args[index].value
            self.static(args[index], name)
            if text == "-c":
                break
            if text.startswith("-") and set(text[1:]) <= set("eux"):
                index += 1
            elif text == "-o" and index + 1 < len(args) and args[index + 1].value == "pipefail":
                index += 2
            else:
                raise NotReadOnly(f"{name} {text} runs a script or an interactive shell")
        if index + 1 >= len(args):
            raise NotReadOnly(f"{name} without -c reads commands from its input")
        script = args[index + 1]
        self.static(script, name)
        self.script(parse(script.value, depth + 1), set(cwds), depth + 1)

    def cmd_sh(self, args: list[Word], cwds: set[str], depth: int) -> None:
        self.shell_c("sh", args, cwds, depth)

    def cmd_bash(self, args: list[Word], cwds: set[str], depth: int) -> None:
        self.shell_c("bash", args, cwds, depth)

    def cmd_dash(self, args: list[Word], cwds: set[str], depth: int) -> None:
        self.shell_c("dash", args, cwds, depth)

    def cmd_date(self, args: list[Word], cwds: set[str], depth: int) -> None:
        spec = known.spec(
            short="uR",
            valued="dr",
            long="utc universal rfc-email debug",
            long_valued="date reference",
            optional="iso-8601 rfc-3339",
            paths="-r --reference",
            operands="any",
            max_operands=1,
        )
        args = [w for w in args if not (w.static and w.value.startswith("-I"))]  # -I[FMT]: ISO 8601 output
        for operand in self.options("date", spec, args, cwds):
            if not operand.value.startswith("+"):
                raise NotReadOnly(f"date {operand.value} sets the clock")

    def cmd_hostname(self, args: list[Word], cwds: set[str], depth: int) -> None:
        spec = known.spec(
            short="sfdiIAay",
            long="short fqdn long domain ip-address all-ip-addresses all-fqdns alias nis yp",
            operands="none",
        )
        self.options("hostname", spec, args, cwds)

    def cmd_ps(self, args: list[Word], cwds: set[str], depth: int) -> None:
        for word in args:
            self.static(word, "ps")
            text = word.value
            if text.startswith("--"):
                if text.split("=", 1)[0] not in (
                    "--forest",
                    "--sort",
                    "--pid",
                    "--ppid",
                    "--format",
                    "--no-headers",
                    "--headers",
                    "--cols",
                    "--width",
                    "--user",
                ):
                    raise NotReadOnly(f"ps {text} is not known to be read-only")
            elif text.startswith("-"):
                if not set(text[1:]) <= set("AadefFHjlLTwxyopuUgGCtsq0123456789,"):
                    raise NotReadOnly(f"ps {text} is not known to be read-only")
            elif not set(text) <= set(
                "auxwfjlTrSch0123456789,"
            ):  # BSD style: no `e` (it prints environments)
                raise NotReadOnly(f"ps {text} can print other processes' environments")

    def cmd_python(self, args: list[Word], cwds: set[str], depth: int) -> None:
        if [w.value for w in args] not in (["--version"], ["-V"]):
            raise NotReadOnly("python runs code")

    cmd_python3 = cmd_python

    def cmd_node(self, args: list[Word], cwds: set[str], depth: int) -> None:
        if [w.value for w in args] not in (["--version"], ["-v"]):
            raise NotReadOnly("node runs code")

    def cmd_bracket(self, args: list[Word], cwds: set[str], depth: int) -> None:
        if not args or args[-1].value != "]":
            raise NotReadOnly("[ without its closing ]")
        self.cmd_test(args[:-1], cwds, depth)
