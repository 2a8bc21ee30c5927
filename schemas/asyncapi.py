"""The AsyncAPI 3 document of every topic, built from the same pydantic models as the JSON Schemas.

``make schemas`` writes it to ``schemas/json/asyncapi.json`` beside them, and
the stale-file test covers it. Channels are Kafka topics (their address
carries ``LEADSTREAM_TOPIC_PREFIX``); operations are Leadstream's point of
view: it receives the inputs and sends the outputs. Output messages declare
the CloudEvents binary-mode headers every output record carries.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel
from pydantic.json_schema import models_json_schema

from schemas.dead_letter import DeadLetter
from schemas.erasures import ErasureEvent
from schemas.events import INPUT_MODELS
from schemas.segment import SEGMENT_MODELS
from schemas.transitions import ScoreUpdate, SlaBreach, StageTransition

VERSION = "1.0.0"
REF = "#/components/schemas/{model}"
KAFKA_BINDING = "0.5.0"


def _ce_headers(type_name: str) -> dict[str, Any]:
    text = {"type": "string"}
    return {
        "type": "object",
        "description": "CloudEvents Kafka binary mode: the value is the data, as its schema says",
        "required": ["ce_specversion", "ce_id", "ce_source", "ce_type", "ce_time", "content-type"],
        "properties": {
            "ce_specversion": {"const": "1.0"},
            "ce_id": {
                **text,
                "description": "transition id, breach id, a score update's digest of its bytes "
                "(unique per distinct update, the same for a redelivered one), erasure id, or "
                "<topic>:<partition>:<offset> of a dead letter",
            },
            "ce_source": {**text, "description": "/leadstream/<app id>"},
            "ce_type": {"const": f"dev.leadstream.{type_name}.v1"},
            "ce_time": {**text, "format": "date-time"},
            "ce_subject": {
                **text,
                "description": "the lead id (an erasure of a visitor: the anonymous id; "
                "a dead letter: its message key)",
            },
            "ce_dataschema": {"const": f"https://leadstream.dev/schemas/{type_name}.json"},
            "content-type": {"const": "application/json"},
        },
    }


#: A score update's tombstone: ``ce_type`` ``dev.leadstream.<this>.v1``.
TOMBSTONE = "score_update_deleted"


def _tombstone() -> dict[str, Any]:
    """The null-valued record an erasure puts on the score updates: a CloudEvent without data."""
    text = {"type": "string"}
    return {
        "name": TOMBSTONE,
        "title": "Score update tombstone",
        "summary": "The lead was erased: its projection is deleted (older updates go with "
        "the topic's retention). A null value (a Kafka tombstone) with CloudEvents headers "
        "and no data; the erasure itself is on lead_erasures",
        "payload": {"type": "null"},
        "headers": {
            "type": "object",
            "description": "CloudEvents Kafka binary mode, no data (no content-type)",
            "required": [
                "ce_specversion",
                "ce_id",
                "ce_source",
                "ce_type",
                "ce_time",
                "ce_subject",
            ],
            "properties": {
                "ce_specversion": {"const": "1.0"},
                "ce_id": {**text, "description": "a digest of the lead id and the erasure id"},
                "ce_source": {**text, "description": "/leadstream/<app id>"},
                "ce_type": {"const": f"dev.leadstream.{TOMBSTONE}.v1"},
                "ce_time": {
                    **text,
                    "format": "date-time",
                    "description": "when the erasure was requested (its requested_at)",
                },
                "ce_subject": {**text, "description": "the erased lead's id"},
            },
        },
        "bindings": _key("the erased lead's id"),
    }


def _key(description: str) -> dict[str, Any]:
    return {
        "kafka": {
            "key": {"type": "string", "description": description},
            "bindingVersion": KAFKA_BINDING,
        }
    }


def document(inputs: list[tuple[str, str]], outputs: list[tuple[str, str, str]]) -> dict[str, Any]:
    """``inputs``: (topic, description); ``outputs``: (topic, message type, description)."""
    models: list[type[BaseModel]] = [
        *INPUT_MODELS,
        *SEGMENT_MODELS,
        StageTransition,
        SlaBreach,
        ScoreUpdate,
        ErasureEvent,
        DeadLetter,
    ]
    _, defs = models_json_schema([(m, "validation") for m in models], ref_template=REF)
    schemas: dict[str, Any] = dict(sorted(defs["$defs"].items()))

    def one_of(group: tuple[type[BaseModel], ...]) -> dict[str, Any]:
        return {
            "oneOf": [{"$ref": REF.format(model=m.__name__)} for m in group],
            "discriminator": "type",
        }

    messages: dict[str, Any] = {
        "inbound_event": {
            "name": "inbound_event",
            "title": "A native event",
            "summary": "One of the native event types, chosen by its `type` field, or an "
            "`erase` request (keyed like the person's other events)",
            "contentType": "application/json",
            "payload": one_of(INPUT_MODELS),
            "bindings": _key(
                "the subject: lead id, else anonymous id (unkeyed works, one hop dearer)"
            ),
        },
        "segment_event": {
            "name": "segment_event",
            "title": "A Segment-spec event",
            "summary": "page / screen / track / identify / alias / group, as RudderStack, "
            "Segment, Jitsu write it; unknown fields allowed and ignored",
            "contentType": "application/json",
            "payload": one_of(SEGMENT_MODELS),
            "bindings": _key("userId, else anonymousId (RudderStack); Segment: unkeyed"),
        },
    }
    channels: dict[str, Any] = {}
    operations: dict[str, Any] = {}
    prefix = {"prefix": {"description": "LEADSTREAM_TOPIC_PREFIX (empty by default)"}}
    for topic, description in inputs:
        channels[topic] = {
            "address": f"{{prefix}}{topic}",
            "parameters": prefix,
            "description": description,
            "messages": {
                name: {"$ref": f"#/components/messages/{name}"}
                for name in ("inbound_event", "segment_event")
            },
        }
        operations[f"receive_{topic}"] = {
            "action": "receive",
            "channel": {"$ref": f"#/channels/{topic}"},
            "messages": [
                {"$ref": f"#/channels/{topic}/messages/{n}"}
                for n in ("inbound_event", "segment_event")
            ],
        }
    for topic, type_name, description in outputs:
        model = {
            "stage_transition": StageTransition,
            "sla_breach": SlaBreach,
            "score_update": ScoreUpdate,
            "erasure": ErasureEvent,
            "dead_letter": DeadLetter,
        }[type_name]
        messages[type_name] = {
            "name": type_name,
            "title": model.__name__,
            "contentType": "application/json",
            "payload": {"$ref": REF.format(model=model.__name__)},
            "headers": _ce_headers(type_name),
            "bindings": _key(
                "the lead id (an erasure of a visitor: the anonymous id; dead letters: the "
                "input message's key)"
            ),
        }
        names = [type_name]
        if type_name == "score_update":  # and, when a lead is erased, its tombstone
            messages[TOMBSTONE] = _tombstone()
            names.append(TOMBSTONE)
        channels[topic] = {
            "address": f"{{prefix}}{topic}",
            "parameters": prefix,
            "description": description,
            "messages": {n: {"$ref": f"#/components/messages/{n}"} for n in names},
        }
        operations[f"send_{topic}"] = {
            "action": "send",
            "channel": {"$ref": f"#/channels/{topic}"},
            "messages": [{"$ref": f"#/channels/{topic}/messages/{n}"} for n in names],
        }
    return {
        "asyncapi": "3.0.0",
        "info": {
            "title": "Leadstream",
            "version": VERSION,
            "description": (
                "Real-time lead scoring on Kafka. Inputs accept native events and the "
                "Segment-spec subset on every input topic (LEADSTREAM_INPUT_TOPICS replaces "
                "them); outputs carry CloudEvents binary-mode headers. Generated by "
                "`make schemas` from the pydantic models in schemas/."
            ),
        },
        "defaultContentType": "application/json",
        "servers": {
            "local": {
                "host": "127.0.0.1:9092",
                "protocol": "kafka",
                "description": "the local stack (`make stack-up`)",
            },
        },
        "channels": channels,
        "operations": operations,
        "components": {"schemas": schemas, "messages": messages},
    }
