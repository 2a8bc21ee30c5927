"""axe-core (vendored: vendor/README.md) on every page: no serious or critical violation.

With ``LEADSTREAM_SCREENSHOTS=1`` the same run writes each page's picture to
docs/img/ (what the README and docs show).
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from playwright.sync_api import Browser, expect

from tests.browser.conftest import SHOTS, Cockpit, signed_in

pytestmark = pytest.mark.integration

AXE = Path(__file__).parent / "vendor" / "axe.min.js"
AXE_VERSION = "4.14.1"


def pages(cockpit: Cockpit) -> dict[str, str]:
    hand = cockpit.lead_id("hand")
    return {
        "call-first": "/ui/",
        "funnel": "/ui/funnel",
        "leads": "/ui/leads",
        "lead": f"/ui/lead?id={hand}",
        "accounts": "/ui/accounts",
        "account": f"/ui/account?id={cockpit.lead_id('acme.com')}",
        "sla": "/ui/sla",
        "rules": "/ui/rules",
    }


NAMES = ["call-first", "funnel", "leads", "lead", "accounts", "account", "sla", "rules", "login"]


@pytest.mark.parametrize("name", NAMES)
def test_no_serious_accessibility_violation(browser: Browser, cockpit: Cockpit, name: str) -> None:
    assert AXE.exists(), f"{AXE} is missing (tests/browser/vendor/README.md says how to get it)"
    if name == "login":  # a browser that has not signed in
        context = browser.new_context(bypass_csp=True)
        path = "/ui/"
    else:
        context = signed_in(browser, cockpit, bypass_csp=True)  # axe is injected as a script
        path = pages(cockpit)[name]
    page = context.new_page()
    try:
        response = page.goto(f"{cockpit.url}{path}")
        assert response is not None and response.status == (401 if name == "login" else 200)
        if page.locator("#live-status").count():  # judged as people see it: live
            expect(page.locator("#live-status")).to_have_attribute("data-state", "live")
        if os.environ.get("LEADSTREAM_SCREENSHOTS"):
            SHOTS.mkdir(parents=True, exist_ok=True)
            page.screenshot(path=str(SHOTS / f"dashboard-{name}.png"), full_page=False)
        page.add_script_tag(path=str(AXE))
        assert page.evaluate("axe.version") == AXE_VERSION
        result = page.evaluate("axe.run(document, {resultTypes: ['violations']})")
        bad = [
            f"{v['id']} ({v['impact']}): {v['help']} at {[n['target'] for n in v['nodes'][:3]]}"
            for v in result["violations"]
            if v["impact"] in ("serious", "critical")
        ]
        assert bad == [], "\n".join(bad)
    finally:
        context.close()
