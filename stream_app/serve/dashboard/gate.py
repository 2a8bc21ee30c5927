"""The dashboard's token gate: with ``LEADSTREAM_API_TOKEN`` set, a browser signs in once.

A browser cannot send ``Authorization: Bearer``, so the sign-in form takes the
token and sets a cookie: ``HttpOnly`` (no script reads it), ``SameSite=Strict``
(no other site's page sends it), scoped to the dashboard's path. The cookie
holds an HMAC of the token, not the token: a copy of the cookie is no copy of
the API's credential. Every page, asset and the live feed refuse without it
(a page answers 401 with the sign-in form). Comparisons are constant-time; the
token is never logged. The bearer header is accepted too (scripts, tests).
"""

from __future__ import annotations

import hashlib
import hmac

from aiohttp import web

from stream_app.serve.dashboard.html import PREFIX, page

COOKIE = "leadstream_dashboard"
OPEN = {f"{PREFIX}/login"}


def sent(text: str) -> bytes:
    """A header's, cookie's or form field's text back as the bytes the client sent: aiohttp
    reads bytes that are not UTF-8 as surrogates, which a plain ``encode`` refuses (a 500)."""
    return text.encode("utf-8", "surrogateescape")


def cookie_value(token: str) -> str:
    return hmac.new(token.encode(), b"leadstream dashboard cookie v1", hashlib.sha256).hexdigest()


class Gate:
    def __init__(self, token: str | None) -> None:
        self.token = token
        self.cookie = cookie_value(token) if token else None

    def allows(self, request: web.Request) -> bool:
        if self.token is None or self.cookie is None or request.path in OPEN:
            return True
        given = request.cookies.get(COOKIE, "")
        if hmac.compare_digest(sent(given), self.cookie.encode()):
            return True
        bearer = request.headers.get("Authorization", "")
        return bearer.startswith("Bearer ") and hmac.compare_digest(
            sent(bearer.removeprefix("Bearer ")), self.token.encode()
        )

    async def login(self, request: web.Request) -> web.StreamResponse:
        if request.method == "GET":
            return form(200)
        given = str((await request.post()).get("token", ""))
        if self.token is None or self.cookie is None:
            raise web.HTTPSeeOther(f"{PREFIX}/")
        if not hmac.compare_digest(sent(given), self.token.encode()):
            return form(401, "That is not the token.")
        response = web.HTTPSeeOther(f"{PREFIX}/")
        response.set_cookie(
            COOKIE,
            self.cookie,
            path=PREFIX,
            httponly=True,
            samesite="Strict",
            secure=request.secure,
        )
        raise response


def form(status: int, message: str = "") -> web.Response:
    note = f'<p class="warn" role="alert">{message}</p>' if message else ""
    body = page(
        "Sign in",
        "",
        f"{note}<p>This dashboard needs the API's token (LEADSTREAM_API_TOKEN).</p>"
        f'<form method="post" action="{PREFIX}/login" class="login">'
        '<label for="token">Token</label> '
        '<input id="token" name="token" type="password" autocomplete="current-password" required>'
        ' <button type="submit">Sign in</button></form>',
    )
    return web.Response(text=body, status=status, content_type="text/html")
