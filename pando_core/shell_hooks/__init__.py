"""Shell hooks: commands the user configures to run at points of a session, in Claude Code's shape.

``settings`` reads the definitions (``[hooks]`` in pando's config files, ``hooks`` in
``.claude/settings.json`` and ``.claude/settings.local.json``), ``runner`` runs one command with
its JSON input and reads what it answered, ``plugin`` ties the events to pando's plugin hooks.
"""
