"""Completion of ``@path`` mentions in the interactive prompt (prompt_toolkit, merged with the
slash-command completer): the word being typed after ``@`` is completed from the working directory,
directories with a trailing ``/`` so that Tab walks down the tree, ignore rules applied."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

# the mention being typed: "@" first or after a space/bracket, up to the cursor; a quoted one may be
# open or just closed (Tab after a completed @"my dir/" lists that directory)
TYPING_MENTION = re.compile(r"""(?<![^\s(\[{])@("[^"\n]*"?|[^\s"'`<>|;,]*)$""")


def mention_completer(workdir: Path) -> Any:
    from prompt_toolkit.completion import Completer, Completion

    from ..agent.mentions import complete_mention

    class MentionCompleter(Completer):
        def get_completions(self, document: Any, complete_event: Any) -> Any:
            match = TYPING_MENTION.search(document.text_before_cursor)
            if match is None:
                return
            typed = match.group(0)
            for replacement, shown in complete_mention(workdir, match.group(1)):
                yield Completion(replacement, start_position=-len(typed), display=shown)

    return MentionCompleter()
