"""Conditions of the rules file, compiled to predicates once at load time.

A condition maps field names to a matcher::

    when: {type: page_view, path: {glob: ["/pricing*", "/plans*"]}}
    when: {company_size: {min: 50, max: 5000}}
    when: {email_domain: [gmail.com, yahoo.com]}
    when: {country: {not_in: [US, CA, GB]}}

A scalar means equality, a list means "any of", and a mapping uses one or
more of ``glob``, ``in``, ``not_in``, ``min``, ``max``. Strings compare
case-insensitively. A field whose value is unknown (missing, null) matches
nothing, so an unknown country never disqualifies anyone.
"""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Callable, Mapping
from typing import Any

Scalar = str | int | float | bool
Getter = Callable[[str], Any]
Predicate = Callable[[Getter], bool]

MATCHER_KEYS = {"glob", "in", "not_in", "min", "max"}


def _norm(value: Any) -> Any:
    return value.casefold() if isinstance(value, str) else value


def _as_list(value: Any) -> list[Any]:
    return list(value) if isinstance(value, list | tuple) else [value]


def _glob_regex(patterns: list[str]) -> re.Pattern[str]:
    return re.compile("|".join(f"(?:{fnmatch.translate(p)})" for p in patterns), re.IGNORECASE)


def check_matcher(spec: Any) -> None:
    """Raise ValueError with a readable message if ``spec`` is not a valid matcher."""
    if isinstance(spec, Mapping):
        if not spec:
            raise ValueError("an empty matcher matches nothing; give glob/in/not_in/min/max")
        unknown = set(spec) - MATCHER_KEYS
        if unknown:
            raise ValueError(
                f"unknown matcher key(s) {sorted(unknown)}; expected some of {sorted(MATCHER_KEYS)}"
            )
        for key in ("min", "max"):
            if key in spec and (
                isinstance(spec[key], bool) or not isinstance(spec[key], int | float)
            ):
                raise ValueError(f"'{key}' must be a number, got {spec[key]!r}")
        for key in ("glob", "in", "not_in"):
            if key in spec:
                for item in _as_list(spec[key]):
                    if not isinstance(item, Scalar):
                        raise ValueError(f"'{key}' takes strings or numbers, got {item!r}")
        return
    for item in _as_list(spec):
        if not isinstance(item, Scalar):
            raise ValueError(f"a matcher is a value, a list of values, or a mapping; got {item!r}")


def compile_matcher(spec: Any) -> Callable[[Any], bool]:
    """A predicate on one field value; ``spec`` must have passed ``check_matcher``."""
    if not isinstance(spec, Mapping):
        wanted = frozenset(_norm(v) for v in _as_list(spec))
        return lambda value: value is not None and _norm(value) in wanted

    tests: list[Callable[[Any], bool]] = []
    if "glob" in spec:
        regex = _glob_regex([str(p) for p in _as_list(spec["glob"])])
        tests.append(lambda v: regex.match(str(v)) is not None)
    if "in" in spec:
        allowed = frozenset(_norm(v) for v in _as_list(spec["in"]))
        tests.append(lambda v: _norm(v) in allowed)
    if "not_in" in spec:
        banned = frozenset(_norm(v) for v in _as_list(spec["not_in"]))
        tests.append(lambda v: _norm(v) not in banned)
    if "min" in spec:
        low = float(spec["min"])
        tests.append(lambda v: isinstance(v, int | float) and v >= low)
    if "max" in spec:
        high = float(spec["max"])
        tests.append(lambda v: isinstance(v, int | float) and v <= high)

    if len(tests) == 1:  # the usual case; rules are evaluated for every event
        test = tests[0]
        return lambda value: value is not None and test(value)

    def match(value: Any) -> bool:
        return value is not None and all(t(value) for t in tests)

    return match


def compile_condition(when: Mapping[str, Any]) -> Predicate:
    """A predicate over a field getter: true when every field's matcher matches."""
    parts = [(field, compile_matcher(spec)) for field, spec in when.items()]
    if len(parts) == 1:  # the usual case: a generator costs more than the test
        field, only = parts[0]
        return lambda get: only(get(field))

    def predicate(get: Getter) -> bool:
        return all(match(get(field)) for field, match in parts)

    return predicate
