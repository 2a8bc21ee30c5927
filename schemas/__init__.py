"""Pydantic v2 models of every message on every Leadstream topic.

No Kafka, no Faust: producers in Python import these; producers in other
languages use the generated JSON Schema files in ``schemas/json/``.
"""

from schemas.dead_letter import DeadLetter
from schemas.events import EVENT_MODELS, EVENT_TYPES, InboundEvent, parse_event
from schemas.transitions import STAGES, ScoreUpdate, SlaBreach, Stage, StageTransition

__all__ = [
    "EVENT_MODELS",
    "EVENT_TYPES",
    "STAGES",
    "DeadLetter",
    "InboundEvent",
    "ScoreUpdate",
    "SlaBreach",
    "Stage",
    "StageTransition",
    "parse_event",
]
