"""Judging one goal iteration's answer: the status block, the markers, the checklist plan.

Deterministic: the status block (``GOAL_STATUS:``, ``PROGRESS:``, ``NEXT_STEP:``,
``BLOCKED_REASON:``) wins; else the ``GOAL COMPLETED:`` / ``GOAL BLOCKED:`` markers; else phrase
heuristics (blocked / completion / remaining-work / no-progress). Completion claimed while the
checklist has unchecked items is not accepted.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from .statuses import BLOCKED, COMPLETED, IN_PROGRESS

MAX_PROGRESS_CHARS = 2000

_FENCE = re.compile(r"^\s*(```|~~~)")
_INLINE_CODE = re.compile(r"`[^`\n]*`")
_DECOR = r"[\s>*_#+-]*"
_FIELD = re.compile(
    rf"^{_DECOR}(goal[ _]status|progress|next[ _]step|next|remaining[ _]work|blocked[ _]reason)"
    r"\s*(?:\*\*|__)?\s*:\s*(?:\*\*|__)?\s*(.*?)\s*(?:\*\*|__)?\s*$",
    re.IGNORECASE,
)
_INLINE_NEXT = re.compile(r"\b(?:next step|remaining work)\s*:\s*(.+)", re.IGNORECASE)
_CHECKBOX = re.compile(r"^\s*(?:[-*+]|\d+[.)])\s+\[([ xX~>/-])\]\s+(.+?)\s*$")
_MARK_BLOCKED = re.compile(r"\bGOAL\s+BLOCKED\b\s*:?\s*(.*)", re.IGNORECASE | re.DOTALL)
_MARK_COMPLETED = re.compile(r"\bGOAL\s+COMPLETED?\b\s*:?\s*(.*)", re.IGNORECASE | re.DOTALL)

_COMPLETION_RULES = [
    re.compile(r"\bsuccessfully (implemented|completed|finished|resolved|verified)\b", re.I),
    re.compile(r"\ball (tests|checks) (pass|passed|are passing)\b", re.I),
    re.compile(r"\bverified (working|it works|the fix works|the implementation works)\b", re.I),
    re.compile(r"\bgoal achieved\b", re.I),
    re.compile(r"\bcompleted successfully\b", re.I),
]
_BLOCKED_RULES = [
    re.compile(r"\b(cannot|can't|can not) continue without\b", re.I),
    re.compile(r"\b(blocked by|waiting for (user input|credentials|permission|access))\b", re.I),
    re.compile(r"\b(missing|need) (credentials|permission|access)\b", re.I),
]
_REMAINING_RULES = [
    re.compile(
        r"\b(still needs? to|remaining|remain(ing)? tasks?|next steps?|pending|follow-?up|left to do|"
        r"continue|continuing|not yet|todo)\b",
        re.I,
    ),
    re.compile(r"\b(will now|next i(?:'|’)ll|then i(?:'|’)ll)\b", re.I),
]
_NO_PROGRESS_RULES = [
    re.compile(
        r"\b(no progress|unable to make progress|haven't made progress|have not made progress)\b", re.I
    ),
    re.compile(r"\b(still stuck|same issue|same blocker|still failing|still blocked)\b", re.I),
]


def normalize(text: str | None) -> str:
    return " ".join((text or "").split())


def _clip(text: str, limit: int = MAX_PROGRESS_CHARS) -> str:
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


def _matches(rules: list[re.Pattern[str]], text: str) -> bool:
    return any(rule.search(text) for rule in rules)


def _prose_lines(text: str) -> list[str]:
    """The lines of `text` outside fenced code blocks."""
    lines, fenced = [], False
    for line in (text or "").splitlines():
        if _FENCE.match(line):
            fenced = not fenced
            continue
        if not fenced:
            lines.append(line)
    return lines


@dataclass
class TodoItem:
    text: str
    done: bool
    active: bool = False  # [~] / [>] / [/] : in progress


def parse_checklist(text: str) -> list[TodoItem]:
    """The markdown checklist items of `text`; an item restated later wins (and moves to its place)."""
    items: list[TodoItem] = []
    for line in _prose_lines(text):
        match = _CHECKBOX.match(line)
        if match:
            mark, body = match.group(1), normalize(match.group(2))
            items.append(TodoItem(body, mark in "xX", mark in "~>/"))
    # a later answer restating the plan wins: keep the last occurrence of each item text
    latest: dict[str, TodoItem] = {}
    for item in items:
        latest.pop(item.text, None)
        latest[item.text] = item
    return list(latest.values())


def todo_signature(items: list[TodoItem]) -> str:
    return "||".join(f"{'x' if i.done else ('~' if i.active else ' ')}|{i.text}" for i in items)


def parse_status_block(text: str) -> dict[str, str]:
    """Fields of the status block (last occurrence of each): status, progress, next_step, blocked_reason."""
    fields: dict[str, str] = {}
    for line in _prose_lines(text):
        match = _FIELD.match(line)
        if not match:
            continue
        key = match.group(1).lower().replace(" ", "_")
        value = normalize(match.group(2).strip("`*_ "))
        if value.startswith("<") and value.endswith(">"):
            continue  # the template's placeholder, echoed back
        if key in ("next", "remaining_work"):
            key = "next_step"
        elif key == "goal_status":
            key = "status"
        if value:
            fields[key] = value
    return fields


def _normalize_status(value: str) -> str | None:
    word = value.lower().strip(" .`*<>|")
    word = re.split(r"[\s|/,]+", word)[0] if word else ""
    if word in ("completed", "complete", "done", "achieved", "finished", "success"):
        return COMPLETED
    if word in ("blocked", "stuck"):
        return BLOCKED
    if word in (
        "in_progress",
        "in-progress",
        "in",
        "progress",
        "ongoing",
        "continuing",
        "working",
        "running",
    ):
        return IN_PROGRESS
    return None


@dataclass
class Evaluation:
    status: str  # in_progress | completed | blocked
    progress: str
    next_step: str
    reason: str = ""
    explicit_progress: str = ""
    todos: list[TodoItem] = field(default_factory=list)
    unchecked_claim: list[str] = field(default_factory=list)  # completion refused: these are open
    no_progress_phrase: bool = False


def evaluate(
    response: str, turn_text: str = "", plan: list[TodoItem] | None = None, initial_todo_sig: str = ""
) -> Evaluation:
    """Judge one iteration's answer (deterministic). `plan` is the current checklist plan."""
    response = response or ""
    source = response if response.strip() else turn_text
    lines = _prose_lines(source)
    prose = "\n".join(lines)
    marker_text = _INLINE_CODE.sub("", prose)
    fields = parse_status_block(source)
    todos = list(plan or [])
    open_items = [t.text for t in todos if not t.done]
    norm = normalize(prose)

    progress = fields.get("progress", "")
    explicit_progress = progress
    next_step = fields.get("next_step", "")
    if not next_step and open_items:
        active = [t.text for t in todos if t.active and not t.done]
        next_step = (active or open_items)[0]
    if not next_step:
        inline = _INLINE_NEXT.findall(prose)
        next_step = normalize(inline[-1]) if inline else ""
    reason = fields.get("blocked_reason", "")

    status: str | None = _normalize_status(fields["status"]) if "status" in fields else None
    marker_reason = ""
    if status is None:
        blocked = _MARK_BLOCKED.search(marker_text)
        completed = _MARK_COMPLETED.search(marker_text)
        if blocked:
            status = BLOCKED
            marker_reason = next((normalize(x) for x in blocked.group(1).splitlines() if x.strip()), "")
        elif completed:
            status = COMPLETED
            rest = completed.group(1)
            marker_reason = normalize(rest.split("\n", 1)[0]) or normalize(rest)
    if status is None:
        has_completion = _matches(_COMPLETION_RULES, norm)
        has_remaining = _matches(_REMAINING_RULES, norm)
        sig = todo_signature(todos)
        plan_done = bool(todos) and not open_items
        if _matches(_BLOCKED_RULES, norm) and not has_completion:
            status = BLOCKED
        elif (plan_done and sig != initial_todo_sig and not has_remaining) or (
            has_completion and not has_remaining and (not todos or plan_done)
        ):
            status = COMPLETED
        else:
            status = IN_PROGRESS

    if not progress:
        if status == COMPLETED and marker_reason:
            progress = marker_reason
        else:
            progress = _clip(norm)
    if not progress and todos:
        done = sum(1 for t in todos if t.done)
        progress = f"{done}/{len(todos)} planned steps done"
    progress = _clip(progress)

    unchecked: list[str] = []
    if status == COMPLETED and open_items:
        status = IN_PROGRESS
        unchecked = open_items
    if status == BLOCKED:
        reason = reason or marker_reason or progress or "goal reported as blocked"
        next_step = ""
    elif status == COMPLETED:
        next_step = ""
        reason = ""
    else:
        reason = ""
    return Evaluation(
        status=status,
        progress=progress,
        next_step=_clip(next_step, 500),
        reason=_clip(reason, 1000),
        explicit_progress=explicit_progress,
        todos=todos,
        unchecked_claim=unchecked,
        no_progress_phrase=_matches(_NO_PROGRESS_RULES, norm),
    )
