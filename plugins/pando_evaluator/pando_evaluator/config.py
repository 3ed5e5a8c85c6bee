"""The ``[evaluator]`` section and its typed view.

This module imports only ``pando_core.config``: ``plugin.py`` declares the section from here on
every ``pando`` start.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pando_core.config import ConfigSection, Field

# Case-insensitive regular expressions; a user message matching any of them is one correction.
# English and Spanish, as the original's list.
DEFAULT_CORRECTION_PATTERNS = [
    r"\bwrong\b",
    r"\bincorrect\b",
    r"\bthat'?s not\b",
    r"\bthat is not\b",
    r"\bnot what i\b",
    r"\bmistake\b",
    r"\bfix that\b",
    r"\bdon'?t do that\b",
    r"\bstop doing\b",
    r"\byou missed\b",
    r"\byou forgot\b",
    r"\bdo it directly\b",
    r"\bno script\b",
    r"\bi said\b",
    r"\bi told you\b",
    r"\bnot like that\b",
    r"\bundo (that|this|it)\b",
    r"\brevert (that|this|it)\b",
    r"\bthat broke\b",
    r"\bstill (fails|failing|broken)\b",
    r"\barr[ée]glalo\b",
    r"\bno era eso\b",
    r"\bas[ií] no\b",
    r"\best[áa] mal\b",
    r"\bincorrecto\b",
    r"\bte equivocaste\b",
    r"\bno es eso\b",
    r"\beso no\b",
    r"\bno funciona\b",
    r"\bte dije\b",
]

SECTION = ConfigSection(
    "evaluator",
    {
        "enabled": Field("bool", True, "score sessions when they end and use what was learned"),
        "judge": Field("bool", True, "ask an LLM judge for a rule after each well-scored session"),
        "model": Field("str", "", "judge model as provider/model (empty: no judge)"),
        "judge_prompt": Field("str", "", "judge instructions: a file path, or the text itself (empty: built in)"),
        "judge_timeout": Field("float", 120.0, "seconds one judge answer may take"),
        "idle_minutes": Field(
            "int", 0, "also queue sessions idle this long (0: leave it to the core's [agent] idle_minutes)"
        ),
        "settle_seconds": Field(
            "float", 2.0, "start an evaluation this long after the session ended (and the primary started)"
        ),
        "alpha": Field("float", 0.8, "weight of the success score (user corrections) in the reward"),
        "beta": Field("float", 0.2, "weight of the token-efficiency score in the reward"),
        "baseline_sessions": Field("int", 50, "token baseline: mean tokens of the last N scored sessions"),
        "correction_patterns": Field("list", list(DEFAULT_CORRECTION_PATTERNS), "regexes that mark a user correction"),
        "min_sessions": Field("int", 5, "scored sessions needed before prompt variants are chosen by UCB1"),
        "ucb_c": Field("float", 1.41, "UCB1 exploration constant"),
        "max_rules": Field("int", 100, "most learned rules active at once (the weakest is retired)"),
        "min_confidence": Field("float", 0.7, "judge confidence needed to keep a rule"),
        "rules_in_prompt": Field("int", 10, "most learned rules listed in the system prompt"),
    },
    "score sessions, choose prompt variants (UCB1), learn rules",
)


@dataclass(frozen=True)
class EvaluatorConfig:
    enabled: bool = True
    judge: bool = True
    model: str = ""
    judge_prompt: str = ""
    judge_timeout: float = 120.0
    idle_minutes: int = 0
    settle_seconds: float = 2.0
    alpha: float = 0.8
    beta: float = 0.2
    baseline_sessions: int = 50
    correction_patterns: tuple[str, ...] = tuple(DEFAULT_CORRECTION_PATTERNS)
    min_sessions: int = 5
    ucb_c: float = 1.41
    max_rules: int = 100
    min_confidence: float = 0.7
    rules_in_prompt: int = 10

    @classmethod
    def from_section(cls, section: dict[str, Any]) -> EvaluatorConfig:
        values = SECTION.defaults()
        values.update({k: v for k, v in section.items() if k in SECTION.fields})
        values["correction_patterns"] = tuple(values["correction_patterns"] or ())
        return cls(**values)

    @classmethod
    def of(cls, app: Any) -> EvaluatorConfig:
        return cls.from_section(app.config.section("evaluator"))

    def judge_instructions(self, workdir: Path) -> str | None:
        """The configured judge prompt: a file's text when the value names a file, else the value."""
        value = self.judge_prompt.strip()
        if not value:
            return None
        path = Path(value).expanduser()
        if not path.is_absolute():
            path = workdir / path
        try:
            if path.is_file():
                return path.read_text(encoding="utf-8")
        except OSError:
            pass
        return value
