"""Account (company) roll-up: an account is as hot as its hottest leads.

The account score is the sum of the totals of its ``accounts.top_n`` best
leads (default 3): one champion plus a couple of colleagues make a buying
committee, while fifty interns reading the blog do not add up to one. The
Redis projection keeps each account's leads in a sorted set and sums them
with ``top_n_sum`` when the account is asked for (leaving disqualified leads
out, which the core scores 0 anyway).
"""

from __future__ import annotations

from collections.abc import Iterable

from stream_app.scoring.rules import Rules


def top_n_sum(lead_totals: Iterable[float], top_n: int) -> float:
    """Sum of the ``top_n`` best lead totals (negative totals never raise an account)."""
    best = sorted((t for t in lead_totals if t > 0), reverse=True)
    return sum(best[:top_n])


def account_score(lead_totals: Iterable[float], rules: Rules) -> float:
    """The account score under ``rules`` (``accounts.top_n``)."""
    return top_n_sum(lead_totals, rules.spec.accounts.top_n)
