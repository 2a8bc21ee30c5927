"""What the harness knows of the worker's wiring, asked of the product in one place.

The worker's internal topics (today two hops, identity and scoring; tomorrow
one repartition topic) are never spelled here: ``stream_app.worker.app.worker_topics``
lists every topic the worker reads or writes except Faust's changelogs, and the
public output topics of ``stream_app.topics.TopicNames`` are taken out of it.
What stays is what the worker's consumer group reads. The contract assumed:
every non-output topic in ``worker_topics`` is read by the group ``app_id``.

Besides the topics, two log lines of the worker are relied on (``CLOCK_MARK`` to
start the clock, ``DUE_INDEX`` to know a restarted worker is warm); the
``lead-records`` changelog is named in ``bench/phases/state_at_scale.py`` only.
"""

from __future__ import annotations

from bench.common import Kafka, Watched
from stream_app.config import Settings
from stream_app.serve.projector import projected_topics, projection_group
from stream_app.topics import OUTPUTS, TopicNames

CLOCK_MARK = "Leadstream worker: rules"  # the worker logs it before it joins its group
DUE_INDEX = "due index rebuilt"  # ... and this once its decay index is rebuilt


def outputs(settings: Settings) -> list[str]:
    """The worker's public outputs (``stream_app.topics.OUTPUTS``): written, never read."""
    names = TopicNames(settings.topic_prefix)
    return [names.name(base) for base in OUTPUTS]


def scoring_topics(settings: Settings) -> list[str]:
    """What the worker's group reads: its inputs and its internal topics, from the product."""
    from stream_app.worker.app import worker_topics  # noqa: PLC0415 (the app imports Faust)

    public = set(outputs(settings))
    return [t for t in worker_topics(settings) if t not in public]


def all_topics(settings: Settings) -> list[str]:
    """Every topic to create before the worker starts (the product's list)."""
    from stream_app.worker.app import worker_topics  # noqa: PLC0415

    return list(worker_topics(settings))


def watched(settings: Settings) -> Watched:
    """What the worker consumes, by group: the scoring group's topics, and the score updates,
    transitions and SLA breaches its Redis projection reads in a group of its own."""
    projected = projected_topics(TopicNames(settings.topic_prefix))
    return [
        (settings.app_id, scoring_topics(settings)),
        (projection_group(settings.app_id), projected),
    ]


async def changelogs(kafka: Kafka, app_id: str) -> list[str]:
    """The app's table changelogs as they exist on the broker (Faust names them
    ``<app id>-<table>-changelog``, without our prefix)."""
    return sorted(
        t
        for t in await kafka.admin.list_topics()
        if t.startswith(f"{app_id}-") and t.endswith("-changelog")
    )
