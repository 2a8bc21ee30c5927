"""Drift, live: outcomes per score band of the hand-off, over the last 90 days of feedback.

A score that stops predicting shows here first: the win rate of the leads
handed to sales at 100 points and more should stay above that of the leads
handed over at 60. The projection notes each lead's total when it reached
MQL, PQL or SQL (the band), and each sales outcome under that band with the
feedback's event time; the API counts the last ``WINDOW_DAYS`` of them
(relative to the newest feedback, event time) at ``/outcomes`` and in
``/metrics``. Bands are fixed, ``BAND_WIDTH`` points wide: the projection does
not read the rules file, and the same bands read across a change of rules.
"""

from __future__ import annotations

OUTCOMES = ("accepted", "rejected", "opportunity", "won", "lost")
BAND_WIDTH = 20
BANDS = 11  # under 20, 20-40, ..., 180-200, 200 and over
WINDOW_DAYS = 90


def band(total: float) -> int:
    """The band of a hand-off total (0 .. BANDS - 1)."""
    return min(max(int(total // BAND_WIDTH), 0), BANDS - 1)


def band_label(index: int) -> str:
    if index == 0:
        return f"under {BAND_WIDTH}"
    if index == BANDS - 1:
        return f"{index * BAND_WIDTH} and over"
    return f"{index * BAND_WIDTH}-{(index + 1) * BAND_WIDTH}"


def outcome_of(detail: str | None) -> str | None:
    """The sales outcome a ``sales_feedback`` transition's detail names ("lost: budget")."""
    if not detail:
        return None
    found = detail.split(":", 1)[0].strip()
    return found if found in OUTCOMES else None


def win_rate(counts: dict[str, int]) -> float | None:
    """Won over decided (won + lost) in a band; None before any decision."""
    decided = counts.get("won", 0) + counts.get("lost", 0)
    return counts.get("won", 0) / decided if decided else None
