"""Two bare Faust agents with the worker's own Faust settings: what Faust itself costs.

    python -m bench.faust_agents count   # consume and count, nothing else
    python -m bench.faust_agents floor   # per message: one table write + one send

Both read the worker's input topics (``LEADSTREAM_TOPIC_PREFIX``) in the group
``LEADSTREAM_APP_ID``, with ``faust.App(app_id, **stream_app.worker.app.app_options(settings))``
(the worker's broker, store, data directory, commit and serializer settings) and
the worker's Faust fixes and logging. ``floor`` is the worker's minimal shape:
a RocksDB table with its changelog (``stream_app.worker.app.table_options``), one write of
the message per message, and one ``await topic.send`` of it to
``<prefix>faust-floor-out``. The harness (``bench/phases/faust_baselines.py``)
runs each as its own process and measures it as it measures the worker.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from typing import Any

CLOCK_MARK = "bench agent: starting"


def out_topic(prefix: str) -> str:
    return f"{prefix}faust-floor-out"


def build(kind: str, settings: Any) -> Any:
    import faust  # noqa: PLC0415 (Faust is slow to import; --help stays fast)

    from stream_app.topics import TopicNames  # noqa: PLC0415
    from stream_app.worker import faust_fixes  # noqa: PLC0415
    from stream_app.worker.app import app_options, table_options  # noqa: PLC0415

    faust_fixes.apply()
    app = faust.App(settings.app_id, **app_options(settings))

    @app.task
    async def ready() -> None:  # where the worker logs its rules line: before the group join
        import stream_app  # noqa: PLC0415

        print(
            f"{CLOCK_MARK} {kind}, app {settings.app_id}, code {stream_app.__file__}",
            file=sys.stderr,
            flush=True,
        )

    names = TopicNames(settings.topic_prefix)
    inputs = app.topic(
        *names.inputs,
        key_type=bytes,
        value_type=bytes,
        partitions=settings.topic_partitions,
        internal=True,
    )
    if kind == "count":

        @app.agent(inputs, name="count")
        async def count(stream: Any) -> None:
            seen = 0
            async for _ in stream:
                seen += 1

        return app
    table = app.Table("floor", **table_options(settings))
    out = app.topic(
        out_topic(settings.topic_prefix),
        key_type=bytes,
        value_type=bytes,
        partitions=settings.topic_partitions,
        internal=True,
    )

    @app.agent(inputs, name="floor")
    async def floor(stream: Any) -> None:
        async for event in stream.events():
            key = event.key if event.key is not None else b"-"
            table[key] = event.value
            await out.send(key=key, value=event.value)

    return app


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__.splitlines()[0],
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog=__doc__.split("\n", 2)[2],
    )
    parser.add_argument("kind", choices=["count", "floor"])
    args = parser.parse_args()

    from faust.worker import Worker  # noqa: PLC0415

    from stream_app.config import Settings  # noqa: PLC0415
    from stream_app.kafka import ensure_topics  # noqa: PLC0415
    from stream_app.logs import logging_config  # noqa: PLC0415
    from stream_app.topics import TopicNames  # noqa: PLC0415

    settings = Settings()
    app = build(args.kind, settings)
    topics = [*TopicNames(settings.topic_prefix).inputs, out_topic(settings.topic_prefix)]
    asyncio.run(ensure_topics(settings, topics))
    worker = Worker(
        app,
        loglevel=settings.log_level.lower(),
        quiet=True,
        logging_config=logging_config(settings),
    )
    worker.execute_from_commandline()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
