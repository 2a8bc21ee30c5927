"""An erase by address reaches an anonymous visitor that told the address and joined no lead.

Issue 26, item 1's last case: a visitor scored under ``anon:<id>`` that tells an
address (a form's ``email`` field, identify traits without a user id, a profile
update without a lead id) is not linked to the address's pseudonym; the pseudonym
keeps a pointer to it, and ``erase <address>`` follows the pointer: to the visitor,
or to the lead it has joined since. The in-memory pipeline over partitions (the live
driver) and the offline replay give the same single erasure per request.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from schemas.erasures import ErasureEvent
from stream_app.codec import decode, decode_record, due_at_of, encode_internal, encode_record
from stream_app.ingest.segment import email_subject
from stream_app.messages import Absorb, EraseTrail, Record, Told
from stream_app.scoring.replay import Replay
from stream_app.scoring.rules import Rules
from stream_app.scoring.state import LeadState, new_state
from stream_app.worker.pipeline import InMemoryPipeline, Outputs, PartitionBatch, partition_of
from tests.factories import at
from tools.traffic import generate

ADDRESS = "Ann.Visitor@Acme.com"
MAIL = email_subject(ADDRESS)

#: Every way an anonymous visitor tells an address, as raw input (a native event, or a
#: Segment-spec message the codec maps).
TELLS = {
    "a form's email field": {
        "type": "form_submission",
        "anonymous_id": "{v}",
        "form_kind": "newsletter",
        "fields": {"Email": ADDRESS, "company": "Acme"},
    },
    "a profile update without a lead id": {
        "type": "profile_update",
        "anonymous_id": "{v}",
        "email": ADDRESS,
        "company_size": 400,
    },
    "identify traits without a user id": {
        "type": "identify",
        "messageId": "seg-{v}",
        "anonymousId": "{v}",
        "traits": {"email": ADDRESS, "title": "VP Marketing"},
    },
}


def raw(
    message: dict[str, Any], n: int, hours: float, visitor: str = "v1", stamp: str = ""
) -> bytes:
    """``message`` with the visitor's id, an id and a time, as bytes on an input topic."""
    filled = json.loads(json.dumps(message).replace("{v}", visitor).replace("seg-", f"seg-{n}-"))
    stamp = stamp or at(hours=hours).isoformat()
    if "messageId" in filled:
        return json.dumps({**filled, "timestamp": stamp}).encode()
    return json.dumps({"event_id": f"t-{n}", "occurred_at": stamp, **filled}).encode()


def erase_raw(n: int, hours: float, event_id: str = "erase-1", **who: str) -> bytes:
    who = who or {"email": ADDRESS.lower()}
    message = {"type": "erase", "event_id": event_id, "occurred_at": at(hours=hours).isoformat()}
    return json.dumps({**message, **who}).encode()


class Both:
    """The in-memory pipeline (one message at a time, run to the end) and the replay,
    fed the same raw messages; each keeps its erasures."""

    def __init__(self, rules: Rules, partitions: int = 4) -> None:
        self.pipeline = InMemoryPipeline(rules, partitions=partitions)
        self.replay = Replay(rules)
        self.outputs: list[Outputs] = []
        self.pipeline.on_outputs = lambda p, out: self.outputs.append(out)
        self.replayed: list[ErasureEvent] = []
        self.offline: list[Any] = []

    def feed(self, *raws: bytes) -> None:
        for value in raws:
            event = decode(value, topic="lead_profiles")
            assert not isinstance(event, Exception) and hasattr(event, "event_id"), event
            key = event.lead_id or event.anonymous_id  # type: ignore[union-attr]
            self.pipeline.feed(value, key=key.encode(), topic="lead_profiles")
            self.pipeline.run()
            step = self.replay.process(event)  # type: ignore[arg-type]
            self.offline += step.transitions
            if step.erasure is not None:
                self.replayed.append(step.erasure)

    @property
    def erasures(self) -> list[ErasureEvent]:
        return [e for out in self.outputs for e in out.erasures]

    @property
    def erased(self) -> list[str]:
        return [lead for out in self.outputs for lead in out.erased]

    def record(self, key: str) -> Record | None:
        return self.pipeline.record(key)


def _no_address_anywhere(both: Both) -> None:
    """The address is in no record key or value, no pointer, no replay structure."""
    needle = b"acme.com"  # the domain may be a profile field; the local part never is
    for key, value in both.pipeline.records.items():
        assert b"ann.visitor" not in value.lower() and "ann.visitor" not in key.lower()
    for pseudonym, visitors in both.replay.told.items():
        assert "ann.visitor" not in pseudonym.lower() and not any("@" in v for v in visitors)
    assert needle not in MAIL.encode()


@pytest.mark.parametrize("tells", list(TELLS), ids=list(TELLS))
def test_an_erase_by_address_erases_a_visitor_that_told_it_and_joined_no_lead(
    rules: Rules, tells: str
) -> None:
    both = Both(rules)
    both.feed(
        raw({"type": "page_view", "anonymous_id": "{v}", "path": "/pricing"}, 0, 0),
        raw(TELLS[tells], 1, 1),
        raw({"type": "page_view", "anonymous_id": "{v}", "path": "/product/x"}, 2, 2),
    )
    pointers = both.record(f"anon:{MAIL}")
    assert pointers is not None and pointers.told_by == ["v1"] and pointers.history is None
    assert both.replay.told == {MAIL: ["v1"]}
    assert both.record("anon:v1") is not None
    _no_address_anywhere(both)
    both.feed(erase_raw(3, 3))
    (erasure,) = both.erasures
    assert both.replayed == [erasure]
    assert (erasure.erasure_id, erasure.lead_id, erasure.lead_ids) == ("erase-1", None, [])
    assert (erasure.anonymous_id, erasure.anonymous_ids, erasure.found) == (MAIL, ["v1"], True)
    assert both.pipeline.records == {} and both.replay.states == {} and both.replay.told == {}
    assert both.erased == []  # no lead: nothing projected
    # the visitor's next event starts from nothing: its first event again
    both.feed(raw({"type": "page_view", "anonymous_id": "{v}", "path": "/blog/a"}, 4, 4))
    again = both.record("anon:v1")
    assert again is not None and (again.state.version, list(again.state.seen)) == (1, ["t-4"])
    assert again.state == both.replay.states["anon:v1"]


def test_a_visitor_that_told_the_address_then_joined_a_lead_takes_the_lead_with_it(
    rules: Rules,
) -> None:
    both = Both(rules)
    lead, visitor = "L9", "c9"
    both.feed(
        raw(TELLS["a form's email field"], 0, 0, visitor),
        raw({"type": "page_view", "anonymous_id": "{v}", "path": "/pricing"}, 1, 1, visitor),
        # the identify names no address: nothing links the pseudonym to the lead
        raw({"type": "identify", "lead_id": lead, "anonymous_id": "{v}"}, 2, 2, visitor),
        raw({"type": "page_view", "lead_id": lead, "path": "/pricing"}, 3, 3),
    )
    assert both.record(lead).state.merged_anonymous == [visitor]  # type: ignore[union-attr]
    pointers = both.record(f"anon:{MAIL}")
    assert pointers is not None and pointers.state.merged_into is None  # not linked
    both.feed(erase_raw(4, 4))
    (erasure,) = both.erasures
    assert both.replayed == [erasure]
    assert (erasure.lead_id, erasure.lead_ids, erasure.anonymous_ids) == (lead, [lead], [visitor])
    assert erasure.found and both.erased == [lead]  # a tombstone on the lead's score updates
    assert both.pipeline.records == {} and both.replay.states == {}
    # the lead's next event starts a new life
    both.feed(raw({"type": "page_view", "lead_id": lead, "path": "/contact"}, 5, 5))
    record = both.record(lead)
    assert record is not None and record.state.version == 1
    assert record.state == both.replay.states[lead]
    assert both.pipeline.transitions == both.offline


def test_two_visitors_and_a_lead_that_told_the_same_address_are_all_erased_in_one_answer(
    rules: Rules,
) -> None:
    """The pseudonym's own lead first (a profile update told it), then each visitor in the
    order it told the address: one unmerged, one that has joined another lead since."""
    both = Both(rules)
    both.feed(
        raw(TELLS["identify traits without a user id"], 0, 0, "va"),
        raw({"type": "profile_update", "lead_id": "LA", "email": ADDRESS}, 1, 1),
        raw(TELLS["a form's email field"], 2, 2, "vb"),
        raw({"type": "page_view", "anonymous_id": "{v}", "path": "/pricing"}, 3, 3, "vb"),
        raw({"type": "identify", "lead_id": "LB", "anonymous_id": "{v}"}, 4, 4, "vb"),
        raw(TELLS["a form's email field"], 5, 5, "va"),  # told again: one pointer
        raw({"type": "page_view", "lead_id": "OTHER", "path": "/pricing"}, 6, 6),
    )
    pointers = both.record(f"anon:{MAIL}")
    assert pointers is not None and pointers.state.merged_into == "LA"
    assert pointers.told_by == ["va", "vb"] == both.replay.told[MAIL]
    both.feed(erase_raw(7, 7))
    (erasure,) = both.erasures
    assert both.replayed == [erasure]
    assert (erasure.lead_id, erasure.lead_ids) == ("LA", ["LA", "LB"])
    assert erasure.anonymous_ids == ["va", "vb"]  # in the order they told it
    assert both.erased == ["LA", "LB"]
    assert set(both.pipeline.records) == set(both.replay.states) == {"OTHER"}


def test_an_erase_by_lead_id_keeps_the_pointers_so_the_address_still_reaches_the_visitor(
    rules: Rules,
) -> None:
    both = Both(rules)
    both.feed(
        raw(TELLS["a form's email field"], 0, 0, "va"),
        raw({"type": "profile_update", "lead_id": "LA", "email": ADDRESS}, 1, 1),
        erase_raw(2, 2, event_id="erase-lead", lead_id="LA"),
    )
    assert [e.anonymous_ids for e in both.erasures] == [[]]  # the lead and its pseudonym
    pointers = both.record(f"anon:{MAIL}")  # the pseudonym's link went; the pointer stays
    assert pointers is not None and pointers.told_by == ["va"] and pointers.history is None
    both.feed(erase_raw(3, 3))
    assert both.erasures[1:] == both.replayed[1:]
    assert (both.erasures[1].anonymous_ids, both.erasures[1].found) == (["va"], True)
    assert both.pipeline.records == {}


def test_without_a_pointer_the_erase_is_answered_as_before(rules: Rules) -> None:
    """An address only a lead told: the same erasure as before pointers existed."""
    both = Both(rules)
    both.feed(
        raw({"type": "profile_update", "lead_id": "LA", "email": ADDRESS}, 0, 0),
        erase_raw(1, 1),
    )
    (erasure,) = both.erasures
    assert both.replayed == [erasure]
    assert (erasure.lead_id, erasure.lead_ids, erasure.anonymous_ids) == ("LA", ["LA"], [])


def test_redelivered_tells_and_trails_change_nothing_more(rules: Rules) -> None:
    """A crash repeats messages: a ``told`` once more adds no pointer; a trail once more
    finds nothing left, deletes nothing else and answers with the same erasure id."""
    both = Both(rules)
    both.feed(
        raw(TELLS["a form's email field"], 0, 0, "va"),
        raw({"type": "page_view", "lead_id": "KEEP", "path": "/pricing"}, 1, 1),
    )
    told = Told(to=f"anon:{MAIL}", anonymous_id="va")
    pipeline = both.pipeline
    pipeline._internal(told)
    pipeline.run()
    assert both.record(f"anon:{MAIL}").told_by == ["va"]  # type: ignore[union-attr]
    request = decode(erase_raw(2, 2), topic="lead_profiles")
    trail = EraseTrail(to="anon:va", request=request)  # type: ignore[arg-type]
    for _ in range(2):
        pipeline._internal(trail)
        pipeline.run()
    first, again = both.erasures
    assert (first.erasure_id, first.anonymous_ids, first.found) == ("erase-1", ["va"], True)
    assert (again.erasure_id, again.anonymous_ids, again.found) == ("erase-1", [], False)
    assert set(pipeline.records) == {"KEEP", f"anon:{MAIL}"}  # the trail is not the start
    # the request itself redelivered: the pointers are gone with the first, so the second
    # is an erase of a pseudonym that told nothing and holds nothing
    both.feed(erase_raw(3, 3), erase_raw(3, 3))
    assert [(e.erasure_id, e.found) for e in both.erasures[2:]] == [("erase-1", False)] * 2


def test_a_trail_that_reaches_a_lead_waiting_for_a_claim_waits_behind_it(rules: Rules) -> None:
    """The lead a visitor joined asked for another visitor whose answer is still out: the
    trail is held like an erase, so the answer merges first and is erased with the lead
    instead of bringing the visitor's history back after the erasure."""
    request = decode(erase_raw(5, 5), topic="lead_profiles")
    cookie = LeadState(key="anon:w", lead_id=None, stage="anonymous", version=2)
    cookie.seen = {"w-1": at(hours=1).timestamp(), "w-2": at(hours=2).timestamp()}
    records: dict[str, Record] = {
        "L1": Record(
            state=LeadState(key="L1", lead_id="L1", stage="lead", version=3),
            awaiting=["w"],
            held=[],
        )
    }
    batch = PartitionBatch(partition_of("L1", 1), 1, rules, records.get)
    batch.message(EraseTrail(to="L1", request=request, anonymous_ids=["v"], found=True))  # type: ignore[arg-type]
    held = batch.out.records["L1"]
    assert held is not None and [type(h).__name__ for h in held.held] == ["EraseTrail"]
    assert batch.out.erasures == [] and batch.out.erased == []
    # the held trail survives a write and a read of the record (RocksDB)
    back = decode_record(encode_record(held))
    assert back is not None and back.held == held.held
    records["L1"] = back
    batch = PartitionBatch(0, 1, rules, records.get)
    batch.message(Absorb(lead_id="L1", anonymous_id="w", state=cookie))
    out = batch.out
    assert out.records["L1"] is None and out.erased == ["L1"]
    (erasure,) = out.erasures
    assert (erasure.lead_ids, erasure.anonymous_ids) == (["L1"], ["v", "w"])
    assert [lead for lead, _ in out.tombstones()] == ["L1"]


def test_a_pointer_record_round_trips_and_other_records_keep_their_layout() -> None:
    pointers = Record.of(new_state(f"anon:{MAIL}", None), ["va", "vb"])
    raw_record = encode_record(pointers)
    assert raw_record[0] == 0x97 and due_at_of(raw_record) is None
    back = decode_record(raw_record)
    assert back is not None and back.told_by == ["va", "vb"] and back.history is None
    plain = Record.of(new_state("L1", "L1"))
    assert encode_record(plain)[0] == 0x96  # six elements, as before pointers existed
    assert decode_record(encode_record(plain)).told_by == []  # type: ignore[union-attr]
    assert b"acme" not in encode_internal(Told(to=f"anon:{MAIL}", anonymous_id="va")).lower()


def traffic_with_tells(seed: int) -> list[bytes]:
    """Generated traffic in which anonymous visitors tell addresses (some join a lead
    later, some share one), and erases by address, by lead id and by anonymous id."""
    out: list[bytes] = []
    visitors: list[str] = []
    addresses = [f"p{n}@example.org" for n in range(6)]
    for n, event in enumerate(generate(120, seed=seed)):
        if n >= 900:
            break
        out.append(json.dumps(event).encode())
        anonymous = event.get("anonymous_id")
        if anonymous and not event.get("lead_id") and anonymous not in visitors:
            visitors.append(anonymous)
        stamp = event["occurred_at"]
        if n % 29 == 7 and visitors:
            visitor = visitors[(n // 29) % len(visitors)]
            tell = json.loads(
                json.dumps(TELLS[list(TELLS)[n % 3]]).replace(ADDRESS, addresses[n % 6])
            )
            out.append(raw(tell, n, 0, visitor, stamp))
        if n % 61 == 60:
            out.append(
                json.dumps(
                    {
                        "type": "erase",
                        "event_id": f"erase-{n}",
                        "occurred_at": stamp,
                        "email": addresses[n % 6],
                    }
                ).encode()
            )
        if n % 151 == 150 and event.get("lead_id"):
            out.append(
                json.dumps(
                    {
                        "type": "erase",
                        "event_id": f"erase-lead-{n}",
                        "occurred_at": stamp,
                        "lead_id": event["lead_id"],
                    }
                ).encode()
            )
    return out


def test_with_tells_and_erasures_by_address_the_driver_equals_the_replay(rules: Rules) -> None:
    values = traffic_with_tells(seed=8)
    events = [decode(v, topic="lead_profiles") for v in values]
    live = InMemoryPipeline(rules, partitions=4, batch=1)
    erasures: list[ErasureEvent] = []
    live.on_outputs = lambda p, out: erasures.extend(out.erasures)
    replay = Replay(rules)
    answers: list[ErasureEvent] = []
    offline = []
    for value, event in zip(values, events, strict=True):
        key = event.lead_id or event.anonymous_id  # type: ignore[union-attr]
        live.feed(value, key=key.encode(), topic="lead_profiles")
        live.run()  # until nothing is in flight: the input order is the order applied
        step = replay.process(event)  # type: ignore[arg-type]
        offline += step.transitions
        if step.erasure is not None:
            answers.append(step.erasure)
    by_address = [a for a in answers if (a.anonymous_id or "").startswith("email:")]
    assert len(by_address) >= 8, len(by_address)
    assert sum(bool(a.anonymous_ids) for a in by_address) >= 3  # visitors were reached,
    assert sum(a.lead_id is None and bool(a.anonymous_ids) for a in by_address) >= 2  # unmerged
    assert sum(bool(a.lead_ids) for a in by_address) >= 2  # and leads they joined
    assert erasures == answers
    assert live.transitions == offline
    assert {s.key: s for s in live.leads()} == {s.key: s for s in replay.leads()}
    pointers = {
        k.removeprefix("anon:"): r.told_by
        for k in live.records
        if (r := live.record(k)) is not None and r.told_by
    }
    assert pointers == replay.told
    live_visitors = {
        k
        for k in live.records
        if k.startswith("anon:") and live.record(k).history  # type: ignore[union-attr]
    }
    replay_visitors = {k for k in replay.states if k.startswith("anon:")}
    linked_without_history = {f"anon:{a}" for a in replay.links if f"anon:{a}" not in replay.states}
    assert live_visitors == replay_visitors | linked_without_history
