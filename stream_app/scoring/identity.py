"""Identity: folding an anonymous visitor's history into a lead, exactly once.

An anonymous visitor is scored under ``anon:<anonymous id>`` (``state.anonymous_key``)
until the id is linked to a lead; at the link its buckets, signal logs, profile,
seen ids and milestones merge into the lead, and its key becomes a tombstone that
points at the lead.

An e-mail address is an anonymous id too: its pseudonym ``email:<32 hex>``
(``email_pseudonym``) is the subject e-mail providers' events gather under
and what an erase by address names. Whatever event tells a lead's address
(a profile update, identify traits, a form's ``email`` field) links that
pseudonym to the lead as a cookie is linked (``email_link``), so an erase by
the address finds the person, and the provider's events join the lead. An
anonymous visitor that joined no lead and tells an address is not linked (it
may never become a lead, and the first link wins): the pseudonym keeps a
pointer to it instead (at most ``MAX_TOLD_BY``), which an erase by the address
follows.
"""

from __future__ import annotations

import hashlib

from schemas.events import FormSubmission, Identify, InboundEvent, ProfileUpdate
from stream_app.scoring.buckets import fold_old_history
from stream_app.scoring.counting import MAX_FEATURES, note_hand_raise, note_product_use
from stream_app.scoring.decay import decay
from stream_app.scoring.rules import Rules
from stream_app.scoring.signals import MAX_SIGNAL_LOG, award_signals
from stream_app.scoring.state import ANONYMOUS_PREFIX, LeadState, new_state
from stream_app.scoring.sweep import next_due_at

MAX_MERGED_IDS = 100
#: How many visitors an address's pseudonym remembers as having told the address.
MAX_TOLD_BY = 100
#: Prefix of the anonymous ids that stand for an e-mail address (``email_pseudonym``).
EMAIL_PREFIX = "email:"


def email_pseudonym(address: str) -> str:
    """The pseudonymous anonymous id of an e-mail address: ``email:`` and 32 hex digits of
    the SHA-256 of the trimmed, lower-cased address. The address itself is never an id,
    a key, a log line or a metric label."""
    digest = hashlib.sha256(address.strip().lower().encode()).hexdigest()
    return f"{EMAIL_PREFIX}{digest[:32]}"


def address_of(event: InboundEvent) -> str | None:
    """The e-mail address ``event`` tells, if any: a profile update's, identify traits',
    or a form's ``email`` field (any case of the name; a value with an ``@``)."""
    if isinstance(event, ProfileUpdate):
        return event.email
    if isinstance(event, Identify):
        return event.traits.email if event.traits is not None else None
    if isinstance(event, FormSubmission) and event.fields:
        for name, value in event.fields.items():
            if name.lower() == "email" and "@" in value:
                return value
    return None


def email_link(event: InboundEvent) -> str | None:
    """The pseudonym to link to the lead ``event`` is scored on, besides its anonymous id:
    that of the address it tells, unless that is already the event's anonymous id."""
    address = address_of(event)
    if address is None:
        return None
    pseudonym = email_pseudonym(address)
    return None if pseudonym == event.anonymous_id else pseudonym


def merge_anonymous(lead: LeadState, anon: LeadState, rules: Rules) -> tuple[LeadState, LeadState]:
    """Fold an anonymous visitor's history into a lead, exactly once.

    Returns the new lead state (not yet re-evaluated: the identify event that
    caused the merge is applied next and evaluates) and a tombstone for the
    anonymous key. Merging the same anonymous id again changes nothing.
    """
    anon_id = anon.key.removeprefix(ANONYMOUS_PREFIX)
    if anon_id in lead.merged_anonymous or anon.merged_into is not None:
        return lead, anon
    new = lead.copy()
    for rule_id, days in anon.buckets.items():
        mine = new.buckets.setdefault(rule_id, {})
        rule = rules.by_id.get(rule_id)
        for day, count in days.items():
            union = rule is not None and rule.kind == "signal"
            mine[day] = max(mine.get(day, 0), count) if union else mine.get(day, 0) + count
    _merge_archives(new, anon, rules)
    for rule_id, carry in anon.cap_carry.items():
        mine_carry = new.cap_carry.setdefault(rule_id, {})
        rule = rules.by_id.get(rule_id)
        union = rule is not None and rule.kind == "signal"
        for day, earned in carry.items():
            had = mine_carry.get(day, 0.0)
            mine_carry[day] = max(had, earned) if union else had + earned
    for sig_id, log in anon.signal_log.items():
        merged = sorted(set(new.signal_log.get(sig_id, [])) | set(log))
        new.signal_log[sig_id] = merged[-MAX_SIGNAL_LOG:]
    for sig in rules.spec.signals:
        if sig.id in anon.signal_log:
            award_signals(new, sig, float("-inf"), rules.visit_gap_seconds)
    for name, value in anon.profile.items():
        # What the visitor said before it was known (a form's BANT answers) is the
        # lead's too; the later answer by event time wins, the lead's on a tie.
        at = anon.profile_at.get(name, float("-inf"))
        if at > new.profile_at.get(name, float("-inf")):
            new.profile[name] = value
            new.profile_at[name] = at
            new.scored_with = None
    new.seen.update(anon.seen)
    floors = [f for f in (new.seen_floor, anon.seen_floor) if f is not None]
    new.seen_floor = max(floors) if floors else None
    if anon.newest_at is not None:
        new.newest_at = max(new.newest_at or anon.newest_at, anon.newest_at)
    if anon.first_touch_at is not None and (
        new.first_touch_at is None or anon.first_touch_at < new.first_touch_at
    ):
        new.first_touch_at = anon.first_touch_at
        new.source = anon.source or new.source
        new.campaign = anon.campaign or new.campaign
    new.product_actions += [a for a in anon.product_actions if a not in new.product_actions]
    new.features = (new.features + [f for f in anon.features if f not in new.features])[
        -MAX_FEATURES:
    ]
    if anon.hand_raised_at is not None:
        note_hand_raise(new, anon.hand_raised_at, anon.hand_raise_form)
    if anon.product_used_at is not None:
        note_product_use(new, anon.product_used_at)
    new.merged_anonymous = [*new.merged_anonymous, anon_id][-MAX_MERGED_IDS:]
    new.version += 1
    if new.newest_at is not None:
        fold_old_history(new, rules)
    new.due_at = next_due_at(new, rules)
    return new, tombstone(anon.key, lead.lead_id)


def tombstone(key: str, lead_id: str | None) -> LeadState:
    """What an anonymous key holds once it joined ``lead_id``: nothing but the link."""
    state = new_state(key, None)
    state.merged_into = lead_id
    return state


def _merge_archives(into: LeadState, other: LeadState, rules: Rules) -> None:
    if other.archive_ref is None or not other.archived:
        return
    ref = max(into.archive_ref or other.archive_ref, other.archive_ref)
    half_life = rules.half_life_seconds
    if into.archive_ref is not None and into.archive_ref < ref:
        fade = decay(ref - into.archive_ref, half_life)
        for values in into.archived.values():
            values[0] *= fade
    fade_other = decay(ref - other.archive_ref, half_life)
    for rule_id, (decayed, raw) in other.archived.items():
        values = into.archived.setdefault(rule_id, [0.0, 0.0])
        values[0] += decayed * fade_other
        values[1] += raw
    into.archive_ref = ref
