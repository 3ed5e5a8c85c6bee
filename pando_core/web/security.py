"""Who may use the server, and which requests may change anything.

Order for each HTTP request:
  1. Host: a server without a token answers only requests addressed to a loopback name, so a web
     page whose domain is made to resolve to 127.0.0.1 (DNS rebinding) cannot read it;
  2. token (required when one is configured, and always when bound beyond loopback): a bearer
     ``Authorization`` header, or the login cookie set by ``POST /login``; without it the API
     answers 401 and a page answers the login form (status 401);
  3. CSRF, for every method but GET/HEAD/OPTIONS: a request with a valid bearer header is not a
     browser's forgery; a browser request (it carries ``Origin``, as browsers do on every POST)
     must come from this server's own origin *and* carry the per-browser token (``X-CSRF-Token``
     header or ``csrf_token`` form field) equal to its ``pando_csrf`` cookie, which another site can
     neither read nor set. A request with neither ``Origin`` nor ``Sec-Fetch-Site`` (curl,
     scripts) is not from a browser (browsers send ``Origin`` with every POST, PUT, PATCH and
     DELETE), so there is nothing to forge: it needs only step 2.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import json
import secrets
from http.cookies import SimpleCookie
from typing import Any
from urllib.parse import parse_qs, urlsplit

CSRF_COOKIE = "pando_csrf"
LOGIN_COOKIE = "pando_login"
CSRF_HEADER = b"x-csrf-token"
CSRF_FIELD = "csrf_token"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
OPEN_PATHS = ("/login", "/static/")  # reachable without the token
LOOPBACK_NAMES = frozenset({"localhost", "127.0.0.1", "::1"})
FORM_LIMIT = 1024 * 1024


def is_loopback(host: str) -> bool:
    if host in LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def login_cookie_value(token: str) -> str:
    """What the login cookie holds: derived from the token, so the token itself is never a cookie."""
    return hmac.new(token.encode(), b"pando-web-login", hashlib.sha256).hexdigest()


class Guard:
    """ASGI middleware applying the checks of the module docstring to every HTTP request."""

    def __init__(self, app: Any, *, token: str, login_page: Any) -> None:
        self.app = app
        self.token = token
        self.login_value = login_cookie_value(token) if token else ""
        self.login_page = login_page  # (csrf, error) -> HTML text

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = _headers(scope)
        cookies = _cookies(headers.get(b"cookie", b""))
        path = scope.get("path", "")
        method = scope.get("method", "GET")
        host = headers.get(b"host", b"").decode("latin-1")
        if not self.token and not is_loopback(_hostname(host)):
            await _send_text(send, 403, "this server answers only loopback addresses (set a token to serve others)")
            return
        csrf = cookies.get(CSRF_COOKIE) or ""
        new_csrf = "" if csrf else secrets.token_urlsafe(24)
        scope.setdefault("state", {})["csrf"] = csrf or new_csrf
        send = _with_cookie(send, new_csrf)
        bearer = self._bearer_ok(headers)
        authenticated = not self.token or bearer or hmac.compare_digest(cookies.get(LOGIN_COOKIE, ""), self.login_value)
        scope["state"]["authenticated"] = bool(authenticated)
        if not authenticated and not path.startswith(OPEN_PATHS):
            if path.startswith("/api/"):
                body = json.dumps({"error": "unauthorized: send Authorization: Bearer <token>"}).encode()
                await _send(send, 401, body, b"application/json", [(b"www-authenticate", b"Bearer")])
            else:
                page = self.login_page(scope["state"]["csrf"], "").encode()
                await _send(send, 401, page, b"text/html; charset=utf-8")
            return
        if method not in SAFE_METHODS and not bearer:
            refusal, receive = await self._csrf_refusal(scope, headers, cookies, host, receive, path)
            if refusal:
                await _send_text(send, 403, f"refused: {refusal}")
                return
        await self.app(scope, receive, send)

    def _bearer_ok(self, headers: dict[bytes, bytes]) -> bool:
        value = headers.get(b"authorization", b"").decode("latin-1")
        if not self.token or not value.lower().startswith("bearer "):
            return False
        return hmac.compare_digest(value[7:].strip().encode(), self.token.encode())

    async def _csrf_refusal(self, scope, headers, cookies, host, receive, path) -> tuple[str, Any]:  # noqa: ANN001
        origin = headers.get(b"origin", b"").decode("latin-1")
        fetch_site = headers.get(b"sec-fetch-site", b"").decode("latin-1")
        if not origin and fetch_site in ("", "none"):
            return "", receive  # not a browser: nothing to forge
        scheme = scope.get("scheme", "http")
        if origin and origin != f"{scheme}://{host}":
            return f"cross-site request from {origin}", receive
        if fetch_site == "cross-site":
            return "cross-site request", receive
        if path == "/login":
            return "", receive  # no session yet; the origin check above is what protects it
        expected = cookies.get(CSRF_COOKIE, "")
        sent = headers.get(CSRF_HEADER, b"").decode("latin-1")
        if not sent and headers.get(b"content-type", b"").startswith(b"application/x-www-form-urlencoded"):
            body, receive = await _buffer_body(receive)
            sent = (parse_qs(body.decode("utf-8", "replace")).get(CSRF_FIELD) or [""])[0]
        if not expected or not sent or not hmac.compare_digest(sent.encode(), expected.encode()):
            return "missing or wrong CSRF token (reload the page)", receive
        return "", receive


def _headers(scope: dict) -> dict[bytes, bytes]:
    return {k.lower(): v for k, v in scope.get("headers", [])}


def _cookies(raw: bytes) -> dict[str, str]:
    jar = SimpleCookie()
    try:
        jar.load(raw.decode("latin-1"))
    except Exception:  # noqa: BLE001 - a malformed cookie header counts as none
        return {}
    return {key: morsel.value for key, morsel in jar.items()}


def _hostname(host: str) -> str:
    return (urlsplit(f"//{host}").hostname or "").lower()


def _with_cookie(send: Any, csrf: str) -> Any:
    """*send* adding the new CSRF cookie to the response's headers (a browser's first request)."""
    if not csrf:
        return send
    cookie = f"{CSRF_COOKIE}={csrf}; Path=/; HttpOnly; SameSite=Strict".encode()

    async def sending(message: dict) -> None:
        if message["type"] == "http.response.start":
            message = dict(message, headers=[*message.get("headers", []), (b"set-cookie", cookie)])
        await send(message)

    return sending


async def _buffer_body(receive: Any) -> tuple[bytes, Any]:
    """Read the whole request body (up to FORM_LIMIT) and a *receive* that replays it."""
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] != "http.request":
            break
        chunks.append(message.get("body", b""))
        size += len(chunks[-1])
        if not message.get("more_body") or size > FORM_LIMIT:
            break
    body = b"".join(chunks)
    replayed = False

    async def replay() -> dict:
        nonlocal replayed
        if not replayed:
            replayed = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return body, replay


async def _send(send: Any, status: int, body: bytes, content_type: bytes, extra: list | None = None) -> None:
    headers = [(b"content-type", content_type), (b"content-length", str(len(body)).encode()), *(extra or [])]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


async def _send_text(send: Any, status: int, text: str) -> None:
    await _send(send, status, (text + "\n").encode(), b"text/plain; charset=utf-8")
