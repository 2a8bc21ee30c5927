"""Past events for ``evaluate`` and ``learn``: a JSON-lines file, or the input topics themselves.

``--from-kafka`` reads every input topic (``LEADSTREAM_INPUT_TOPICS``, else
the native ones under ``LEADSTREAM_TOPIC_PREFIX``) from the start of its
retention to the end offsets it finds when it starts, so a user with
Leadstream running evaluates without exporting anything. The messages are
held in memory (about their size on the broker) and replayed in Kafka
timestamp order, then topic, partition and offset: each partition keeps its
order, so each lead's events keep the order the worker saw.

Either way each pass decodes every line as the worker does (native JSON or
Segment-spec, ``codec.decode``); a bad line is counted and skipped, as
``simulate`` does, and a progress bar runs on stderr.
"""

from __future__ import annotations

import asyncio
import re
import sys
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from schemas.base import DEFAULT_MAX_CLOCK_SKEW_SECONDS
from schemas.dead_letter import DeadLetter
from schemas.events import InputEvent
from stream_app.codec import decode
from stream_app.errors import InputError
from stream_app.ingest.segment import Ignored
from stream_app.ingest.tracks import Tracks

_TIME = re.compile(rb'"(?:occurred_at|timestamp)"\s*:\s*"([^"]+)"')


@dataclass
class Source:
    """Where the events come from; ``lines`` may be called once per replay."""

    label: str
    path: Path | None = None
    values: list[bytes] | None = None
    tracks: Tracks | None = None
    quiet: bool = False
    bad: int = 0
    ignored: Counter[str] = field(default_factory=Counter)

    def raw(self) -> Iterator[bytes]:
        if self.values is not None:
            yield from self.values
            return
        assert self.path is not None
        try:
            with open(self.path, "rb") as handle:
                yield from handle
        except OSError as exc:
            raise InputError(f"{self.path}: cannot read: {exc.strerror}") from None

    def _bar(self, desc: str) -> Any:
        if self.quiet:
            return None
        from tqdm import tqdm  # noqa: PLC0415

        if self.values is not None:
            return tqdm(
                total=len(self.values), unit="ev", desc=desc, file=sys.stderr, mininterval=0.5
            )
        assert self.path is not None
        return tqdm(
            total=self.path.stat().st_size,
            unit="B",
            unit_scale=True,
            desc=desc,
            file=sys.stderr,
            mininterval=0.5,
        )

    def events(self, desc: str) -> Iterator[InputEvent]:
        """Every decodable event, in order; bad and ignored lines counted (last pass's)."""
        self.bad = 0
        self.ignored = Counter()
        bar = self._bar(desc)
        try:
            for number, raw in enumerate(self.raw(), start=1):
                if bar is not None:
                    bar.update(1 if self.values is not None else len(raw))
                line = raw.strip()
                if not line:
                    continue
                decoded = decode(
                    line,
                    line=number,
                    tracks=self.tracks,
                    max_clock_skew=DEFAULT_MAX_CLOCK_SKEW_SECONDS,
                )
                if isinstance(decoded, Ignored):
                    self.ignored[decoded.label] += 1
                elif isinstance(decoded, DeadLetter):
                    self.bad += 1
                else:
                    yield decoded
        finally:
            if bar is not None:
                bar.close()

    def median_time(self) -> float | None:
        """The median event time, found by a quick scan (no decoding)."""
        times: list[float] = []
        for raw in self.raw():
            match = _TIME.search(raw)
            if match is None:
                continue
            try:
                t = datetime.fromisoformat(match.group(1).decode().replace("Z", "+00:00"))
            except ValueError:
                continue
            if t.tzinfo is None:
                continue
            times.append(t.timestamp())
        times.sort()
        return times[len(times) // 2] if times else None


def file_source(path: str, tracks: Tracks | None, quiet: bool) -> Source:
    if path == "-":
        raise InputError("read the events from a file or --from-kafka (they are read twice)")
    if not Path(path).is_file():
        raise InputError(f"{path}: no such file")
    return Source(label=path, path=Path(path), tracks=tracks, quiet=quiet)


def kafka_source(tracks: Tracks | None, quiet: bool) -> Source:
    """Every input topic from the start of its retention (module docstring)."""
    from stream_app.config import Settings  # noqa: PLC0415
    from stream_app.topics import TopicNames  # noqa: PLC0415

    settings = Settings()
    topics = TopicNames.of(settings).inputs
    values = asyncio.run(read_topics(settings, topics, quiet))
    return Source(
        label=f"{len(topics)} input topic(s) at {settings.kafka_bootstrap}",
        values=values,
        tracks=tracks,
        quiet=quiet,
    )


async def read_topics(settings: Any, topics: tuple[str, ...], quiet: bool) -> list[bytes]:
    """The values of ``topics`` from their beginning to their end offsets now, in Kafka
    timestamp order (each partition's order kept); tombstones left out."""
    from aiokafka import AIOKafkaConsumer, TopicPartition  # noqa: PLC0415
    from aiokafka.admin import AIOKafkaAdminClient  # noqa: PLC0415
    from aiokafka.errors import KafkaError  # noqa: PLC0415

    from stream_app.kafka import kafka_options  # noqa: PLC0415

    admin = AIOKafkaAdminClient(**kafka_options(settings))
    try:
        await admin.start()
        try:
            # listed first: a metadata request for a topic that does not exist may create it
            existing = set(await admin.list_topics())
            missing = [t for t in topics if t not in existing]
            if missing:
                raise InputError(
                    f"no topic {', '.join(map(repr, missing))} at {settings.kafka_bootstrap}"
                )
            described = await admin.describe_topics(list(topics))
        finally:
            await admin.close()
    except KafkaError as exc:
        raise InputError(f"Kafka at {settings.kafka_bootstrap}: {exc}") from None
    partitions = []
    for found in described:
        ids = [p["partition"] for p in found.get("partitions") or []]
        if found.get("error_code", 0) or not ids:
            raise InputError(
                f"topic {found['topic']!r} does not exist at {settings.kafka_bootstrap}"
            )
        partitions += [TopicPartition(found["topic"], p) for p in sorted(ids)]
    consumer = AIOKafkaConsumer(enable_auto_commit=False, **kafka_options(settings))
    try:
        await consumer.start()
    except KafkaError as exc:
        raise InputError(f"Kafka at {settings.kafka_bootstrap}: {exc}") from None
    rows: list[tuple[int, str, int, int, bytes]] = []
    try:
        consumer.assign(partitions)
        await consumer.seek_to_beginning(*partitions)
        ends = await consumer.end_offsets(partitions)
        starts = await consumer.beginning_offsets(partitions)
        left = {tp: ends[tp] for tp in partitions if ends[tp] > starts[tp]}
        bar = None
        if not quiet:
            from tqdm import tqdm  # noqa: PLC0415

            total = sum(ends[tp] - starts[tp] for tp in partitions)
            bar = tqdm(
                total=total, unit="msg", desc="read topics", file=sys.stderr, mininterval=0.5
            )
        while left:
            batch = await consumer.getmany(*left, timeout_ms=1000, max_records=5000)
            for tp, records in batch.items():
                for record in records:
                    if record.offset >= ends[tp]:
                        continue
                    if record.value is not None:
                        rows.append(
                            (record.timestamp, tp.topic, tp.partition, record.offset, record.value)
                        )
                    if bar is not None:
                        bar.update(1)
                last = records[-1].offset if records else -1
                if last >= ends[tp] - 1:
                    left.pop(tp, None)
            for tp in list(left):
                if await consumer.position(tp) >= ends[tp]:
                    left.pop(tp)
        if bar is not None:
            bar.close()
    finally:
        await consumer.stop()
    rows.sort(key=lambda row: row[:4])
    return [row[4] for row in rows]
