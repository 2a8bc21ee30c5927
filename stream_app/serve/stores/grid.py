"""The fit x engagement grid's cells: grade (A-D, the rules' fit grades) by engagement band.

Marketers read the grid as HubSpot and Pardot print it: A1 is the best fit
with the most engagement, D4 the least of both. The bands are the
dashboard's, not the scoring's: no stage depends on them, so they are not in
the rules file. 1 is engagement of 60 points or more (an MQL's engagement on
the default rules), 4 is under 10.
"""

from __future__ import annotations

#: Lower bounds of engagement bands 1, 2 and 3; band 4 is everything below the last.
ENGAGEMENT_BANDS = (60.0, 30.0, 10.0)
BANDS = ("1", "2", "3", "4")
BAND_LABELS = {"1": "60+", "2": "30-59", "3": "10-29", "4": "under 10"}


def band(engagement: float) -> str:
    for name, floor in zip(BANDS, ENGAGEMENT_BANDS, strict=False):
        if engagement >= floor:
            return name
    return BANDS[-1]


def cell(grade: str, engagement: float) -> str:
    """``A1`` ... ``D4``: the lead's grade, then its engagement band."""
    return f"{grade}{band(engagement)}"
