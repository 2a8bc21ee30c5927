"""Identity resolution plus the engine, over a sequence of events, in memory.

This is the reference processing: ``simulate`` runs it over a file, and the
tests use it as the oracle the live pipeline must match. It is pure (no I/O,
no clock); the decay sweep's "now" is passed in.

Identity: an event carrying only an ``anonymous_id`` is scored under that id
until the id is linked to a lead, by an ``identify`` or by any event that
carries both ids. At the link the anonymous history is merged into the lead
exactly once, whichever arrives first; later anonymous events go to the lead.
The first link of an anonymous id wins. An e-mail address is linked the same
way, by its pseudonym (``identity.email_link``), whatever event tells a lead's
address: so an erase by address finds the person.

An ``erase`` request forgets the person it names: the lead (a merged
anonymous id names its lead), the anonymous states merged into it and the
links to it; a later event for those ids starts from nothing.

An anonymous visitor that joined no lead and tells an address is not linked
to it (the address is the person's, the visitor may never become a lead): the
pseudonym keeps the visitor as having told it (``told``), and an erase by the
address erases, besides the pseudonym's own lead, each such visitor, or the
lead it has joined since (``identity.email_link``; ``erasure.erasure_by_address``).

The replay owns ``states``: ``process`` changes the state of the event's key
in place (it is replaced by the outcome's anyway), so a state taken from
``states`` is the live one, not a snapshot; copy it (``LeadState.copy``) to keep one.
A step's score update is the exception: what it reads is copied when the event is
scored, and it is validated when first read (``Step.update``), so a caller that
keeps only some updates (the worker keeps the newest per lead) pays for those only.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Literal

from schemas.erasures import ErasureEvent
from schemas.events import Erase, InboundEvent, InputEvent
from schemas.transitions import ScoreUpdate, SlaBreach, StageTransition
from stream_app.scoring.engine import (
    Status,
    advance,
    apply_event,
    merge_anonymous,
    switch_rules,
)
from stream_app.scoring.erasure import erasure_by_address, erasure_of
from stream_app.scoring.identity import MAX_TOLD_BY, email_link
from stream_app.scoring.outputs import PendingUpdate, pending_update
from stream_app.scoring.rules import Rules
from stream_app.scoring.state import ANONYMOUS_PREFIX, LeadState, anonymous_key, new_state


@dataclass(frozen=True, slots=True)
class Step:
    status: Status | Literal["erased"]
    key: str
    transitions: tuple[StageTransition, ...]
    pending: PendingUpdate | None  # None for anonymous keys and uncounted events
    breaches: tuple[SlaBreach, ...] = ()  # SLA deadlines the event's time passed
    erasure: ErasureEvent | None = None  # the answer to an erase request

    @property
    def update(self) -> ScoreUpdate | None:
        """The lead's score update after this event, validated when first read."""
        return self.pending.get() if self.pending is not None else None


@dataclass
class Replay:
    rules: Rules
    states: dict[str, LeadState] = field(default_factory=dict)
    links: dict[str, str] = field(default_factory=dict)  # anonymous id -> lead id
    # an address's pseudonym -> the visitors that told the address while joined to no lead
    told: dict[str, list[str]] = field(default_factory=dict)

    def route(self, event: InboundEvent) -> str:
        """The state key for an event, linking and merging identities on the way.

        The pseudonym of an address the event tells (``identity.email_link``) is
        linked to the event's lead after its anonymous id, the order the live worker
        claims them in; a visitor that joined no lead is kept as having told it.
        """
        lead, anon = event.lead_id, event.anonymous_id
        pseudonym = email_link(event)
        if lead is not None:
            if anon is not None and self.links.setdefault(anon, lead) == lead:
                self._merge(anon, lead)
        else:
            assert anon is not None
            lead = self.links.get(anon)
            if lead is None:
                if pseudonym is not None:
                    told = self.told.setdefault(pseudonym, [])
                    if anon not in told:
                        told.append(anon)
                        del told[:-MAX_TOLD_BY]
                return anonymous_key(anon)
        if pseudonym is not None and self.links.setdefault(pseudonym, lead) == lead:
            self._merge(pseudonym, lead)
        return lead

    def _merge(self, anon: str, lead: str) -> None:
        anon_state = self.states.get(anonymous_key(anon))
        if anon_state is None or anon_state.merged_into is not None:
            return
        lead_state = self.states.get(lead) or new_state(lead, lead)
        merged, tombstone = merge_anonymous(lead_state, anon_state, self.rules)
        self.states[lead] = merged
        self.states[tombstone.key] = tombstone

    def process(self, event: InputEvent, *, with_update: bool = True) -> Step:
        if isinstance(event, Erase):
            return self.erase(event)
        key = self.route(event)
        # The replay owns its states and replaces this one with the outcome's: in place.
        outcome = apply_event(self.states.get(key), event, self.rules, key=key, in_place=True)
        self.states[key] = outcome.state
        counted = outcome.status == "counted" and outcome.state.lead_id is not None
        update = None
        if with_update and counted:
            update = pending_update(outcome.state, self.rules, view=outcome.view)
        return Step(outcome.status, key, outcome.transitions, update, outcome.breaches)

    def erase(self, request: Erase) -> Step:
        """Forget the person ``request`` names (see the module docstring)."""
        lead = request.lead_id
        if lead is None:
            assert request.anonymous_id is not None, "an e-mail address is mapped by the codec"
            visitors = self.told.pop(request.anonymous_id, None)
            if visitors:
                return self._erase_told(request, request.anonymous_id, visitors)
            lead = self.links.get(request.anonymous_id)
            if lead is None:  # a visitor that joined no lead
                key = anonymous_key(request.anonymous_id)
                found = self.states.pop(key, None)
                return Step(
                    "erased", key, (), None, erasure=erasure_of(request, lead_id=None, found=found)
                )
        found = self._erase_lead(lead)
        return Step(
            "erased", lead, (), None, erasure=erasure_of(request, lead_id=lead, found=found)
        )

    def _erase_lead(self, lead: str) -> LeadState | None:
        """Forget ``lead``, the visitors merged into it and the links to it; its state."""
        found = self.states.pop(lead, None)
        for anonymous_id in [a for a, joined in self.links.items() if joined == lead]:
            del self.links[anonymous_id]
            self.states.pop(anonymous_key(anonymous_id), None)
        return found

    def _erase_told(self, request: Erase, pseudonym: str, visitors: list[str]) -> Step:
        """An erase by address whose pseudonym ``visitors`` told: the pseudonym's lead (else
        its own history), then each visitor in the order they told it, or the lead it has
        joined since: what the live worker's ``EraseTrail`` does, record after record."""
        lead_ids: list[str] = []
        anonymous_ids: list[str] = []
        first = self.links.get(pseudonym)
        found = first is None and self.states.pop(anonymous_key(pseudonym), None) is not None
        for target in [*([first] if first is not None else []), *map(anonymous_key, visitors)]:
            lead: str | None = target
            if target.startswith(ANONYMOUS_PREFIX):
                visitor = target.removeprefix(ANONYMOUS_PREFIX)
                lead = self.links.get(visitor)
                if lead is None:
                    if self.states.pop(target, None) is not None:
                        found = True
                        anonymous_ids.append(visitor)
                    continue
                if lead in lead_ids:
                    continue
            assert lead is not None
            state = self._erase_lead(lead)
            lead_ids.append(lead)
            if state is not None:
                found = True
                anonymous_ids += state.merged_anonymous
        key = lead_ids[0] if lead_ids else anonymous_key(pseudonym)
        erasure = erasure_by_address(
            request, lead_ids=lead_ids, anonymous_ids=anonymous_ids, found=found
        )
        return Step("erased", key, (), None, erasure=erasure)

    def sweep(self, now: float) -> Iterator[StageTransition]:
        """Decay re-evaluation of every lead at event time ``now`` (its transitions only)."""
        for item in self.sweep_all(now):
            if isinstance(item, StageTransition):
                yield item

    def sweep_all(self, now: float) -> Iterator[StageTransition | SlaBreach]:
        """The sweep at event time ``now``: each lead's SLA breaches, then its transitions.

        What the live timer publishes, lead by lead (``simulate --sweep-at``).
        """
        for key, state in self.states.items():
            outcome = advance(state, self.rules, now)
            if outcome.transitions or outcome.breaches:
                self.states[key] = outcome.state
                yield from outcome.breaches
                yield from outcome.transitions

    def switch_rules(self, rules: Rules, at: float) -> list[StageTransition | SlaBreach]:
        """Score with ``rules`` from event time ``at`` on, re-evaluating every lead now.

        Each lead's SLA breaches, then its transitions (``engine.switch_rules``), lead
        by lead: what the live worker publishes after a reload (SIGHUP) at ``at``.
        """
        self.rules = rules
        out: list[StageTransition | SlaBreach] = []
        for key, state in self.states.items():
            outcome = switch_rules(state, rules, at)
            if outcome.state is not state:
                self.states[key] = outcome.state
                out += outcome.breaches
                out += outcome.transitions
        return out

    def leads(self) -> Iterator[LeadState]:
        return (s for s in self.states.values() if s.lead_id is not None)
