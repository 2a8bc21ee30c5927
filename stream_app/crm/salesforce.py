"""Salesforce: Leads upserted in batches through ``simple-salesforce`` (OAuth 2.0, no password).

    POST  /services/oauth2/token                          client credentials (or a JWT bearer)
    GET   /services/data/v59.0/query?q=SELECT Id, <ext> FROM Lead WHERE <ext> IN (...)
    PATCH /services/data/v59.0/composite/sobjects/Lead/<ext>   up to 200 Leads, allOrNone false
    PATCH /services/data/v59.0/composite/sobjects              an erasure: fields set to null
    GET   /services/data/v59.0/sobjects/Lead/describe          --setup, readiness

A Lead is found by its External ID field (``Leadstream_Lead_Id__c``, unique),
which holds the lead id. Salesforce requires ``LastName`` and ``Company`` to
create a Lead and Leadstream knows neither, so the query first tells which
leads exist: a new one is created with ``[not provided]`` (Salesforce's own
placeholder) and its account id as the company; an existing one keeps its
name. Each record succeeds or fails alone (``allOrNone: false``): a failure
with a lock or limit code is retried, any other is that lead's dead letter.
``Status`` is written on a transition only (``fields``).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

import requests

from stream_app.config import Settings
from stream_app.crm.calls import CrmError, Permanent, RateLimit, Refused, Transient, bisect, safe
from stream_app.crm.calls import retry_after as parse_retry_after
from stream_app.crm.changes import Change
from stream_app.crm.fields import FIELDS, salesforce_record

log = logging.getLogger("leadstream.crm")

T = TypeVar("T")

#: sObject Collections take at most 200 records.
BATCH_LIMIT = 200
API_VERSION = "59.0"
PLACEHOLDER = "[not provided]"
#: Record errors that heal by themselves: the batch is retried.
TRANSIENT_CODES = frozenset(
    {
        "UNABLE_TO_LOCK_ROW",
        "REQUEST_LIMIT_EXCEEDED",
        "SERVER_UNAVAILABLE",
        "TXN_SECURITY_METERING_ERROR",
    }
)
_TYPES = {"text": "Text(255)", "number": "Number(18, 2)", "datetime": "Date/Time"}


class Redirected(requests.Session):
    """A session that sends every ``https://<host>`` call to ``base`` instead: simple-salesforce
    builds ``https://{domain}.salesforce.com`` and ``https://{instance}`` itself, and a local
    stand-in speaks plain HTTP on loopback. It also keeps the last answer (its
    ``Retry-After``: simple-salesforce's errors do not carry headers)."""

    def __init__(self, base: str | None) -> None:
        super().__init__()
        self.base = base.rstrip("/") if base else None
        self.last: requests.Response | None = None
        self.hooks["response"].append(self._keep)

    def _keep(self, response: requests.Response, *args: Any, **kwargs: Any) -> None:
        self.last = response

    def request(self, method: Any, url: Any, *args: Any, **kwargs: Any) -> Any:
        text = url.decode() if isinstance(url, bytes) else url
        if self.base is not None and text.startswith("https://"):
            path = text.split("/", 3)[3] if text.count("/") >= 3 else ""
            text = f"{self.base}/{path}"
        return super().request(method, text, *args, **kwargs)


def credentials(settings: Settings) -> dict[str, Any]:
    """simple-salesforce's login options: the client-credentials flow, else the JWT bearer
    (never a password: Salesforce retires the username-password flow)."""
    if not settings.salesforce_client_id or not settings.salesforce_domain:
        raise CrmError(
            "set LEADSTREAM_SALESFORCE_DOMAIN (your My Domain, e.g. acme.my) and "
            "LEADSTREAM_SALESFORCE_CLIENT_ID (the connected app's consumer key); see docs/crm.md"
        )
    options: dict[str, Any] = {
        "consumer_key": settings.salesforce_client_id,
        "domain": settings.salesforce_domain,
    }
    if settings.salesforce_username and settings.salesforce_private_key_path:
        return options | {
            "username": settings.salesforce_username,
            "privatekey_file": str(settings.salesforce_private_key_path),
        }
    if settings.salesforce_client_secret is not None:
        return options | {"consumer_secret": settings.salesforce_client_secret.get_secret_value()}
    raise CrmError(
        "set LEADSTREAM_SALESFORCE_CLIENT_SECRET (client credentials) or "
        "LEADSTREAM_SALESFORCE_USERNAME and LEADSTREAM_SALESFORCE_PRIVATE_KEY_PATH (JWT bearer)"
    )


def login(settings: Settings, session: Redirected) -> Any:
    """A ``simple_salesforce.Salesforce`` by the client-credentials flow, else the JWT bearer."""
    try:
        from simple_salesforce import Salesforce  # noqa: PLC0415
        from simple_salesforce.exceptions import SalesforceAuthenticationFailed  # noqa: PLC0415
    except ImportError as exc:
        raise CrmError("simple-salesforce is not installed: pip install 'leadstream[crm]'") from exc
    options = credentials(settings) | {"session": session, "version": API_VERSION}
    try:
        return Salesforce(**options)
    except SalesforceAuthenticationFailed as exc:
        raise Transient(f"login refused: {safe(str(exc), 300)}") from None
    except (requests.RequestException, OSError) as exc:
        raise Transient(f"login: {type(exc).__name__} (no answer)") from None


class Salesforce:
    name = "salesforce"

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.session = Redirected(settings.salesforce_base_url)
        self.sf: Any = None
        self.limit = min(settings.crm_batch_max, BATCH_LIMIT)
        self.rate = RateLimit(settings.crm_calls_per_ten_seconds)
        self.ext = settings.salesforce_external_id_field
        self.timeout = settings.crm_timeout_seconds
        self.calls = 0
        credentials(settings)  # a missing setting stops here, before any call

    def _client(self) -> Any:
        if self.sf is None:
            self.rate.wait()
            self.sf = login(self.settings, self.session)
        return self.sf

    def _call(self, fn: Callable[[Any], T]) -> T:
        from simple_salesforce.exceptions import SalesforceError  # noqa: PLC0415

        sf = self._client()
        self.rate.wait()
        self.calls += 1
        try:
            return fn(sf)
        except SalesforceError as exc:
            status = int(exc.status)
            text = _words(exc.content)
            last = self.session.last
            after = parse_retry_after(last.headers.get("Retry-After")) if last is not None else None
            if status == 401:
                self.sf = None  # the session expired beyond the client's own refresh: log in again
            if (
                status == 429
                or status >= 500
                or status in (401, 408)
                or "REQUEST_LIMIT_EXCEEDED" in text
            ):
                raise Transient(f"HTTP {status} {text}", after) from None
            raise Permanent(status, text) from None
        except (requests.RequestException, OSError) as exc:
            raise Transient(f"{type(exc).__name__} (no answer)") from None

    def check(self) -> None:
        self._call(lambda sf: sf.restful("sobjects/Lead/describe", timeout=self.timeout))

    def existing(self, leads: Sequence[str]) -> dict[str, str]:
        """Lead id -> Salesforce record id, for those that exist."""
        from simple_salesforce.format import format_soql  # noqa: PLC0415

        query = format_soql(
            f"SELECT Id, {self.ext} FROM Lead WHERE {self.ext} IN {{ids}}", ids=list(leads)
        )
        answer = self._call(lambda sf: sf.query_all(query, timeout=self.timeout))
        return {str(r[self.ext]): str(r["Id"]) for r in answer.get("records", [])}

    def write(self, changes: Sequence[Change]) -> list[Refused]:
        refused: list[Refused] = []
        erasures = [c for c in changes if c.erased]
        upserts = [c for c in changes if not c.erased]
        refused += bisect(upserts, self._upsert, lambda c: c.lead_id)
        if erasures:
            refused += bisect(erasures, self._erase, lambda c: c.lead_id)
        return refused

    def _upsert(self, changes: Sequence[Change]) -> list[Refused]:
        known = self.existing([c.lead_id for c in changes])
        records = []
        for change in changes:
            record = {
                "attributes": {"type": "Lead"},
                **salesforce_record(change, status=self.settings.salesforce_status),
            }
            if change.lead_id not in known:
                account = change.update.account_id if change.update is not None else None
                record |= {"LastName": PLACEHOLDER, "Company": account or PLACEHOLDER}
            records.append(record)
        path = f"composite/sobjects/Lead/{self.ext}"
        body = {"allOrNone": False, "records": records}
        answer = self._call(
            lambda sf: sf.restful(path, method="PATCH", json=body, timeout=self.timeout)
        )
        return self._results(changes, answer)

    def _erase(self, changes: Sequence[Change]) -> list[Refused]:
        known = self.existing([c.lead_id for c in changes])
        if not known:
            return []
        cleared = {f.salesforce: None for f in FIELDS}
        records = [{"attributes": {"type": "Lead"}, "Id": i, **cleared} for i in known.values()]
        body = {"allOrNone": False, "records": records}
        answer = self._call(
            lambda sf: sf.restful(
                "composite/sobjects", method="PATCH", json=body, timeout=self.timeout
            )
        )
        erased = [c for c in changes if c.lead_id in known]
        log.info("cleared Leadstream's fields of %d erased Lead(s)", len(erased))
        return self._results(erased, answer)

    def _results(self, changes: Sequence[Change], answer: Any) -> list[Refused]:
        if not isinstance(answer, list) or len(answer) != len(changes):
            raise Transient(f"an answer of {type(answer).__name__} for {len(changes)} record(s)")
        refused = []
        for change, result in zip(changes, answer, strict=True):
            if result.get("success"):
                continue
            errors = result.get("errors") or []
            codes = {e.get("statusCode") for e in errors}
            text = "; ".join(f"{e.get('statusCode')}: {e.get('message')}" for e in errors)
            if codes & TRANSIENT_CODES:
                raise Transient(text)
            refused.append(Refused(change.lead_id, safe(text or "refused without a reason")))
        return refused

    def setup(self) -> list[str]:
        """The Lead fields Leadstream writes: which exist, which to create (Setup, Object
        Manager, Lead, Fields & Relationships); created by hand, not by crm-sync."""
        describe = self._call(lambda sf: sf.restful("sobjects/Lead/describe", timeout=self.timeout))
        have = {f["name"]: f for f in describe.get("fields", [])}
        lines = []
        for f in FIELDS:
            if f.salesforce in have:
                ok = f.salesforce != self.ext or have[f.salesforce].get("externalId")
                lines.append(
                    f"field {f.salesforce}: there" + ("" if ok else " (not an External ID!)")
                )
            else:
                extra = ", External ID, Unique" if f.salesforce == self.ext else ""
                lines.append(
                    f"field {f.salesforce}: MISSING; create it: {f.label!r}, "
                    f"{_TYPES[f.kind]}{extra}"
                )
        if "Status" not in have:
            lines.append(
                "field Status: not in the Lead's describe (the integration user cannot see it)"
            )
        return lines

    def close(self) -> None:
        self.session.close()


def _words(content: Any) -> str:
    """Salesforce's own words from an error body (a list of {errorCode, message})."""
    if isinstance(content, list):
        return "; ".join(
            f"{e.get('errorCode') or e.get('statusCode')}: {e.get('message')}"
            for e in content
            if isinstance(e, dict)
        )
    return str(content)[:500]
