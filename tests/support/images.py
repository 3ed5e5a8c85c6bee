"""Real image files for tests: a PNG built byte by byte, and what the scripted server received."""

from __future__ import annotations

import struct
import zlib

VISION = '\n[providers.scripted.models.test-model]\nimages = true\n'


def tiny_png(width: int = 2, height: int = 2) -> bytes:
    """A real PNG: signature, IHDR, one zlib-compressed IDAT of RGB rows, IEND, each with its CRC."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    rows = b"".join(b"\x00" + b"\xff\x00\x00" * width for _ in range(height))
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(rows)) + chunk(b"IEND", b"")


def image_urls(request_body) -> list[str]:
    content = [m for m in request_body["messages"] if m["role"] == "user"][-1]["content"]
    return [c["image_url"]["url"] for c in content if isinstance(c, dict) and c.get("type") == "image_url"]
