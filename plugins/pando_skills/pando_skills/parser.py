"""SKILL.md parsing: YAML front matter between `---` lines, markdown body = instructions."""

from __future__ import annotations

import re
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .errors import SkillParseError
from .model import Skill, name_problem, type_name

if TYPE_CHECKING:  # PyYAML is imported when a SKILL.md is parsed, not when the App is built
    import yaml

MAX_SKILL_FILE_BYTES = 2 * 1024 * 1024

# Front-matter keys this plugin interprets (normalised spelling) -> Skill attribute.
_STRING_KEYS = {
    "version": "version",
    "license": "license",
    "author": "author",
    "compatibility": "compatibility",
    "context": "context",
}
_TRIGGER_KEYS = {"when-to-use": "when_to_use", "when-not-to-use": "when_not_to_use"}
_BOOL_KEYS = {"disable-model-invocation": "disable_model_invocation", "user-invocable": "user_invocable"}
_KNOWN = {"name", "description", "allowed-tools", "metadata", *_STRING_KEYS, *_TRIGGER_KEYS, *_BOOL_KEYS}

_TRUE = {"true", "yes", "on", "1"}
_FALSE = {"false", "no", "off", "0"}


def normalise_key(key: object) -> str:
    """`when_to_use`, `When-To-Use` and `whenToUse` all become `when-to-use`."""
    text = re.sub(r"(?<=[a-z0-9])([A-Z])", r"-\1", str(key).strip())
    return text.lower().replace("_", "-").replace(" ", "-")


def first_paragraph(body: str) -> str:
    """The first non-empty paragraph of `body`, whitespace collapsed (the default description)."""
    for paragraph in re.split(r"\n\s*\n", body):
        text = " ".join(paragraph.split())
        if text:
            return text
    return ""


def split_front_matter(text: str, path: Path) -> tuple[str, str]:
    """(front matter YAML, body) of an already decoded, newline-normalised SKILL.md text."""
    lines = text.split("\n")
    if not lines or lines[0].rstrip() != "---":
        raise SkillParseError(path, "missing opening '---' front-matter delimiter on the first line")
    for index in range(1, len(lines)):
        if lines[index].rstrip() == "---":
            return "\n".join(lines[1:index]), "\n".join(lines[index + 1 :])
    raise SkillParseError(path, "missing closing '---' front-matter delimiter")


def parse_skill(path: Path | str, source_root: Path | None = None) -> Skill:
    """Parse one SKILL.md file. Raises SkillParseError naming the file and the problem."""
    path = Path(path)
    try:
        size = path.stat().st_size
        if size > MAX_SKILL_FILE_BYTES:
            raise SkillParseError(path, f"file is too large ({size} bytes, limit {MAX_SKILL_FILE_BYTES})")
        raw = path.read_bytes()
    except SkillParseError:
        raise
    except OSError as exc:
        raise SkillParseError(path, f"cannot read file: {exc.strerror or exc}") from None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise SkillParseError(path, f"not valid UTF-8 (byte {exc.start})") from None
    return parse_skill_text(text, path, source_root=source_root)


def parse_skill_text(text: str, path: Path | str, source_root: Path | None = None) -> Skill:
    """Parse SKILL.md content; `path` is where it lives (name default, error messages)."""
    path = Path(path)
    text = text.removeprefix("\ufeff").replace("\r\n", "\n").replace("\r", "\n")
    front_text, body = split_front_matter(text, path)
    data: Any = {}
    if front_text.strip():
        import yaml

        try:
            data = yaml.safe_load(front_text)
        except yaml.YAMLError as exc:
            raise SkillParseError(path, _yaml_problem(exc)) from None
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise SkillParseError(path, f"front matter must be a YAML mapping, got {type_name(data)}")

    fields: dict[str, Any] = {}
    spelled: dict[str, str] = {}
    metadata: dict[str, Any] = {}
    for raw_key, value in data.items():
        key = normalise_key(raw_key)
        if key in spelled:
            raise SkillParseError(
                path, f"front-matter keys {spelled[key]!r} and {raw_key!r} mean the same thing"
            )
        spelled[key] = str(raw_key)
        if key not in _KNOWN:
            metadata[str(raw_key)] = value
            continue
        if value is None:
            continue
        fields[key] = value

    body = body.strip()
    name = _scalar(path, "name", fields.get("name"))
    if name is None:
        name = path.parent.name
    problem = name_problem(name)
    if problem:
        raise SkillParseError(path, problem)
    description = _scalar(path, "description", fields.get("description"))
    if description is None or not description.strip():
        description = first_paragraph(body)

    skill = Skill(
        name=name,
        description=description.strip(),
        body=body,
        path=path,
        root=path.parent,
        source_root=source_root,
    )
    for key, attr in _TRIGGER_KEYS.items():
        setattr(skill, attr, _triggers(path, key, fields.get(key)))
    for key, attr in _BOOL_KEYS.items():
        if key in fields:
            setattr(skill, attr, _bool(path, key, fields[key]))
    for key, attr in _STRING_KEYS.items():
        setattr(skill, attr, _scalar(path, key, fields.get(key)))
    if "allowed-tools" in fields:
        skill.allowed_tools = _tool_list(path, fields["allowed-tools"])
    if "metadata" in fields:
        nested = fields["metadata"]
        if isinstance(nested, dict):
            metadata = {**{str(k): v for k, v in nested.items()}, **metadata}
        else:
            metadata["metadata"] = nested
    skill.metadata = metadata
    return skill


def _yaml_problem(exc: yaml.YAMLError) -> str:
    mark = getattr(exc, "problem_mark", None)
    problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
    if mark is not None:
        # +2: the mark is 0-based and the front matter starts after the opening '---' line
        return f"invalid YAML front matter at line {mark.line + 2}: {problem}"
    return f"invalid YAML front matter: {problem}"


def _scalar(path: Path, key: str, value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, bool) or isinstance(value, dict | list):
        raise SkillParseError(path, f"front-matter key '{key}' must be a string, got {type_name(value)}")
    return str(value)


def _triggers(path: Path, key: str, value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, list):
        items = []
        for item in value:
            if isinstance(item, dict | list | bool) or item is None:
                raise SkillParseError(path, f"front-matter key '{key}' must be a string or a list of strings")
            items.append(str(item).strip())
        return ", ".join(item for item in items if item)
    text = _scalar(path, key, value)
    return " ".join((text or "").split())


def _bool(path: Path, key: str, value: Any) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in _TRUE | _FALSE:
        return value.strip().lower() in _TRUE
    raise SkillParseError(path, f"front-matter key '{key}' must be true or false, got {value!r}")


def _tool_list(path: Path, value: Any) -> list[str]:
    """`allowed-tools` as a list: YAML list, or a string separated by commas or (outside parentheses) spaces."""
    if isinstance(value, list):
        if not all(isinstance(item, str) for item in value):
            raise SkillParseError(
                path, "front-matter key 'allowed-tools' must be a string or a list of strings"
            )
        return [item.strip() for item in value if item.strip()]
    text = _scalar(path, "allowed-tools", value) or ""
    tools: list[str] = []
    current: list[str] = []
    depth = 0
    separators = "," if "," in text else ", \t\n"
    for char in text:
        if char == "(":
            depth += 1
        elif char == ")":
            depth = max(0, depth - 1)
        if depth == 0 and char in separators:
            tools.append("".join(current))
            current = []
            continue
        current.append(char)
    tools.append("".join(current))
    return [tool.strip() for tool in tools if tool.strip()]
