"""The CRMs' notifications -> ``sales_feedback`` events (pure; ``collect`` serves them).

**HubSpot** posts a JSON array of events (up to 100) to ``/v1/webhooks/hubspot``,
signed the way HubSpot documents v3 (``verify_hubspot``): ``X-HubSpot-Signature-v3``
is the base64 HMAC-SHA256, with the app's client secret, of the method, the full
URI (a few URL-encoded characters decoded, as HubSpot lists them), the body and
``X-HubSpot-Request-Timestamp`` (ms); a timestamp more than 5 minutes old is
refused, and so is one more than 5 minutes ahead. Subscriptions used:
``contact.propertyChange`` (``lifecyclestage``, ``hs_lead_status``) and
``deal.propertyChange`` (``dealstage``); any other type is refused. A contact's
lead is the contact's ``leadstream_lead_id`` (or the id property's value); a
deal's leads are those of its contacts (both read through HubSpot's API by
``collect``).

**Salesforce** posts an Outbound Message (SOAP 1.1) for a Lead or an Opportunity
to ``/v1/webhooks/salesforce/<secret>``; each ``Notification`` carries the
fields the message was set up with, among them the External ID field holding
the lead id. It must be acknowledged (``ACK``), or Salesforce sends it again for
24 hours.

Each outcome is an event ``sales_feedback`` whose ``event_id`` is the CRM's own
event id, so a delivery repeated (HubSpot retries, Salesforce's resends, a
replay) counts once in the worker.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from collections import OrderedDict
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from xml.etree import ElementTree

#: HubSpot's allowed age (and lead) of a signed request's timestamp.
MAX_SIGNATURE_AGE_MS = 5 * 60 * 1000
#: Characters HubSpot decodes in the URI before signing (its v3 validation guide).
URI_DECODED = {
    "%3A": ":",
    "%2F": "/",
    "%3F": "?",
    "%40": "@",
    "%21": "!",
    "%24": "$",
    "%27": "'",
    "%28": "(",
    "%29": ")",
    "%2A": "*",
    "%2C": ",",
    "%3B": ";",
}
HUBSPOT_TYPES = ("contact.propertyChange", "deal.propertyChange")
SALESFORCE_OBJECTS = ("Lead", "Opportunity")

SOAP = "http://schemas.xmlsoap.org/soap/envelope/"
OUTBOUND = "http://soap.sforce.com/2005/09/outbound"
XSI = "http://www.w3.org/2001/XMLSchema-instance"
ACK = (
    '<?xml version="1.0" encoding="UTF-8"?>'
    f'<soapenv:Envelope xmlns:soapenv="{SOAP}"><soapenv:Body>'
    f'<notificationsResponse xmlns="{OUTBOUND}"><Ack>true</Ack></notificationsResponse>'
    "</soapenv:Body></soapenv:Envelope>"
)


class Refused(Exception):
    """A notification refused: the status, a short code for the metric, and why."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status, self.code, self.message = status, code, message


def soap_fault(message: str) -> str:
    """A SOAP 1.1 fault (Salesforce then delivers the message again later)."""
    text = message.replace("&", "&amp;").replace("<", "&lt;")
    return (
        f'<?xml version="1.0" encoding="UTF-8"?><soapenv:Envelope xmlns:soapenv="{SOAP}">'
        "<soapenv:Body><soapenv:Fault><faultcode>soapenv:Client</faultcode>"
        f"<faultstring>{text}</faultstring></soapenv:Fault></soapenv:Body></soapenv:Envelope>"
    )


# --- HubSpot ---------------------------------------------------------------------------


def hubspot_signature(secret: str, method: str, uri: str, body: str, timestamp: str) -> str:
    """``X-HubSpot-Signature-v3`` of a request, as HubSpot documents it."""
    for encoded, plain in URI_DECODED.items():
        uri = uri.replace(encoded, plain).replace(encoded.lower(), plain)
    source = f"{method}{uri}{body}{timestamp}".encode()
    digest = hmac.new(secret.encode(), source, hashlib.sha256).digest()
    return base64.b64encode(digest).decode()


def verify_hubspot(
    secret: str, method: str, uri: str, body: bytes, headers: Mapping[str, str], now_ms: int
) -> None:
    """Raises ``Refused`` (401) unless the request is signed with ``secret`` within 5 min."""
    signature = headers.get("X-HubSpot-Signature-v3")
    timestamp = headers.get("X-HubSpot-Request-Timestamp")
    if not signature or not timestamp:
        raise Refused(
            401, "unsigned", "X-HubSpot-Signature-v3 and X-HubSpot-Request-Timestamp are required"
        )
    try:
        sent = int(timestamp)
    except ValueError:
        raise Refused(
            401, "bad_timestamp", "X-HubSpot-Request-Timestamp is not milliseconds"
        ) from None
    if now_ms - sent > MAX_SIGNATURE_AGE_MS:
        raise Refused(401, "too_old", "the request's timestamp is more than 5 minutes old")
    if sent - now_ms > MAX_SIGNATURE_AGE_MS:
        raise Refused(401, "bad_timestamp", "the request's timestamp is more than 5 minutes ahead")
    try:
        text = body.decode()
    except UnicodeDecodeError:
        raise Refused(400, "invalid_body", "the body is not UTF-8") from None
    wanted = hubspot_signature(secret, method, uri, text, timestamp)
    if not hmac.compare_digest(wanted.encode(), signature.encode()):
        raise Refused(401, "bad_signature", "X-HubSpot-Signature-v3 does not match the body")


@dataclass(frozen=True)
class HubSpotEvent:
    event_id: str  # portal:eventId
    kind: str  # contact or deal
    object_id: str
    property_name: str
    property_value: str
    occurred_at: datetime


def hubspot_events(data: Any) -> list[HubSpotEvent]:
    """The events of a HubSpot webhook body; raises ``Refused`` (400) for any other shape or
    a subscription type crm-sync does not handle (``HUBSPOT_TYPES``)."""
    if not isinstance(data, list):
        raise Refused(400, "invalid_body", "HubSpot posts a JSON array of events")
    out = []
    for n, event in enumerate(data):
        if not isinstance(event, dict):
            raise Refused(400, "invalid_body", f"event {n} is not an object")
        kind = event.get("subscriptionType")
        if kind not in HUBSPOT_TYPES:
            raise Refused(
                400,
                "unknown_object",
                f"event {n}: subscriptionType {kind!r} is not handled; subscribe to "
                f"{' and '.join(HUBSPOT_TYPES)} only",
            )
        try:
            occurred = datetime.fromtimestamp(int(event["occurredAt"]) / 1000, UTC)
            out.append(
                HubSpotEvent(
                    event_id=f"{int(event['portalId'])}:{int(event['eventId'])}",
                    kind=str(kind).split(".")[0],
                    object_id=str(int(event["objectId"])),
                    property_name=str(event["propertyName"]),
                    property_value=str(event.get("propertyValue") or ""),
                    occurred_at=occurred,
                )
            )
        except (KeyError, TypeError, ValueError, OverflowError) as exc:
            raise Refused(400, "invalid_body", f"event {n}: {type(exc).__name__} {exc}") from None
    return out


def hubspot_outcome(
    event: HubSpotEvent, contact_outcomes: Mapping[str, str], deal_outcomes: Mapping[str, str]
) -> str | None:
    """The sales outcome an event tells, or None (a value nobody mapped: ignored)."""
    if event.kind == "deal":
        return (
            deal_outcomes.get(event.property_value) if event.property_name == "dealstage" else None
        )
    return contact_outcomes.get(f"{event.property_name}={event.property_value}")


# --- Salesforce ------------------------------------------------------------------------


@dataclass(frozen=True)
class Notification:
    notification_id: str
    object_type: str
    fields: dict[str, str]


@dataclass(frozen=True)
class OutboundMessage:
    organization_id: str
    notifications: list[Notification]


def outbound_message(body: bytes) -> OutboundMessage:
    """An Outbound Message's organisation and notifications; raises ``Refused`` (400)."""
    try:
        root = ElementTree.fromstring(body)
    except ElementTree.ParseError as exc:
        raise Refused(400, "invalid_body", f"not XML: {exc}") from None
    notifications = root.find(f"{{{SOAP}}}Body/{{{OUTBOUND}}}notifications")
    if root.tag != f"{{{SOAP}}}Envelope" or notifications is None:
        raise Refused(400, "invalid_body", "not a SOAP envelope with Salesforce's notifications")
    org = notifications.findtext(f"{{{OUTBOUND}}}OrganizationId") or ""
    out = []
    for n, item in enumerate(notifications.findall(f"{{{OUTBOUND}}}Notification")):
        nid = item.findtext(f"{{{OUTBOUND}}}Id")
        sobject = item.find(f"{{{OUTBOUND}}}sObject")
        if not nid or sobject is None:
            raise Refused(400, "invalid_body", f"Notification {n} has no Id or sObject")
        kind = (sobject.get(f"{{{XSI}}}type") or "").rpartition(":")[2]
        if kind not in SALESFORCE_OBJECTS:
            raise Refused(
                400,
                "unknown_object",
                f"Notification {n}: an sObject of type {kind!r}; outbound messages are "
                f"taken for {' and '.join(SALESFORCE_OBJECTS)} only",
            )
        fields = {
            child.tag.rpartition("}")[2]: (child.text or "")
            for child in sobject
            if child.get(f"{{{XSI}}}nil") != "true"
        }
        out.append(Notification(nid, kind, fields))
    if not out:
        raise Refused(400, "invalid_body", "no Notification in the message")
    return OutboundMessage(org, out)


def salesforce_outcome(notification: Notification, outcomes: Mapping[str, str]) -> str | None:
    for name, value in notification.fields.items():
        outcome = outcomes.get(f"{notification.object_type}.{name}={value}")
        if outcome is not None:
            return outcome
    return None


# --- both ------------------------------------------------------------------------------


def feedback(
    event_id: str,
    lead_id: str,
    outcome: str,
    occurred_at: datetime,
    received_at: datetime,
    reason: str,
    source: str,
) -> dict[str, Any]:
    """A native ``sales_feedback`` event (schemas/events.py)."""
    return {
        "type": "sales_feedback",
        "event_id": event_id,
        "occurred_at": min(occurred_at, received_at).isoformat().replace("+00:00", "Z"),
        "received_at": received_at.isoformat().replace("+00:00", "Z"),
        "lead_id": lead_id,
        "outcome": outcome,
        "reason": reason[:4096],
        "source": source,
    }


class Seen:
    """The newest ``limit`` delivery ids: a replay within them is dropped at the door (the
    worker drops any other by its event id)."""

    def __init__(self, limit: int = 50_000) -> None:
        self.limit = limit
        self.ids: OrderedDict[str, None] = OrderedDict()

    def __contains__(self, key: str) -> bool:
        return key in self.ids

    def add(self, key: str) -> None:
        self.ids[key] = None
        self.ids.move_to_end(key)
        while len(self.ids) > self.limit:
            self.ids.popitem(last=False)
