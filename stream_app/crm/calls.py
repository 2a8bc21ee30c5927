"""What the two CRM backends share: their errors, the rate limit, and words safe to log.

A backend's calls are the vendors' own clients (``hubspot-api-client``,
``simple-salesforce``), which block: crm-sync runs them in a thread, one
call at a time, so the event loop keeps the consumer's heartbeats going.

Errors are sorted once, here: ``Transient`` (a 429, a 5xx, a timeout, a
refused connection, a revoked token: retried with backoff by the service,
never skipped) and ``Refused`` (a permanent 4xx for one lead: its record
goes to the dead-letter topic with the CRM's own words). A 4xx for a whole
batch is split in halves until the lead it is about is alone
(``bisect``), so one bad e-mail address never holds back the other 99.
"""

from __future__ import annotations

import re
import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Protocol, TypeVar

from stream_app.crm.changes import Change
from stream_app.errors import LeadstreamError

T = TypeVar("T")

_EMAIL = re.compile(r"[^\s@\"'<>(),;:]+@[^\s@\"'<>(),;:]+\.[A-Za-z]{2,}")


class CrmError(LeadstreamError):
    """crm-sync or a CRM webhook is not configured (a token, a secret, the extra missing)."""


class Transient(Exception):
    """A call to retry later: the CRM is slow, down, rate-limiting, or refuses our token."""

    def __init__(self, what: str, retry_after: float | None = None) -> None:
        super().__init__(what)
        self.what = what
        self.retry_after = retry_after


class Permanent(Exception):
    """The CRM refused a request for what it carries (a 4xx that will not heal)."""

    def __init__(self, status: int, text: str) -> None:
        super().__init__(text)
        self.status = status
        self.text = text


@dataclass(frozen=True)
class Refused:
    """One lead the CRM will not take, and why in its own words (e-mail addresses masked)."""

    lead_id: str
    error: str


def safe(text: str, limit: int = 1000) -> str:
    """``text`` with every e-mail address masked (the CRM's error quotes the one it refused)."""
    return _EMAIL.sub("<e-mail>", text)[:limit]


def bisect(
    items: Sequence[T], send: Callable[[Sequence[T]], list[Refused]], lead: Callable[[T], str]
) -> list[Refused]:
    """``send(items)``; a batch refused whole is sent again in halves, down to the lead it
    is about (a 4xx for one item refuses that item)."""
    if not items:
        return []
    try:
        return send(items)
    except Permanent as exc:
        if len(items) == 1:
            return [Refused(lead(items[0]), safe(f"HTTP {exc.status}: {exc.text}"))]
    middle = len(items) // 2
    return bisect(items[:middle], send, lead) + bisect(items[middle:], send, lead)


class RateLimit:
    """At most ``calls`` calls in any ``window`` seconds (a sliding window; blocks)."""

    def __init__(self, calls: int, window: float = 10.0) -> None:
        self.calls, self.window = calls, window
        self.times: deque[float] = deque()
        self.lock = threading.Lock()
        self.waited = 0.0

    def wait(self) -> None:
        with self.lock:
            while True:
                now = time.monotonic()
                while self.times and now - self.times[0] >= self.window:
                    self.times.popleft()
                if len(self.times) < self.calls:
                    self.times.append(now)
                    return
                pause = self.window - (now - self.times[0])
                self.waited += pause
                time.sleep(pause)


def retry_after(value: str | None) -> float | None:
    """Seconds from a ``Retry-After`` header (seconds; an HTTP date is not honoured)."""
    if value is None:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        return None


class Backend(Protocol):
    """One CRM, as crm-sync drives it."""

    name: str
    limit: int  # most leads in one call
    rate: RateLimit

    def write(self, changes: Sequence[Change]) -> list[Refused]:
        """Write every change; the leads refused for good. Raises ``Transient``."""

    def setup(self) -> list[str]:
        """Create (or list) what Leadstream needs in the CRM; lines for a person."""

    def check(self) -> None:
        """One cheap call that proves the credentials (raises ``Transient``)."""

    def close(self) -> None: ...
