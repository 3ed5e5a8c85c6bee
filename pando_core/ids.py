"""Row ids: random RFC 4122 version-4 UUID strings, made without a system call each.

``str(uuid.uuid4())`` reads ``os.urandom`` and builds a ``UUID`` object for every row: on the
primary's write path that was several microseconds per write. Ids name rows; they are not
secrets, so a private generator seeded from ``os.urandom`` does (122 random bits, as uuid4). It
is private so that a ``random.seed()`` elsewhere cannot make two processes repeat ids, and it
is seeded again in a forked child for the same reason.
"""

from __future__ import annotations

import os
import random

_random = random.Random(os.urandom(32))
os.register_at_fork(after_in_child=lambda: _random.seed(os.urandom(32)))

# version 4 (bits 76-79 = 0100) and the RFC 4122 variant (bits 62-63 = 10)
_CLEAR = ~((0xF << 76) | (0x3 << 62))
_SET = (0x4 << 76) | (0x2 << 62)


def new_id() -> str:
    """A random UUID4 string (``xxxxxxxx-xxxx-4xxx-[89ab]xxx-xxxxxxxxxxxx``)."""
    h = "%032x" % (_random.getrandbits(128) & _CLEAR | _SET)
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"
