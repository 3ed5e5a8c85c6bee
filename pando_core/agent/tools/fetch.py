"""The `fetch` tool: download a web page (http/https) and return it as text, markdown or raw HTML."""

from __future__ import annotations

import asyncio
import contextlib
import re
from html.parser import HTMLParser
from typing import Any
from urllib.parse import urljoin, urlparse

from pando_core.agent.tools.base import (
    PermissionRequest,
    ToolContext,
    ToolError,
    ToolResult,
    wait_unless_cancelled,
)
from pando_core.agent.tools.write import str_arg

DEFAULT_TIMEOUT_S = 30
MAX_TIMEOUT_S = 120
MAX_BYTES = 5 * 1024 * 1024
FORMATS = ("text", "markdown", "html")
USER_AGENT = "Mozilla/5.0 (compatible; pando/0.1; +https://github.com/digiogithub/pando)"

FETCH_DESCRIPTION = """Fetch a URL (http or https) and return its content.

Usage notes:
- format: `markdown` (default; HTML converted to markdown with headings, links, lists and code blocks),
  `text` (HTML reduced to plain text) or `html` (the raw HTML). Non-HTML text (JSON, plain text, source
  files) is returned as is. Binary content (images, PDFs, archives) is refused.
- timeout is in seconds (default 30, max 120). Bodies larger than 5 MB are cut off.
- Redirects are followed; a non-2xx status is reported as an error.
- The user may be asked to approve each fetch. Use this instead of curl/wget (which are banned in bash).
- Large pages are returned in pages; follow the note at the end of the output to read more."""

BLOCK_TAGS = frozenset(
    {
        "address",
        "article",
        "aside",
        "blockquote",
        "body",
        "dd",
        "details",
        "div",
        "dl",
        "dt",
        "fieldset",
        "figcaption",
        "figure",
        "footer",
        "form",
        "h1",
        "h2",
        "h3",
        "h4",
        "h5",
        "h6",
        "header",
        "hr",
        "html",
        "li",
        "main",
        "nav",
        "ol",
        "p",
        "pre",
        "section",
        "summary",
        "table",
        "tbody",
        "thead",
        "tfoot",
        "tr",
        "ul",
    }
)
SKIP_TAGS = frozenset({"script", "style", "noscript", "template", "svg", "head", "iframe", "object"})
VOID_TAGS = frozenset({"br", "hr", "img", "input", "meta", "link", "area", "base", "col", "source", "wbr"})
# markdown marks written around inline elements (code only outside <pre>)
INLINE_MARKS = {"code": "`", "strong": "**", "b": "**", "em": "*", "i": "*"}


class HtmlConverter(HTMLParser):
    """A small HTML → text / markdown converter built on the standard library parser."""

    def __init__(self, markdown: bool, base_url: str = "") -> None:
        super().__init__(convert_charrefs=True)
        self.markdown = markdown
        self.base_url = base_url
        self.out: list[str] = []
        self.skip_depth = 0
        self.pre_depth = 0
        self.list_stack: list[list[Any]] = []  # [kind, counter]
        self.link_stack: list[str] = []  # href of each open <a>
        self.title = ""
        self._in_title = False
        self.quote_depth = 0
        self.cells = 0
        self.has_text = False

    # -- helpers
    def _emit(self, text: str) -> None:
        if text:
            self.out.append(text)
            if not self.has_text and text.strip():
                self.has_text = True

    def _trailing_newlines(self) -> int:
        count = 0
        for piece in reversed(self.out):
            stripped = piece.rstrip("\n")
            count += len(piece) - len(stripped)
            if stripped:
                break
        return count

    def _newlines(self, count: int) -> None:
        if not self.has_text:
            return
        trailing = self._trailing_newlines()
        if trailing < count:
            self._emit("\n" * (count - trailing))

    def _prefix(self) -> str:
        return "> " * self.quote_depth if self.markdown else ""

    def _inline_mark(self, tag: str) -> None:
        """The markdown mark opening or closing an inline element (nothing in text mode)."""
        if self.markdown and not (tag == "code" and self.pre_depth):
            self._emit(INLINE_MARKS[tag])

    # -- parser callbacks
    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        attributes = {key: value or "" for key, value in attrs}
        if tag == "title":
            self._in_title = True
        if tag in SKIP_TAGS:
            if tag not in VOID_TAGS:
                self.skip_depth += 1
            return
        if self.skip_depth:
            return
        md = self.markdown
        if tag in ("h1", "h2", "h3", "h4", "h5", "h6"):
            self._newlines(2)
            if md:
                self._emit(self._prefix() + "#" * int(tag[1]) + " ")
        elif tag == "p" or tag == "div" or tag in ("section", "article", "header", "footer", "main"):
            self._newlines(2 if tag == "p" else 1)
        elif tag == "br":
            self._emit("\n" + self._prefix())
        elif tag == "hr":
            self._newlines(2)
            self._emit("---" if md else "")
            self._newlines(2)
        elif tag in ("ul", "ol"):
            self._newlines(1)
            self.list_stack.append([tag, 0])
        elif tag == "li":
            self._newlines(1)
            indent = "  " * max(len(self.list_stack) - 1, 0)
            if self.list_stack and self.list_stack[-1][0] == "ol":
                self.list_stack[-1][1] += 1
                marker = f"{self.list_stack[-1][1]}. "
            else:
                marker = "- " if md else "• "
            self._emit(self._prefix() + indent + marker)
        elif tag == "pre":
            self._newlines(2)
            self.pre_depth += 1
            if md:
                self._emit("```\n")
        elif tag in INLINE_MARKS:
            self._inline_mark(tag)
        elif tag == "blockquote":
            self._newlines(2)
            self.quote_depth += 1
        elif tag == "a":
            href = attributes.get("href", "")
            if href and self.base_url:
                href = urljoin(self.base_url, href)
            self.link_stack.append(href)
            if md and href and not href.startswith(("javascript:", "#")):
                self._emit("[")
        elif tag == "img":
            alt = attributes.get("alt", "")
            src = attributes.get("src", "")
            if md and src:
                if self.base_url:
                    src = urljoin(self.base_url, src)
                self._emit(f"![{alt}]({src})")
            elif alt:
                self._emit(alt)
        elif tag == "tr":
            self._newlines(1)
            self.cells = 0
            if md:
                self._emit("|")
        elif tag in ("td", "th"):
            if not md and self.cells:
                self._emit("\t")
            self.cells += 1
            if md:
                self._emit(" ")
        elif tag in BLOCK_TAGS:
            self._newlines(1)

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.handle_starttag(tag, attrs)
        if tag not in VOID_TAGS:
            self.handle_endtag(tag)

    def handle_endtag(self, tag: str) -> None:
        if tag == "title":
            self._in_title = False
        if tag in SKIP_TAGS:
            if tag not in VOID_TAGS and self.skip_depth:
                self.skip_depth -= 1
            return
        if self.skip_depth:
            return
        md = self.markdown
        if tag in ("h1", "h2", "h3", "h4", "h5", "h6", "p"):
            self._newlines(2)
        elif tag in ("ul", "ol"):
            if self.list_stack:
                self.list_stack.pop()
            self._newlines(2 if not self.list_stack else 1)
        elif tag == "pre":
            if self.pre_depth:
                self.pre_depth -= 1
            if md:
                self._newlines(1)
                self._emit("```")
            self._newlines(2)
        elif tag in INLINE_MARKS:
            self._inline_mark(tag)
        elif tag == "blockquote":
            self.quote_depth = max(0, self.quote_depth - 1)
            self._newlines(2)
        elif tag == "a":
            if self.link_stack:
                href = self.link_stack.pop()
                if md and href and not href.startswith(("javascript:", "#")):
                    self._emit(f"]({href})")
        elif tag in ("td", "th"):
            if md:
                self._emit(" |")
        elif tag == "tr":
            self._newlines(1)
        elif tag in BLOCK_TAGS:
            self._newlines(1)

    def handle_data(self, data: str) -> None:
        if self._in_title:
            self.title += data
        if self.skip_depth:
            return
        if self.pre_depth:
            self._emit(data)
            return
        text = re.sub(r"\s+", " ", data)
        if not text.strip():
            if self.out and not self.out[-1].endswith((" ", "\n")):
                self._emit(" ")
            return
        if self.out and self.out[-1].endswith("\n"):
            text = self._prefix() + text.lstrip()
        self._emit(text)

    def result(self) -> str:
        text = "".join(self.out)
        lines = [line.rstrip() for line in text.split("\n")]
        cleaned = "\n".join(lines)
        cleaned = re.sub(r"\n{3,}", "\n\n", cleaned)
        return cleaned.strip()


def _converted(html: str, markdown: bool, base_url: str) -> HtmlConverter:
    converter = HtmlConverter(markdown=markdown, base_url=base_url)
    converter.feed(html)
    converter.close()
    return converter


def html_to_text(html: str, base_url: str = "") -> str:
    return _converted(html, False, base_url).result()


def html_to_markdown(html: str, base_url: str = "") -> str:
    converter = _converted(html, True, base_url)
    result = converter.result()
    title = converter.title.strip()
    if title and not result.startswith("#"):
        result = f"# {title}\n\n{result}" if result else f"# {title}"
    return result


def _seconds(value: Any, default: float) -> float:
    if isinstance(value, bool) or value is None or value == "":
        return default
    try:
        seconds = float(value)
    except (TypeError, ValueError) as exc:
        raise ToolError(f"timeout must be a number of seconds, got {value!r}") from exc
    return seconds if seconds > 0 else default


def _charset(content_type: str) -> str:
    match = re.search(r"charset=([\w.:-]+)", content_type, re.IGNORECASE)
    return match.group(1).strip("\"'") if match else ""


def _is_binary_type(content_type: str) -> bool:
    kind = content_type.split(";", 1)[0].strip().lower()
    if not kind:
        return False
    if kind.startswith(("text/", "message/")):
        return False
    if kind.endswith(("+json", "+xml")) or kind in {
        "application/json",
        "application/xml",
        "application/javascript",
        "application/x-javascript",
        "application/ecmascript",
        "application/xhtml+xml",
        "application/x-yaml",
        "application/yaml",
        "application/toml",
        "application/x-sh",
        "application/sql",
        "application/graphql",
        "application/ld+json",
    }:
        return False
    return kind.startswith(("image/", "audio/", "video/", "font/")) or kind.startswith("application/")


class FetchTool:
    name = "fetch"
    read_only = False
    description = FETCH_DESCRIPTION
    parameters: dict[str, Any] = {
        "type": "object",
        "properties": {
            "url": {"type": "string", "description": "The http(s) URL to fetch"},
            "format": {
                "type": "string",
                "enum": list(FORMATS),
                "description": "Output format: markdown (default), text or html",
            },
            "timeout": {"type": "number", "description": "Timeout in seconds (default 30, max 120)"},
        },
        "required": ["url"],
    }

    def __init__(self, max_bytes: int = MAX_BYTES) -> None:
        self.max_bytes = max_bytes

    def _request(self, args: dict[str, Any]) -> tuple[str, str, float]:
        url = str_arg(args, "url", required=True).strip()
        fmt = (str_arg(args, "format") or "markdown").strip().lower()
        if fmt not in FORMATS:
            raise ToolError(f"format must be one of {', '.join(FORMATS)}")
        timeout = _seconds(args.get("timeout"), DEFAULT_TIMEOUT_S)
        timeout = min(timeout, float(MAX_TIMEOUT_S))
        parsed = urlparse(url)
        if parsed.scheme not in ("http", "https") or not parsed.netloc:
            raise ToolError("URL must start with http:// or https:// and include a host")
        return url, fmt, timeout

    async def permission(self, args: dict[str, Any], ctx: ToolContext) -> PermissionRequest:
        """What the core asks before the fetch runs."""
        url, fmt, timeout = self._request(args)
        return PermissionRequest(
            tool_name=self.name,
            action="fetch",
            description=f"Fetch {url}",
            params={"url": url, "format": fmt, "timeout": timeout},
        )

    async def run(self, args: dict[str, Any], ctx: ToolContext) -> ToolResult:
        url, fmt, timeout = self._request(args)
        task = asyncio.ensure_future(self._download(url, timeout))
        try:
            cancelled = await wait_unless_cancelled(task, ctx)
        except asyncio.CancelledError:
            task.cancel()
            raise
        if cancelled:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
            raise ToolError("Fetch cancelled")
        status, final_url, content_type, body, truncated = task.result()

        if status < 200 or status >= 300:
            raise ToolError(f"Request failed with status code {status} ({final_url})")
        if _is_binary_type(content_type):
            raise ToolError(f"The response is binary ({content_type}); only text content is supported")
        charset = _charset(content_type) or "utf-8"
        try:
            text = body.decode(charset, "replace")
        except LookupError:
            text = body.decode("utf-8", "replace")
        kind = content_type.split(";", 1)[0].strip().lower()
        is_html = "html" in kind or (
            not kind and text.lstrip()[:200].lower().startswith(("<!doctype", "<html"))
        )
        if is_html and fmt == "text":
            text = html_to_text(text, final_url)
        elif is_html and fmt == "markdown":
            text = html_to_markdown(text, final_url)
        if truncated:
            text += f"\n\n[Content truncated: the response exceeded {self.max_bytes // (1024 * 1024)} MB]"
        if not text.strip():
            text = "(empty response)"
        return ToolResult(
            content=text,
            metadata={
                "url": final_url,
                "status": status,
                "content_type": content_type,
                "bytes": len(body),
                "truncated": truncated,
                "format": fmt,
            },
        )

    async def _download(self, url: str, timeout: float) -> tuple[int, str, str, bytes, bool]:
        import httpx

        chunks: list[bytes] = []
        size = 0
        truncated = False
        try:
            async with asyncio.timeout(timeout):
                async with httpx.AsyncClient(
                    follow_redirects=True,
                    timeout=httpx.Timeout(timeout),
                    headers={
                        "User-Agent": USER_AGENT,
                        "Accept": "text/html,text/markdown,text/plain,*/*;q=0.8",
                    },
                    max_redirects=10,
                ) as client:
                    async with client.stream("GET", url) as response:
                        status = response.status_code
                        content_type = response.headers.get("content-type", "")
                        final_url = str(response.url)
                        if 200 <= status < 300 and not _is_binary_type(content_type):
                            async for chunk in response.aiter_bytes():
                                room = self.max_bytes - size
                                if len(chunk) >= room:
                                    chunks.append(chunk[:room])
                                    size += room
                                    truncated = len(chunk) > room
                                    if truncated:
                                        break
                                    continue
                                chunks.append(chunk)
                                size += len(chunk)
        except (TimeoutError, httpx.TimeoutException) as exc:
            raise ToolError(f"Request timed out after {timeout:g} s: {url}") from exc
        except httpx.TooManyRedirects as exc:
            raise ToolError(f"Too many redirects while fetching {url}") from exc
        except httpx.HTTPError as exc:
            raise ToolError(f"Failed to fetch {url}: {exc}") from exc
        return status, final_url, content_type, b"".join(chunks), truncated
