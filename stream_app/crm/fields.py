"""A lead's change -> what the CRM record gets (pure).

Leadstream's own properties (HubSpot) or custom fields (Salesforce) carry the
newest score update; the stage fields sales filters on (HubSpot's
``lifecyclestage`` and ``hs_lead_status``, Salesforce's Lead ``Status``) are
written only when a transition comes, so a rep's own status is not reset by
every score update, only by the next change of stage.

**HubSpot's lifecycle stage moves forward only.** Set to an earlier stage, it
keeps its value, silently; HubSpot documents the way back: clear it, then set
it, in two requests. A transition whose lifecycle value ranks below the one
the lead had (a recycled SQL: ``salesqualifiedlead`` -> ``lead``) is not
written unless ``LEADSTREAM_HUBSPOT_LIFECYCLE_BACKWARD``; ``hs_lead_status``
and ``leadstream_stage`` say what happened either way.

An erasure clears every Leadstream property or field (``cleared``), the id
property too, and leaves the CRM's own (lifecycle stage, lead status, the
contact itself: the CRM's owner erases those in the CRM).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

from stream_app.crm.changes import Change

#: HubSpot's default lifecycle stages in their order (a custom stage ranks last, as "other").
LIFECYCLE_ORDER = (
    "subscriber",
    "lead",
    "marketingqualifiedlead",
    "salesqualifiedlead",
    "opportunity",
    "customer",
    "evangelist",
    "other",
)

#: The HubSpot property group Leadstream's properties live in (``crm-sync --setup``).
HUBSPOT_GROUP = "leadstream"

Kind = Literal["text", "number", "datetime"]


@dataclass(frozen=True)
class Field:
    """One thing Leadstream writes: its HubSpot property, its Salesforce field."""

    hubspot: str
    salesforce: str
    label: str
    kind: Kind
    description: str


FIELDS: tuple[Field, ...] = (
    Field(
        "leadstream_lead_id",
        "Leadstream_Lead_Id__c",
        "Leadstream lead id",
        "text",
        "The lead's id in Leadstream (unique; what crm-sync upserts by)",
    ),
    Field(
        "leadstream_score", "Leadstream_Score__c", "Leadstream score", "number", "fit + engagement"
    ),
    Field("leadstream_fit", "Leadstream_Fit__c", "Leadstream fit", "number", "explicit score"),
    Field(
        "leadstream_engagement",
        "Leadstream_Engagement__c",
        "Leadstream engagement",
        "number",
        "implicit (behavioural) score, decayed",
    ),
    Field("leadstream_grade", "Leadstream_Grade__c", "Leadstream grade", "text", "fit grade, A-D"),
    Field(
        "leadstream_stage",
        "Leadstream_Stage__c",
        "Leadstream stage",
        "text",
        "lead, mql, pql, sql, sales_accepted, opportunity, customer, recycled, disqualified",
    ),
    Field(
        "leadstream_reason",
        "Leadstream_Reason__c",
        "Leadstream reason",
        "text",
        "why the stage last moved (score_threshold, hand_raise, decay, ...) and its detail",
    ),
    Field(
        "leadstream_mql_at", "Leadstream_MQL_At__c", "Leadstream MQL time", "datetime", "first MQL"
    ),
    Field(
        "leadstream_sql_at", "Leadstream_SQL_At__c", "Leadstream SQL time", "datetime", "first SQL"
    ),
    Field(
        "leadstream_transition_id",
        "Leadstream_Transition_Id__c",
        "Leadstream last transition id",
        "text",
        "the last stage transition written (lead_stage_transitions)",
    ),
    Field(
        "leadstream_rules_version",
        "Leadstream_Rules_Version__c",
        "Leadstream rules version",
        "text",
        "the scoring rules' version",
    ),
    Field(
        "leadstream_version",
        "Leadstream_Version__c",
        "Leadstream version",
        "number",
        "the score update's version (grows by one per change of the lead)",
    ),
)
BY_HUBSPOT = {f.hubspot: f for f in FIELDS}


def _time(moment: datetime | None) -> str | None:
    return None if moment is None else moment.isoformat().replace("+00:00", "Z")


def _number(value: float) -> str:
    return f"{value:g}" if abs(value) < 1e15 else str(value)


def values(change: Change) -> dict[str, str | None]:
    """The Leadstream values of ``change`` by HubSpot property name (None: clear it); the
    lead id always. Fields the change says nothing about are absent."""
    out: dict[str, str | None] = {"leadstream_lead_id": change.lead_id}
    if change.erased:
        return {f.hubspot: None for f in FIELDS}
    update = change.update
    if update is not None:
        out |= {
            "leadstream_score": _number(update.scores.total),
            "leadstream_fit": _number(update.scores.fit),
            "leadstream_engagement": _number(update.scores.engagement),
            "leadstream_grade": update.scores.grade,
            "leadstream_stage": update.stage,
            "leadstream_mql_at": _time(update.mql_at),
            "leadstream_sql_at": _time(update.sql_at),
            "leadstream_rules_version": update.rules_version,
            "leadstream_version": str(update.version),
        }
    transition = change.transition
    if transition is not None:
        reason = transition.reason + (f": {transition.detail}" if transition.detail else "")
        out |= {
            "leadstream_reason": reason[:255],
            "leadstream_transition_id": transition.transition_id,
        }
        if update is None:
            out["leadstream_stage"] = transition.to_stage
    return out


def rank(lifecycle: str) -> int:
    return (
        LIFECYCLE_ORDER.index(lifecycle) if lifecycle in LIFECYCLE_ORDER else len(LIFECYCLE_ORDER)
    )


@dataclass(frozen=True)
class HubSpotWrite:
    """A contact's properties, and whether its lifecycle stage is cleared in a call before."""

    lead_id: str
    properties: dict[str, str]
    clear_lifecycle_first: bool = False
    erase: bool = False


def hubspot_write(
    change: Change,
    *,
    lifecycle: dict[str, str],
    lead_status: dict[str, str],
    backward: bool,
) -> HubSpotWrite:
    """What one contact gets (module docstring); HubSpot clears a property set to ''."""
    props = {name: "" if value is None else value for name, value in values(change).items()}
    if change.erased:
        return HubSpotWrite(change.lead_id, props, erase=True)
    clear_first = False
    transition = change.transition
    if transition is not None:
        status = lead_status.get(transition.to_stage)
        if status is not None:
            props["hs_lead_status"] = status
        target = lifecycle.get(transition.to_stage)
        before = lifecycle.get(change.first_from or transition.from_stage)
        if target is not None:
            going_back = before is not None and rank(target) < rank(before)
            if not going_back:
                props["lifecyclestage"] = target
            elif backward:
                props["lifecyclestage"] = target
                clear_first = True
    return HubSpotWrite(change.lead_id, props, clear_lifecycle_first=clear_first)


def salesforce_record(change: Change, *, status: dict[str, str]) -> dict[str, Any]:
    """The Lead's fields (None: cleared); numbers as numbers, times as ISO 8601."""
    record: dict[str, Any] = {}
    for name, value in values(change).items():
        field = BY_HUBSPOT[name]
        if value is not None and field.kind == "number":
            record[field.salesforce] = float(value) if name != "leadstream_version" else int(value)
        else:
            record[field.salesforce] = value
    if change.transition is not None and not change.erased:
        mapped = status.get(change.transition.to_stage)
        if mapped is not None:
            record["Status"] = mapped
    return record
