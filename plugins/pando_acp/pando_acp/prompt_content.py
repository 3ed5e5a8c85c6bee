"""What the editor sends in ``session/prompt``, as pando takes it: the text and the image parts.

Text blocks are taken as they are; embedded resources (files the editor attached) and resource
links (``read_resource(uri) -> str | None`` reads them) become fenced blocks naming the file; image
blocks become pando ``image`` parts (see ``pando_core.agent.attachments``), checked like
``pando run --image`` files: PNG, JPEG, GIF or WebP by their bytes, at most ``[agent]
max_image_bytes``. Audio is refused. A bad block is a ``ValueError`` with a one-line reason.
"""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass, field
from typing import Any


@dataclass
class PromptContent:
    text: str
    images: list[dict[str, Any]] = field(default_factory=list)  # pando image parts


def image_part(block: Any, number: int, max_bytes: int) -> dict[str, Any]:
    """The pando ``image`` part of an ACP image block (``number``: its place among the prompt's images)."""
    from pando_core.agent.attachments import image_type

    name = block.uri or f"image {number}"
    try:
        payload = base64.b64decode(block.data, validate=True)
    except (binascii.Error, ValueError):
        raise ValueError(f"{name}: the image data is not base64") from None
    if len(payload) > max_bytes:
        raise ValueError(f"{name} is {len(payload):,} bytes; the limit is {max_bytes:,} ([agent] max_image_bytes)")
    mime = image_type(payload[:12])
    if mime is None:
        raise ValueError(f"{name} ({block.mime_type}) is not a PNG, JPEG, GIF or WebP image")
    return {"type": "image", "data": {"mime_type": mime, "data": block.data, "path": name, "bytes": len(payload)}}


def prompt_content(blocks: list[Any], read_resource=None, *, max_image_bytes: int = 5 * 1024 * 1024) -> PromptContent:  # noqa: ANN001
    pieces: list[str] = []
    images: list[dict[str, Any]] = []
    for block in blocks:
        kind = getattr(block, "type", None)
        if kind == "text":
            pieces.append(block.text)
        elif kind == "image":
            images.append(image_part(block, len(images) + 1, max_image_bytes))
        elif kind == "resource":
            resource = block.resource
            text = getattr(resource, "text", None)
            if text is None:
                pieces.append(f"(attached binary resource {resource.uri} is not shown)")
            else:
                pieces.append(_fenced(resource.uri, text))
        elif kind == "resource_link":
            text = read_resource(block.uri) if read_resource else None
            if text is None:
                pieces.append(f"(see {block.uri})")
            else:
                pieces.append(_fenced(block.uri, text))
        else:
            raise ValueError(f"pando does not accept {kind} content in a prompt")
    return PromptContent("\n\n".join(p for p in pieces if p), images)


def _fenced(uri: str, text: str) -> str:
    name = uri.removeprefix("file://")
    fence = "```"
    while fence in text:
        fence += "`"
    return f"{name}:\n{fence}\n{text}\n{fence}"
