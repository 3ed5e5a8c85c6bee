"""``@path`` mentions in a prompt: the file's text (or a directory's listing) attached for the model.

What counts as a mention: ``@`` at the start of the prompt or after a space or an opening bracket,
then a path (``@src/app.py``, ``@docs/``) or a quoted one (``@"notes/meeting notes.md"``). A mention
is only attached when the path exists inside the working directory; anything else (``@someone``, an
e-mail address ``a@b.org``, a path outside the workdir, a file the ignore rules hide) stays plain
text, so a prompt never loses words. Trailing punctuation (``see @a.py.``) is not part of the path.

Each attached mention becomes a ``file`` message part stored with the user's message::

    {"type": "file", "data": {"path": "src/app.py", "kind": "file", "text": "...", "bytes": 1234,
                              "truncated": false}}

``kind`` is ``file``, ``directory`` (``text`` is the listing) or ``skipped`` (``reason`` says why:
binary, ignored, unreadable); an image file becomes an ``image`` part (see attachments.py). The
providers show a ``file`` part to the model as ``<file path="...">...</file>`` text.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from ..ignore import IgnoreRules
from .attachments import DEFAULT_MAX_IMAGE_BYTES, image_part, sniff_image

DEFAULT_MAX_BYTES = 100_000
MAX_MENTIONS = 20  # per prompt: a pasted log full of @s must not attach half the repository
LISTING_MAX_ENTRIES = 200
LISTING_MAX_DEPTH = 3
NEVER_ATTACHED = (".git", ".pando")  # the repository's and pando's own stores

# "@" first or after a space/bracket (not inside a word: e-mail addresses), then "quoted path" or a path
MENTION = re.compile(r"""(?<![^\s(\[{])@(?:"([^"\n]+)"|([^\s"'`<>|;,]+))""")
TRAILING = ".,;:!?)]}'"


def find_mentions(prompt: str) -> Iterator[str]:
    """The raw path of every ``@`` mention in *prompt* (quotes removed, trailing punctuation kept), in order."""
    for match in MENTION.finditer(prompt):
        yield match.group(1) or match.group(2)


def _inside(path: Path, root: Path) -> str | None:
    """*path* relative to *root* (posix) when it resolves inside it, else None."""
    try:
        rel = path.resolve().relative_to(root)
    except (ValueError, OSError):
        return None
    return rel.as_posix()


def _locate(raw: str, workdir: Path) -> tuple[Path, str] | None:
    """The existing path a mention names (trailing punctuation dropped until one exists)."""
    candidate = raw
    while candidate:
        path = workdir / candidate
        if path.exists():
            rel = _inside(path, workdir)
            return (path, rel) if rel is not None else None
        if candidate[-1] not in TRAILING:
            return None
        candidate = candidate[:-1]
    return None


def _ignored(workdir: Path, rel: str, is_dir: bool) -> bool:
    if rel == ".":
        return False
    if rel.split("/", 1)[0] in NEVER_ATTACHED:
        return True
    rules = IgnoreRules(workdir)
    rules.load_ancestors((workdir / rel).parent)
    # a file inside an ignored directory is ignored too, as git sees it
    parts = rel.split("/")
    for depth in range(1, len(parts) + 1):
        if rules.ignored("/".join(parts[:depth]), is_dir or depth < len(parts)):
            return True
    return False


def _is_binary(sample: bytes) -> bool:
    from .tools.view import is_binary_sample

    return is_binary_sample(sample)


def directory_listing(directory: Path, workdir: Path) -> tuple[str, int]:
    """An indented listing of *directory* (ignore rules applied), at most LISTING_MAX_ENTRIES lines."""
    rules = IgnoreRules(workdir)
    rules.load_ancestors(directory)
    lines: list[str] = []
    total = 0

    def walk(current: Path, depth: int) -> None:
        nonlocal total
        rules.load_dir(current)
        try:
            entries = sorted(os.scandir(current), key=lambda e: (not e.is_dir(follow_symlinks=False), e.name))
        except OSError:
            return
        for entry in entries:
            if total > LISTING_MAX_ENTRIES * 5:
                return  # enough to say "many more": never walk a huge tree for a listing
            rel = _inside(Path(entry.path), workdir)
            is_dir = entry.is_dir(follow_symlinks=False)
            if rel is None or entry.name in NEVER_ATTACHED or rules.ignored(rel, is_dir):
                continue
            total += 1
            if len(lines) < LISTING_MAX_ENTRIES:
                lines.append("  " * depth + entry.name + ("/" if is_dir else ""))
            if is_dir and depth + 1 < LISTING_MAX_DEPTH:
                walk(Path(entry.path), depth + 1)

    walk(directory, 0)
    if total > len(lines):
        more = f"{total - len(lines)}+" if total > LISTING_MAX_ENTRIES * 5 else str(total - len(lines))
        lines.append(f"... ({more} more entries)")
    return "\n".join(lines) or "(empty directory)", total


def mention_part(
    path: Path, rel: str, workdir: Path, *, max_bytes: int = DEFAULT_MAX_BYTES, max_image_bytes: int = DEFAULT_MAX_IMAGE_BYTES
) -> dict[str, Any]:
    """The message part that attaches one existing path inside the workdir."""
    is_dir = path.is_dir()
    shown = rel + "/" if is_dir and rel != "." else rel
    if _ignored(workdir, rel, is_dir):
        return _skipped(shown, "ignored by .gitignore/.pandoignore")
    if is_dir:
        listing, entries = directory_listing(path, workdir)
        return {"type": "file", "data": {"path": shown, "kind": "directory", "text": listing, "entries": entries}}
    if sniff_image(path):
        return image_part(path, max_bytes=max_image_bytes, shown=rel)
    try:
        size = path.stat().st_size
        with open(path, "rb") as handle:
            head = handle.read(max_bytes)
    except OSError as exc:
        return _skipped(shown, f"unreadable: {exc.strerror or exc}")
    if _is_binary(head[:8192]):
        return _skipped(shown, f"binary file, {size:,} bytes")
    text = head.decode("utf-8", errors="replace")
    if size > max_bytes:  # cut at a line end when there is one: no half line for the model
        cut = text.rfind("\n")
        text = text[: cut + 1] if cut > 0 else text
    data = {"path": shown, "kind": "file", "text": text, "bytes": size, "truncated": size > max_bytes}
    return {"type": "file", "data": data}


def _skipped(shown: str, reason: str) -> dict[str, Any]:
    return {"type": "file", "data": {"path": shown, "kind": "skipped", "reason": reason}}


def mention_parts(
    prompt: str, workdir: Path, *, max_bytes: int = DEFAULT_MAX_BYTES, max_image_bytes: int = DEFAULT_MAX_IMAGE_BYTES
) -> list[dict[str, Any]]:
    """The parts to attach for the ``@`` mentions of *prompt* (each path once; unknown ones skipped)."""
    if "@" not in prompt:
        return []
    workdir = workdir.resolve()
    parts: list[dict[str, Any]] = []
    seen: set[str] = set()
    for raw in find_mentions(prompt):
        located = _locate(raw, workdir)
        if located is None:
            continue
        path, rel = located
        if rel in seen:
            continue
        seen.add(rel)
        parts.append(mention_part(path, rel, workdir, max_bytes=max_bytes, max_image_bytes=max_image_bytes))
        if len(parts) >= MAX_MENTIONS:
            break
    return parts


def quote_mention(rel: str) -> str:
    """``@path``, or ``@"path"`` when the path has characters a bare mention cannot hold."""
    return f'@"{rel}"' if re.search(r"""[\s"'`<>|;,]""", rel) else "@" + rel


def complete_mention(workdir: Path, partial: str, limit: int = 50) -> list[tuple[str, str]]:
    """Completions for the mention being typed (*partial* is the text after ``@``, maybe ``"``-quoted):
    [(the whole replacement ``@...``, what the menu shows)], directories with a trailing ``/``."""
    partial = partial[1:] if partial.startswith('"') else partial
    partial = partial.rstrip('"')
    head, _, prefix = partial.rpartition("/")
    workdir = workdir.resolve()
    directory = workdir / head if head else workdir
    if _inside(directory, workdir) is None or not directory.is_dir():
        return []
    rules = IgnoreRules(workdir)
    rules.load_ancestors(directory)
    out: list[tuple[str, str]] = []
    try:
        entries = sorted(os.scandir(directory), key=lambda e: e.name)
    except OSError:
        return []
    for entry in entries:
        if not entry.name.startswith(prefix) or (entry.name.startswith(".") and not prefix.startswith(".")):
            continue
        rel = f"{head}/{entry.name}" if head else entry.name
        is_dir = entry.is_dir()
        if entry.name in NEVER_ATTACHED or rules.ignored(rel, is_dir):
            continue
        shown = entry.name + ("/" if is_dir else "")
        out.append((quote_mention(rel + ("/" if is_dir else "")), shown))
        if len(out) >= limit:
            break
    return out


def attached_line(item: dict[str, Any]) -> str:
    """One line saying how a mentioned path was attached (an item of the "attached" agent event)."""
    if item.get("kind") == "skipped":
        note = f"not attached: {item.get('reason', '')}"
    elif item.get("kind") == "directory":
        note = "listing"
    else:
        note = f"{int(item.get('bytes') or 0):,} bytes" + (", truncated" if item.get("truncated") else "")
    return f"📎 {item.get('path', '')}  {note}"
