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


class RuleIndex:
    """Which of one event type's rules an event matches, with each field's verdicts cached.

    ``rules`` are ``(item, {field: matcher})`` in file order. A rule matches when
    every one of its fields' matchers does (a rule with no fields always
    matches). Per field, the verdicts of all rules on one value are a bit mask,
    computed once per distinct value; only ``str`` values and ``None`` are
    cached (page paths, countries, kinds: few and repeated), since two other
    values can be equal yet differ to a matcher (``1`` and ``True``, ``0.0`` and
    ``-0.0`` under ``glob``). A matcher is a pure function of the value, so a
    cached verdict is the one the matcher gives: the matched rules are the same.
    """

    __slots__ = ("_all", "_fields", "_items", "_picked", "_verdicts")

    def __init__(self, rules: list[tuple[Any, Mapping[str, Callable[[Any], bool]]]]) -> None:
        self._items = tuple(item for item, _ in rules)
        self._all = (1 << len(rules)) - 1
        names = sorted({name for _, tests in rules for name in tests})
        # field -> ((bit, matcher) of each rule that tests it), and the bits of the others
        self._fields = tuple(
            (
                name,
                tuple((1 << i, tests[name]) for i, (_, tests) in enumerate(rules) if name in tests),
                sum(1 << i for i, (_, tests) in enumerate(rules) if name not in tests),
            )
            for name in names
        )
        self._verdicts: dict[str, dict[str | None, int]] = {name: {} for name in names}
        self._picked: dict[int, tuple[Any, ...]] = {}

    def matching(self, get: Getter) -> tuple[Any, ...]:
        """The rules ``get``'s event matches, in file order."""
        mask = self._all
        for name, tests, others in self._fields:
            value = get(name)
            if value is None or value.__class__ is str:
                seen = self._verdicts[name]
                verdict = seen.get(value)
                if verdict is None:
                    verdict = others | sum(bit for bit, match in tests if match(value))
                    if len(seen) >= VERDICT_CACHE_LIMIT:
                        seen.clear()
                    seen[value] = verdict
            else:
                verdict = others | sum(bit for bit, match in tests if match(value))
            mask &= verdict
            if not mask:
                return ()
        picked = self._picked.get(mask)
        if picked is None:
            picked = self._picked[mask] = tuple(
                item for i, item in enumerate(self._items) if mask >> i & 1
            )
        return picked


#: Distinct values whose verdicts one field of one event type keeps; a full cache starts again.
VERDICT_CACHE_LIMIT = 4096


def field_matchers(when: Mapping[str, Any]) -> dict[str, Callable[[Any], bool]]:
    """Each field's matcher of a condition (what ``compile_condition`` combines)."""
    return {name: compile_matcher(spec) for name, spec in when.items()}
