"""The dashboard's token gate on what a hostile client sends: bytes that are not UTF-8 in
the bearer header or the cookie are refused, never a 500 (issue 25: no input may give
one), and the right token or cookie still opens it."""

from __future__ import annotations

from dataclasses import dataclass, field

import pytest

from stream_app.serve.dashboard.gate import COOKIE, Gate, cookie_value

TOKEN = "s3cret-token"


@dataclass
class Request:
    """What the gate reads of a request, as aiohttp hands it over: header and cookie text
    in which bytes that are not UTF-8 are surrogates (aiohttp's own test request cannot
    carry those: it encodes its headers first)."""

    headers: dict[str, str]
    path: str = "/ui/"
    cookies: dict[str, str] = field(default_factory=dict)


def request(headers: dict[str, str]) -> Request:
    cookie = headers.pop("Cookie", None)
    cookies = dict([cookie.split("=", 1)]) if cookie else {}
    return Request(headers=headers, cookies=cookies)


@pytest.mark.parametrize(
    "headers",
    [
        # aiohttp reads header bytes that are not UTF-8 as surrogates ("\udcff" is b"\xff")
        {"Authorization": "Bearer \udcff\udcfe"},
        {"Cookie": f"{COOKIE}=\udcff"},
        {"Authorization": "Bearer wrong"},
        {},
    ],
)
def test_a_bad_token_or_cookie_is_refused_not_a_crash(headers: dict[str, str]) -> None:
    assert Gate(TOKEN).allows(request(headers)) is False  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "headers",
    [{"Authorization": f"Bearer {TOKEN}"}, {"Cookie": f"{COOKIE}={cookie_value(TOKEN)}"}],
)
def test_the_token_or_its_cookie_opens_the_gate(headers: dict[str, str]) -> None:
    assert Gate(TOKEN).allows(request(headers)) is True  # type: ignore[arg-type]


def test_without_a_token_the_dashboard_is_open() -> None:
    assert Gate(None).allows(request({"Authorization": "Bearer \udcff"})) is True  # type: ignore[arg-type]
