"""Segment-spec messages to native events: a pure function, and the track-name mapping.

RudderStack, Segment, Jitsu and Customer.io Data Pipelines write the Segment
spec (``schemas.segment``); ``from_segment`` turns one such message into the
native event it means, validated by the native model (which still forbids
unknown fields: only the fields named here are carried over). Three outcomes,
as values:

- a native event (``schemas.events``);
- ``Ignored``: a valid message no rule could use, counted per name, not a
  dead letter (a real stream carries hundreds of ``track`` names no rule
  scores, and screens);
- ``Rejected``: malformed (no id, no time, no subject, a bad field of the
  mapped event), a dead letter with the reason.

What maps to what (the README's "Connect your pipeline" has the table):

- ``messageId`` → ``event_id``; ``receivedAt - (sentAt - originalTimestamp)``
  (Segment's clock-skew correction, ``event_time``), else ``timestamp``, else
  ``originalTimestamp`` → ``occurred_at``; ``receivedAt`` → ``received_at``
  (which bounds it, ``codec.decode``); ``userId`` → ``lead_id``;
  ``anonymousId`` → ``anonymous_id``; ``context.campaign`` → ``utm`` and
  ``campaign``.
- ``page`` → ``page_view`` (``properties`` first, then ``context.page``;
  ``context.location.country``; RudderStack's ``context.sessionId``).
- ``identify`` → ``identify`` with both ids, else ``profile_update``; traits
  from ``context.traits`` (RudderStack) overlaid by top-level ``traits``
  (Segment), snake_case or camelCase.
- E-mail providers identify people by address: a message with neither id
  but an address (``properties.email``, ``traits.email``) is the anonymous
  visitor ``email_subject(address)``; a message with ``userId``, an address
  and no ``anonymousId`` (a server-side identify, a provider's event that
  names the user) carries that pseudonym as its anonymous id, which links it
  to the lead.
- ``alias`` → ``identify`` (``previousId`` is the anonymous id).
- ``group`` → ``profile_update`` of the lead's account (``groupId`` and the
  company traits).
- ``track`` → by name through ``stream_app.ingest.tracks.Tracks``
  (``segment_tracks.yaml`` ships the defaults; ``LEADSTREAM_TRACKS_PATH``
  replaces them).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal
from urllib.parse import urlsplit

from pydantic import ValidationError

from schemas.events import EVENT_ADAPTER, EVENT_TYPES, InboundEvent, Profile
from schemas.segment import (
    SEGMENT_ADAPTER,
    SEGMENT_TYPES,
    SegmentAlias,
    SegmentBase,
    SegmentEvent,
    SegmentGroup,
    SegmentIdentify,
    SegmentPage,
    SegmentScreen,
    SegmentTrack,
)
from stream_app.ingest.tracks import Tracks
from stream_app.scoring.identity import email_pseudonym

_SEGMENT_TYPE = re.compile(rb'"type"\s*:\s*"(?:%s)"' % "|".join(sorted(SEGMENT_TYPES)).encode())
_SEGMENT_KEY = re.compile(rb'"(?:messageId|anonymousId|userId)"\s*:')


def looks_like_segment(raw: bytes, native_reason: str) -> bool:
    """Whether a message the native models refused is Segment-spec (asked only then: the
    native path is the hot one). ``identify`` is both a native and a Segment type; a
    Segment one has the camelCase keys no native event may carry."""
    if native_reason == "unknown_type":
        return _SEGMENT_TYPE.search(raw) is not None
    return native_reason in ("invalid", "invalid_id") and _SEGMENT_KEY.search(raw) is not None


@dataclass(frozen=True)
class Ignored:
    """A valid message that maps to no native event (counted per ``name``)."""

    kind: Literal["track", "screen", "alias"]
    name: str

    @property
    def label(self) -> str:
        """The name as a metric label: bounded, one line, without the metric syntax's ``|``."""
        return re.sub(r"[|\x00-\x1f]+", " ", f"{self.kind}:{self.name}")[:100]


@dataclass(frozen=True)
class Rejected:
    """A malformed message: a dead letter with this reason (``invalid_id``: an id outside
    the id alphabet, ``schemas.base.Id``)."""

    error: str
    reason: Literal["invalid", "invalid_id"] = "invalid"


Mapped = InboundEvent | Ignored | Rejected


# --- the mapping --------------------------------------------------------------------------


def from_segment(data: bytes | str | dict[str, Any], tracks: Tracks) -> Mapped:
    """One Segment-spec message (JSON or a dict) as a native event, ``Ignored`` or ``Rejected``."""
    try:
        message: SegmentEvent = (
            SEGMENT_ADAPTER.validate_python(data)
            if isinstance(data, dict)
            else SEGMENT_ADAPTER.validate_json(data)
        )
    except ValidationError as exc:
        return Rejected(f"segment {_type_of(data)}: {_describe(exc)}", _reason(exc))
    if isinstance(message, SegmentScreen):
        return Ignored("screen", message.name or "")
    native: dict[str, Any] | Ignored
    if isinstance(message, SegmentPage):
        native = _page(message)
    elif isinstance(message, SegmentTrack):
        native = _track(message, tracks)
    elif isinstance(message, SegmentIdentify):
        native = _identify(message)
    elif isinstance(message, SegmentAlias):
        native = _alias(message)
    else:
        native = _group(message)
    if isinstance(native, Ignored):
        return native
    try:
        return EVENT_ADAPTER.validate_python(native)
    except ValidationError as exc:
        return Rejected(
            f"segment {message.type} as {native['type']}: {_describe(exc)}", _reason(exc)
        )


def _type_of(data: bytes | str | dict[str, Any]) -> str:
    if isinstance(data, dict):
        return str(data.get("type"))[:20]
    match = re.search(rb'"type"\s*:\s*"(\w{1,20})"', data if isinstance(data, bytes) else b"")
    return match.group(1).decode() if match else "message"


def _reason(exc: ValidationError) -> Literal["invalid", "invalid_id"]:
    invalid_id = any(err["type"] == "invalid_id" for err in exc.errors(include_url=False))
    return "invalid_id" if invalid_id else "invalid"


def _describe(exc: ValidationError) -> str:
    parts = []
    for err in exc.errors(include_url=False)[:5]:
        loc = [str(p) for p in err["loc"]]
        if loc and loc[0] in ("page", "screen", "track", "identify", "alias", "group"):
            loc = loc[1:]  # the union tag
        elif loc and loc[0] in EVENT_TYPES:
            loc = loc[1:]
        parts.append(f"{'.'.join(loc) or '(message)'}: {err['msg']}")
    return "; ".join(parts)


def email_subject(address: str) -> str:
    """The pseudonymous anonymous id of an e-mail address: ``email:`` and 32 hex digits of
    the SHA-256 of the trimmed, lower-cased address. Events that carry only an address
    gather under it; an identify with ``userId`` and ``traits.email`` (and no
    ``anonymousId``) links it to the lead, as a cookie is linked, and so does any event
    that tells a lead's address (``scoring.identity.email_link``). The address itself is
    never an id, a key, a log line or a metric label."""
    return email_pseudonym(address)


def event_time(message: SegmentBase) -> datetime | None:
    """Segment's clock-skew correction: ``receivedAt - (sentAt - originalTimestamp)``.

    A device's clock may be off by minutes or years; the time between its
    ``originalTimestamp`` and its ``sentAt`` is not, so that age is taken back from the
    server's ``receivedAt``. Without the three, the message's ``timestamp`` (a pipeline's
    corrected time), else ``originalTimestamp``, as given: the worker then bounds it by
    the time the message arrived (``codec.decode``). None: the correction falls outside
    the calendar (then the mapped event is rejected as having no time).
    """
    original, sent, received = message.originalTimestamp, message.sentAt, message.receivedAt
    if original is None or sent is None or received is None:
        return message.timestamp or original
    try:
        return received - (sent - original)
    except OverflowError:
        return None


def _common(message: SegmentBase, type_: str) -> dict[str, Any]:
    out: dict[str, Any] = {
        "type": type_,
        "event_id": message.messageId,
        "occurred_at": event_time(message),
        "received_at": message.receivedAt,
    }
    if message.userId is not None:
        out["lead_id"] = message.userId
    if message.anonymousId is not None:
        out["anonymous_id"] = message.anonymousId
    else:
        address = message.email()
        if address is not None:
            # An e-mail provider's event: only the address says who, or, with a userId,
            # the address's pseudonym is linked to that lead as a cookie is (an erase by
            # the address then finds the lead).
            out["anonymous_id"] = email_subject(address)
    campaign = message.context.campaign if message.context else None
    if campaign is not None:
        utm = {
            "source": campaign.source,
            "medium": campaign.medium,
            "campaign": campaign.name,
            "term": campaign.term,
            "content": campaign.content,
        }
        utm = {k: v for k, v in utm.items() if v is not None}
        if utm:
            out["utm"] = utm
        if campaign.name is not None:
            out["campaign"] = campaign.name
    return out


def _text(value: object) -> str | None:
    if isinstance(value, str):
        return value or None
    if isinstance(value, int | float) and not isinstance(value, bool):
        return str(value)
    return None


def _page(message: SegmentPage) -> dict[str, Any]:
    props = message.properties
    context = message.context
    page = context.page if context and context.page else None
    out = _common(message, "page_view")
    url = _text(props.get("url")) or (page.url if page else None)
    path = _text(props.get("path")) or (page.path if page else None)
    if path is None and url is not None:
        path = urlsplit(url).path or "/"
    fields = {
        "path": path,
        "url": url,
        "title": _text(props.get("title")) or (page.title if page else None) or message.name,
        "referrer": _text(props.get("referrer")) or (page.referrer if page else None),
        "session_id": context.sessionId if context else None,
        "country": context.location.country if context and context.location else None,
    }
    out.update({k: v for k, v in fields.items() if v is not None})
    return out


def _track(message: SegmentTrack, tracks: Tracks) -> dict[str, Any] | Ignored:
    rule = tracks.tracks.get(message.event)
    if rule is None:
        return Ignored("track", message.event)
    out = _common(message, rule.type)
    out.update(rule.set)
    document = message.model_dump(mode="python")
    for name, paths in rule.fields.items():
        for path in paths:
            value = _at(document, path)
            if value is not None and value != "":
                out[name] = value
                break
    return out


def _at(document: Any, path: str) -> Any:
    for part in path.split("."):
        if not isinstance(document, dict):
            return None
        document = document.get(part)
    return document


# --- traits -------------------------------------------------------------------------------


def _camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(p.title() for p in rest)


def _get(traits: dict[str, Any], *names: str) -> Any:
    """The first of ``names`` present, in snake_case or camelCase (``employee_count``,
    ``employeeCount``); dotted names look inside objects (``company.name``)."""
    for name in names:
        document: Any = traits
        for part in name.split("."):
            if not isinstance(document, dict):
                document = None
                break
            found = document.get(part)
            if found is None:
                found = document.get(_camel(part))
            document = found
        if document is not None and document != "":
            return document
    return None


def _traits(message: SegmentIdentify | SegmentGroup) -> dict[str, Any]:
    """RudderStack's ``context.traits`` overlaid by Segment's top-level ``traits``."""
    merged: dict[str, Any] = {}
    if message.context is not None and message.context.traits:
        merged.update(message.context.traits)
    if message.traits:
        merged.update(message.traits)
    return merged


def _profile(traits: dict[str, Any]) -> dict[str, Any]:
    """Profile fields found in the traits. A trait that the profile model refuses (an
    address without an '@', a size in words) is left out: the rest still counts."""
    company = traits.get("company")
    candidate = {
        "email": _get(traits, "email"),
        "job_title": _get(traits, "job_title", "title"),
        "seniority": _get(traits, "seniority"),
        "department": _get(traits, "department"),
        "industry": _get(traits, "industry", "company.industry"),
        "company_name": (company if isinstance(company, str) else None)
        or _get(traits, "company.name", "company_name"),
        "account_id": _get(traits, "account_id", "company.id"),
        "company_size": _get(
            traits,
            "company.employee_count",
            "company.employees",
            "employee_count",
            "employees",
            "company_size",
        ),
        "annual_revenue": _get(traits, "annual_revenue", "company.annual_revenue"),
        "country": _get(traits, "address.country", "country"),
        "budget": _get(traits, "budget"),
        "authority": _get(traits, "authority"),
        "need": _get(traits, "need"),
        "timeline": _get(traits, "timeline"),
    }
    if isinstance(candidate["seniority"], str):
        candidate["seniority"] = candidate["seniority"].lower()
    for name in ("account_id", "company_name", "industry", "country", "job_title"):
        if isinstance(candidate[name], int | float) and not isinstance(candidate[name], bool):
            candidate[name] = str(candidate[name])
    profile = {k: v for k, v in candidate.items() if v is not None}
    for _ in range(len(profile) + 1):
        try:
            return Profile.model_validate(profile).model_dump(exclude_none=True)
        except ValidationError as exc:
            for err in exc.errors(include_url=False):
                profile.pop(str(err["loc"][0]), None)
    return {}  # pragma: no cover  (every pass drops at least one field)


def _identify(message: SegmentIdentify) -> dict[str, Any]:
    profile = _profile(_traits(message))
    out = _common(message, "identify")  # a server-side identify: the address's pseudonym
    if "lead_id" in out and "anonymous_id" in out:
        if profile:
            out["traits"] = profile
        return out
    return {**_common(message, "profile_update"), **profile}


def _alias(message: SegmentAlias) -> dict[str, Any] | Ignored:
    previous = message.previousId or message.anonymousId
    if message.userId is None or previous is None or previous == message.userId:
        return Ignored("alias", "no previous id")
    out = _common(message, "identify")
    out["anonymous_id"] = previous
    return out


def _group(message: SegmentGroup) -> dict[str, Any]:
    traits = _traits(message)
    profile = _profile(
        {
            "company": {
                "name": _get(traits, "name", "company.name"),
                "industry": _get(traits, "industry"),
                "employees": _get(traits, "employees", "employee_count", "company_size"),
                "annual_revenue": _get(traits, "annual_revenue"),
            },
            "address": traits.get("address"),
        }
    )
    if message.groupId is not None:
        profile["account_id"] = message.groupId
    return {**_common(message, "profile_update"), **profile}
