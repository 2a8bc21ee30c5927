"""The rules file, compiled for the engine, and parsed from its text.

``parse_rules(text, source=...)`` raises ``RulesError`` naming the source,
the path of the bad key and what was expected::

    rules/default.yaml: engagement.rules[2].when: 'pathh' is not a field of page_view;
    fields: anonymous_id, campaign, country, ...

The version stamped on every transition is the file's ``version`` plus the
first 8 hex digits of its SHA-256, so an edit without a version bump shows.
Reading the file is not done here (the package is I/O-free):
``stream_app.rules_file.load_rules(path)`` reads it and calls ``parse_rules``.
The model of the file itself (``RulesSpec`` and its parts) is in ``spec``.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any, Literal

import yaml
from pydantic import ValidationError

from schemas.events import EVENT_TYPES
from stream_app.errors import RulesError
from stream_app.scoring.matching import Predicate, RuleIndex, compile_condition, field_matchers
from stream_app.scoring.spec import (
    Disqualifier,
    FitRule,
    RulesSpec,
    Signal,
    Threshold,
    event_types_of,
)

__all__ = [
    "CompiledRule",
    "Rules",
    "RulesSpec",
    "Signal",
    "Threshold",
    "compile_rules",
    "parse_rules",
]

# --- compiled form used by the engine -------------------------------------------


@dataclass(frozen=True)
class CompiledRule:
    id: str
    kind: Literal["engagement", "signal"]
    points: float
    cap: float | None  # max points in any window of window_days days; None = uncapped
    window_days: int  # cap window (engagement) or within_days (signal); 1 if uncapped
    #: the cap in events (``cap / abs(points)``; a negative rule's cap bounds the loss)
    cap_events: float | None = None
    signal: Signal | None = None


@dataclass(frozen=True)
class Rules:
    """A validated rules file with its conditions compiled; what the engine takes."""

    spec: RulesSpec
    stamp: str  # "<version>+<sha256[:8]>", stamped on every transition
    source: str  # where it was loaded from, for messages
    by_event_type: Mapping[str, tuple[CompiledRule, ...]] = field(repr=False)
    #: event type -> which of its rules an event matches (``RuleIndex.matching``)
    index: Mapping[str, RuleIndex] = field(repr=False)
    by_id: Mapping[str, CompiledRule] = field(repr=False)
    fit_rules: tuple[tuple[FitRule, Predicate], ...] = field(repr=False)
    disqualifiers: tuple[tuple[Disqualifier, Predicate], ...] = field(repr=False)

    @cached_property
    def half_life_seconds(self) -> float:
        return self.spec.engagement.half_life_days * 86400.0

    @cached_property
    def horizon_seconds(self) -> float:
        return self.spec.horizon_days * 86400.0

    @cached_property
    def visit_gap_seconds(self) -> float:
        return self.spec.visits.inactivity_minutes * 60.0

    @cached_property
    def form_traits(self) -> dict[str, tuple[str, dict[str, bool | str]]]:
        """Form field name -> (the profile trait it sets, accepted answer -> value)."""
        return {m.field: (m.trait, m.answers()) for m in self.spec.form_fields}

    @cached_property
    def negative_ids(self) -> frozenset[str]:
        """Ids of the rules and signals that take points away."""
        return frozenset(rule_id for rule_id, rule in self.by_id.items() if rule.points < 0)


def _without_type(when: Mapping[str, Any]) -> dict[str, Any]:
    # Rules are indexed by event type, so the type test is already done.
    return {k: v for k, v in when.items() if k != "type"}


def _cap_events(cap: float | None, points: float) -> float | None:
    return cap / abs(points) if cap is not None and points else None


def compile_rules(spec: RulesSpec, *, stamp: str, source: str = "<memory>") -> Rules:
    by_type: dict[str, list[CompiledRule]] = {name: [] for name in EVENT_TYPES}
    by_id: dict[str, CompiledRule] = {}
    for rule in spec.engagement.rules:
        compiled = CompiledRule(
            id=rule.id,
            kind="engagement",
            points=rule.points,
            cap=rule.cap.points if rule.cap else None,
            window_days=rule.cap.per_days if rule.cap else 1,
            cap_events=_cap_events(rule.cap.points if rule.cap else None, rule.points),
        )
        by_id[rule.id] = compiled
        for type_name in event_types_of(rule.when):
            by_type[type_name].append(compiled)
    for sig in spec.signals:
        compiled = CompiledRule(
            id=sig.id,
            kind="signal",
            points=sig.points,
            cap=sig.points,
            window_days=sig.within_days,
            cap_events=_cap_events(sig.points, sig.points),
            signal=sig,
        )
        by_id[sig.id] = compiled
        for type_name in event_types_of(sig.when):
            by_type[type_name].append(compiled)
    conditions = {rule.id: _without_type(rule.when) for rule in spec.engagement.rules}
    conditions.update({sig.id: _without_type(sig.when) for sig in spec.signals})
    return Rules(
        spec=spec,
        stamp=stamp,
        source=source,
        by_event_type={k: tuple(v) for k, v in by_type.items()},
        index={
            k: RuleIndex([(rule, field_matchers(conditions[rule.id])) for rule in v])
            for k, v in by_type.items()
        },
        by_id=by_id,
        fit_rules=tuple((r, compile_condition(r.when)) for r in spec.fit.rules),
        disqualifiers=tuple((d, compile_condition(d.when)) for d in spec.disqualify),
    )


def _format_errors(source: str, exc: ValidationError) -> str:
    lines = []
    for err in exc.errors():
        path = ""
        for part in err["loc"]:
            path += f"[{part}]" if isinstance(part, int) else f".{part}" if path else str(part)
        message = err["msg"].removeprefix("Value error, ")
        got = "" if err["type"] == "value_error" else f" (got {err.get('input')!r:.80})"
        lines.append(f"{source}: {path or '(top level)'}: {message}{got}")
    return "\n".join(lines)


class _RulesLoader(yaml.SafeLoader):
    """YAML as a rules file means it: only ``true``/``false`` are booleans.

    YAML 1.1 (PyYAML's default) also reads ``yes/no/on/off/y/n`` as booleans, so
    a country list ``[SE, NO, DK]`` held ``False`` for Norway: a Norwegian lead
    matched "not a served country" and was disqualified. YAML 1.2 dropped those
    forms; so does this loader, and ``NO`` stays the string ``"NO"``.
    """


_RulesLoader.yaml_implicit_resolvers = {
    first: [(tag, regex) for tag, regex in resolvers if tag != "tag:yaml.org,2002:bool"]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}
_RulesLoader.add_implicit_resolver(
    "tag:yaml.org,2002:bool",
    re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"),
    list("tTfF"),
)


def load_yaml(text: str) -> Any:
    """The YAML document in ``text``, read as YAML 1.2 reads booleans (see ``_RulesLoader``)."""
    return yaml.load(text, Loader=_RulesLoader)  # a SafeLoader: no arbitrary objects


def parse_rules(text: str, *, source: str = "<memory>") -> Rules:
    """Parse and validate rules from YAML text; raises RulesError."""
    try:
        data = load_yaml(text)
    except yaml.YAMLError as exc:
        raise RulesError(f"{source}: not valid YAML: {exc}") from None
    if not isinstance(data, dict):
        raise RulesError(
            f"{source}: expected a mapping at the top level, got {type(data).__name__}"
        )
    try:
        spec = RulesSpec.model_validate(data)
    except ValidationError as exc:
        raise RulesError(_format_errors(source, exc)) from None
    digest = hashlib.sha256(text.encode()).hexdigest()[:8]
    return compile_rules(spec, stamp=f"{spec.version}+{digest}", source=source)
