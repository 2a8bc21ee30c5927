"""crm-sync's pure parts: coalescing, the guard against older writes, the fields, the webhooks."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime
from typing import Any

import pytest

from schemas.transitions import Scores, ScoreUpdate, Stage, StageTransition
from stream_app.config import Settings
from stream_app.crm.calls import Permanent, Refused, bisect, safe
from stream_app.crm.changes import Change, Record, Written, admit, claim, coalesce
from stream_app.crm.fields import hubspot_write, salesforce_record
from stream_app.crm.webhooks import (
    Refused as WebhookRefused,
)
from stream_app.crm.webhooks import (
    hubspot_events,
    hubspot_outcome,
    hubspot_signature,
    outbound_message,
    salesforce_outcome,
    verify_hubspot,
)

T0 = datetime(2026, 3, 1, 10, tzinfo=UTC)
LIFECYCLE = Settings().hubspot_lifecycle


def update(lead: str, version: int, stage: Stage = "mql") -> ScoreUpdate:
    return ScoreUpdate(
        lead_id=lead,
        version=version,
        stage=stage,
        scores=Scores(fit=20, engagement=version * 10.0, total=20 + version * 10.0, grade="B"),
        contributions=[],
        rules_version="r7",
        mql_at=T0,
    )


def transition(lead: str, seq: int, a: Stage, b: Stage) -> StageTransition:
    return StageTransition(
        transition_id=f"{lead}-t{seq}",
        lead_id=lead,
        from_stage=a,
        to_stage=b,
        reason="decay" if b == "recycled" else "score_threshold",
        occurred_at=T0,
        scores=Scores(fit=20, engagement=1, total=21, grade="B"),
        contributions=[],
        rules_version="r7",
        sequence=seq,
    )


def rec(model: Any, offset: int, ts: int = 0) -> Record:
    topic = "updates" if isinstance(model, ScoreUpdate) else "transitions"
    return Record(topic, model.lead_id.encode(), model.model_dump_json().encode(), 0, offset, ts)


def tombstone(lead: str, offset: int, ts: int) -> Record:
    return Record("updates", lead.encode(), None, 0, offset, ts)


def test_a_burst_of_one_lead_is_one_change_with_its_newest_update_and_transition() -> None:
    records = [rec(update("a", v), v) for v in range(1, 41)]
    records += [rec(transition("a", 1, "lead", "mql"), 3), rec(transition("a", 2, "mql", "sql"), 4)]
    records += [rec(update("b", 1), 50), Record("updates", b"c", b"{not json", 0, 51, 0)]
    batch = coalesce(records)
    assert set(batch.changes) == {"a", "b"}
    a = batch.changes["a"]
    assert a.update is not None and a.update.version == 40 and a.update_offset == 40
    assert a.transition is not None and a.transition.sequence == 2
    assert (
        a.first_from == "lead"
    )  # what the CRM held before this batch: the way back is judged on it
    assert [u.record.offset for u in batch.undecodable] == [51]


def test_an_erasure_wins_over_what_came_before_it_and_fences_older_transitions() -> None:
    batch = coalesce(
        [
            rec(update("a", 3), 10),
            rec(transition("a", 1, "lead", "mql"), 5, ts=100),
            tombstone("a", 11, ts=200),
            rec(transition("a", 2, "mql", "sql"), 6, ts=150),  # produced before the erasure
        ]
    )
    a = batch.changes["a"]
    assert a.erased and a.update is None
    assert a.transition is not None and a.transition.sequence == 1  # carried, but cleared below
    write = hubspot_write(a, lifecycle=LIFECYCLE, lead_status={}, backward=False)
    assert write.erase and set(write.properties.values()) == {""}


def test_a_record_older_than_what_was_written_is_never_written_again_the_same_one_is() -> None:
    written = Written(update_offset=40, transition_offset=4)
    older = Change("a", update=update("a", 30), update_offset=30)
    assert admit(older, written).empty
    same = Change("a", update=update("a", 40), update_offset=40)
    assert admit(same, written) == same  # its write may not have landed before the kill
    mixed = Change(
        "a",
        update=update("a", 41),
        update_offset=41,
        transition=transition("a", 1, "lead", "mql"),
        transition_offset=3,
        first_from="lead",
    )
    kept = admit(mixed, written)
    assert kept.update is not None and kept.transition is None
    assert claim(kept, written) == Written(41, 4)
    assert Written.decode(claim(kept, written).encode()) == Written(41, 4)


def test_after_an_erasure_a_transition_produced_before_it_is_not_admitted() -> None:
    erased = claim(Change("a", update_offset=11, erased=True, erased_at=200), Written(10, 5))
    assert erased == Written(11, 5, 200)
    late = Change(
        "a", transition=transition("a", 2, "mql", "sql"), transition_offset=6, transition_at=150
    )
    assert admit(late, erased).empty
    back = Change(
        "a", transition=transition("a", 1, "lead", "mql"), transition_offset=9, transition_at=300
    )
    assert not admit(back, erased).empty
    assert Written.decode(erased.encode()) == erased


def test_hubspot_lifecycle_moves_forward_and_back_only_when_asked() -> None:
    up = Change(
        "a",
        update=update("a", 2, "sql"),
        update_offset=2,
        transition=transition("a", 2, "mql", "sql"),
        transition_offset=2,
        first_from="mql",
    )
    w = hubspot_write(
        up, lifecycle=LIFECYCLE, lead_status={"recycled": "BAD_TIMING"}, backward=False
    )
    assert w.properties["lifecyclestage"] == "salesqualifiedlead"
    assert w.properties["leadstream_stage"] == "sql" and w.properties["leadstream_version"] == "2"
    assert (
        w.properties["leadstream_score"] == "40"
        and w.properties["leadstream_mql_at"] == "2026-03-01T10:00:00Z"
    )
    assert "hs_lead_status" not in w.properties
    down = Change(
        "a", transition=transition("a", 3, "sql", "recycled"), transition_offset=3, first_from="sql"
    )
    kept = hubspot_write(
        down, lifecycle=LIFECYCLE, lead_status={"recycled": "BAD_TIMING"}, backward=False
    )
    assert "lifecyclestage" not in kept.properties and not kept.clear_lifecycle_first
    assert kept.properties["hs_lead_status"] == "BAD_TIMING"
    assert kept.properties["leadstream_stage"] == "recycled"
    assert kept.properties["leadstream_reason"] == "decay"
    back = hubspot_write(down, lifecycle=LIFECYCLE, lead_status={}, backward=True)
    assert back.properties["lifecyclestage"] == "lead" and back.clear_lifecycle_first
    score_only = hubspot_write(
        Change("a", update=update("a", 5, "sql"), update_offset=5),
        lifecycle=LIFECYCLE,
        lead_status={},
        backward=False,
    )
    assert "lifecyclestage" not in score_only.properties  # a rep's stage is not reset by a score


def test_salesforce_record_has_numbers_times_status_and_clears_with_null() -> None:
    change = Change(
        "a",
        update=update("a", 2, "sql"),
        update_offset=2,
        transition=transition("a", 2, "mql", "sql"),
        transition_offset=2,
    )
    record = salesforce_record(change, status={"sql": "Working - Contacted"})
    assert record["Leadstream_Score__c"] == 40.0 and record["Leadstream_Version__c"] == 2
    assert record["Leadstream_Lead_Id__c"] == "a" and record["Status"] == "Working - Contacted"
    assert record["Leadstream_SQL_At__c"] is None
    erased = salesforce_record(Change("a", erased=True, update_offset=3), status={})
    assert set(erased.values()) == {None} and "Status" not in erased


def test_a_batch_refused_whole_is_split_down_to_the_lead_it_is_about() -> None:
    sent: list[list[str]] = []

    def send(items: Any) -> list[Refused]:
        sent.append(list(items))
        if "bad" in items:
            raise Permanent(400, "Email address bad@example.com is invalid")
        return []

    refused = bisect(["a", "b", "bad", "c", "d"], send, lambda i: i)
    assert refused == [Refused("bad", "HTTP 400: Email address <e-mail> is invalid")]
    assert ["bad"] in sent and len(sent) <= 7
    assert safe("x jo.doe+1@mail.example.org y") == "x <e-mail> y"


def test_settings_refuse_a_value_that_would_echo_back_as_an_outcome() -> None:
    with pytest.raises(ValueError, match="hs_lead_status=UNQUALIFIED"):
        Settings(hubspot_lead_status="recycled:UNQUALIFIED")
    with pytest.raises(ValueError, match="unknown stage"):
        Settings(hubspot_lifecycle="hot:lead")
    with pytest.raises(ValueError, match="an outcome is one of"):
        Settings(hubspot_deal_outcomes="closedwon:celebrate")
    with pytest.raises(ValueError, match=r"Lead\.Status=Working - Contacted"):
        Settings(salesforce_status="sql:Working - Contacted")


# --- webhooks ------------------------------------------------------------------------

SECRET = "yyyyyyyy-yyyy-yyyy-yyyy-yyyyyyyyyyyy"
URI = "https://leads.example.com/v1/webhooks/hubspot"
#: Shaped as HubSpot's documented webhook payload (docs: webhooks API, "Example payload").
PAYLOAD = [
    {
        "eventId": 100,
        "subscriptionId": 1234,
        "portalId": 62515,
        "appId": 54321,
        "occurredAt": 1772359200000,
        "subscriptionType": "deal.propertyChange",
        "attemptNumber": 0,
        "objectId": 9001,
        "propertyName": "dealstage",
        "propertyValue": "closedwon",
        "changeSource": "CRM_UI",
    },
    {
        "eventId": 101,
        "subscriptionId": 1235,
        "portalId": 62515,
        "appId": 54321,
        "occurredAt": 1772359200000,
        "subscriptionType": "contact.propertyChange",
        "attemptNumber": 0,
        "objectId": 1001,
        "propertyName": "hs_lead_status",
        "propertyValue": "NEW",
        "changeSource": "CRM_UI",
    },
]


def signed(body: str, ts: int, uri: str = URI) -> dict[str, str]:
    return {
        "X-HubSpot-Signature-v3": hubspot_signature(SECRET, "POST", uri, body, str(ts)),
        "X-HubSpot-Request-Timestamp": str(ts),
    }


def test_the_v3_signature_is_hubspots_own_clients() -> None:
    from hubspot.utils.signature import Signature

    body = json.dumps(PAYLOAD)
    ours = hubspot_signature(SECRET, "POST", URI, body, "1772359200000")
    assert ours == Signature.get_signature(SECRET, body, "v3", URI, "POST", "1772359200000")
    # HubSpot decodes %3A and friends in the URI before signing; the client does not
    encoded = URI + "?state=a%3Ab"
    assert hubspot_signature(SECRET, "POST", encoded, body, "1") == hubspot_signature(
        SECRET, "POST", URI + "?state=a:b", body, "1"
    )


def test_a_wrong_signature_an_old_or_future_timestamp_are_refused() -> None:
    body = json.dumps(PAYLOAD)
    now = 1772359500000
    verify_hubspot(SECRET, "POST", URI, body.encode(), signed(body, now - 1000), now)
    cases = {
        "bad_signature": (body + " ", signed(body, now)),
        "too_old": (body, signed(body, now - 5 * 60 * 1000 - 1)),
        "bad_timestamp": (body, signed(body, now + 6 * 60 * 1000)),
        "unsigned": (body, {}),
    }
    for code, (sent, headers) in cases.items():
        with pytest.raises(WebhookRefused) as caught:
            verify_hubspot(SECRET, "POST", URI, sent.encode(), headers, now)
        assert (caught.value.status, caught.value.code) == (401, code)
    with pytest.raises(WebhookRefused, match="does not match"):
        verify_hubspot("other", "POST", URI, body.encode(), signed(body, now), now)


def test_hubspot_events_and_their_outcomes() -> None:
    events = hubspot_events(PAYLOAD)
    settings = Settings()
    outcomes = [
        hubspot_outcome(e, settings.hubspot_contact_outcomes, settings.hubspot_deal_outcomes)
        for e in events
    ]
    assert outcomes == ["won", None]
    assert events[0].event_id == "62515:100" and events[0].kind == "deal"
    with pytest.raises(WebhookRefused) as caught:
        hubspot_events([{**PAYLOAD[0], "subscriptionType": "company.creation"}])
    assert caught.value.code == "unknown_object"


OUTBOUND_MESSAGE = """<?xml version="1.0" encoding="UTF-8"?>
<soapenv:Envelope xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/"
 xmlns:xsd="http://www.w3.org/2001/XMLSchema" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance">
 <soapenv:Body>
  <notifications xmlns="http://soap.sforce.com/2005/09/outbound">
   <OrganizationId>00D000000000001AAA</OrganizationId>
   <ActionId>04k000000000001AAA</ActionId>
   <SessionId xsi:nil="true"/>
   <EnterpriseUrl>https://acme.my.salesforce.com/services/Soap/c/59.0/00D000000000001</EnterpriseUrl>
   <PartnerUrl>https://acme.my.salesforce.com/services/Soap/u/59.0/00D000000000001</PartnerUrl>
   <Notification>
    <Id>04l000000000001AAA</Id>
    <sObject xsi:type="sf:Opportunity" xmlns:sf="urn:sobject.enterprise.soap.sforce.com">
     <sf:Id>006000000000001AAA</sf:Id>
     <sf:Leadstream_Lead_Id__c>lead-42</sf:Leadstream_Lead_Id__c>
     <sf:StageName>Closed Won</sf:StageName>
    </sObject>
   </Notification>
  </notifications>
 </soapenv:Body>
</soapenv:Envelope>"""


def test_a_salesforce_outbound_message_is_read_and_mapped() -> None:
    message = outbound_message(OUTBOUND_MESSAGE.encode())
    assert message.organization_id == "00D000000000001AAA"
    (n,) = message.notifications
    assert (n.object_type, n.fields["Leadstream_Lead_Id__c"]) == ("Opportunity", "lead-42")
    assert salesforce_outcome(n, Settings().salesforce_outcomes) == "won"
    with pytest.raises(WebhookRefused) as caught:
        outbound_message(OUTBOUND_MESSAGE.replace("sf:Opportunity", "sf:Case").encode())
    assert caught.value.code == "unknown_object"
    with pytest.raises(WebhookRefused):
        outbound_message(b"<not-soap/>")


# --- the stand-in's validation ---------------------------------------------------------


def test_the_hubspot_stand_in_refuses_what_hubspots_models_do_not_allow() -> None:
    import aiohttp

    from tools.crm_standin.hubspot import HubSpotStandIn

    async def scenario() -> list[tuple[int, str]]:
        standin = HubSpotStandIn()
        await standin.start()
        out = []
        headers = {"Authorization": f"Bearer {standin.token}"}
        url = standin.url + "/crm/v3/objects/contacts/batch/upsert"
        bodies: list[Any] = [
            {
                "inputs": [
                    {
                        "idProperty": "email",
                        "id": "a@example.com",
                        "properties": {"leadstream_score": 5},
                    }
                ]
            },
            {"inputs": [{"idProperty": "email", "id": "a@example.com"}]},
            {
                "inputs": [
                    {"idProperty": "email", "id": "a@example.com", "properties": {}, "extra": 1}
                ]
            },
            {
                "inputs": [
                    {"idProperty": "email", "id": f"p{n}@example.com", "properties": {}}
                    for n in range(101)
                ]
            },
            {"inputs": [{"idProperty": "firstname", "id": "Jo", "properties": {}}]},
            {
                "inputs": [
                    {"idProperty": "email", "id": "a@example.com", "properties": {"nope": "1"}}
                ]
            },
            {
                "inputs": [
                    {
                        "idProperty": "email",
                        "id": "a@example.com",
                        "properties": {"lastname": "Doe"},
                    }
                ]
            },
        ]
        async with aiohttp.ClientSession() as http:
            for body in bodies:
                async with http.post(url, json=body, headers=headers) as answer:
                    out.append((answer.status, (await answer.json()).get("message", "")))
            async with http.post(url, json=bodies[-1]) as answer:
                out.append((answer.status, ""))
        await standin.stop()
        return out

    answers = asyncio.run(scenario())
    assert [s for s, _ in answers] == [400, 400, 400, 400, 400, 400, 200, 401]
    assert "a str is expected" in answers[0][1] and "properties" in answers[1][1]
    assert "no field extra" in answers[2][1] and "100" in answers[3][1]
    assert "not a unique property" in answers[4][1] and "PROPERTY_DOESNT_EXIST" in answers[5][1]


# --- Salesforce: the batch against the stand-in ----------------------------------------


def salesforce_settings(url: str) -> Settings:
    return Settings(
        salesforce_base_url=url,
        salesforce_domain="standin",
        salesforce_client_id="standin-client",
        salesforce_client_secret="standin-secret",
        salesforce_status="mql:Open - Not Contacted,sql:Working - Contacted",
        salesforce_outcomes="Opportunity.StageName=Closed Won:won",
        crm_batch_max=200,
    )


def test_salesforce_writes_coalesced_guarded_batches_of_at_most_200_to_the_stand_in() -> None:
    from stream_app.crm.calls import Transient
    from stream_app.crm.salesforce import BATCH_LIMIT, Salesforce
    from tools.crm_standin.salesforce import SalesforceStandIn

    async def scenario() -> None:
        standin = SalesforceStandIn()
        await standin.start()
        try:
            backend = Salesforce(salesforce_settings(standin.url))
            assert backend.limit == BATCH_LIMIT == 200
            leads = [f"l{n:03d}" for n in range(250)]
            records, offset = [], 0
            for version in (1, 2, 3):  # three updates of every lead: one write each
                for lead in leads:
                    offset += 1
                    records.append(rec(update(lead, version, "mql"), offset))
            offset += 1
            records.append(rec(transition("l001", 1, "mql", "sql"), offset))
            batch = coalesce(records)
            assert len(batch.changes) == 250
            # l000 was written at a newer position already (before a kill -9, say)
            held = {"l000": Written(update_offset=10**6)}
            admitted = [admit(c, held.get(c.lead_id, Written())) for c in batch.changes.values()]
            changes = [c for c in admitted if not c.empty]
            assert len(changes) == 249
            for start in range(0, len(changes), backend.limit):
                chunk = changes[start : start + backend.limit]
                assert await asyncio.to_thread(backend.write, chunk) == []
            assert standin.batch_sizes == [200, 49]
            assert len(standin.writes) == 249 and standin.regressions == []
            assert standin.lead_by("Leadstream_Lead_Id__c", "l000") is None
            l001 = standin.lead_by("Leadstream_Lead_Id__c", "l001")
            assert l001 is not None and l001["Leadstream_Version__c"] == 3
            assert l001["Status"] == "Working - Contacted"  # sql, mapped by the setting
            assert l001["LastName"] == "[not provided]"
            # an older state re-read after a restart is not admitted over the newer one
            again = coalesce([rec(update("l001", 2, "mql"), 260)])
            assert admit(again.changes["l001"], Written(update_offset=offset)).empty
            # 429 with Retry-After: a Transient that carries it (crm-sync waits, then retries)
            standin.faults.add("429", 2.0)
            try:
                await asyncio.to_thread(backend.write, changes[:1])
            except Transient as exc:
                assert exc.retry_after == 2.0
            else:
                raise AssertionError("a 429 was not a Transient")
            backend.close()
        finally:
            await standin.stop()

    asyncio.run(scenario())


def test_the_salesforce_stand_in_refuses_what_salesforce_documents_it_refuses() -> None:
    import aiohttp

    from tools.crm_standin.salesforce import SalesforceStandIn

    async def scenario() -> None:
        standin = SalesforceStandIn()
        await standin.start()
        token_url = standin.url + "/services/oauth2/token"
        upsert = standin.url + "/services/data/v59.0/composite/sobjects/Lead/Leadstream_Lead_Id__c"
        try:
            async with aiohttp.ClientSession() as http:
                form = {"grant_type": "password", "username": "u", "password": "p"}
                async with http.post(token_url, data=form) as r:
                    assert (r.status, (await r.json())["error"]) == (400, "unsupported_grant_type")
                form = {"grant_type": "client_credentials", "client_id": "x", "client_secret": "y"}
                async with http.post(token_url, data=form) as r:
                    assert (r.status, (await r.json())["error"]) == (400, "invalid_client")
                form |= {"client_id": standin.client_id, "client_secret": standin.client_secret}
                async with http.post(token_url, data=form) as r:
                    token = (await r.json())["access_token"]
                async with http.patch(upsert, json={"records": []}) as r:
                    assert (r.status, (await r.json())[0]["errorCode"]) == (
                        401,
                        "INVALID_SESSION_ID",
                    )
                auth = {"Authorization": f"Bearer {token}"}

                def lead(n: int, **more: Any) -> dict[str, Any]:
                    return {
                        "attributes": {"type": "Lead"},
                        "Leadstream_Lead_Id__c": f"p{n}",
                        "LastName": "[not provided]",
                        "Company": "Acme",
                        **more,
                    }

                refused_whole = {
                    "EXCEEDED_ID_LIMIT": {"records": [lead(n) for n in range(201)]},
                    "JSON_PARSER_ERROR": {"allOrNone": "false", "records": [lead(1)]},
                    "INVALID_FIELD": {"records": [lead(1, Nope__c=1)]},
                    "INVALID_TYPE_ON_FIELD_IN_RECORD": {
                        "records": [lead(1, Leadstream_Score__c="12")]
                    },
                    "INVALID_TYPE": {"records": [{**lead(1), "attributes": {"type": "Contact"}}]},
                }
                for code, body in refused_whole.items():
                    async with http.patch(upsert, json=body, headers=auth) as r:
                        answer = await r.json()
                        assert (r.status, answer[0]["errorCode"]) == (400, code), answer
                no_type = {"records": [{k: v for k, v in lead(1).items() if k != "attributes"}]}
                async with http.patch(upsert, json=no_type, headers=auth) as r:
                    assert r.status == 400
                body = {
                    "allOrNone": False,
                    "records": [
                        lead(1),
                        lead(2, Status="Hot"),
                        {k: v for k, v in lead(3).items() if k != "Company"},
                    ],
                }
                async with http.patch(upsert, json=body, headers=auth) as r:
                    results = await r.json()
                assert [x["success"] for x in results] == [True, False, False]
                assert results[0]["created"] is True
                assert results[1]["errors"][0]["statusCode"] == (
                    "INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST"
                )
                assert results[2]["errors"][0]["statusCode"] == "REQUIRED_FIELD_MISSING"
                body = {"allOrNone": True, "records": [lead(4), lead(5, Status="Hot")]}
                async with http.patch(upsert, json=body, headers=auth) as r:
                    results = await r.json()
                assert [x["success"] for x in results] == [False, False]
                assert results[0]["errors"][0]["statusCode"] == "ALL_OR_NONE_OPERATION_ROLLED_BACK"
                assert standin.lead_by("Leadstream_Lead_Id__c", "p4") is None
        finally:
            await standin.stop()

    asyncio.run(scenario())


def test_the_hubspot_stand_in_keeps_the_lifecycle_stage_forward_only() -> None:
    """HubSpot ignores an earlier lifecycle stage silently; clearing it first ("") allows one."""
    import aiohttp

    from tools.crm_standin.hubspot import HubSpotStandIn

    async def scenario() -> list[str | None]:
        standin = HubSpotStandIn()
        await standin.start()
        cid = standin.add_contact(email="a@example.com")
        headers = {"Authorization": f"Bearer {standin.token}"}
        url = standin.url + "/crm/v3/objects/contacts/batch/upsert"
        held: list[str | None] = []
        try:
            async with aiohttp.ClientSession() as http:
                for stage in ("salesqualifiedlead", "marketingqualifiedlead", "", "lead"):
                    body = {
                        "inputs": [
                            {
                                "idProperty": "email",
                                "id": "a@example.com",
                                "properties": {"lifecyclestage": stage},
                            }
                        ]
                    }
                    async with http.post(url, json=body, headers=headers) as answer:
                        assert answer.status == 200, await answer.text()
                    held.append(standin.contacts[cid].get("lifecyclestage"))
        finally:
            await standin.stop()
        return held

    assert asyncio.run(scenario()) == ["salesqualifiedlead", "salesqualifiedlead", None, "lead"]
