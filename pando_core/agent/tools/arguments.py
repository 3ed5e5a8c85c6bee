"""Tool-call arguments that are not quite JSON, repaired and type-checked.

Models sometimes send a tool call's arguments (or the gateway's ``parameters``) with a trailing
comma, single quotes, a code fence or cut short. ``repair_arguments`` accepts valid JSON as is
(the fast path), else asks json-repair for its best reading and keeps it only when it is an
object; anything else is an error that names what was received. The agent loop decodes every
tool call's arguments with it; plugins use it for arguments they receive as text (the MCP
gateway's ``parameters``).
"""

from __future__ import annotations

import json
from typing import Any


class ArgumentsError(ValueError):
    """The text could not be read as a JSON object, even after repair."""


_JSON_TYPES: dict[str, tuple[type, ...]] = {
    "string": (str,),
    "integer": (int,),
    "number": (int, float),
    "boolean": (bool,),
    "object": (dict,),
    "array": (list,),
    "null": (type(None),),
}


def _type_errors(value: dict[str, Any], schema: dict[str, Any] | None) -> list[str]:
    """Top-level properties whose repaired value has another JSON type than the schema declares."""
    errors = []
    for key, declared in ((schema or {}).get("properties") or {}).items():
        if key not in value or not isinstance(declared, dict) or "type" not in declared:
            continue
        kinds = declared["type"] if isinstance(declared["type"], list) else [declared["type"]]
        allowed = tuple(t for kind in kinds for t in _JSON_TYPES.get(kind, (object,)))
        item = value[key]
        if not isinstance(item, allowed) or (isinstance(item, bool) and bool not in allowed):
            errors.append(f"{key} should be {'/'.join(kinds)}, got {item!r}")
    return errors


def repair_arguments(text: str | dict[str, Any] | None, schema: dict[str, Any] | None = None) -> dict[str, Any]:
    """A JSON object from ``text``: parsed, or repaired when it is malformed (and then checked
    against the top-level property types of ``schema``, since a repair may guess: ``{"a": tru``
    reads as ``{"a": "tru"}``)."""
    if text is None:
        return {}
    if isinstance(text, dict):
        return text
    if not isinstance(text, str):
        raise ArgumentsError(f"expected a JSON object, got {type(text).__name__}")
    if not text.strip():
        return {}
    try:
        value = json.loads(text)
    except ValueError:
        import json_repair  # 21 ms to import: only when a repair is needed

        value = json_repair.repair_json(text, return_objects=True)
        repaired = True
    else:
        repaired = False
    shown = text if len(text) <= 80 else text[:79] + "…"
    if not isinstance(value, dict):
        raise ArgumentsError(f"expected a JSON object, got {shown!r}")
    errors = _type_errors(value, schema) if repaired else []
    if errors:
        raise ArgumentsError(f"could not repair {shown!r}: {'; '.join(errors)}")
    return value
