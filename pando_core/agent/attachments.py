"""Images attached to a prompt: recognised by their magic bytes, stored as ``image`` message parts.

An ``image`` part's data is ``{"mime_type", "data" (base64), "path", "bytes"}``; the providers send it
as an OpenAI ``image_url`` data URL or an Anthropic base64 ``image`` block. PNG, JPEG, GIF and WebP
are accepted, up to ``[agent] max_image_bytes`` (5 MB, the smallest limit of the big APIs). Whether a
model takes images is its ``images`` capability (see :func:`pando_core.agent.models.resolve_model`);
a model without it gets a one-line error before anything is sent.
"""

from __future__ import annotations

import base64
import json
import shlex
from pathlib import Path
from typing import Any

from ..errors import UsageError

DEFAULT_MAX_IMAGE_BYTES = 5 * 1024 * 1024
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".gif", ".webp")


def image_type(head: bytes) -> str | None:
    """The media type of an image from its first 12 bytes; None when it is not one we send."""
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return "image/png"
    if head.startswith(b"\xff\xd8\xff"):
        return "image/jpeg"
    if head.startswith((b"GIF87a", b"GIF89a")):
        return "image/gif"
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "image/webp"
    return None


def sniff_image(path: Path) -> str | None:
    """The media type of the file at *path* when it is an image (None for anything else)."""
    try:
        with open(path, "rb") as handle:
            return image_type(handle.read(12))
    except OSError:
        return None


def image_part(path: Path, *, max_bytes: int = DEFAULT_MAX_IMAGE_BYTES, shown: str | None = None) -> dict[str, Any]:
    """An ``image`` message part for the file at *path*; a UsageError saying why it cannot be one."""
    shown = shown or str(path)
    if not path.exists():
        raise UsageError(f"image {shown}: no such file")
    if not path.is_file():
        raise UsageError(f"image {shown}: not a file")
    size = path.stat().st_size
    if size > max_bytes:
        raise UsageError(f"image {shown} is {size:,} bytes; the limit is {max_bytes:,} ([agent] max_image_bytes)")
    try:
        payload = path.read_bytes()
    except OSError as exc:
        raise UsageError(f"image {shown}: {exc.strerror or exc}") from exc
    mime = image_type(payload[:12])
    if mime is None:
        raise UsageError(f"{shown} is not a PNG, JPEG, GIF or WebP image")
    data = {"mime_type": mime, "data": base64.b64encode(payload).decode("ascii"), "path": shown, "bytes": size}
    return {"type": "image", "data": data}


def image_parts(parts: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [p for p in parts if p.get("type") == "image"]


def check_model_takes_images(resolved: Any, parts: list[dict[str, Any]]) -> None:
    """Refuse, before sending, images for a model that does not take them."""
    images = image_parts(parts)
    if images and not resolved.info.accepts_images:
        names = ", ".join(str(p["data"].get("path") or "image") for p in images)
        raise UsageError(
            f"model {resolved.ref} does not accept images ({names}); pick a vision model with --model, "
            f"or set [providers.{resolved.provider_name}.models.\"{resolved.model_id}\"] images = true"
        )


def check_message_fits(parts: list[dict[str, Any]], max_message_bytes: int) -> None:
    """Refuse a user message too large for the bus (a secondary sends it to the primary whole):
    a few large images together can exceed ``[runtime] max_message_bytes``."""
    if len(parts) < 2:
        return  # the prompt alone: the context-window check speaks for it
    size = len(json.dumps(parts))
    budget = max_message_bytes * 9 // 10  # room for the envelope around the parts
    if size > budget:
        raise UsageError(
            f"the prompt with its attachments is {size:,} bytes stored; a message may be at most {budget:,} "
            "([runtime] max_message_bytes): attach fewer or smaller files"
        )


def dropped_image_paths(text: str, base: Path, *, max_bytes: int = DEFAULT_MAX_IMAGE_BYTES) -> list[dict[str, Any]]:
    """Image files whose paths were pasted or dropped into an interactive prompt.

    A terminal drops a file as its path, quoted ('/tmp/my shot.png') or with escaped spaces
    (/tmp/my\\ shot.png). Every word naming an existing image file (by its magic bytes, wherever it
    lies: the user put it there) becomes an image part; the text keeps the path so the model knows
    which file the image is. Relative paths are read from *base* (the working directory).
    """
    if not any(suffix in text.lower() for suffix in IMAGE_SUFFIXES):
        return []  # the common case: no shell-style parsing of every prompt
    try:
        words = shlex.split(text, posix=True)
    except ValueError:  # an unbalanced quote: plain words only
        words = text.split()
    parts: list[dict[str, Any]] = []
    seen: set[Path] = set()
    for word in words:
        if word.startswith("@") or not word.lower().endswith(IMAGE_SUFFIXES):
            continue  # @mentions are resolved by the mention rules
        path = base / Path(word).expanduser()
        if path not in seen and path.is_file() and sniff_image(path):
            seen.add(path)
            parts.append(image_part(path, max_bytes=max_bytes, shown=word))
    return parts
