"""Short session titles generated from the first prompt."""

from __future__ import annotations

from typing import Any

from .models import ResolvedModel, resolve_model
from .providers.base import ChatRequest

TITLE_INSTRUCTIONS = (
    "Write a title for a coding session that starts with the user's message below. "
    "One line, at most 50 characters, summarising the request; no quotes, no colons, no trailing period. "
    "Reply with the title only."
)


async def generate_title(app: Any, session_id: str, prompt: str, resolved: ResolvedModel) -> str:
    title_ref = app.config.section("agent").get("title_model")
    model = resolve_model(app.config, title_ref) if title_ref else resolved
    provider = app.provider_for(model)
    request = ChatRequest(
        model=model.model_id,
        system=TITLE_INSTRUCTIONS,
        messages=[{"role": "user", "parts": [{"type": "text", "data": {"text": prompt[:4000]}}]}],
        tools=[],
        max_tokens=80,
    )
    text = ""
    async for event in provider.stream(request):
        if event.kind == "text_delta":
            text += event.text
    title = " ".join(text.split()).strip().strip("\"'")[:80]
    if title:
        app.sessions.rename(session_id, title)
    return title
