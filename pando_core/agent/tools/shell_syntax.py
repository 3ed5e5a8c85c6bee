"""Parse a bash command line into lists, pipelines, simple commands, words and redirections.

Enough of bash's grammar to judge what a command does without running it: quoting (``'..'``,
``".."``, ``\\``), the operators ``; & && || | |&`` and newlines, subshells ``( .. )`` and groups
``{ ..; }``, redirections (``< > >> >| <> <& >& &> &>> <<<`` with optional fd numbers), command
substitution (``$(..)`` and backticks), process substitution (``<(..)``, ``>(..)``), parameter
expansion, globs, brace expansion and ``~``. Everything else bash would accept (``if``/``for``/
``case``, functions, here-documents, arithmetic, ``[[ ]]``) raises :class:`Unsupported`, and text
bash would reject raises :class:`ShellSyntaxError`: the caller then treats the command as unknown.
Pure functions: no I/O.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

MAX_DEPTH = 8  # nesting of substitutions, subshells and `sh -c` scripts
METACHARS = frozenset(" \t\n;&|<>()")
RESERVED = frozenset(
    {
        "if",
        "then",
        "else",
        "elif",
        "fi",
        "for",
        "while",
        "until",
        "do",
        "done",
        "case",
        "esac",
        "select",
        "function",
        "coproc",
        "[[",
        "]]",
    }
)
ASSIGNMENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*(\[[^\]]*\])?\+?=")
REDIRECT = re.compile(r"(\d*)(<<<|<<-|<<|<>|<&|>>|>&|>\||<|>)|(&>>|&>)")
HARMLESS_SPECIAL = frozenset("?#$!-")  # $? $# $$ $! $- hold numbers and shell flags, never secrets


class ShellSyntaxError(ValueError):
    """Text that bash itself would not accept (unterminated quote, stray operator ...)."""


class Unsupported(ValueError):
    """Valid bash that this parser does not model (control flow, here-documents, arithmetic ...)."""


@dataclass
class Word:
    """One shell word. `value` is the text after quote removal; parts whose value is only known
    when the command runs (expansions, substitutions) are kept as their source text and make the
    word not `static`."""

    raw: str = ""
    value: str = ""
    static: bool = True
    params: list[str] = field(default_factory=list)  # names of expanded variables ($HOME, ${X})
    glob: bool = False  # an unquoted * ? or [
    brace: bool = False  # an unquoted {a,b} or {1..9}
    tilde: bool = False  # an unquoted leading ~
    substitutions: list[Script] = field(default_factory=list)  # $(..) `..` <(..) >(..)
    process: str = ""  # "<" or ">" when the whole word is a process substitution


@dataclass
class Redirect:
    op: str  # one of < > >> >| <> <& >& &> &>> <<<
    fd: str  # the explicit fd number, or ""
    target: Word


@dataclass
class SimpleCommand:
    assignments: list[Word] = field(default_factory=list)
    words: list[Word] = field(default_factory=list)
    redirects: list[Redirect] = field(default_factory=list)


@dataclass
class Compound:
    """``( body )`` (isolated: runs in a subshell) or ``{ body; }`` (runs in the current shell)."""

    body: Script
    isolated: bool
    redirects: list[Redirect] = field(default_factory=list)


@dataclass
class Pipeline:
    commands: list[SimpleCommand | Compound]


@dataclass
class Script:
    """A list of pipelines, each with the operator that follows it (``;``, ``&&``, ``||``, ``&`` or "")."""

    items: list[tuple[Pipeline, str]] = field(default_factory=list)


def parse(text: str, depth: int = 0) -> Script:
    """The command line `text` as a :class:`Script`; raises ShellSyntaxError or Unsupported."""
    if depth > MAX_DEPTH:
        raise Unsupported("nested too deeply")
    return _Parser(text, depth).script(stop="")


def simple_commands(script: Script) -> list[SimpleCommand]:
    """Every simple command of `script`, also those inside compounds and substitutions."""
    found: list[SimpleCommand] = []

    def walk_word(word: Word) -> None:
        for inner in word.substitutions:
            walk(inner)

    def walk(node: Script) -> None:
        for pipeline, _ in node.items:
            for command in pipeline.commands:
                if isinstance(command, Compound):
                    walk(command.body)
                    redirects = command.redirects
                else:
                    found.append(command)
                    for word in (*command.assignments, *command.words):
                        walk_word(word)
                    redirects = command.redirects
                for redirect in redirects:
                    walk_word(redirect.target)

    walk(script)
    return found


class _Parser:
    def __init__(self, text: str, depth: int) -> None:
        self.s = text
        self.i = 0
        self.depth = depth

    # ------------------------------------------------------------------ helpers

    def _peek(self, offset: int = 0) -> str:
        index = self.i + offset
        return self.s[index] if index < len(self.s) else ""

    def _skip_blanks(self, newlines: bool = False) -> None:
        while self.i < len(self.s):
            char = self.s[self.i]
            if char in " \t" or (newlines and char == "\n"):
                self.i += 1
            elif char == "\\" and self._peek(1) == "\n":
                self.i += 2
            elif char == "#":
                while self.i < len(self.s) and self.s[self.i] != "\n":
                    self.i += 1
            else:
                return

    def _at_reserved(self, word: str) -> bool:
        end = self.i + len(word)
        return self.s.startswith(word, self.i) and (end >= len(self.s) or self.s[end] in METACHARS)

    # ------------------------------------------------------------------ grammar

    def script(self, stop: str) -> Script:
        """Pipelines until `stop` (")" or "}"; "" = end of text), which is consumed."""
        script = Script()
        while True:
            self._skip_blanks(newlines=True)
            if self.i >= len(self.s):
                if stop:
                    raise ShellSyntaxError(f"missing {stop!r}")
                return script
            if stop == ")" and self._peek() == ")":
                self.i += 1
                return script
            if stop == "}" and self._at_reserved("}"):
                self.i += 1
                return script
            pipeline = self.pipeline()
            self._skip_blanks()
            operator = ""
            for candidate in ("&&", "||", ";;", ";", "&", "\n"):
                if self.s.startswith(candidate, self.i):
                    if candidate == ";;":
                        raise Unsupported("case statement")
                    operator = candidate if candidate != "\n" else ";"
                    self.i += len(candidate)
                    break
            script.items.append((pipeline, operator))
            if not operator:
                self._skip_blanks()
                at_stop = (stop == ")" and self._peek() == ")") or (stop == "}" and self._at_reserved("}"))
                if self.i < len(self.s) and not at_stop:
                    raise ShellSyntaxError(f"unexpected {self._peek()!r}")
            elif operator in ("&&", "||"):
                self._skip_blanks(newlines=True)
                if self.i >= len(self.s):
                    raise ShellSyntaxError(f"nothing after {operator!r}")

    def pipeline(self) -> Pipeline:
        self._skip_blanks()
        while self._at_reserved("!") or self._at_reserved("time"):
            self.i += 1 if self._peek() == "!" else 4
            self._skip_blanks()
            if self._at_reserved("-p"):
                self.i += 2
                self._skip_blanks()
        commands = [self.command()]
        while self._peek() == "|" and self._peek(1) != "|":
            self.i += 2 if self._peek(1) == "&" else 1
            self._skip_blanks(newlines=True)
            commands.append(self.command())
            self._skip_blanks()
        return Pipeline(commands)

    def command(self) -> SimpleCommand | Compound:
        self._skip_blanks()
        if self.depth >= MAX_DEPTH:
            raise Unsupported("nested too deeply")
        if self._peek() == "(":
            if self._peek(1) == "(":
                raise Unsupported("arithmetic command")
            self.i += 1
            self.depth += 1
            body = self.script(stop=")")
            self.depth -= 1
            return Compound(body, isolated=True, redirects=self._trailing_redirects())
        if self._at_reserved("{"):
            self.i += 1
            self.depth += 1
            body = self.script(stop="}")
            self.depth -= 1
            return Compound(body, isolated=False, redirects=self._trailing_redirects())
        command = SimpleCommand()
        while True:
            self._skip_blanks()
            char = self._peek()
            if not char or char in ";|\n)" or (char == "&" and self._peek(1) != ">"):
                break
            if char == "(":
                raise Unsupported("function definition or stray '('")
            redirect = self._redirect()
            if redirect is not None:
                command.redirects.append(redirect)
                continue
            word = self._word()
            if word is None:
                raise ShellSyntaxError(f"unexpected {char!r}")
            if not command.words and word.static and word.raw in RESERVED:
                raise Unsupported(f"'{word.raw}' (compound commands)")
            if not command.words and ASSIGNMENT.match(word.raw):
                command.assignments.append(word)
            else:
                command.words.append(word)
        if not (command.words or command.assignments or command.redirects):
            raise ShellSyntaxError(
                f"expected a command at {self._peek()!r}" if self._peek() else "empty command"
            )
        return command

    def _trailing_redirects(self) -> list[Redirect]:
        redirects = []
        while True:
            self._skip_blanks()
            redirect = self._redirect()
            if redirect is None:
                return redirects
            redirects.append(redirect)

    def _redirect(self) -> Redirect | None:
        match = REDIRECT.match(self.s, self.i)
        if match is None:
            return None
        if match.group(2) and self._peek(len(match.group(0))) == "(" and not match.group(1):
            return None  # <(..) / >(..): a process substitution word
        op = match.group(2) or match.group(3)
        if op in ("<<", "<<-"):
            raise Unsupported("here-document")
        self.i = match.end()
        self._skip_blanks()
        target = self._word()
        if target is None:
            raise ShellSyntaxError(f"{op} without a target")
        return Redirect(op, match.group(1) or "", target)

    # ------------------------------------------------------------------ words

    def _word(self) -> Word | None:
        start = self.i
        word = Word()
        value: list[str] = []
        unquoted: list[str] = []  # the word with quoted characters masked, for glob/brace detection

        def add(text: str, quoted: bool) -> None:
            value.append(text)
            unquoted.append("_" * len(text) if quoted else text)

        char = self._peek()
        if char in "<>" and self._peek(1) == "(":
            self.i += 2
            word.substitutions.append(self._nested(stop=")"))
            word.process = char
            word.static = False
            word.raw = word.value = self.s[start : self.i]
            return word
        while self.i < len(self.s):
            char = self.s[self.i]
            if char in METACHARS:
                break
            if char == "\\":
                nxt = self._peek(1)
                if nxt == "\n":
                    self.i += 2
                    continue
                if not nxt:
                    raise ShellSyntaxError("trailing backslash")
                add(nxt, True)
                self.i += 2
            elif char == "'":
                end = self.s.find("'", self.i + 1)
                if end < 0:
                    raise ShellSyntaxError("unterminated single quote")
                add(self.s[self.i + 1 : end], True)
                self.i = end + 1
            elif char == '"':
                self.i += 1
                self._double_quoted(word, add)
            elif char == "$":
                self._dollar(word, add, quoted=False)
            elif char == "`":
                self._backtick(word, add)
            else:
                if char == "~" and self.i == start:
                    word.tilde = True
                add(char, False)
                self.i += 1
        if self.i == start:
            return None
        word.raw = self.s[start : self.i]
        word.value = "".join(value)
        mask = "".join(unquoted)
        word.glob = "*" in mask or "?" in mask or bool(re.search(r"\[.*\]", mask))
        word.brace = bool(re.search(r"\{[^{}]*(,|\.\.)[^{}]*\}", mask))
        return word

    def _double_quoted(self, word: Word, add) -> None:
        while True:
            if self.i >= len(self.s):
                raise ShellSyntaxError("unterminated double quote")
            char = self.s[self.i]
            if char == '"':
                self.i += 1
                return
            if char == "\\" and self._peek(1) in ('"', "\\", "$", "`", "\n"):
                if self._peek(1) != "\n":
                    add(self._peek(1), True)
                self.i += 2
            elif char == "$":
                self._dollar(word, add, quoted=True)
            elif char == "`":
                self._backtick(word, add)
            else:
                add(char, True)
                self.i += 1

    def _dollar(self, word: Word, add, quoted: bool) -> None:
        start = self.i
        nxt = self._peek(1)
        if nxt == "(":
            if self._peek(2) == "(":
                raise Unsupported("arithmetic expansion")
            self.i += 2
            word.substitutions.append(self._nested(stop=")"))
        elif nxt == "{":
            end = self._matching_brace(self.i + 1)
            inner = self.s[self.i + 2 : end]
            if "$(" in inner or "`" in inner:
                raise Unsupported("substitution inside ${...}")
            word.params.append(re.match(r"[#!]?([A-Za-z_0-9@*?#$!-]*)", inner).group(1) or inner)
            self.i = end + 1
        elif nxt == "'" and not quoted:
            end = self.i + 2
            while end < len(self.s) and self.s[end] != "'":
                end += 2 if self.s[end] == "\\" else 1
            if end >= len(self.s):
                raise ShellSyntaxError("unterminated $'...'")
            self.i = end + 1  # ANSI-C quoting: the value is decoded by bash, so it is left unknown
        elif nxt == '"' and not quoted:
            self.i += 1  # $"..." (locale translation) reads like "..."
            return
        elif nxt and (nxt.isalnum() or nxt == "_"):
            match = re.compile(r"[A-Za-z_][A-Za-z0-9_]*|[0-9]").match(self.s, self.i + 1)
            word.params.append(match.group(0))
            self.i = match.end()
        elif nxt and nxt in "@*":
            word.params.append(nxt)
            self.i += 2
        elif nxt and nxt in HARMLESS_SPECIAL:
            self.i += 2
        else:
            add("$", quoted)
            self.i += 1
            return
        word.static = False
        add(self.s[start : self.i], True)  # a dynamic part keeps its source text

    def _backtick(self, word: Word, add) -> None:
        start = self.i
        self.i += 1
        inner: list[str] = []
        while True:
            if self.i >= len(self.s):
                raise ShellSyntaxError("unterminated backquote")
            char = self.s[self.i]
            if char == "`":
                self.i += 1
                break
            if char == "\\" and self._peek(1) in ("`", "\\", "$"):
                inner.append(self._peek(1))
                self.i += 2
                continue
            inner.append(char)
            self.i += 1
        word.substitutions.append(parse("".join(inner), self.depth + 1))
        word.static = False
        add(self.s[start : self.i], True)

    def _nested(self, stop: str) -> Script:
        if self.depth + 1 > MAX_DEPTH:
            raise Unsupported("nested too deeply")
        self.depth += 1
        try:
            return self.script(stop=stop)
        finally:
            self.depth -= 1

    def _matching_brace(self, open_index: int) -> int:
        depth = 0
        index = open_index
        while index < len(self.s):
            char = self.s[index]
            if char == "\\":
                index += 2
                continue
            if char == "{":
                depth += 1
            elif char == "}":
                depth -= 1
                if depth == 0:
                    return index
            elif char == "'":
                end = self.s.find("'", index + 1)
                if end < 0:
                    break
                index = end
            index += 1
        raise ShellSyntaxError("unterminated ${")
