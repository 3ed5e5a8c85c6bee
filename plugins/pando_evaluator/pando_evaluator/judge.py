"""The LLM judge: a trimmed transcript in, a verdict (and maybe one short rule) out.

The transcript keeps user and assistant text, marks each tool call as ``[tool_call: NAME]`` and
cuts each tool result to 500 characters; the whole is capped (oldest turns dropped first). The
answer is parsed leniently: the outermost ``{...}`` of the reply, wherever the prose puts it. An
answer that is not JSON is no verdict: the score is kept, no rule is learned.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

TOOL_RESULT_CHARS = 500
TRANSCRIPT_CHARS = 24_000
TASK_TYPES = ("code", "refactor", "debug", "explain", "general")

DEFAULT_INSTRUCTIONS = """You review a finished session between a user and Pando, an AI coding assistant.
Judge how well the assistant served the user, and extract at most one short, general rule that would
make the assistant better in future sessions of the same kind (for example "Run the test suite after
editing code"). Do not restate the task; a rule must be reusable.

Answer with one JSON object and nothing else:
{"reasoning": "...", "key_points": ["..."], "new_skill": "the rule, or empty", "task_type": "code|refactor|debug|explain|general", "confidence": 0.0}
confidence is how sure you are (0 to 1) that the rule helps."""


@dataclass(frozen=True)
class Verdict:
    reasoning: str = ""
    key_points: list[str] = field(default_factory=list)
    rule: str = ""
    task_type: str = "general"
    confidence: float = 0.0


def _parts(message: dict) -> list[dict]:
    parts = message.get("parts") or []
    if isinstance(parts, str):
        try:
            parts = json.loads(parts)
        except ValueError:
            return []
    return [p for p in parts if isinstance(p, dict)]


def message_lines(message: dict) -> list[str]:
    role = message.get("role")
    lines = []
    for part in _parts(message):
        kind, data = part.get("type"), part.get("data") or {}
        if kind == "text" and role in ("user", "assistant") and data.get("text"):
            lines.append(f"{role.upper()}: {data['text']}")
        elif kind == "tool_call":
            lines.append(f"[tool_call: {data.get('name', '?')}]")
        elif kind == "tool_result":
            content = data.get("content")
            text = content if isinstance(content, str) else json.dumps(content)
            if len(text) > TOOL_RESULT_CHARS:
                text = text[:TOOL_RESULT_CHARS] + "…"
            lines.append(f"[tool_result: {data.get('name', '?')}] {text}")
    return lines


def user_texts(messages: list[dict]) -> list[str]:
    texts = []
    for message in messages:
        if message.get("role") != "user":
            continue
        text = " ".join(
            (p.get("data") or {}).get("text", "") for p in _parts(message) if p.get("type") == "text"
        ).strip()
        if text:
            texts.append(text)
    return texts


def transcript(messages: list[dict], limit: int = TRANSCRIPT_CHARS) -> str:
    """The session as text for the judge; when too long the oldest lines go (the first user line stays)."""
    lines = [line for message in messages for line in message_lines(message)]
    text = "\n".join(lines)
    if len(text) <= limit or not lines:
        return text
    first, rest = lines[0][: limit // 4], lines[1:]
    kept: list[str] = []
    budget = limit - len(first) - 40
    for line in reversed(rest):
        if len(line) + 1 > budget:
            break
        kept.append(line)
        budget -= len(line) + 1
    dropped = len(rest) - len(kept)
    return "\n".join([first, f"[… {dropped} earlier lines left out …]", *reversed(kept)])


def judge_messages(transcript_text: str) -> list[dict[str, Any]]:
    prompt = "Session transcript:\n\n" + transcript_text + "\n\nAnswer with the JSON object only."
    return [{"role": "user", "parts": [{"type": "text", "data": {"text": prompt}}]}]


def outermost_object(text: str) -> str | None:
    start, end = text.find("{"), text.rfind("}")
    if start < 0 or end <= start:
        return None
    return text[start : end + 1]


def parse_verdict(text: str) -> Verdict | None:
    """The verdict in a judge's answer, or None when the answer holds no JSON object."""
    candidate = outermost_object(text or "")
    if candidate is None:
        return None
    try:
        data = json.loads(candidate)
    except ValueError:
        return None
    if not isinstance(data, dict):
        return None
    try:
        confidence = float(data.get("confidence") or 0.0)
    except (TypeError, ValueError):
        confidence = 0.0
    task_type = str(data.get("task_type") or "general").strip().lower()
    points = data.get("key_points") or []
    rule = data.get("new_skill", data.get("rule")) or ""
    return Verdict(
        reasoning=str(data.get("reasoning") or ""),
        key_points=[str(p) for p in points] if isinstance(points, list) else [str(points)],
        rule=str(rule).strip(),
        task_type=task_type if task_type in TASK_TYPES else "general",
        confidence=min(1.0, max(0.0, confidence)),
    )


class JudgeError(Exception):
    """The judge could not be asked or did not answer (one line, for the log and the stats)."""


async def ask_judge(
    app: Any,
    transcript_text: str,
    *,
    model_ref: str = "",
    instructions: str | None = None,
    timeout: float = 120.0,
) -> tuple[str, str]:
    """Ask the judge model; returns ``(model ref, answer text)``. Raises JudgeError."""
    import asyncio

    from pando_core.agent.models import create_provider_for, resolve_model
    from pando_core.agent.providers.base import ChatRequest

    try:
        resolved = resolve_model(app.config, model_ref or None)
        provider = create_provider_for(resolved, app.plugins)  # our own: the service has its own loop
    except Exception as exc:  # noqa: BLE001 - configuration errors become one line
        raise JudgeError(f"no judge model: {exc}") from exc
    request = ChatRequest(
        model=resolved.model_id,
        system=instructions or DEFAULT_INSTRUCTIONS,
        messages=judge_messages(transcript_text),
        max_tokens=1024,
        temperature=0.0,
    )

    async def collect() -> str:
        chunks = []
        async for event in provider.stream(request):
            if event.kind == "text_delta":
                chunks.append(event.text)
        return "".join(chunks)

    try:
        return resolved.ref, await asyncio.wait_for(collect(), timeout)
    except TimeoutError as exc:
        raise JudgeError(f"judge {resolved.ref} did not answer within {timeout:g} s") from exc
    except Exception as exc:  # noqa: BLE001 - provider errors (down, 500, auth) become one line
        raise JudgeError(f"judge {resolved.ref} failed: {exc}") from exc
    finally:
        try:
            await provider.aclose()
        except Exception:  # noqa: BLE001
            pass
