"""Custom slash commands: markdown prompt templates the user keeps in files, Claude Code's format.

``catalog`` finds and reads the files, ``render`` turns one invocation (``/name args``) into the
prompt of a turn, with its arguments, command outputs and included files.
"""
