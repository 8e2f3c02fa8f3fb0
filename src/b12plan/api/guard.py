"""The HTTP rules every request meets before any route, sign-in check or parser sees it.

One ASGI middleware, so each rule exists once for the REST API, the web UI, FHIR and CDS Hooks:

1. **Cross-site requests** (the CSRF rule, ADR 0041). A state-changing request that a session
   cookie authenticates, and every cookie sign-in (``POST /login``, ``/api/v1/auth/session``:
   login CSRF), must come from this site: ``Sec-Fetch-Site`` (when sent) is ``same-origin`` and
   ``Origin`` (when sent) is this site's scheme-less host; ``Origin: null``, a request with
   neither header, and an ``X-Forwarded-Host`` (or ``Host``) outside the configured allow-list
   are refused (403). A request with ``Authorization: Bearer`` is not a browser's ambient
   credential and is left alone. JSON routes refuse other content types (415), so no HTML form
   can reach them.
2. **Size** (ADR 0042): a body over the limit is refused with 413 before it is read
   (``Content-Length``) or as soon as it passes the limit (chunked); ``POST /fhir`` imports and
   CDS Hooks calls (whose prefetch carries whole Bundles) have their own, larger limit.
3. **JSON shape**: a JSON body nested deeper than ``max_json_depth`` or with a key twice in one
   object is refused (422, naming the key); the parse runs in a thread for large bodies.
4. **Tarpit**: a 429 (sign-in throttled) is answered only after ``throttle_delay_seconds``
   (an async sleep: no thread, no lock), so a client that ignores ``Retry-After`` can try at
   most about once a second per connection instead of hundreds of times.
5. **Headers** on every response: the Content-Security-Policy (no inline script, nothing from
   another origin), ``nosniff``, no framing, and HSTS when the request came over TLS.

Refusals are problem+json, or an OperationOutcome on ``/fhir`` and ``/cds-services``.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, MutableMapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import anyio
import anyio.to_thread

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
App = Callable[[Scope, Receive, Send], Awaitable[None]]

# plotly.js (3.x) styles its charts by creating an EMPTY <style> element and filling its sheet
# through the CSSOM (which CSP does not govern); the empty element needs its hash (an empty
# stylesheet can style nothing). It also injects MapLibre's fixed stylesheet at load; that exact
# text is allowed by its hash. No 'unsafe-inline', no 'unsafe-eval': the browser test fails on
# any violation, so a plotly upgrade that changes either text is caught (ADR 0043).
PLOTLY_STYLE_HASHES = (
    "'sha256-47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU='",  # "" (the empty <style>)
    "'sha256-ji27qzEtxXZW+7dun6UwjHXJ18e6WAin1VvNtkzIE/o='",  # MapLibre's CSS in plotly.min.js
)
CSP = (
    "default-src 'self'; script-src 'self'; "
    f"style-src 'self' {' '.join(PLOTLY_STYLE_HASHES)}; img-src 'self' data: blob:; "
    "font-src 'self'; connect-src 'self'; object-src 'none'; base-uri 'self'; "
    "form-action 'self'; frame-ancestors 'none'"
)
HSTS = "max-age=31536000; includeSubDomains"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "TRACE"})
COOKIE_SIGN_IN = frozenset({"/login", "/api/v1/auth/session"})
FORM_ROUTES = frozenset({"/api/v1/auth/token", "/api/v1/auth/session", "/api/v1/auth/logout"})
THREAD_PARSE_BYTES = 256 * 1024


@dataclass(frozen=True)
class GuardSettings:
    session_cookies: tuple[str, ...]
    max_body_bytes: int = 1_000_000
    max_import_bytes: int = 20_000_000
    max_json_depth: int = 40
    allowed_hosts: tuple[str, ...] = ()
    csp: str = CSP
    docs_csp: str | None = None  # for /docs and /redoc only (dev mode: Swagger UI's CDN)
    throttle_delay_seconds: float = 1.0


class Refused(Exception):
    def __init__(self, status: int, slug: str, title: str, detail: str, loc: str = "") -> None:
        super().__init__(detail)
        self.status = status
        self.slug = slug
        self.title = title
        self.detail = detail
        self.loc = loc


class DuplicateKey(ValueError):
    def __init__(self, key: str) -> None:
        super().__init__(key)
        self.key = key


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result: dict[str, Any] = {}
    for key, value in pairs:
        if key in result:
            raise DuplicateKey(key)
        result[key] = value
    return result


def check_json(body: bytes, max_depth: int) -> None:
    """Refuse duplicate keys and deep nesting; malformed JSON is left to the route to report."""
    try:
        document = json.loads(body, object_pairs_hook=_no_duplicates)
    except DuplicateKey as exc:
        key = exc.key[:80]
        raise Refused(
            422,
            "duplicate-key",
            "Duplicate key",
            f"the key {key!r} appears twice in one object",
            key,
        ) from None
    except RecursionError:
        document = None
        depth = max_depth + 1
    except ValueError:  # not JSON (or not UTF-8): the route says so in its own words
        return
    else:
        depth = _depth(document)
    if depth > max_depth:
        raise Refused(
            422,
            "too-deeply-nested",
            "JSON nested too deeply",
            f"the JSON body is nested more than {max_depth} levels deep",
        )


def _depth(document: Any) -> int:
    deepest = 0
    stack = [(document, 1)]
    while stack:
        node, level = stack.pop()
        if isinstance(node, dict):
            deepest = max(deepest, level)
            stack.extend((v, level + 1) for v in node.values())
        elif isinstance(node, list):
            deepest = max(deepest, level)
            stack.extend((v, level + 1) for v in node)
    return deepest


def is_json_type(content_type: str) -> bool:
    media = content_type.split(";", 1)[0].strip().lower()
    return media == "application/json" or (
        media.startswith("application/") and media.endswith("+json")
    )


def is_json_route(path: str) -> bool:
    if path in FORM_ROUTES:
        return False
    return path.startswith(("/api/v1/", "/cds-services")) or path == "/fhir"


def _outcome_route(path: str) -> bool:
    return path == "/fhir" or path.startswith(("/fhir/", "/cds-services"))


def _netloc(scheme: str, host: str) -> str:
    host = host.strip().lower()
    for default in ((":80", "http"), (":443", "https")):
        if host.endswith(default[0]) and scheme in ("", default[1]):
            return host[: -len(default[0])]
    return host


class SecurityGuard:
    """The ASGI middleware described in the module docstring."""

    def __init__(self, app: App, settings: GuardSettings) -> None:
        self.app = app
        self.settings = settings

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        send = self._with_headers(scope, send)
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        try:
            self.check_site(scope, headers)
            body = await self.read_body(scope, headers, receive)
        except Refused as refused:
            await self.refuse(scope, send, refused)
            return
        if body is None:
            await self.app(scope, receive, send)
            return
        delivered = False

        async def replay() -> Message:
            nonlocal delivered
            if not delivered:
                delivered = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        await self.app(scope, replay, send)

    # --- the rules ------------------------------------------------------------------------------

    def check_site(self, scope: Scope, headers: dict[str, str]) -> None:
        """The CSRF rule (see the module docstring)."""
        allowed = self.settings.allowed_hosts
        forwarded = headers.get("x-forwarded-host")
        host = headers.get("host", "")
        if forwarded is not None:
            if forwarded.strip().lower() not in allowed:
                raise Refused(
                    403,
                    "forbidden-host",
                    "Host not allowed",
                    "X-Forwarded-Host names a host that is not in B12PLAN_ALLOWED_HOSTS",
                )
            host = forwarded
        elif allowed and host.strip().lower() not in allowed:
            raise Refused(
                403, "forbidden-host", "Host not allowed", "the Host is not an allowed host"
            )
        if scope["method"] in SAFE_METHODS:
            return
        if headers.get("authorization", "").lower().startswith("bearer "):
            return
        path = scope["path"]
        if not (path in COOKIE_SIGN_IN or self._has_session_cookie(headers)):
            return
        site = headers.get("sec-fetch-site")
        origin = headers.get("origin")
        if site is None and origin is None:
            raise _cross_site("the request has neither Origin nor Sec-Fetch-Site")
        if site is not None and site != "same-origin":
            raise _cross_site(f"Sec-Fetch-Site is {site!r}")
        if origin is not None:
            parts = urlsplit(origin)
            if origin == "null" or parts.scheme not in ("http", "https"):
                raise _cross_site(f"Origin {origin[:100]!r} is not this site")
            if _netloc(parts.scheme, parts.netloc) != _netloc(parts.scheme, host):
                raise _cross_site(f"Origin {origin[:100]!r} is not this site")

    def _has_session_cookie(self, headers: dict[str, str]) -> bool:
        cookie = headers.get("cookie", "")
        names = {part.split("=", 1)[0].strip() for part in cookie.split(";")}
        return any(name in names for name in self.settings.session_cookies)

    async def read_body(
        self, scope: Scope, headers: dict[str, str], receive: Receive
    ) -> bytes | None:
        """The whole body within the limit (None for a request that cannot have one)."""
        method = scope["method"]
        if method in SAFE_METHODS:
            return None
        path = scope["path"]
        content_type = headers.get("content-type", "")
        length_text = headers.get("content-length")
        chunked = "chunked" in headers.get("transfer-encoding", "").lower()
        try:
            length = int(length_text) if length_text is not None else None
        except ValueError:
            raise Refused(
                400, "bad-request", "Bad request", "Content-Length is not a number"
            ) from None
        has_body = chunked or bool(length)
        # No Content-Type at all is read as JSON (what a script's bare POST means); a browser
        # form always names its type, and that type is refused here.
        if has_body and is_json_route(path) and content_type and not is_json_type(content_type):
            raise Refused(
                415,
                "unsupported-media-type",
                "Unsupported media type",
                f"this route takes JSON (application/json), not {content_type[:60]}",
            )
        bundles = path == "/fhir" or path.startswith("/cds-services/")  # prefetch is Bundles
        limit = (
            self.settings.max_import_bytes
            if method == "POST" and bundles
            else self.settings.max_body_bytes
        )
        if length is not None and length > limit:
            raise _too_large(limit)
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] != "http.request":
                break
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > limit:
                raise _too_large(limit)
            chunks.append(chunk)
            if not message.get("more_body", False):
                break
        body = b"".join(chunks)
        if body and (is_json_type(content_type) or (not content_type and is_json_route(path))):
            if len(body) > THREAD_PARSE_BYTES:
                await anyio.to_thread.run_sync(check_json, body, self.settings.max_json_depth)
            else:
                check_json(body, self.settings.max_json_depth)
        return body

    # --- responses -------------------------------------------------------------------------------

    def _with_headers(self, scope: Scope, send: Send) -> Send:
        https = scope.get("scheme") == "https"
        docs = scope["path"] in ("/docs", "/redoc", "/docs/oauth2-redirect")
        csp = self.settings.docs_csp if docs and self.settings.docs_csp else self.settings.csp

        delay = self.settings.throttle_delay_seconds

        async def wrapped(message: Message) -> None:
            if message["type"] == "http.response.start" and message["status"] == 429 and delay:
                await anyio.sleep(delay)
            if message["type"] == "http.response.start":
                present = {k.lower() for k, _ in message.get("headers", [])}
                extra = [
                    (b"content-security-policy", csp.encode()),
                    (b"x-content-type-options", b"nosniff"),
                    (b"x-frame-options", b"DENY"),
                    (b"referrer-policy", b"same-origin"),
                ]
                if https:
                    extra.append((b"strict-transport-security", HSTS.encode()))
                message["headers"] = [
                    *message.get("headers", []),
                    *((k, v) for k, v in extra if k not in present),
                ]
            await send(message)

        return wrapped

    async def refuse(self, scope: Scope, send: Send, refused: Refused) -> None:
        path = scope["path"]
        if _outcome_route(path):
            code = {403: "security", 413: "too-long", 415: "not-supported"}.get(
                refused.status, "structure" if refused.status == 400 else "invalid"
            )
            issue: dict[str, Any] = {
                "severity": "error",
                "code": code,
                "details": {"text": refused.detail},
                "diagnostics": refused.detail,
            }
            if refused.loc:
                issue["expression"] = [refused.loc]
            body: dict[str, Any] = {"resourceType": "OperationOutcome", "issue": [issue]}
            media = "application/fhir+json" if path.startswith("/fhir") else "application/json"
        else:
            body = {
                "type": f"urn:b12plan:problem:{refused.slug}",
                "title": refused.title,
                "status": refused.status,
                "detail": refused.detail,
                "instance": path,
                "errors": [{"loc": refused.loc, "msg": refused.detail, "type": refused.slug}]
                if refused.status == 422
                else [],
            }
            media = "application/problem+json"
        data = json.dumps(body).encode("utf-8")
        await send(
            {
                "type": "http.response.start",
                "status": refused.status,
                "headers": [
                    (b"content-type", media.encode()),
                    (b"content-length", str(len(data)).encode()),
                    (b"connection", b"close"),
                ],
            }
        )
        await send({"type": "http.response.body", "body": data})


def _cross_site(why: str) -> Refused:
    return Refused(
        403,
        "cross-site-request",
        "Cross-site request refused",
        f"a state-changing request with a session cookie must come from this site: {why}",
    )


def _too_large(limit: int) -> Refused:
    return Refused(
        413,
        "payload-too-large",
        "Request body too large",
        f"the request body is larger than {limit} bytes",
    )
