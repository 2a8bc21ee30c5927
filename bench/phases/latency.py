"""Latency: fresh prospects' events offered at steady rates to the running keyed worker;
from the producer's send of an event to its transition received (p50/p95/p99/max)."""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any

from aiokafka import AIOKafkaProducer
from tqdm import tqdm

from bench.common import (
    BOOTSTRAP,
    Kafka,
    Watched,
    latency_figures,
    say,
    subject_key,
    watch_from_end,
)
from bench.context import Run
from bench.topology import watched
from stream_app.topics import TopicNames
from tools.traffic import generate


def fresh_events(rate: float, seconds: float, seed: int, tag: str) -> list[dict[str, Any]]:
    """``rate * seconds`` events of fresh prospects (about 8 events each)."""
    count = int(rate * seconds)
    return list(generate(max(50, count // 8), seed, id_prefix=tag))[:count]


async def offer(
    kafka: Kafka,
    prefix: str,
    groups: Watched,
    events: list[dict[str, Any]],
    rate: float,
    *,
    limit_s: float,
    expected: set[str] | None = None,
    desc: str = "",
    one_topic: bool = False,
) -> dict[str, Any]:
    """Send ``events`` at ``rate``/s; collect every transition they trigger.

    Returns the figures and, as ``_received``, the ids received. ``one_topic``: every
    event on one input topic, keyed by subject (as RudderStack writes them), so each
    subject's events reach the worker in order. ``drain_s``: from the
    first send until the groups have committed everything and (with ``expected``) every
    expected transition was received, or 30 s after the commit for those that never came.
    """
    names = TopicNames(prefix)
    topic_of = (
        (lambda e: names.name("page_views"))
        if one_topic
        else (lambda e: names.input_for(e["type"]))
    )
    payloads = [
        (topic_of(e), subject_key(e), json.dumps(e).encode(), e["event_id"]) for e in events
    ]
    watch = await watch_from_end(names.transitions)
    sent_at: dict[str, float] = {}
    received: dict[str, tuple[float, float]] = {}  # transition id -> (latency, time received)
    decayed: dict[str, float] = {}  # expected transitions without a trigger -> time received

    async def receive() -> None:
        while True:
            batch = await watch.getmany(timeout_ms=100)
            now = time.perf_counter()
            for records in batch.values():
                for record in records:
                    t = json.loads(record.value)
                    if (sent := sent_at.get(t.get("triggering_event_id"))) is not None:
                        received.setdefault(t["transition_id"], (now - sent, now))
                    elif expected is not None and t["transition_id"] in expected:
                        # a decay demotion found on the way has no triggering event: it counts
                        # as received, with no latency
                        decayed.setdefault(t["transition_id"], now)

    receiver = asyncio.create_task(receive())
    producer = AIOKafkaProducer(bootstrap_servers=BOOTSTRAP, acks="all", linger_ms=2)
    await producer.start()
    try:
        started = time.perf_counter()
        for n, (topic, key, value, event_id) in enumerate(
            tqdm(payloads, desc=desc or None, unit="ev", disable=None if desc else True)
        ):
            if (wait := started + n / rate - time.perf_counter()) > 0.0005:
                await asyncio.sleep(wait)
            sent_at[event_id] = time.perf_counter()
            await producer.send(topic, key=key, value=value)
        await producer.flush()
        last_send = time.perf_counter()
        committed = last_send + await kafka.wait_caught_up(groups, limit_s, desc=desc and "drain")
        if expected is None:
            await asyncio.sleep(1.0)  # the last transitions on their way
        else:
            deadline = committed + 30

            def missing() -> bool:
                return not expected <= received.keys() | decayed.keys()

            while missing() and time.perf_counter() < deadline:  # noqa: ASYNC110
                await asyncio.sleep(0.1)
    finally:
        receiver.cancel()
        await producer.stop()
        await watch.stop()
    arrived = {t: at for t, (_, at) in received.items()} | decayed
    done = max([committed, *(arrived[t] for t in (expected or set()) if t in arrived)])
    values = [lat for lat, _ in received.values()]
    out: dict[str, Any] = {
        "offered_per_second": rate,
        "achieved_offer": round(len(events) / (last_send - started)),
        "events": len(events),
        "transitions": len(values),
        "drain_after_last_send_s": round(committed - last_send, 1),
        "drain_s": round(done - started, 1),
        **latency_figures(values),
        "_received": set(received) | set(decayed),
    }
    return out


async def run(run: Run) -> None:
    await run.keyed_worker()
    groups = watched(run.settings())
    run.figures["latency"] = []
    for n, rate in enumerate(run.args.rates):
        events = fresh_events(
            rate, run.args.latency_seconds, run.args.seed + 1 + n, f"b{run.run_id}-lat{rate}-"
        )
        figure = await offer(run.kafka, run.prefix(), groups, events, rate, limit_s=900)
        figure.pop("_received")
        say(f"  {figure}")
        run.figures["latency"].append(figure)
