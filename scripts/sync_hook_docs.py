"""Refresh the signature and description of each hook in docs/plugin-hooks.md from hookspecs.py.

The examples in the document are hand-written and kept; only the text between a hook's heading and
its example is regenerated. ``--check`` exits 1 when the document is out of date.
"""

from __future__ import annotations

import inspect
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DOC = ROOT / "docs" / "plugin-hooks.md"


def render(name: str) -> str:
    from pando_core import hookspecs

    fn = getattr(hookspecs, name)
    signature = str(inspect.signature(fn)).replace("'", "").split(" -> ")[0]
    spec = fn.__pando_hook__
    kind = f"{spec.kind} (the value threaded through: `{spec.value}`)" if spec.value else spec.kind
    asynchronous = "must be a plain function" if spec.sync_only else "may be `async def`"
    return f"`{name}{signature}`\n\nKind: {kind}; {asynchronous}.\n\n{inspect.getdoc(fn)}\n\n"


def synced(text: str) -> str:
    def replace(match: re.Match) -> str:
        return f"### `{match.group(1)}`\n\n" + render(match.group(1)) + "```python"

    return re.sub(r"### `(pando_\w+)`\n\n.*?```python", replace, text, flags=re.S)


def main() -> int:
    sys.path.insert(0, str(ROOT))
    current = DOC.read_text(encoding="utf-8")
    fresh = synced(current)
    if "--check" in sys.argv:
        if fresh != current:
            print("docs/plugin-hooks.md is out of date: run python scripts/sync_hook_docs.py")
            return 1
        return 0
    DOC.write_text(fresh, encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
