"""HubSpot: contacts upserted in batches through ``hubspot-api-client`` (a private app's token).

    POST /crm/v3/objects/contacts/batch/upsert   <= 100 contacts, by LEADSTREAM_HUBSPOT_ID_PROPERTY
    POST /crm/v3/objects/contacts/batch/read     an erasure: which contacts hold the leads
    POST /crm/v3/objects/contacts/batch/update   ... then their Leadstream properties cleared
    GET  /crm/v3/objects/contacts?limit=1       readiness: the token is taken
    GET/POST /crm/v3/properties/contacts[/groups|/batch/create]   --setup

A contact is found by a unique property whose value is the lead id
(``leadstream_lead_id`` by default, which ``--setup`` creates with unique
values; ``email`` when lead ids are addresses). A lifecycle stage moved back
is cleared in one upsert and set in the next (``fields``: HubSpot's documented
way; its batch does not promise an order within one call).

Scopes: ``crm.objects.contacts.read``, ``crm.objects.contacts.write``, and
for ``--setup`` ``crm.schemas.contacts.read`` and ``crm.schemas.contacts.write``.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

from urllib3.exceptions import HTTPError
from urllib3.util.retry import Retry

from stream_app.config import Settings
from stream_app.crm.calls import CrmError, Permanent, RateLimit, Refused, Transient, bisect
from stream_app.crm.calls import retry_after as parse_retry_after
from stream_app.crm.changes import Change
from stream_app.crm.fields import FIELDS, HUBSPOT_GROUP, HubSpotWrite, hubspot_write

log = logging.getLogger("leadstream.crm")

T = TypeVar("T")

#: HubSpot's limit on inputs in one batch call.
BATCH_LIMIT = 100

_TYPES = {
    "text": ("string", "text"),
    "number": ("number", "number"),
    "datetime": ("datetime", "date"),
}


def client(settings: Settings) -> Any:
    """The vendor's client on LEADSTREAM_HUBSPOT_BASE_URL, its own retries off (ours back off
    and honour Retry-After)."""
    try:
        import hubspot  # noqa: PLC0415
    except ImportError as exc:
        raise CrmError(
            "hubspot-api-client is not installed: pip install 'leadstream[crm]'"
        ) from exc
    if settings.hubspot_token is None:
        raise CrmError(
            "set LEADSTREAM_HUBSPOT_TOKEN to your private app's access token; see "
            "`crm-sync --help` and docs/crm.md"
        )
    return hubspot.Client.create(
        access_token=settings.hubspot_token.get_secret_value(),
        host=settings.hubspot_base_url.rstrip("/"),
        retry=Retry(total=0, raise_on_status=False),
    )


def api_errors() -> tuple[type[Exception], ...]:
    from hubspot.crm.associations.v4 import ApiException as AssociationsError  # noqa: PLC0415
    from hubspot.crm.contacts import ApiException as ContactsError  # noqa: PLC0415
    from hubspot.crm.properties import ApiException as PropertiesError  # noqa: PLC0415

    return ContactsError, PropertiesError, AssociationsError


def message_of(body: Any) -> str:
    """HubSpot's own words from an error body (``message``, its ``errors``' messages)."""
    try:
        data = json.loads(body)
    except (TypeError, ValueError):
        return str(body or "")[:500]
    if not isinstance(data, dict):
        return str(data)[:500]
    text = str(data.get("message") or data.get("category") or "")
    details = [e.get("message") for e in data.get("errors") or [] if isinstance(e, dict)]
    return "; ".join([text, *[str(d) for d in details if d and d != text]])


def call(fn: Callable[[], T], rate: RateLimit, errors: tuple[type[Exception], ...]) -> T:
    """One call: rate-limited; its failure sorted into ``Transient`` or ``Permanent``."""
    rate.wait()
    try:
        return fn()
    except errors as exc:
        status = int(getattr(exc, "status", 0) or 0)
        headers = getattr(exc, "headers", None) or {}
        text = message_of(getattr(exc, "body", None))
        if status == 429:
            raise Transient(
                f"HTTP 429 {text}", parse_retry_after(headers.get("Retry-After"))
            ) from None
        if status >= 500 or status in (0, 401, 403, 408):
            raise Transient(f"HTTP {status} {text}".rstrip()) from None
        raise Permanent(status, text) from None
    except (HTTPError, OSError) as exc:
        raise Transient(f"{type(exc).__name__} (no answer)") from None


class HubSpot:
    name = "hubspot"

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.client = client(settings)
        self.contacts = self.client.crm.contacts.batch_api
        self.errors = api_errors()
        self.limit = min(settings.crm_batch_max, BATCH_LIMIT)
        self.rate = RateLimit(settings.crm_calls_per_ten_seconds)
        self.id_property = settings.hubspot_id_property
        self.timeout = settings.crm_timeout_seconds
        self.calls = 0

    def _call(self, fn: Callable[[], T]) -> T:
        self.calls += 1
        return call(fn, self.rate, self.errors)

    def check(self) -> None:
        basic = self.client.crm.contacts.basic_api
        self._call(lambda: basic.get_page(limit=1, _request_timeout=self.timeout))

    def write(self, changes: Sequence[Change]) -> list[Refused]:
        writes = [
            hubspot_write(
                c,
                lifecycle=self.settings.hubspot_lifecycle,
                lead_status=self.settings.hubspot_lead_status,
                backward=self.settings.hubspot_lifecycle_backward,
            )
            for c in changes
        ]
        refused: list[Refused] = []
        erasures = [w for w in writes if w.erase]
        upserts = [w for w in writes if not w.erase]
        back = [w for w in upserts if w.clear_lifecycle_first]
        if back:  # HubSpot's way back: clear the lifecycle stage, then set it (next call)
            cleared = [HubSpotWrite(w.lead_id, {"lifecyclestage": ""}) for w in back]
            refused += bisect(cleared, self._upsert, lambda w: w.lead_id)
        gone = {r.lead_id for r in refused}
        refused += bisect(
            [w for w in upserts if w.lead_id not in gone], self._upsert, lambda w: w.lead_id
        )
        if erasures:
            refused += self._erase([w.lead_id for w in erasures])
        return refused

    def _read(self, body: Any) -> Any:
        return self._call(lambda: self.contacts.read(body, _request_timeout=self.timeout))

    def _upsert(self, writes: Sequence[HubSpotWrite]) -> list[Refused]:
        from hubspot.crm.contacts import (  # noqa: PLC0415
            BatchInputSimplePublicObjectBatchInputUpsert,
            SimplePublicObjectBatchInputUpsert,
        )

        body = BatchInputSimplePublicObjectBatchInputUpsert(
            inputs=[
                SimplePublicObjectBatchInputUpsert(
                    id_property=self.id_property, id=w.lead_id, properties=w.properties
                )
                for w in writes
            ]
        )
        self._call(lambda: self.contacts.upsert(body, _request_timeout=self.timeout))
        return []

    def _erase(self, leads: list[str]) -> list[Refused]:
        """Find the contacts (by the id property), then clear every Leadstream property."""
        from hubspot.crm.contacts import (  # noqa: PLC0415
            BatchInputSimplePublicObjectBatchInput,
            BatchReadInputSimplePublicObjectId,
            SimplePublicObjectBatchInput,
            SimplePublicObjectId,
        )

        found: list[str] = []
        for start in range(0, len(leads), self.limit):
            body = BatchReadInputSimplePublicObjectId(
                id_property=self.id_property,
                inputs=[
                    SimplePublicObjectId(id=lead) for lead in leads[start : start + self.limit]
                ],
                properties=[self.id_property],
                properties_with_history=[],
            )
            answer = self._read(body)
            found += [str(r.id) for r in answer.results or []]
        if not found:
            return []
        cleared = {f.hubspot: "" for f in FIELDS}
        body = BatchInputSimplePublicObjectBatchInput(
            inputs=[SimplePublicObjectBatchInput(id=i, properties=cleared) for i in found]
        )
        self._call(lambda: self.contacts.update(body, _request_timeout=self.timeout))
        log.info("cleared Leadstream's properties of %d erased contact(s)", len(found))
        return []

    def setup(self) -> list[str]:
        """The property group and every Leadstream property, created where missing."""
        from hubspot.crm.properties import (  # noqa: PLC0415
            BatchInputPropertyCreate,
            PropertyCreate,
            PropertyGroupCreate,
        )

        api = self.client.crm.properties
        lines = []
        groups = self._call(lambda: api.groups_api.get_all(object_type="contacts"))
        if HUBSPOT_GROUP in {g.name for g in groups.results or []}:
            lines.append(f"property group {HUBSPOT_GROUP!r}: already there")
        else:
            group = PropertyGroupCreate(name=HUBSPOT_GROUP, label="Leadstream", display_order=-1)
            self._call(lambda: api.groups_api.create("contacts", group))
            lines.append(f"property group {HUBSPOT_GROUP!r}: created")
        existing = self._call(lambda: api.core_api.get_all(object_type="contacts"))
        have = {p.name for p in existing.results or []}
        missing = [f for f in FIELDS if f.hubspot not in have]
        for f in FIELDS:
            if f.hubspot in have:
                lines.append(f"property {f.hubspot}: already there")
        if missing:
            inputs = [
                PropertyCreate(
                    name=f.hubspot,
                    label=f.label,
                    type=_TYPES[f.kind][0],
                    field_type=_TYPES[f.kind][1],
                    group_name=HUBSPOT_GROUP,
                    description=f.description,
                    has_unique_value=f.hubspot == "leadstream_lead_id",
                    form_field=False,
                )
                for f in missing
            ]
            self._call(
                lambda: api.batch_api.create("contacts", BatchInputPropertyCreate(inputs=inputs))
            )
            lines += [f"property {f.hubspot}: created" for f in missing]
        if self.id_property not in have | {f.hubspot for f in FIELDS} | {"email"}:
            lines.append(
                f"warning: LEADSTREAM_HUBSPOT_ID_PROPERTY={self.id_property!r} is not a contact "
                "property of this account (it must exist and have unique values)"
            )
        return lines

    def close(self) -> None:
        """The vendor's client keeps a urllib3 pool per API object; nothing to flush."""


class HubSpotLeads:
    """Which leads HubSpot's objects are, for ``collect``'s webhooks (read through the API)."""

    def __init__(self, settings: Settings) -> None:
        self.client = client(settings)
        self.errors = api_errors()
        self.rate = RateLimit(settings.crm_calls_per_ten_seconds)
        self.id_property = settings.hubspot_id_property
        self.timeout = settings.crm_timeout_seconds

    def of_contacts(self, contact_ids: Sequence[str]) -> dict[str, str]:
        """Contact id -> lead id, for the contacts that carry one (Transient on failure)."""
        from hubspot.crm.contacts import (  # noqa: PLC0415
            BatchReadInputSimplePublicObjectId,
            SimplePublicObjectId,
        )

        wanted = sorted({"leadstream_lead_id", self.id_property})
        out: dict[str, str] = {}
        ids = sorted(set(contact_ids))
        for start in range(0, len(ids), BATCH_LIMIT):
            body = BatchReadInputSimplePublicObjectId(
                inputs=[SimplePublicObjectId(id=i) for i in ids[start : start + BATCH_LIMIT]],
                properties=wanted,
                properties_with_history=[],
            )
            answer = self._read(body)
            for result in answer.results or []:
                props = result.properties or {}
                lead = props.get("leadstream_lead_id") or props.get(self.id_property)
                if lead:
                    out[str(result.id)] = str(lead)
        return out

    def _read(self, body: Any) -> Any:
        batch = self.client.crm.contacts.batch_api
        return self._call(lambda: batch.read(body, _request_timeout=self.timeout))

    def contacts_of_deals(self, deal_ids: Sequence[str]) -> dict[str, list[str]]:
        from hubspot.crm.associations.v4 import (  # noqa: PLC0415
            BatchInputPublicFetchAssociationsBatchRequest,
            PublicFetchAssociationsBatchRequest,
        )

        body = BatchInputPublicFetchAssociationsBatchRequest(
            inputs=[PublicFetchAssociationsBatchRequest(id=d) for d in sorted(set(deal_ids))]
        )
        batch = self.client.crm.associations.v4.batch_api
        answer = self._call(
            lambda: batch.get_page("deals", "contacts", body, _request_timeout=self.timeout)
        )
        return {
            str(r._from.id): [str(t.to_object_id) for t in r.to or []] for r in answer.results or []
        }

    def _call(self, fn: Callable[[], T]) -> T:
        try:
            return call(fn, self.rate, self.errors)
        except Permanent as exc:  # e.g. a revoked scope: HubSpot retries the webhook later
            raise Transient(f"HTTP {exc.status} {exc.text}") from None
