"""Who is using the studio: log-in and log-out, the signed session cookie, and CSRF protection.

- The session is Starlette's signed cookie (itsdangerous), HttpOnly and SameSite=Lax.  Its key is
  FLOWDESK_SECRET or a file in the project's `.flowdesk/` folder, made on first start (mode 0600).
- Every session carries a CSRF token.  Forms send it as a hidden `csrf_token` input and htmx as the
  `X-CSRF-Token` header (set once with `hx-headers` on <body>); `Guard` refuses any unsafe request
  without the right token with a plain 403 page, before it reaches a screen.
- Requests without a logged-in user go to /login?next=...; htmx requests get `HX-Redirect`.
- After `MAX_FAILURES` wrong passwords for one name within `FAILURE_WINDOW`, that name must wait.
"""
from __future__ import annotations

import hmac
import os
import secrets
import time
from collections import defaultdict, deque
from pathlib import Path
from urllib.parse import parse_qs, quote

from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response
from starlette.routing import Route

from runtime.crm.users import User, install_secret

SECRET_FILE = "studio_secret"
SESSION_COOKIE = "flowdesk_session"
SESSION_MAX_AGE = 12 * 3600          # one working day and then some
CSRF_FIELD = "csrf_token"
CSRF_HEADER = "x-csrf-token"
SAFE_METHODS = {"GET", "HEAD", "OPTIONS"}
PUBLIC_PREFIXES = ("/login", "/static/")
MAX_FAILURES = 5
FAILURE_WINDOW = 300.0               # seconds


def studio_secret(project: Path) -> bytes:
    """FLOWDESK_SECRET, or the install's secret file (made on first use, readable by its owner only).
    It signs the session cookies and derives the demo passwords."""
    given = os.environ.get("FLOWDESK_SECRET")
    if given:
        return given.encode()
    return install_secret(project / ".flowdesk" / SECRET_FILE)


def csrf_token(session: dict) -> str:
    """The session's CSRF token, made on first use."""
    token = session.get("csrf")
    if not token:
        token = session["csrf"] = secrets.token_urlsafe(32)
    return token


def current_user(request: Request) -> User | None:
    """The logged-in user; None when nobody is, or the agent has left the project since."""
    name = request.session.get("user")
    return request.app.state.studio.accounts.users.get(name) if name else None


def safe_next(target: str | None) -> str:
    """Where to go after log-in: only a path on this site (no `//host` or `http://...`)."""
    if target and target.startswith("/") and not target.startswith("//") and "\\" not in target:
        return target
    return "/"


class Throttle:
    """Counts wrong passwords per name; after `limit` within `window` seconds the name must wait."""

    def __init__(self, limit: int = MAX_FAILURES, window: float = FAILURE_WINDOW, clock=time.monotonic):
        self.limit, self.window, self.clock = limit, window, clock
        self.failures: dict[str, deque] = defaultdict(deque)

    def wait_seconds(self, name: str) -> int:
        """Seconds until `name` may try again (0: now)."""
        times = self._recent(name)
        if len(times) < self.limit:
            return 0
        return max(1, int(times[0] + self.window - self.clock() + 0.999))

    def failed(self, name: str) -> None:
        self._recent(name).append(self.clock())

    def succeeded(self, name: str) -> None:
        self.failures.pop(name, None)

    def _recent(self, name: str) -> deque:
        times = self.failures[name]
        while times and times[0] <= self.clock() - self.window:
            times.popleft()
        return times


# ------------------------------------------------------------------ the guard

class Guard:
    """ASGI middleware (inside SessionMiddleware): log-in required, CSRF token on unsafe methods."""

    def __init__(self, app):
        self.app = app

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        request = Request(scope, receive)
        if request.method not in SAFE_METHODS:
            receive = await self._check_csrf(request, receive, send)
            if receive is None:
                return
        if not scope["path"].startswith(PUBLIC_PREFIXES) and current_user(request) is None:
            return await login_redirect(request)(scope, receive, send)
        await self.app(scope, receive, send)

    async def _check_csrf(self, request: Request, receive, send):
        """The receive to go on with (the body replayed), or None when refused (403 sent)."""
        expected = request.session.get("csrf")
        given = request.headers.get(CSRF_HEADER)
        body = b""
        if given is None:
            body = await request.body()
            given = await _form_token(request, body)
        if not expected or not given or not hmac.compare_digest(expected, given):
            await refused_page(request)(request.scope, receive, send)
            return None
        return _replay(body, receive) if body else receive


async def _form_token(request: Request, body: bytes) -> str | None:
    kind = request.headers.get("content-type", "")
    if kind.startswith("application/x-www-form-urlencoded"):
        values = parse_qs(body.decode("utf-8", "replace")).get(CSRF_FIELD)
        return values[0] if values else None
    if kind.startswith("multipart/form-data"):
        form = await Request(request.scope, _replay(body, None)).form()
        value = form.get(CSRF_FIELD)
        await form.close()
        return value if isinstance(value, str) else None
    return None


def _replay(body: bytes, receive):
    """A receive that hands out `body` once, then defers to the real one (for a disconnect)."""
    sent = False

    async def replayed():
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        if receive is None:
            return {"type": "http.disconnect"}
        return await receive()
    return replayed


def refused_page(request: Request) -> Response:
    return HTMLResponse(
        "<!doctype html><meta charset=utf-8><title>请求被拒绝</title>"
        "<h1>请求被拒绝</h1><p>页面已过期或请求缺少安全令牌(CSRF),请刷新页面后重试。</p>"
        '<p><a href="/">返回首页</a></p>', status_code=403)


def login_redirect(request: Request) -> Response:
    path = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    if request.headers.get("hx-request"):
        # htmx would swap the log-in page into a fragment; have it load the page instead.
        path = request.headers.get("hx-current-url", path)
        target = "/login?next=" + quote(_local(path), safe="")
        return Response(status_code=401, headers={"HX-Redirect": target})
    return RedirectResponse("/login?next=" + quote(path, safe=""), status_code=303)


def _local(url: str) -> str:
    """The path and query of a full URL (htmx sends the page's full address)."""
    if "://" in url:
        rest = url.split("://", 1)[1]
        return "/" + rest.split("/", 1)[1] if "/" in rest else "/"
    return url


# ------------------------------------------------------------------ pages

async def login_page(request: Request) -> Response:
    if request.method == "GET":
        return _login_form(request, next_=request.query_params.get("next"))
    form = await request.form()
    name = str(form.get("user", "")).strip()
    password = str(form.get("password", ""))
    next_ = str(form.get("next", ""))
    studio = request.app.state.studio
    login = _login_name(studio, name)
    wait = studio.throttle.wait_seconds(login)
    if wait:
        return _login_form(request, name, next_, f"密码错误次数过多,请 {wait} 秒后再试。", 429)
    user = studio.accounts.authenticate(login, password) if name and password else None
    if user is None:
        studio.throttle.failed(login)
        return _login_form(request, name, next_, "用户名或密码不正确。", 400)
    studio.throttle.succeeded(login)
    # A new session on log-in: nothing from before (a planted cookie) carries over.
    request.session.clear()
    request.session["user"] = user.name
    csrf_token(request.session)
    return RedirectResponse(safe_next(next_), status_code=303)


def _login_name(studio, typed: str) -> str:
    """The agent's name for what was typed: the name itself or the agent's title ("李娜")."""
    if typed in studio.accounts.users:
        return typed
    matches = [u.name for u in studio.accounts.users.values() if u.title == typed]
    return matches[0] if len(matches) == 1 else typed


def _login_form(request: Request, name: str = "", next_: str | None = None, error: str | None = None,
                status: int = 200) -> Response:
    return request.app.state.studio.templates.TemplateResponse(
        request, "login.html", {"name": name, "next": safe_next(next_), "error": error}, status_code=status)


async def logout(request: Request) -> Response:
    request.session.clear()
    return RedirectResponse("/login", status_code=303)


routes = [
    Route("/login", login_page, methods=["GET", "POST"]),
    Route("/logout", logout, methods=["POST"]),
]
