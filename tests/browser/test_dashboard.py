"""What a person sees in the dashboard equals what the projection holds, live.

Each test reads the page the way a person does (the rendered DOM in chromium)
and compares it with the JSON API over the same projection.
"""

from __future__ import annotations

import time
import urllib.error
import urllib.request

import pytest
from playwright.sync_api import Browser, Page, expect

from stream_app.config import Settings
from stream_app.serve.dashboard.gate import COOKIE
from stream_app.serve.dashboard.html import num
from tests.browser.conftest import TOKEN, Cockpit, hand_raiser, produce

pytestmark = pytest.mark.integration

PAGES = ("/ui/", "/ui/funnel", "/ui/leads", "/ui/accounts", "/ui/sla", "/ui/rules")


def metric(page: Page, key: str) -> str:
    return page.locator(f'[data-metric="{key}"]').first.inner_text().strip()


def test_the_funnels_numbers_are_the_apis(page: Page, cockpit: Cockpit) -> None:
    page.goto(f"{cockpit.url}/ui/funnel")
    api = cockpit.get("/funnel")
    assert api["reached_sql"] > 0 and api["reached_mql"] > 0, api  # the journey reached both
    for key in ("leads", "reached_mql", "reached_sql"):
        assert metric(page, key) == f"{api[key]:,}", key
    for stage, count in api["stages"].items():
        assert metric(page, f"stages.{stage}") == str(count), stage
    assert metric(page, "sla.open") == f"{api['sla']['open']:,}"
    assert metric(page, "sla.breached") == f"{api['sla']['breached']:,}"
    assert metric(page, "mql_to_sql_rate") == f"{api['mql_to_sql_rate']:.0%}"
    if api["mql_review"] is not None:
        assert metric(page, "mql_review") == api["mql_review"]["message"]
    rows = page.locator("table.by_source tbody tr")
    assert rows.count() == len(api["by_source"])
    for i in range(rows.count()):
        name, leads, mql, sql = rows.nth(i).locator("td").all_inner_texts()[:4]
        assert api["by_source"][name] == {
            "leads": int(leads.replace(",", "")),
            "reached_mql": int(mql.replace(",", "")),
            "reached_sql": int(sql.replace(",", "")),
        }


def test_a_lead_reaching_sql_shows_in_the_live_view_without_a_reload(
    page: Page, cockpit: Cockpit
) -> None:
    page.goto(f"{cockpit.url}/ui/")
    expect(page.locator("#live-status")).to_have_attribute("data-state", "live", timeout=10_000)
    page.evaluate("window.__notReloaded = true")
    lead_id = cockpit.lead_id(f"live-{time.monotonic_ns()}")
    produced = time.monotonic()
    produce(cockpit.worker, hand_raiser(lead_id, "live.example"), Settings().kafka_bootstrap)
    row = page.locator(f'#feed li[data-lead="{lead_id}"]', has=page.locator(".s-sql"))
    expect(row.first).to_be_visible(timeout=10_000)
    seconds = time.monotonic() - produced
    assert page.evaluate("window.__notReloaded") is True  # the same document: no reload
    assert "Hand-raise: demo request" in row.first.inner_text()
    assert seconds < 10, seconds


def test_the_lead_pages_contributions_are_its_last_transitions(
    page: Page, cockpit: Cockpit
) -> None:
    lead_id = cockpit.lead_id("hand")
    api = cockpit.get(f"/leads/{lead_id}")
    last = api["recent_transitions"][0]
    assert last["reason"] == "hand_raise" and last["to_stage"] == "sql", last
    page.goto(f"{cockpit.url}/ui/lead?id={lead_id}")
    shown = {
        span.get_attribute("data-rule"): float(span.inner_text())
        for span in page.locator("[data-rule]").all()
    }
    assert shown == {c["rule"]: pytest.approx(c["points"]) for c in last["contributions"]}
    for key in ("total", "fit", "engagement"):
        assert metric(page, key) == num(api["scores"][key]), key
    assert page.locator(".headline .hand").inner_text().startswith("Hand-raise")
    timeline = page.locator("table.timeline tbody tr")
    assert timeline.count() == len(api["recent_transitions"])
    # the account's other lead is listed
    assert cockpit.lead_id("colleague") in page.locator("table.others").inner_text()
    # the chart has the score's line and one mark per transition
    assert page.locator("svg.chart circle.mark").count() == len(api["recent_transitions"])


def test_the_grids_cells_add_up_to_the_leads(page: Page, cockpit: Cockpit) -> None:
    page.goto(f"{cockpit.url}/ui/leads")
    cells = page.locator("table.grid a.cell")
    counts = {c.get_attribute("data-cell"): int(c.inner_text()) for c in cells.all()}
    assert len(counts) == 16  # grades A-D by four engagement bands
    leads = cockpit.get("/funnel")["leads"]
    assert sum(counts.values()) == leads == int(metric(page, "grid.total"))
    # a cell's link lists exactly its leads (when they fit on one page)
    name, count = max(((k, v) for k, v in counts.items() if v <= 50), key=lambda kv: kv[1])
    page.locator(f'table.grid a.cell[data-cell="{name}"]').click()
    assert page.locator("table.leads tbody tr").count() == count


def refused(url: str, headers: dict[str, str] | None = None) -> int:
    request = urllib.request.Request(url, headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return int(response.status)
    except urllib.error.HTTPError as exc:
        return exc.code


def test_the_token_gate_holds(browser: Browser, cockpit: Cockpit) -> None:
    stranger = browser.new_context()
    page = stranger.new_page()
    try:
        for path in PAGES:
            response = page.goto(f"{cockpit.url}{path}")
            assert response is not None and response.status == 401, path
            assert page.locator("#token").is_visible(), path  # it asks for the token
            assert page.locator("table").count() == 0, path  # and shows nothing else
        lead = f"{cockpit.url}/ui/lead?id={cockpit.lead_id('hand')}"
        for url in (lead, f"{cockpit.url}/ui/feed", f"{cockpit.url}/ui/static/live.js"):
            assert refused(url) == 401, url
            assert refused(url, {"Cookie": f"{COOKIE}=forged"}) == 401, url
        page.goto(f"{cockpit.url}/ui/")
        page.fill("#token", "not-the-token")
        page.click("button[type=submit]")
        assert page.locator("[role=alert]").inner_text() == "That is not the token."
        assert stranger.cookies() == []
        page.fill("#token", TOKEN)
        page.click("button[type=submit]")
        page.wait_for_url(f"{cockpit.url}/ui/")
        (cookie,) = stranger.cookies()
        assert cookie["httpOnly"] and cookie["sameSite"] == "Strict", cookie
        assert TOKEN not in cookie["value"]
        assert page.evaluate("document.cookie") == ""  # no script can read it
        assert page.locator("table.call").is_visible()
    finally:
        stranger.close()
