"""CloudEvents binary-mode headers: the same record always gets the same id."""

from __future__ import annotations

from datetime import UTC, datetime

from schemas.transitions import ScoreUpdate, SlaBreach, StageTransition
from stream_app.cloudevents import headers
from stream_app.codec import decode

NOW = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)
SCORES = {"fit": 30.0, "engagement": 40.0, "total": 70.0, "grade": "A"}


def test_a_transition_is_a_cloudevent_by_its_headers() -> None:
    transition = StageTransition(
        transition_id="t-1",
        lead_id="L1",
        from_stage="lead",
        to_stage="mql",
        reason="score_threshold",
        occurred_at=datetime(2026, 11, 2, 10, tzinfo=UTC),
        scores=SCORES,
        contributions=[],
        rules_version="r1",
        sequence=1,
    )
    assert dict(headers(transition, source="/leadstream/ls", now=NOW)) == {
        "ce_specversion": b"1.0",
        "ce_id": b"t-1",
        "ce_source": b"/leadstream/ls",
        "ce_type": b"dev.leadstream.stage_transition.v1",
        "ce_subject": b"L1",
        "ce_time": b"2026-11-02T10:00:00Z",
        "ce_dataschema": b"https://leadstream.dev/schemas/stage_transition.json",
        "content-type": b"application/json",
    }


def test_a_score_update_is_identified_by_lead_and_version() -> None:
    update = ScoreUpdate(
        lead_id="L1", version=7, stage="mql", scores=SCORES, contributions=[], rules_version="r1"
    )
    got = dict(headers(update, source="/leadstream/ls", now=NOW))
    assert (got["ce_id"], got["ce_type"], got["ce_time"]) == (
        b"L1:7",
        b"dev.leadstream.score_update.v1",
        b"2026-12-01T12:00:00Z",
    )


def test_a_dead_letter_is_identified_by_where_it_came_from() -> None:
    letter = decode(b"nope", topic="rudder-events", partition=2, offset=9, key=b"k")
    got = dict(headers(letter, source="/leadstream/ls", now=NOW))  # type: ignore[arg-type]
    assert (got["ce_id"], got["ce_subject"], got["ce_type"]) == (
        b"rudder-events:2:9",
        b"k",
        b"dev.leadstream.dead_letter.v1",
    )
    offline = decode(b"nope", line=3)
    assert len(dict(headers(offline, source="s", now=NOW))["ce_id"]) == 32  # type: ignore[arg-type]


def test_an_sla_breach_is_identified_by_its_breach_id_at_its_deadline() -> None:
    breach = SlaBreach(
        breach_id="b-1",
        lead_id="L1",
        stage="sql",
        entered_at=datetime(2026, 11, 2, 9, tzinfo=UTC),
        allowed_hours=4,
        occurred_at=datetime(2026, 11, 2, 13, tzinfo=UTC),
        transition_sequence=1,
        scores=SCORES,
        rules_version="r1",
    )
    got = dict(headers(breach, source="/leadstream/ls", now=NOW))
    assert (got["ce_id"], got["ce_subject"], got["ce_type"], got["ce_time"]) == (
        b"b-1",
        b"L1",
        b"dev.leadstream.sla_breach.v1",
        b"2026-11-02T13:00:00Z",
    )
