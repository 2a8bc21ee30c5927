"""``python -m stream_app erase``: ask the worker to erase a person, and optionally wait for it.

The request is an ordinary input event (``schemas.events.Erase``) produced on
the input topic where the person's profile events go, keyed as tracking
pipelines key (the lead id, else the anonymous id), so the worker applies it
in order with the person's other events. The worker answers on
``lead_erasures`` with an ``erasure`` whose ``erasure_id`` is the request's
event id; ``--wait`` reads that topic for it.

An e-mail address is turned into its pseudonymous anonymous id here
(``segment.email_subject``), so the address itself never reaches Kafka.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
import uuid
from datetime import UTC, datetime
from typing import Any

from schemas.erasures import ErasureEvent
from schemas.events import parse_input
from stream_app.errors import NotConfirmed

EPILOG = """\
what is removed: the lead's record in the worker's records table (a delete, and a
  tombstone on the table's changelog), the record of every anonymous visitor merged
  into it or linked to it (a cookie, an e-mail address's pseudonym), events it held,
  and its Redis projection (the lead, its transitions, leaderboards, account and
  funnel entries): the worker writes a tombstone on lead_score_updates and the
  projection deletes them when it reads it. An e-mail address or an anonymous id
  that joined a lead erases that lead, the whole person; an address joins the lead
  whose profile update, identify traits or form field told it. An erase by address
  also erases each anonymous visitor that told the address before it joined any lead
  (a form's email field, identify traits, a profile update without a lead id), or the
  lead that visitor has joined since; the one erasure lists every lead (lead_ids) and
  visitor (anonymous_ids) it erased.
what stays: transitions already published on lead_stage_transitions (and what
  consumers such as the sales bot did with them), and the person's past messages on
  the input topics until their retention: downstream consumers follow the erasure
  event on lead_erasures. Dead letters (personal values redacted) stay for
  LEADSTREAM_DEAD_LETTER_RETENTION_DAYS, the records changelog's older values until
  compaction (about LEADSTREAM_CHANGELOG_COMPACTION_LAG_HOURS); the worker's RocksDB
  files keep no value of the person (docs/guarantees.md, "What stays after an
  erasure").
it is asynchronous: the command only sends the request (on LEADSTREAM_INPUT_TOPICS'
  first topic if set, else lead_profiles) and prints its event id. The worker applies
  it when it reads it; a later event for the same id starts a new, empty record.
confirm: --wait reads lead_erasures until the erasure with that id arrives and prints
  it ("found": false when Leadstream held nothing of that person); or read the topic
  yourself; the API then answers 404 for /leads/<id>.

examples:
  python -m stream_app erase lead-42 --reason "GDPR art. 17, ticket 981"
  python -m stream_app erase jane.doe@example.com --wait
  python -m stream_app erase cookie-7f3a --anonymous --wait --timeout 120

exit status: 0 once sent (with --wait: once confirmed), 2 on a bad argument, a broker
that does not answer, or no confirmation within --timeout.
"""


def request_for(
    who: str,
    *,
    anonymous: bool,
    reason: str | None,
    requested_by: str | None,
    now: datetime,
) -> dict[str, Any]:
    """The erase event for ``who``: a lead id, an e-mail address, or (``anonymous``) an
    anonymous id; validated by its schema (a ValidationError says what is wrong)."""
    from stream_app.ingest.segment import email_subject  # noqa: PLC0415

    who = who.strip()
    if "@" in who and not anonymous:
        parse_input({"type": "erase", "event_id": "-", "occurred_at": now, "email": who})
        subject = {"anonymous_id": email_subject(who)}  # the address stays on this machine
    elif anonymous:
        subject = {"anonymous_id": who}
    else:
        subject = {"lead_id": who}
    event: dict[str, Any] = {
        "type": "erase",
        "event_id": f"erase-{uuid.uuid4()}",
        "occurred_at": now.isoformat(),
        **subject,
    }
    if reason:
        event["reason"] = reason
    if requested_by:
        event["requested_by"] = requested_by
    parse_input(event)
    return event


async def _send_and_wait(
    event: dict[str, Any], topic: str, wait_topic: str | None, limit_s: float
) -> ErasureEvent | None:
    from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition  # noqa: PLC0415
    from aiokafka.admin import AIOKafkaAdminClient  # noqa: PLC0415

    from stream_app.config import Settings  # noqa: PLC0415
    from stream_app.kafka import kafka_options  # noqa: PLC0415

    options = kafka_options(Settings())
    key = (event.get("lead_id") or event["anonymous_id"]).encode()
    admin = AIOKafkaAdminClient(**options)
    await admin.start()
    try:
        existing = set(await admin.list_topics())
        missing = [t for t in (topic, wait_topic) if t is not None and t not in existing]
        described = await admin.describe_topics([wait_topic]) if wait_topic and not missing else []
    finally:
        await admin.close()
    if missing:
        raise NotConfirmed(
            f"topic {', '.join(missing)} does not exist: the worker creates its topics at "
            "start; has one run with this LEADSTREAM_TOPIC_PREFIX (and LEADSTREAM_INPUT_TOPICS)? "
            "Nothing was sent"
        )
    consumer = None
    if wait_topic is not None:
        # read from the topic's end as it is now, before the request is sent
        consumer = AIOKafkaConsumer(**options, enable_auto_commit=False)
        await consumer.start()
        partitions = [p["partition"] for topic in described for p in topic["partitions"]]
        consumer.assign([TopicPartition(wait_topic, p) for p in partitions])
        await consumer.seek_to_end()
    producer = AIOKafkaProducer(**options, acks="all", enable_idempotence=True)
    try:
        await producer.start()
        await producer.send_and_wait(topic, json.dumps(event).encode(), key=key)
    finally:
        await producer.stop()
    print(event["event_id"])
    sys.stdout.flush()
    if consumer is None:
        return None
    try:
        deadline = time.monotonic() + limit_s
        while (left := deadline - time.monotonic()) > 0:
            fetched = await consumer.getmany(timeout_ms=int(min(left, 1.0) * 1000))
            for records in fetched.values():
                for record in records:
                    erasure = ErasureEvent.model_validate_json(record.value or b"")
                    if erasure.erasure_id == event["event_id"]:
                        return erasure
    finally:
        await consumer.stop()
    raise NotConfirmed(
        f"erase request {event['event_id']} was sent to {topic}, but no erasure with that id "
        f"came on {wait_topic} within {limit_s:g}s: is the worker running and caught up "
        "(python -m stream_app health --ready; its consumer lag in /metrics)? The request "
        "stays on the topic: the worker applies it when it gets there"
    )


def _cmd_erase(args: argparse.Namespace) -> int:
    from pydantic import ValidationError  # noqa: PLC0415

    from stream_app.config import Settings  # noqa: PLC0415
    from stream_app.topics import TopicNames  # noqa: PLC0415

    try:
        event = request_for(
            args.who,
            anonymous=args.anonymous,
            reason=args.reason,
            requested_by=args.requested_by,
            now=datetime.now(UTC),
        )
    except ValidationError as exc:
        first = exc.errors(include_url=False)[0]
        field = ".".join(str(p) for p in first["loc"][1:]) or "(request)"
        print(f"error: cannot erase {args.who!r}: {field}: {first['msg']}", file=sys.stderr)
        return 2
    names = TopicNames.of(Settings())
    topic = args.topic or names.input_for("erase")
    wait_topic = names.erasures if args.wait else None
    try:
        erasure = asyncio.run(_send_and_wait(event, topic, wait_topic, args.timeout))
    except OSError as exc:  # e.g. the broker does not answer
        print(f"error: cannot reach Kafka: {exc}", file=sys.stderr)
        return 2
    if erasure is not None:
        print(erasure.model_dump_json())
    return 0


def add_command(sub: Any, formatter: type[argparse.HelpFormatter]) -> None:
    erase = sub.add_parser(
        "erase",
        help="erase a person (lead id or e-mail address): records, visitors, projection",
        description=(
            "Send an erase request for a person to the worker, by lead id or e-mail address\n"
            "(or, with --anonymous, by an anonymous id), and print its event id."
        ),
        epilog=EPILOG,
        formatter_class=formatter,
    )
    erase.add_argument("who", help="a lead id, or an e-mail address (anything with an @)")
    erase.add_argument(
        "--anonymous", action="store_true", help="WHO is an anonymous id (a cookie, a device)"
    )
    erase.add_argument("--reason", help="why, for the erasure event (e.g. a ticket id)")
    erase.add_argument("--requested-by", help="who asked, for the erasure event")
    erase.add_argument(
        "--topic", help="send to this input topic, not to the one profile events go to"
    )
    erase.add_argument(
        "--wait", action="store_true", help="wait for the erasure event on lead_erasures"
    )
    erase.add_argument(
        "--timeout", type=float, default=60.0, help="seconds --wait waits before failing"
    )
    erase.set_defaults(handler=_cmd_erase)
