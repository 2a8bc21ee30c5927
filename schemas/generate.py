"""Write the JSON Schema of every message model and the AsyncAPI 3 document to ``schemas/json/``.

python -m schemas.generate          # rewrite the files
python -m schemas.generate --check  # exit 1 if any file is stale (tests do this)
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from pydantic import BaseModel

from schemas.asyncapi import document
from schemas.dead_letter import DeadLetter
from schemas.erasures import ErasureEvent
from schemas.events import INPUT_ADAPTER, INPUT_MODELS
from schemas.segment import SEGMENT_ADAPTER
from schemas.transitions import ScoreUpdate, SlaBreach, StageTransition

OUT_DIR = Path(__file__).parent / "json"


def rendered() -> dict[str, str]:
    """File name -> JSON text, for every model, the inbound union and the Segment subset."""
    models: list[type[BaseModel]] = [
        *INPUT_MODELS,
        StageTransition,
        ScoreUpdate,
        SlaBreach,
        ErasureEvent,
        DeadLetter,
    ]
    files: dict[str, str] = {}
    for model in models:
        name = model.model_fields["type"].default
        schema = model.model_json_schema(mode="validation")
        schema["$id"] = f"https://leadstream.dev/schemas/{name}.json"
        files[f"{name}.json"] = json.dumps(schema, indent=2, sort_keys=True) + "\n"
    union = INPUT_ADAPTER.json_schema(mode="validation")  # the scored events and erase
    union["title"] = "InboundEvent"
    union["$id"] = "https://leadstream.dev/schemas/inbound_event.json"
    files["inbound_event.json"] = json.dumps(union, indent=2, sort_keys=True) + "\n"
    # The accepted Segment-spec subset: one file, its six message types in $defs
    segment = SEGMENT_ADAPTER.json_schema(mode="validation")
    segment["title"] = "SegmentEvent"
    segment["description"] = (
        "The Segment-spec messages Leadstream accepts on any input topic (RudderStack, "
        "Segment, Jitsu, Customer.io Data Pipelines), beside the native events. Only these "
        "fields are read; others are allowed and ignored. stream_app/ingest/segment.py maps them."
    )
    segment["$id"] = "https://leadstream.dev/schemas/segment_event.json"
    files["segment_event.json"] = json.dumps(segment, indent=2, sort_keys=True) + "\n"
    files["asyncapi.json"] = json.dumps(asyncapi(), indent=2) + "\n"
    return files


def asyncapi() -> dict[str, object]:
    """The AsyncAPI 3 document of every topic (their names are the worker's)."""
    from stream_app.topics import INPUTS, OUTPUTS  # noqa: PLC0415  (a tool's import)

    described = {
        "lead_stage_transitions": (
            "stage_transition",
            "every stage change, keyed by lead id: what sales bots and alerting consume",
        ),
        "lead_sla_breaches": (
            "sla_breach",
            "a lead sales did not pick up within the rules' "
            "SLA (stages.sla_hours), keyed by lead id: one per stage entry",
        ),
        "lead_score_updates": (
            "score_update",
            "the newest score of a lead per batch; when the lead was erased, a tombstone "
            "(score_update_deleted: a null value, CloudEvents headers and no data)",
        ),
        "lead_erasures": (
            "erasure",
            "the answer to each erase request, keyed by the lead id (else the anonymous "
            "id): downstream consumers delete what they hold of that person",
        ),
        "lead_dead_letters": ("dead_letter", "what could not be accepted, with the reason"),
    }
    inputs = [(t, f"input topic (any event type; native or Segment-spec): {t}") for t in INPUTS]
    outputs = [(t, *described[t]) for t in OUTPUTS]
    return document(inputs, outputs)


def stale(out_dir: Path = OUT_DIR) -> list[str]:
    """Names of files that are missing, different, or no longer generated."""
    want = rendered()
    have = {p.name: p.read_text() for p in out_dir.glob("*.json")}
    return sorted(n for n in want.keys() | have.keys() if want.get(n) != have.get(n))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="only report stale files")
    args = parser.parse_args(argv)
    if args.check:
        names = stale()
        for name in names:
            print(f"stale: schemas/json/{name}", file=sys.stderr)
        return 1 if names else 0
    OUT_DIR.mkdir(exist_ok=True)
    for old in OUT_DIR.glob("*.json"):
        old.unlink()
    for name, text in rendered().items():
        (OUT_DIR / name).write_text(text)
    print(f"wrote {len(rendered())} schemas to {OUT_DIR}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
