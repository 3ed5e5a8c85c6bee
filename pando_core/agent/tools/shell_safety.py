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
from .shell_rules import CommandRules, NotReadOnly
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
    those inside subshells, substitutions, `sh -c` and `eval` scripts, with quotes removed; a command
    named by its path is given by its name too (`/bin/cat x` → "cat x"), and one with redirections
    with them as well (`cat < .env` → "cat < .env" and "cat .env")."""
    texts = [command.strip()]
    try:
        pending = [parse(command)]
    except (Unsupported, ShellSyntaxError):
        return list(dict.fromkeys([*texts, *_pieces(command)]))
    seen = 0
    while pending and seen < 200:
        for simple in simple_commands(pending.pop()):
            seen += 1
            words = [w.value for w in simple.words]
            redirects = [f"{r.fd}{r.op} {r.target.value}" for r in simple.redirects]
            inputs = [r.target.value for r in simple.redirects if r.op == "<" and r.fd in ("", "0")]
            while words:
                named = [os.path.basename(words[0]) or words[0], *words[1:]]
                for variant in (words, named):
                    texts.append(" ".join(variant))
                    if redirects:
                        texts.append(" ".join([*variant, *redirects]))
                    if inputs:
                        texts.append(" ".join([*variant, *inputs]))
                inner = _script_of_shell_c(words)
                if inner is None and named[0] == "eval" and len(words) > 1:
                    inner = " ".join(words[1:])
                if inner is not None:
                    try:
                        pending.append(parse(inner))
                    except (Unsupported, ShellSyntaxError):
                        texts.extend([inner, *_pieces(inner)])
                words = _unwrapped(words)
    return list(dict.fromkeys(texts))


def _pieces(command: str) -> list[str]:
    """A command that does not parse, cut between operators, braces and keywords as well as can be
    done (for deny patterns: more pieces refuse more, never less)."""
    pieces = re.split(r"[;&|(){}\n`]+|\$\(|\b(?:then|do|else|elif|fi|done)\b", command)
    return [p.strip() for p in pieces if p.strip()]


def simple_command_texts(command: str) -> list[str] | None:
    """Each simple command of the line as written (quotes removed), also those in subshells,
    substitutions and `sh -c` scripts; None when the line does not parse."""
    try:
        pending = [parse(command)]
    except (Unsupported, ShellSyntaxError):
        return None
    texts: list[str] = []
    while pending and len(texts) < 200:
        for simple in simple_commands(pending.pop()):
            words = [w.value for w in simple.words]
            if not words:
                continue
            texts.append(" ".join(words))
            inner = _script_of_shell_c(words)
            if inner is not None:
                try:
                    pending.append(parse(inner))
                except (Unsupported, ShellSyntaxError):
                    return None
    return texts


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


class _Checker(CommandRules):
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
            self.cmd_bracket(args, cwds, depth)
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


def _user_config_files() -> tuple[str, ...]:
    return _config_files_for(os.environ.get("HOME", ""), os.environ.get("XDG_CONFIG_HOME", ""))


@functools.lru_cache(maxsize=8)
def _config_files_for(home: str, xdg: str) -> tuple[str, ...]:
    from pando_core.config import user_config_paths

    return tuple(os.path.realpath(path) for path in user_config_paths())
