"""``collect``'s CRM routes: HubSpot webhooks, Salesforce Outbound Messages -> ``sales_feedback``.

    POST /v1/webhooks/hubspot                  LEADSTREAM_HUBSPOT_APP_SECRET (signature v3)
    POST /v1/webhooks/salesforce/<secret>      LEADSTREAM_SALESFORCE_OUTBOUND_SECRET and/or
    POST /v1/webhooks/salesforce               LEADSTREAM_SALESFORCE_ORG_IDS

The pure parts (signature, parsing, outcome) are ``stream_app.crm.webhooks``. A
HubSpot event names a contact or a deal by its HubSpot id: the contact's lead is
read from HubSpot (``HubSpotLeads``, with LEADSTREAM_HUBSPOT_TOKEN), a deal's
through its contacts. An answer is 200 once every outcome is on the input topic
(acknowledged by the broker); a CRM that cannot be asked, or a broker that does
not acknowledge, gives a 503, and HubSpot and Salesforce deliver again. A bad
signature or an unknown object is refused with a clear error (401, 400), and
every answer is counted (``leadstream_collect_webhooks_total{crm,result}``).
Bodies are never logged (they carry e-mail addresses).
"""

from __future__ import annotations

import asyncio
import hmac
import json
import logging
import time
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from aiohttp import web
from aiokafka.errors import KafkaError
from prometheus_client import Counter

from schemas.dead_letter import DeadLetter
from stream_app.codec import decode
from stream_app.crm.calls import CrmError, Transient
from stream_app.crm.webhooks import (
    ACK,
    Refused,
    Seen,
    feedback,
    hubspot_events,
    hubspot_outcome,
    outbound_message,
    salesforce_outcome,
    soap_fault,
    verify_hubspot,
)
from stream_app.topics import TopicNames

if TYPE_CHECKING:
    from stream_app.crm.hubspot import HubSpotLeads

log = logging.getLogger("leadstream.collect")

ACK_TIMEOUT_SECONDS = 15.0
MAX_WEBHOOK_BYTES = 1024 * 1024


class CrmWebhooks:
    def __init__(self, collector: Any) -> None:
        """``collector``: collect's ``Collector`` (its settings, registry, tracks, producer)."""
        self.collector = collector
        self.settings = collector.settings
        self.topic = TopicNames.of(self.settings).input_for("sales_feedback")
        self.seen = Seen()
        self._leads: HubSpotLeads | None = None
        self.answers = Counter(
            "leadstream_collect_webhooks",
            "CRM webhook requests, by CRM and result",
            ["crm", "result"],
            registry=collector.registry,
        )
        self.outcomes = Counter(
            "leadstream_collect_webhook_events",
            "CRM webhook events, by CRM and what became of them",
            ["crm", "fate"],
            registry=collector.registry,
        )

    def routes(self, app: web.Application) -> None:
        app.router.add_post("/v1/webhooks/hubspot", self.hubspot)
        app.router.add_post("/v1/webhooks/salesforce", self.salesforce)
        app.router.add_post("/v1/webhooks/salesforce/{secret}", self.salesforce)

    def leads(self) -> HubSpotLeads:
        if self._leads is None:
            from stream_app.crm.hubspot import HubSpotLeads  # noqa: PLC0415

            self._leads = HubSpotLeads(self.settings)
        return self._leads

    # --- HubSpot -----------------------------------------------------------------------

    async def hubspot(self, request: web.Request) -> web.Response:
        try:
            answer = await self._hubspot(request)
        except Refused as exc:
            self.answers.labels("hubspot", exc.code).inc()
            log.info("refused a HubSpot webhook (%d %s)", exc.status, exc.code)
            return web.json_response({"error": exc.message, "code": exc.code}, status=exc.status)
        self.answers.labels("hubspot", "accepted").inc()
        return web.json_response(answer)

    async def _hubspot(self, request: web.Request) -> dict[str, Any]:
        secret = self.settings.hubspot_app_secret
        if secret is None:
            raise Refused(
                404, "not_configured", "HubSpot webhooks are off: set LEADSTREAM_HUBSPOT_APP_SECRET"
            )
        body = await self._read(request)
        # the URI HubSpot signed is the one it called: behind a proxy, the forwarded one
        scheme = request.headers.get("X-Forwarded-Proto", request.scheme)
        host = request.headers.get("X-Forwarded-Host", request.host)
        uri = f"{scheme}://{host}{request.raw_path}"
        now_ms = int(time.time() * 1000)
        verify_hubspot(
            secret.get_secret_value(), request.method, uri, body, request.headers, now_ms
        )
        try:
            events = hubspot_events(json.loads(body))
        except ValueError:
            raise Refused(400, "invalid_body", "the body is not JSON") from None
        fresh, duplicates = [], 0
        for event in events:
            if event.event_id in self.seen:
                duplicates += 1
            else:
                fresh.append(event)
        self.outcomes.labels("hubspot", "duplicate").inc(duplicates)
        settings = self.settings
        wanted = [
            (e, o)
            for e in fresh
            if (
                o := hubspot_outcome(
                    e, settings.hubspot_contact_outcomes, settings.hubspot_deal_outcomes
                )
            )
        ]
        ignored = len(fresh) - len(wanted)
        self.outcomes.labels("hubspot", "ignored").inc(ignored)
        leads = await self._hubspot_leads([e for e, _ in wanted])
        now = datetime.now(UTC)
        out, unmatched = [], 0
        for event, outcome in wanted:
            matched = leads.get((event.kind, event.object_id), [])
            unmatched += not matched
            for lead in matched:
                reason = f"HubSpot {event.kind} {event.property_name} = {event.property_value}"
                out.append(
                    feedback(
                        f"hubspot:{event.event_id}:{lead}",
                        lead,
                        outcome,
                        event.occurred_at,
                        now,
                        reason,
                        "hubspot",
                    )
                )
        self.outcomes.labels("hubspot", "unmatched").inc(unmatched)
        await self._produce(out, "hubspot")
        for event in fresh:
            self.seen.add(event.event_id)
        return {
            "success": True,
            "accepted": len(out),
            "ignored": ignored,
            "unmatched": unmatched,
            "duplicates": duplicates,
        }

    async def _hubspot_leads(self, events: list[Any]) -> dict[tuple[str, str], list[str]]:
        if not events:
            return {}
        try:
            leads = self.leads()
        except CrmError as exc:
            raise Refused(503, "not_configured", str(exc)) from None
        try:
            deals = [e.object_id for e in events if e.kind == "deal"]
            by_deal = await asyncio.to_thread(leads.contacts_of_deals, deals) if deals else {}
            contacts = [e.object_id for e in events if e.kind == "contact"]
            contacts += [c for cs in by_deal.values() for c in cs]
            of_contact = await asyncio.to_thread(leads.of_contacts, contacts) if contacts else {}
        except Transient as exc:
            log.warning("HubSpot did not say which leads (%s); answered 503", exc.what[:200])
            raise Refused(
                503, "crm_unavailable", "HubSpot could not be asked; deliver again"
            ) from None
        out: dict[tuple[str, str], list[str]] = {}
        for e in events:
            if e.kind == "contact":
                out[("contact", e.object_id)] = (
                    [of_contact[e.object_id]] if e.object_id in of_contact else []
                )
            else:
                found = [of_contact[c] for c in by_deal.get(e.object_id, []) if c in of_contact]
                out[("deal", e.object_id)] = sorted(set(found))
        return out

    # --- Salesforce --------------------------------------------------------------------

    async def salesforce(self, request: web.Request) -> web.Response:
        try:
            accepted = await self._salesforce(request)
        except Refused as exc:
            self.answers.labels("salesforce", exc.code).inc()
            log.info("refused a Salesforce outbound message (%d %s)", exc.status, exc.code)
            return web.Response(
                text=soap_fault(exc.message), status=exc.status, content_type="text/xml"
            )
        self.answers.labels("salesforce", "accepted").inc()
        log.info("Salesforce outbound message: %d outcome(s)", accepted)
        return web.Response(text=ACK, content_type="text/xml")

    async def _salesforce(self, request: web.Request) -> int:
        s = self.settings
        if s.salesforce_outbound_secret is None and not s.salesforce_org_ids:
            raise Refused(
                404,
                "not_configured",
                "Salesforce outbound messages are off: set "
                "LEADSTREAM_SALESFORCE_OUTBOUND_SECRET or LEADSTREAM_SALESFORCE_ORG_IDS",
            )
        if s.salesforce_outbound_secret is not None:
            given = request.match_info.get("secret", "").encode()
            if not hmac.compare_digest(
                given, s.salesforce_outbound_secret.get_secret_value().encode()
            ):
                raise Refused(401, "bad_secret", "the endpoint URL's secret is missing or wrong")
        message = outbound_message(await self._read(request))
        if s.salesforce_org_ids and message.organization_id not in s.salesforce_org_ids:
            raise Refused(
                403, "unknown_org", "this organisation id is not in LEADSTREAM_SALESFORCE_ORG_IDS"
            )
        now = datetime.now(UTC)
        out = []
        for n in message.notifications:
            key = f"{message.organization_id}:{n.notification_id}"
            if key in self.seen:
                self.outcomes.labels("salesforce", "duplicate").inc()
                continue
            outcome = salesforce_outcome(n, s.salesforce_outcomes)
            lead = n.fields.get(s.salesforce_external_id_field)
            if outcome is None:
                self.outcomes.labels("salesforce", "ignored").inc()
            elif not lead:
                self.outcomes.labels("salesforce", "unmatched").inc()
            else:
                changed = ", ".join(
                    f"{k}={v}"
                    for k, v in n.fields.items()
                    if f"{n.object_type}.{k}={v}" in s.salesforce_outcomes
                )
                out.append(
                    feedback(
                        f"salesforce:{key}",
                        lead,
                        outcome,
                        now,
                        now,
                        f"Salesforce {n.object_type} {changed}",
                        "salesforce",
                    )
                )
        await self._produce(out, "salesforce")
        for n in message.notifications:
            self.seen.add(f"{message.organization_id}:{n.notification_id}")
        return len(out)

    # --- both --------------------------------------------------------------------------

    async def _read(self, request: web.Request) -> bytes:
        try:
            async with asyncio.timeout(self.settings.http_body_timeout_seconds):
                body = await request.content.read(MAX_WEBHOOK_BYTES + 1)
        except TimeoutError:
            raise Refused(408, "request_timeout", "the body was too slow") from None
        if len(body) > MAX_WEBHOOK_BYTES:
            raise Refused(
                413, "request_too_large", f"bodies are limited to {MAX_WEBHOOK_BYTES} bytes"
            )
        return body

    async def _produce(self, events: list[dict[str, Any]], crm: str) -> None:
        """Judged by the worker's decoder, then written keyed by lead and acknowledged."""
        if not events:
            return
        producer = self.collector.producer
        if producer is None:
            raise Refused(503, "unavailable", "the broker is not reachable yet")
        values = []
        for event in events:
            value = json.dumps(event).encode()
            verdict = decode(
                value,
                tracks=self.collector.tracks,
                max_clock_skew=self.settings.max_clock_skew_seconds,
            )
            if isinstance(verdict, DeadLetter):  # a lead id outside the id alphabet, say
                self.outcomes.labels(crm, f"refused_{verdict.reason}").inc()
                continue
            values.append((value, event["lead_id"].encode()))
        try:
            futures = [await producer.send(self.topic, v, key=k) for v, k in values]
            await asyncio.wait_for(asyncio.gather(*futures), ACK_TIMEOUT_SECONDS)
        except (KafkaError, TimeoutError) as exc:
            log.warning(
                "the broker did not acknowledge %d outcome(s): %s", len(values), type(exc).__name__
            )
            raise Refused(
                503, "unavailable", "the broker did not acknowledge; deliver again"
            ) from None
        self.outcomes.labels(crm, "produced").inc(len(values))
