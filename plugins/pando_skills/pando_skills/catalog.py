"""Client of the skills.sh catalog API.

Endpoints used (relative to the base URL, default https://skills.sh):

- ``GET /api/search?q=QUERY&limit=N`` → ``{"query", "searchType", "count", "duration_ms",
  "skills": [{"id", "skillId", "name", "installs", "source", "description"?, "path"?}]}``.
  ``source`` is a GitHub ``owner/repo`` (the public catalog) or any git URL; ``path``, when present, is the
  skill's directory inside that repository.
- ``GET /api/skills/{id}`` → one skill object (bare or as ``{"skill": {...}}``); when the catalog answers
  404 the client falls back to a search and an exact id / skillId / name match.
- ``GET /api/skills/{id}/content`` → the SKILL.md text (plain text, or JSON ``{"content": ...}``).
"""

from __future__ import annotations

import json
import re
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

if TYPE_CHECKING:  # httpx is imported when the catalog is used, not at start-up
    import httpx

from . import __version__
from .errors import CatalogError
from .plugin import SECTION

DEFAULT_CATALOG_URL: str = SECTION.fields["catalog_url"].default
DEFAULT_TIMEOUT: float = SECTION.fields["catalog_timeout"].default
_GITHUB_SHORTHAND = re.compile(r"^[A-Za-z0-9_.-]+/[A-Za-z0-9_.-]+$")


@dataclass
class CatalogSkill:
    id: str
    name: str
    skill_id: str = ""
    description: str = ""
    source: str = ""  # "owner/repo" (GitHub) or a git URL / path
    path: str = ""  # directory of the skill inside the source repository, when known
    installs: int = 0

    @property
    def git_url(self) -> str:
        """The URL to clone: GitHub for an ``owner/repo`` source, the source itself otherwise."""
        source = self.source.strip()
        if _GITHUB_SHORTHAND.match(source) and not source.startswith("."):
            return f"https://github.com/{source.removesuffix('.git')}.git"
        return source

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["installs_text"] = format_installs(self.installs)
        return data


def format_installs(count: int) -> str:
    """`<1000 → "N installs"`, then K / M with one decimal, a trailing ".0" dropped (999999 → "1000K installs")."""
    if count < 1000:
        return f"{count} installs"
    value, unit = (count / 1000, "K") if count < 1_000_000 else (count / 1_000_000, "M")
    text = f"{value:.1f}"
    if text.endswith(".0"):
        text = text[:-2]
    return f"{text}{unit} installs"


def _text(value: Any) -> str:
    return "" if value is None else str(value).strip()


def _installs(value: Any) -> int:
    if isinstance(value, bool):
        return 0
    if isinstance(value, int):
        return max(value, 0)
    if isinstance(value, float):
        return max(int(value), 0)
    if isinstance(value, str) and value.strip().isdigit():
        return int(value.strip())
    return 0


def skill_from_json(item: dict[str, Any]) -> CatalogSkill | None:
    """A CatalogSkill from one JSON object of the API, or None when it has no usable id or name."""
    skill_id = _text(item.get("skillId") or item.get("skill_id"))
    name = _text(item.get("name")) or skill_id
    source = _text(item.get("source") or item.get("repo") or item.get("url"))
    ident = _text(item.get("id")) or (f"{source}/{skill_id or name}" if source else skill_id or name)
    if not ident or not name:
        return None
    return CatalogSkill(
        id=ident,
        name=name,
        skill_id=skill_id or name,
        description=_text(item.get("description")),
        source=source,
        path=_text(item.get("path") or item.get("subdir")),
        installs=_installs(item.get("installs")),
    )


class CatalogClient:
    """Synchronous client; every failure is a one-line CatalogError."""

    def __init__(
        self,
        base_url: str = DEFAULT_CATALOG_URL,
        timeout: float = DEFAULT_TIMEOUT,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        base_url = (base_url or "").strip()
        if not base_url.startswith(("http://", "https://")):
            raise CatalogError(f"catalog URL must start with http:// or https://, got {base_url!r}")
        self.base_url = base_url.rstrip("/")
        self.timeout = timeout
        self._transport = transport

    def _get(self, path: str, params: dict[str, Any] | None = None) -> httpx.Response:
        import httpx

        url = f"{self.base_url}{path}"
        try:
            with httpx.Client(
                timeout=httpx.Timeout(self.timeout),
                transport=self._transport,
                follow_redirects=True,
                headers={"User-Agent": f"pando-skills/{__version__}", "Accept": "application/json"},
            ) as client:
                return client.get(url, params=params)
        except httpx.TimeoutException:
            raise CatalogError(f"skills catalog {self.base_url} timed out after {self.timeout:g}s") from None
        except httpx.HTTPError as exc:
            reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            raise CatalogError(f"skills catalog {self.base_url} is unreachable: {reason}") from None

    def _check(self, response: httpx.Response, path: str) -> None:
        if response.status_code != 200:
            snippet = " ".join(response.text.split())[:120]
            detail = f": {snippet}" if snippet else ""
            raise CatalogError(f"skills catalog returned HTTP {response.status_code} for {path}{detail}")

    def _json(self, response: httpx.Response, path: str) -> Any:
        self._check(response, path)
        try:
            return response.json()
        except (json.JSONDecodeError, UnicodeDecodeError, ValueError) as exc:
            raise CatalogError(f"skills catalog returned invalid JSON for {path}: {exc}") from None

    def search(self, query: str, limit: int = 10) -> list[CatalogSkill]:
        """Skills matching `query` (catalog order, at most `limit`)."""
        if limit <= 0:
            limit = 10
        data = self._json(self._get("/api/search", {"q": query, "limit": limit}), "/api/search")
        items = data.get("skills") if isinstance(data, dict) else data
        if not isinstance(items, list):
            raise CatalogError("skills catalog answer for /api/search has no 'skills' list")
        skills = [s for s in (skill_from_json(item) for item in items if isinstance(item, dict)) if s]
        return skills[:limit]

    def get(self, skill_id: str) -> CatalogSkill:
        """One skill by catalog id (falls back to a search when the catalog has no per-skill endpoint)."""
        skill_id = skill_id.strip()
        if not skill_id:
            raise CatalogError("catalog skill id is empty")
        path = f"/api/skills/{quote(skill_id, safe='/')}"
        response = self._get(path)
        if response.status_code == 404:
            return self._find_by_search(skill_id)
        data = self._json(response, path)
        if isinstance(data, dict) and isinstance(data.get("skill"), dict):
            data = data["skill"]
        skill = skill_from_json(data) if isinstance(data, dict) else None
        if skill is None:
            raise CatalogError(f"skills catalog answer for {path} is not a skill object")
        return skill

    def _find_by_search(self, ref: str) -> CatalogSkill:
        query = ref.rsplit("/", 1)[-1].rsplit("@", 1)[-1]
        candidates = self.search(query, limit=50)
        for attr in ("id", "skill_id", "name"):
            hits = [s for s in candidates if getattr(s, attr) == ref]
            if len(hits) == 1:
                return hits[0]
            if len(hits) > 1:
                ids = ", ".join(s.id for s in hits[:5])
                raise CatalogError(f"catalog id {ref!r} is ambiguous: {ids}")
        raise CatalogError(f"skill {ref!r} not found in the skills catalog")

    def get_content(self, skill_id: str) -> str:
        """The SKILL.md text of a catalog skill."""
        path = f"/api/skills/{quote(skill_id.strip(), safe='/')}/content"
        response = self._get(path)
        self._check(response, path)
        if "json" in response.headers.get("content-type", ""):
            data = self._json(response, path)
            if isinstance(data, dict) and isinstance(data.get("content"), str):
                return data["content"]
            raise CatalogError(f"skills catalog answer for {path} has no 'content' text")
        return response.text
