"""Is a bash command read-only? The check that lets the bash tool run a command without asking.

A command is read-only only when EVERY part of it is: each simple command of every list, pipeline,
subshell, substitution and `sh -c` script is a known command (:mod:`.shell_commands`) used with
options known not to write, execute other programs, reach the network or print secrets; every
path it names (operands, option values, `<` inputs, glob matches, symlink targets) resolves inside
the working directory and outside pando's own secrets (`.pando/`, `.pando.toml`, `.pando.json`);
output goes nowhere but the terminal or /dev/null; no variable is expanded (it may hold a secret);
and nothing prints the environment (`env`, `printenv`, `set`, `export -p`, `declare -p`). Anything
unknown, or text that does not parse, is not read-only: the user is asked.

Pure functions; the only I/O is resolving paths (symlinks, globs) against the file system.
"""

from __future__ import annotations

import functools
import glob as globbing
import itertools
import os
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

from . import shell_commands as known
from .shell_syntax import (
    Compound,
    Redirect,
    Script,
    ShellSyntaxError,
    SimpleCommand,
    Unsupported,
    Word,
    parse,
    simple_commands,
)

MAX_GLOB_MATCHES = 256  # a glob matching more than this is not checked one by one: ask instead
SECRET_FILES = (".pando.toml", ".pando.json")
WRAPPERS = frozenset({"env", "xargs", "nice", "timeout", "command", "builtin", "exec", "stdbuf"})


SECRET_SUFFIXES = ("_API_KEY", "_TOKEN", "_SECRET")
SECRET_NAMES = frozenset({"OPENAI_API_KEY", "ANTHROPIC_API_KEY"})


def secret_variables(environ: Mapping[str, str], extra: Iterable[str] = ()) -> set[str]:
    """The names in `environ` that the bash tool's commands must not see: provider API keys and
    any `*_API_KEY`, `*_TOKEN`, `*_SECRET`, plus the `extra` names (the providers' `api_key_env`)."""
    extra = set(extra)
    return {
        name
        for name in environ
        if name in SECRET_NAMES or name in extra or name.upper().endswith(SECRET_SUFFIXES)
    }


@dataclass(frozen=True)
class Verdict:
    read_only: bool
    reason: str = ""  # why it is not read-only


class NotReadOnly(Exception):
    """Raised with the reason as soon as one part of a command is not read-only."""


def classify(
    command: str, workdir: str | os.PathLike[str], cwd: str | os.PathLike[str] | None = None
) -> Verdict:
    """Whether `command`, run by bash in `cwd` (default: `workdir`), is read-only (see the module doc)."""
    if not command.strip():
        return Verdict(False, "empty command")
    try:
        script = parse(command)
    except Unsupported as exc:
        return Verdict(False, f"not understood: {exc}")
    except ShellSyntaxError as exc:
        return Verdict(False, f"does not parse: {exc}")
    root = os.path.realpath(workdir)
    start = os.path.realpath(cwd) if cwd is not None else root
    try:
        checker = _Checker(root)
        if not checker.inside(start):
            raise NotReadOnly(f"the shell's directory {start} is outside the working directory")
        checker.script(script, {start}, depth=0)
    except NotReadOnly as exc:
        return Verdict(False, str(exc))
    except (Unsupported, ShellSyntaxError) as exc:  # from a nested `sh -c` script
        return Verdict(False, f"not understood: {exc}")
    return Verdict(True)


def is_read_only(
    command: str, workdir: str | os.PathLike[str], cwd: str | os.PathLike[str] | None = None
) -> bool:
    return classify(command, workdir, cwd).read_only


def command_texts(command: str) -> list[str]:
    """What a permission pattern is matched against: the whole command, then each simple command
    (with its wrappers and without them: `timeout 5 rm x` gives "timeout 5 rm x" and "rm x"), also
    those inside subshells, substitutions and `sh -c` scripts, with quotes removed."""
    texts = [command.strip()]
    try:
        pending = [parse(command)]
    except (Unsupported, ShellSyntaxError):
        # not understood: match the pieces between operators and keywords, as well as can be done
        pieces = re.split(r"[;&|()\n`]+|\$\(|\b(?:then|do|else|elif)\b", command)
        return list(dict.fromkeys([*texts, *(p.strip() for p in pieces if p.strip())]))
    seen = 0
    while pending and seen < 200:
        for simple in simple_commands(pending.pop()):
            seen += 1
            words = [w.value for w in simple.words]
            while words:
                texts.append(" ".join(words))
                inner = _script_of_shell_c(words)
                if inner is not None:
                    try:
                        pending.append(parse(inner))
                    except (Unsupported, ShellSyntaxError):
                        texts.append(inner)
                words = _unwrapped(words)
    return list(dict.fromkeys(texts))


def _unwrapped(words: list[str]) -> list[str]:
    """The command a wrapper runs (`env A=b cmd` → `cmd`), or [] when `words` is no wrapper."""
    name = os.path.basename(words[0])
    if name not in WRAPPERS and name not in ("sudo", "doas", "nohup", "time"):
        return []
    rest = words[1:]
    if name == "timeout":
        while rest and rest[0].startswith("-"):
            rest = rest[2:] if rest[0] in ("-s", "-k") else rest[1:]
        return rest[1:]
    while rest and (rest[0].startswith("-") or "=" in rest[0].split("/")[0]):
        rest = (
            rest[2:]
            if rest[0] in ("-n", "-u", "-s", "-L", "-P", "-I", "-d", "-i", "-o", "-e", "-a")
            else rest[1:]
        )
    return rest


def _script_of_shell_c(words: list[str]) -> str | None:
    if os.path.basename(words[0]) in known.SHELLS and "-c" in words[1:-1]:
        return words[words.index("-c", 1) + 1]
    return None


class _Checker:
    def __init__(self, root: str) -> None:
        self.root = root
        self.secrets = (
            os.path.join(root, ".pando"),
            *(os.path.join(root, name) for name in SECRET_FILES),
            *_user_config_files(),
        )

    # ------------------------------------------------------------------ structure

    def script(self, script: Script, cwds: set[str], depth: int) -> set[str]:
        """Check every pipeline; returns the directories the shell may be in afterwards."""
        for pipeline, _ in script.items:
            in_place = len(pipeline.commands) == 1  # a pipeline's commands run in subshells
            for node in pipeline.commands:
                if isinstance(node, Compound):
                    self.redirects(node.redirects, cwds, depth)
                    after = self.script(node.body, set(cwds), depth + 1)
                    if in_place and not node.isolated:
                        cwds = cwds | after
                else:
                    after = self.simple(node, cwds, depth)
                    if in_place:
                        cwds = cwds | after  # `cd` may fail: the old directory stays possible
        return cwds

    def simple(self, command: SimpleCommand, cwds: set[str], depth: int) -> set[str]:
        self.redirects(command.redirects, cwds, depth)
        for word in (*command.assignments, *command.words):
            self.substitutions(word, cwds, depth)
        for assignment in command.assignments:
            self.assignment(assignment)
        if not command.words:
            return set()
        return self.words(command.words, cwds, depth)

    def substitutions(self, word: Word, cwds: set[str], depth: int) -> None:
        if word.process == ">":
            raise NotReadOnly("an output process substitution >(...) feeds another command")
        for inner in word.substitutions:
            self.script(inner, set(cwds), depth + 1)

    def redirects(self, redirects: list[Redirect], cwds: set[str], depth: int) -> None:
        for redirect in redirects:
            target = redirect.target
            self.substitutions(target, cwds, depth)
            if (
                redirect.op in (">&", "<&")
                and target.static
                and (target.value.isdigit() or target.value == "-")
            ):
                continue  # 2>&1, >&-: duplicating or closing a descriptor opens no file
            if redirect.op == "<<<":
                self.no_variables(target)
                continue
            if redirect.op == "<":
                self.path(target, cwds, "input")
                continue
            if not (target.static and target.value == "/dev/null"):
                raise NotReadOnly(f"writes to {target.raw} ({redirect.fd}{redirect.op})")

    def assignment(self, word: Word) -> None:
        name = word.raw.split("=", 1)[0].rstrip("+")
        if name not in known.HARMLESS_VARIABLES and not name.startswith(known.HARMLESS_VARIABLE_PREFIXES):
            raise NotReadOnly(f"sets {name}, which can change what a program runs or reads")
        self.no_variables(word)

    # ------------------------------------------------------------------ commands

    def words(self, words: list[Word], cwds: set[str], depth: int) -> set[str]:
        """Check the simple command `words`; returns the directories `cd` may move to."""
        if depth > 8:
            raise NotReadOnly("nested too deeply")
        head = words[0]
        if not head.static or head.glob or head.brace:
            raise NotReadOnly(f"the command name {head.raw} is only known when it runs")
        name = self.command_name(head.value)
        args = words[1:]
        if name not in ("echo", "printf") and any(w.brace for w in args):
            # {a,/etc/shadow} becomes several words, which can land anywhere: options, paths
            raise NotReadOnly(
                f"{name}: brace expansion in {next(w.raw for w in args if w.brace)} is not checked"
            )
        if name in known.SECRET_BEARING:
            if name == "env" and args:
                return self.env(args, cwds, depth)
            raise NotReadOnly(f"{name} can print the environment (API keys and other secrets)")
        if name == "[":
            _bracket_test(self, args, cwds, depth)
            return set()
        attribute = "cmd_" + name.replace("-", "_")
        handler = getattr(self, attribute, None) if attribute.isidentifier() else None
        if handler is not None:
            return handler(args, cwds, depth) or set()
        spec = known.COMMANDS.get(name)
        if spec is None:
            raise NotReadOnly(f"{name} is not a command known to be read-only")
        self.options(name, spec, args, cwds)
        return set()

    def command_name(self, text: str) -> str:
        if "/" not in text:
            return text
        directory, name = os.path.split(text)
        if directory not in known.SYSTEM_BIN_DIRS:
            raise NotReadOnly(f"runs the program {text}")
        return name

    def options(self, name: str, spec: known.Spec, args: list[Word], cwds: set[str]) -> list[Word]:
        """Check `args` against `spec`: every option allowed, every path inside; returns the operands."""
        operands: list[Word] = []
        pattern_given = False
        index = 0
        options_done = False

        def value_of(option: str, attached: str | None) -> Word:
            nonlocal index
            if attached is not None:
                return Word(raw=attached, value=attached)
            index += 1
            if index >= len(args):
                raise NotReadOnly(f"{name} {option} without its value")
            return args[index]

        def check_value(option: str, value: Word) -> None:
            nonlocal pattern_given
            if option in spec.pattern:
                pattern_given = True
            if option in spec.paths:
                self.path(value, cwds, f"{name} {option}")
            elif not spec.dynamic:
                self.static(value, name)

        while index < len(args):
            word = args[index]
            text = word.value
            if options_done or not text.startswith("-") or text == "-" or not word.static:
                if not word.static and not spec.dynamic and word.process != "<":
                    self.static(word, name)
                if text.startswith("-") and not word.static and not options_done:
                    raise NotReadOnly(f"{name}: {word.raw} may expand to an option")
                operands.append(word)
            elif text == "--":
                options_done = True
            elif text.startswith("--"):
                option, equals, value = text.partition("=")
                if option in spec.long and not equals:
                    if option in spec.pattern:
                        pattern_given = True
                elif option in spec.long_valued:
                    check_value(option, value_of(option, value if equals else None))
                elif option in spec.long_optional:
                    if equals:
                        check_value(option, Word(raw=value, value=value))
                else:
                    raise NotReadOnly(f"{name} {option} is not an option known to be read-only")
            elif spec.numeric and text[1:].isdigit():
                pass
            else:
                for position in range(1, len(text)):
                    letter = text[position]
                    rest = text[position + 1 :]
                    if letter in spec.short_valued:
                        check_value("-" + letter, value_of("-" + letter, rest or None))
                        break
                    if letter in spec.short_attached:
                        break  # -M50%: the rest is this option's value
                    if letter in spec.short:
                        if "-" + letter in spec.pattern:
                            pattern_given = True
                        continue
                    raise NotReadOnly(f"{name} -{letter} is not an option known to be read-only")
            index += 1
        self.operands(name, spec, operands, cwds, pattern_given)
        return operands

    def operands(
        self, name: str, spec: known.Spec, operands: list[Word], cwds: set[str], pattern_given: bool
    ) -> None:
        if spec.operands == "none" and operands:
            raise NotReadOnly(f"{name} {operands[0].raw}: {name} takes no operands when read-only")
        if spec.max_operands is not None and len(operands) > spec.max_operands:
            raise NotReadOnly(f"{name} with {len(operands)} operands (the extra one is an output file)")
        if spec.operands == "pattern" and not pattern_given and operands:
            if operands[0].glob:  # a glob in the pattern's place expands to file names
                self.path(operands[0], cwds, name)
            operands = operands[1:]
        if spec.operands in ("paths", "pattern"):
            for operand in operands:
                self.path(operand, cwds, name)
        else:
            for operand in operands:
                if not spec.dynamic:
                    self.static(operand, name)
                self.no_variables(operand)

    # ------------------------------------------------------------------ words and paths

    def static(self, word: Word, name: str) -> None:
        if not word.static:
            raise NotReadOnly(f"{name}: {word.raw} is only known when it runs")

    def no_variables(self, word: Word) -> None:
        if word.params:
            raise NotReadOnly(f"expands ${word.params[0]}, which may hold a secret")

    def inside(self, real: str) -> bool:
        return real == self.root or real.startswith(self.root.rstrip("/") + "/")

    def path(self, word: Word, cwds: set[str], what: str) -> None:
        """`word` names a file: it must resolve (through symlinks and globs) inside the working
        directory, and not to pando's own secrets."""
        if word.process == "<":
            return  # <(cmd): the command was checked; the word is a /dev/fd pipe
        self.no_variables(word)
        self.static(word, what)
        value = word.value
        if value in ("-", "/dev/null", "/dev/stdin"):
            return
        if word.brace:
            raise NotReadOnly(f"{what}: the brace expansion {word.raw} is not checked")
        if word.tilde:
            value = os.path.expanduser(value)
            if value.startswith("~"):  # ~+ ~- ~user that is unknown here: bash may still expand it
                raise NotReadOnly(f"{what}: {word.raw} is only known when it runs")
        if word.glob and ".." in Path(value).parts:
            raise NotReadOnly(f"{what}: {word.raw} combines a glob with '..'")
        for cwd in cwds:
            full = os.path.join(cwd, value)
            candidates = [full]
            if word.glob:
                matches = list(itertools.islice(globbing.iglob(full), MAX_GLOB_MATCHES + 1))
                if len(matches) > MAX_GLOB_MATCHES:
                    raise NotReadOnly(f"{what}: {word.raw} matches too many files to check")
                candidates += matches
            for candidate in candidates:
                if word.glob and os.path.basename(candidate).startswith("-"):
                    raise NotReadOnly(
                        f"{what}: {word.raw} matches {os.path.basename(candidate)}, read as an option"
                    )
                real = os.path.realpath(candidate)
                if not self.inside(real):
                    raise NotReadOnly(f"{what}: {word.raw} is outside the working directory")
                if any(real == secret or real.startswith(secret + "/") for secret in self.secrets):
                    raise NotReadOnly(f"{what}: {word.raw} holds pando's credentials or configuration")

    # ------------------------------------------------------------------ commands with their own rules

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


def _user_config_files() -> tuple[str, ...]:
    return _config_files_for(os.environ.get("HOME", ""), os.environ.get("XDG_CONFIG_HOME", ""))


@functools.lru_cache(maxsize=8)
def _config_files_for(home: str, xdg: str) -> tuple[str, ...]:
    from pando_core.config import user_config_paths

    return tuple(os.path.realpath(path) for path in user_config_paths())


def _bracket_test(checker: _Checker, args: list[Word], cwds: set[str], depth: int) -> None:
    if not args or args[-1].value != "]":
        raise NotReadOnly("[ without its closing ]")
    checker.cmd_test(args[:-1], cwds, depth)
