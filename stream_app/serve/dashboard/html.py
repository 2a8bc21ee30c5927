"""HTML building blocks: escaping, the page shell, tables, links, numbers.

Plain functions returning strings (no template engine: the pages are a few
tables and charts, and one dependency fewer for the API's image). Every value
that came from Redis goes through ``esc``; a helper that takes ``Html`` takes
markup already escaped.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from html import escape
from urllib.parse import urlencode


class Html(str):
    """Markup already escaped; any other ``str`` handed to ``table`` is escaped there."""

    __slots__ = ()


PREFIX = "/ui"
NAV = (
    ("Call first", f"{PREFIX}/"),
    ("Funnel", f"{PREFIX}/funnel"),
    ("Leads", f"{PREFIX}/leads"),
    ("Accounts", f"{PREFIX}/accounts"),
    ("Sales SLA", f"{PREFIX}/sla"),
    ("Rules", f"{PREFIX}/rules"),
)
STAGE_LABEL = {"mql": "MQL", "sql": "SQL", "pql": "PQL", "sales_accepted": "accepted"}


def esc(value: object) -> Html:
    return Html(escape(str(value), quote=True))


def join(parts: Iterable[str]) -> Html:
    return Html("".join(parts))


def url(path: str, **query: str | None) -> str:
    given = {k: v for k, v in query.items() if v}
    return f"{PREFIX}{path}" + (f"?{urlencode(given)}" if given else "")


def link(href: str, text: object, cls: str = "") -> Html:
    attr = f' class="{cls}"' if cls else ""
    return Html(f'<a href="{esc(href)}"{attr}>{esc(text)}</a>')


def lead_link(lead_id: str) -> Html:
    return link(url("/lead", id=lead_id), lead_id)


def account_link(account_id: str | None) -> Html:
    return link(url("/account", id=account_id), account_id) if account_id else Html("—")


def stage_badge(stage: str) -> Html:
    return Html(f'<span class="stage s-{esc(stage)}">{esc(STAGE_LABEL.get(stage, stage))}</span>')


def num(value: float | None, digits: int = 1) -> str:
    if value is None:
        return "—"
    return f"{value:,.{digits}f}" if value != int(value) else f"{int(value):,}"


def pct(value: float | None) -> str:
    return "—" if value is None else f"{value:.0%}"


def when(value: str | float | datetime | None) -> str:
    """An event time as people read it: ``2026-12-07 14:05 UTC``."""
    if value is None or value == "":
        return "—"
    if isinstance(value, int | float):
        value = datetime.fromtimestamp(value, UTC)
    elif isinstance(value, str):
        value = datetime.fromisoformat(value.replace("Z", "+00:00"))
    return value.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")


def table(
    headers: Sequence[str], rows: Iterable[Sequence[object]], caption: str, cls: str = ""
) -> Html:
    """A table; a cell that is ``Html`` is markup, anything else is escaped."""
    head = "".join(f'<th scope="col">{esc(h)}</th>' for h in headers)
    body = "".join(
        "<tr>" + "".join(f"<td>{c if isinstance(c, Html) else esc(c)}</td>" for c in row) + "</tr>"
        for row in rows
    )
    if not body:
        body = f'<tr><td colspan="{len(headers)}" class="empty">none</td></tr>'
    return Html(
        f'<table class="{cls}"><caption>{esc(caption)}</caption>'
        f"<thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"
    )


def page(title: str, current: str, body: str, *, live: bool = False) -> Html:
    """The shell every page shares: header, navigation, the live indicator, the body."""
    nav = "".join(
        f'<a href="{href}"{" aria-current=page" if href == current else ""}>{label}</a>'
        for label, href in NAV
    )
    indicator = (
        '<p id="live-status" class="live stale" role="status" aria-live="polite">connecting…</p>'
        if live
        else ""
    )
    script = f'<script src="{PREFIX}/static/live.js" defer></script>' if live else ""
    return Html(
        "<!doctype html>"
        '<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{esc(title)} · Leadstream</title>"
        f'<link rel="stylesheet" href="{PREFIX}/static/dashboard.css">{script}</head>'
        f'<body><header><p class="brand">Leadstream</p><nav aria-label="Dashboard">{nav}</nav>'
        f"{indicator}</header><main><h1>{esc(title)}</h1>{body}</main></body></html>"
    )
