"""The track-name mapping: which Segment-spec ``track`` names become which native event.

A YAML file (``segment_tracks.yaml`` beside this module ships the defaults;
``LEADSTREAM_TRACKS_PATH`` replaces them), validated like the rules file:
a bad entry is one error naming the file, the key and what was expected.
``stream_app.ingest.segment`` applies it; a name it does not list is ignored (and
counted), never dead-lettered.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from schemas.events import EVENT_TYPES
from stream_app.errors import LeadstreamError
from stream_app.scoring.rules import load_yaml

SHIPPED_TRACKS = Path(__file__).with_name("segment_tracks.yaml")


class TracksError(LeadstreamError):
    """The track-name mapping file is missing, not YAML, or names unknown types or fields."""


#: Native event types a ``track`` may become (identity comes from identify/alias/group).
TRACKABLE = sorted(set(EVENT_TYPES) - {"identify", "profile_update", "sales_feedback"})


class TrackRule(BaseModel):
    """One track name's native event: its type, constant fields, fields read from the message."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    type: str
    set: dict[str, str | int | float | bool] = Field(default_factory=dict)
    #: native field -> paths into the message (``properties.form_kind``), first present wins
    fields: dict[str, list[str]] = Field(default_factory=dict)

    @field_validator("type")
    @classmethod
    def _trackable(cls, value: str) -> str:
        if value not in TRACKABLE:
            raise ValueError(f"{value!r} is not a type a track can map to; one of {TRACKABLE}")
        return value

    def model_post_init(self, context: Any, /) -> None:
        known = set(EVENT_TYPES[self.type].model_fields) - {"type"}
        for name in [*self.set, *self.fields]:
            if name not in known:
                raise ValueError(f"{name!r} is not a field of {self.type}; fields: {sorted(known)}")


class Tracks(BaseModel):
    """Track event name -> native event; names not listed are ignored (and counted)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    version: str
    tracks: dict[str, TrackRule]


def parse_tracks(text: str, source: str = "<string>") -> Tracks:
    try:
        data = load_yaml(text)  # as the rules file: only true/false are booleans
    except yaml.YAMLError as exc:
        raise TracksError(f"{source}: not YAML: {exc}") from None
    if isinstance(data, dict):  # "x-..." keys hold YAML anchors for the entries to share
        data = {k: v for k, v in data.items() if not str(k).startswith("x-")}
    try:
        return Tracks.model_validate(data)
    except ValidationError as exc:
        err = exc.errors(include_url=False)[0]
        where = ".".join(str(p) for p in err["loc"]) or "(file)"
        raise TracksError(f"{source}: {where}: {err['msg']}") from None


@lru_cache(maxsize=1)
def shipped_tracks() -> Tracks:
    """The defaults that ship with Leadstream (``segment_tracks.yaml`` beside this module)."""
    return load_tracks(SHIPPED_TRACKS)


def load_tracks(path: str | Path = SHIPPED_TRACKS) -> Tracks:
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise TracksError(f"{path}: cannot read the track mapping: {exc.strerror}") from None
    return parse_tracks(text, source=str(path))
