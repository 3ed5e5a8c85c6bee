"""Trigger matching, the active-skill budget, and the system-prompt text of skills."""

from __future__ import annotations

import re
from collections import OrderedDict
from collections.abc import Iterable, Iterator

from pando_core.errors import one_line

from .model import Skill

STOP_WORDS = frozenset({"the", "and", "for", "with", "from", "into", "this", "that", "your", "when", "use"})
DEFAULT_THRESHOLD = 0.8  # eviction starts when active bodies would exceed 80 % of the budget
MAX_LISTED_DESCRIPTION = 1024

_NON_ALNUM = re.compile(r"[^a-z0-9]+")


def normalise(text: str) -> str:
    """Lowercase, every character outside [a-z0-9] becomes a space, spaces collapsed."""
    return _NON_ALNUM.sub(" ", text.lower()).strip()


def significant_words(trigger: str) -> list[str]:
    """The words of a trigger that count for the word-set fallback: longer than 2 chars, not stop words."""
    return [word for word in normalise(trigger).split() if len(word) > 2 and word not in STOP_WORDS]


def trigger_matches(trigger: str, prompt: str) -> bool:
    """The spec's rule for one trigger: the normalised trigger is a substring of the normalised prompt;
    otherwise every significant word of the trigger occurs in the prompt as a substring (no word boundaries,
    so "sql" matches "postgresql")."""
    return _trigger_in(trigger, normalise(prompt))


def _trigger_in(trigger: str, norm_prompt: str) -> bool:
    norm_trigger = normalise(trigger)
    if not norm_trigger:
        return False
    if norm_trigger in norm_prompt:
        return True
    words = significant_words(norm_trigger)
    return bool(words) and all(word in norm_prompt for word in words)


def matching_trigger(skill: Skill, prompt: str) -> str | None:
    """The first `when-to-use` trigger of `skill` the prompt matches, or None. Skills with
    `disable-model-invocation` or without triggers never match."""
    return _first_trigger(skill, normalise(prompt))


def _first_trigger(skill: Skill, norm_prompt: str) -> str | None:
    if skill.disable_model_invocation:
        return None
    for trigger in skill.triggers:
        if _trigger_in(trigger, norm_prompt):
            return trigger
    return None


def _named_in(skill: Skill, norm_prompt: str) -> bool:
    """True when the prompt names the skill as whole words ("use the sql-tuning skill", "/sql-tuning")."""
    name = normalise(skill.name)
    if not name:
        return False
    return re.search(rf"(?<![a-z0-9]){re.escape(name)}(?![a-z0-9])", norm_prompt) is not None


def match_skills(prompt: str, skills: Iterable[Skill], *, match_names: bool = False) -> list[Skill]:
    """The skills whose `when-to-use` triggers match `prompt`, in the given order.

    With `match_names`, a skill the user names explicitly also matches, even with
    `disable-model-invocation` (naming it is a user invocation) unless `user-invocable: false`.
    Off by default: the Go original only uses the triggers.
    """
    norm_prompt = normalise(prompt)  # once per turn, not once per trigger
    return [
        skill
        for skill in skills
        if _first_trigger(skill, norm_prompt) is not None
        or (match_names and skill.user_invocable and _named_in(skill, norm_prompt))
    ]


class ActiveSkills:
    """The skills whose full bodies are in the system prompt, kept within a token budget.

    Tokens are estimated as ceil(chars/4) of the body. Before a skill is activated, least recently used
    skills are evicted until `used + needed <= threshold * budget` and fewer than `max_active` remain.
    Protected skills (the one being activated, and the others matched in the same turn) are never
    evicted; when the new skill cannot fit without evicting one of them it is not activated.
    """

    def __init__(
        self, budget_tokens: int, max_active: int = 20, threshold: float = DEFAULT_THRESHOLD
    ) -> None:
        if budget_tokens <= 0:
            raise ValueError("budget_tokens must be positive")
        if max_active <= 0:
            raise ValueError("max_active must be positive")
        if not 0 < threshold <= 1:
            raise ValueError("threshold must be in (0, 1]")
        self.budget_tokens = budget_tokens
        self.max_active = max_active
        self.threshold = threshold
        self._active: OrderedDict[str, Skill] = OrderedDict()  # least recently used first

    @property
    def limit_tokens(self) -> float:
        return self.budget_tokens * self.threshold

    @property
    def used_tokens(self) -> int:
        return sum(skill.tokens for skill in self._active.values())

    @property
    def names(self) -> list[str]:
        return list(self._active)

    def __contains__(self, name: object) -> bool:
        return name in self._active

    def __len__(self) -> int:
        return len(self._active)

    def __iter__(self) -> Iterator[Skill]:
        return iter(list(self._active.values()))

    def activate(self, skill: Skill, protect: Iterable[str] = ()) -> bool:
        """Make `skill` active (most recently used). Returns False when it cannot fit the budget
        (or has an empty body); nothing is evicted in that case."""
        needed = skill.tokens
        if needed == 0:
            return False
        protected = set(protect) - {skill.name}
        others = [s for s in self._active.values() if s.name != skill.name]
        pinned = [s for s in others if s.name in protected]
        if sum(s.tokens for s in pinned) + needed > self.limit_tokens or len(pinned) + 1 > self.max_active:
            return False
        self._active.pop(skill.name, None)
        used = sum(s.tokens for s in others)
        for candidate in others:  # least recently used first
            if used + needed <= self.limit_tokens and len(self._active) + 1 <= self.max_active:
                break
            if candidate.name in protected:
                continue
            del self._active[candidate.name]
            used -= candidate.tokens
        self._active[skill.name] = skill
        return True

    def update(self, matched: Iterable[Skill]) -> list[Skill]:
        """Activate the skills matched by this turn's prompt (each protects the ones before it).
        Returns the skills that became active and were not active before."""
        added: list[Skill] = []
        this_turn: list[str] = []
        for skill in matched:
            was_active = skill.name in self._active
            if self.activate(skill, protect=this_turn):
                this_turn.append(skill.name)
                if not was_active:
                    added.append(skill)
        return added

    def deactivate(self, name: str) -> bool:
        return self._active.pop(name, None) is not None

    def refresh(self, skills: Iterable[Skill]) -> None:
        """After rediscovery: swap in the new Skill objects by name, drop skills that no longer exist."""
        current = {skill.name: skill for skill in skills}
        for name in list(self._active):
            if name in current:
                self._active[name] = current[name]
            else:
                del self._active[name]


def prompt_section(skills: Iterable[Skill], *, tools: bool = False) -> str:
    """The "Available Skills" system-prompt section: one line per skill (every skill, including those
    with disable-model-invocation) and how to use them. Empty string when there are no skills."""
    lines = []
    for skill in skills:
        description = one_line(skill.description, MAX_LISTED_DESCRIPTION) or "(no description)"
        line = f"- **{skill.name}**: {description}"
        if skill.triggers:
            line += f" (use when: {', '.join(skill.triggers)})"
        lines.append(line)
    if not lines:
        return ""
    advice = (
        'When the user names one of these skills, or the task matches a skill\'s "use when" triggers, '
        "read and follow that skill's instructions."
    )
    if tools:
        advice += (
            " Use the skill_read tool to load a skill's full instructions and list its files, and "
            "skill_resource to read one of those files."
        )
    return "## Available Skills\n\n" + "\n".join(lines) + "\n\n" + advice


def active_section(active: ActiveSkills | Iterable[Skill]) -> str:
    """One `Active Skill: <name>` block per active skill with its full instructions ("" when none)."""
    blocks = []
    for skill in active:
        blocks.append(
            f"## Active Skill: {skill.name}\n\n"
            f"(Skill directory: {skill.root} — relative paths in these instructions are relative to it.)\n\n"
            f"{skill.body.strip()}"
        )
    return "\n\n".join(blocks)
