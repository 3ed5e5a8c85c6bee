"""A 'language server' that reads its input and never answers (exits when stdin closes)."""

import sys

while sys.stdin.buffer.read(4096):
    pass
