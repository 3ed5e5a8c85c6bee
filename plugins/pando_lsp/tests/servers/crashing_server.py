"""A 'language server' that exits as soon as it is sent anything (counts its starts in a file)."""

import sys
from pathlib import Path

if len(sys.argv) > 1:
    counter = Path(sys.argv[1])
    counter.write_text(str(int(counter.read_text() or 0) + 1) if counter.exists() else "1")
sys.stdin.buffer.read(1)
print("crashing_server: fatal: cannot go on", file=sys.stderr, flush=True)
sys.exit(3)
