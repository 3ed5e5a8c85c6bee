"""The one rule for text that is not valid Unicode: lone surrogates.

Python hands out lone surrogates for bytes that are not UTF-8: ``os.scandir``/``os.listdir`` and
``sys.argv`` decode file names with ``surrogateescape`` (byte ``0xE9`` becomes ``"\\udce9"``),
and JSON may spell one (``"\\ud800"``). They cannot be encoded as UTF-8, so every boundary that
writes UTF-8 would raise. The rule:

* What people and models read (tool output, provider requests) shows such a character as an
  escape: an undecodable byte as ``\\xe9``, any other lone surrogate as ``\\ud800``
  (:func:`display_text`, :func:`display_json`). The rest of the text is untouched.
* What travels between pando processes (the bus) keeps the text exactly: a lone surrogate goes
  as a JSON ``\\uXXXX`` escape (:func:`json_to_utf8`), so a secondary stores what the primary
  would have stored.
"""

from __future__ import annotations

import re
from typing import Any

_SURROGATE = re.compile("[\ud800-\udfff]")


def _escape(match: re.Match[str]) -> str:
    code = ord(match.group())
    if 0xDC80 <= code <= 0xDCFF:  # an undecodable byte, as surrogateescape made it
        return f"\\x{code - 0xDC00:02x}"
    return f"\\u{code:04x}"


def display_text(text: str) -> str:
    """*text* with each lone surrogate replaced by its escape (``\\xe9``, ``\\ud800``): the same
    object when there is none (the common case costs one failed encode attempt at most)."""
    if text.isascii():
        return text
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return _SURROGATE.sub(_escape, text)
    return text


def display_json(value: Any) -> Any:
    """*value* (a JSON-like structure of dicts, lists and strings) with :func:`display_text`
    applied to every string, keys included; unchanged objects are returned as they are."""
    if isinstance(value, str):
        return display_text(value)
    if isinstance(value, dict):
        return {display_json(k): display_json(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [display_json(v) for v in value]
    return value


def json_to_utf8(encoded: str) -> bytes:
    """Text produced by a JSON encoder (``ensure_ascii=False``) as UTF-8 bytes. A lone surrogate
    can only sit inside a JSON string there, where the escape ``\\udXXX`` means the very same
    character: the bytes decode back to the same value, and are valid UTF-8."""
    try:
        return encoded.encode("utf-8")
    except UnicodeEncodeError:
        return encoded.encode("utf-8", "backslashreplace")


def json_storable(encoded: str) -> str:
    """Text produced by a JSON encoder (``ensure_ascii=False``) with each lone surrogate written
    as its ``\\uXXXX`` escape: the same JSON value, as text SQLite (UTF-8) can store."""
    try:
        encoded.encode("utf-8")
    except UnicodeEncodeError:
        return encoded.encode("utf-8", "backslashreplace").decode("utf-8")
    return encoded
