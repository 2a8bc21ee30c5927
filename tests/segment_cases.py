"""One prospect's journey as RudderStack and as Segment put it on Kafka, beside its native twin.

Anonymous browsing, an identify (traits in ``context.traits`` snake_case for
RudderStack, top-level camelCase for Segment), more browsing, a mapped e-mail
click, a demo request, an unmapped ``track`` and a malformed message. The
native list is what the foreign one must mean: the same transitions, ids
included (transition ids are derived from event ids, which are the
``messageId``s).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from tests.factories import at

Flavour = Literal["rudderstack", "segment"]


@dataclass
class Journey:
    foreign: list[dict[str, Any]]  # in order; the last two are ignored and malformed
    native: list[dict[str, Any]]
    ignored: int = 1
    malformed: int = 1

    def key(self, message: dict[str, Any], flavour: Flavour) -> bytes | None:
        """RudderStack keys by userId, else anonymousId; Segment sends unkeyed by default."""
        if flavour == "segment":
            return None
        return (message.get("userId") or message.get("anonymousId") or "").encode() or None


def journey(prefix: str, flavour: Flavour) -> Journey:
    lead, anon = f"{prefix}-lead", f"{prefix}-anon"
    rudder = flavour == "rudderstack"

    def when(hours: float) -> str:
        return at(0, hours).isoformat().replace("+00:00", "Z")

    def message(kind: str, n: int, hours: float, user: str | None, **fields: Any) -> dict:
        out: dict[str, Any] = {
            "type": kind,
            "messageId": f"{prefix}-{n}",
            "anonymousId": anon,
            "userId": user if user is not None else ("" if rudder else None),
            "channel": "web",
            "context": {"library": {"name": "analytics.js" if not rudder else "RudderLabs"}},
            "integrations": {"All": True},
            "sentAt": when(hours),
            **fields,
        }
        if rudder:  # RudderStack: originalTimestamp, and a corrected timestamp
            out["originalTimestamp"] = when(hours)
            out["timestamp"] = when(hours)
            out["rudderId"] = f"r-{prefix}-{n}"
        else:
            out["timestamp"] = when(hours)
        return {k: v for k, v in out.items() if v is not None}

    def page(n: int, hours: float, path: str, user: str | None = None) -> dict:
        m = message(
            "page", n, hours, user, properties={"path": path, "url": f"https://ex.com{path}"}
        )
        m["context"]["page"] = {"path": path, "url": f"https://ex.com{path}"}
        return m

    traits: dict[str, Any]
    if rudder:
        traits = {
            "email": "jane@acme.com",
            "job_title": "VP Marketing",
            "department": "marketing",
            "company": {"name": "Acme", "id": "acme.com", "employee_count": 400},
            "address": {"country": "US"},
        }
    else:
        traits = {
            "email": "jane@acme.com",
            "jobTitle": "VP Marketing",
            "department": "marketing",
            "company": {"name": "Acme", "id": "acme.com", "employeeCount": 400},
            "address": {"country": "US"},
        }
    identify = message("identify", 3, 2, lead)
    if rudder:
        identify["context"]["traits"] = traits
    else:
        identify["traits"] = traits

    foreign = [
        page(1, 0, "/pricing"),
        page(2, 1, "/product"),
        identify,
        page(4, 3, "/pricing", user=lead),
        message(
            "track",
            5,
            4,
            lead,
            event="Email Link Clicked",
            properties={"link_url": "https://ex.com/pricing", "campaign_id": "nurture-1"},
        ),
        message("track", 6, 5, lead, event="Demo Requested", properties={"formId": "demo-1"}),
        message("track", 7, 6, lead, event="Product Viewed", properties={"sku": "x"}),
        {
            k: v
            for k, v in message("track", 8, 7, lead, event="Demo Requested").items()
            if k != "messageId"
        },
    ]

    def native(kind: str, n: int, hours: float, **fields: Any) -> dict:
        return {"type": kind, "event_id": f"{prefix}-{n}", "occurred_at": when(hours), **fields}

    profile = {
        "email": "jane@acme.com",
        "job_title": "VP Marketing",
        "department": "marketing",
        "company_name": "Acme",
        "account_id": "acme.com",
        "company_size": 400,
        "country": "US",
    }
    url = {"url": "https://ex.com/pricing"}
    natives = [
        native("page_view", 1, 0, anonymous_id=anon, path="/pricing", **url),
        native("page_view", 2, 1, anonymous_id=anon, path="/product", url="https://ex.com/product"),
        native("identify", 3, 2, lead_id=lead, anonymous_id=anon, traits=profile),
        native("page_view", 4, 3, lead_id=lead, anonymous_id=anon, path="/pricing", **url),
        native(
            "email_click", 5, 4, lead_id=lead, anonymous_id=anon, campaign_id="nurture-1", **url
        ),
        native(
            "form_submission",
            6,
            5,
            lead_id=lead,
            anonymous_id=anon,
            form_kind="demo_request",
            form_id="demo-1",
        ),
    ]
    return Journey(foreign, natives)


def page(message_id: str, **fields: Any) -> dict[str, Any]:
    """A Segment ``page`` the worker maps (``fields`` replace or add to it)."""
    return {
        "type": "page",
        "messageId": message_id,
        "anonymousId": "a-1",
        "timestamp": "2026-11-02T10:00:00Z",
        "properties": {"path": "/pricing"},
        **fields,
    }
