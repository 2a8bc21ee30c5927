"""Reading a rules file: the I/O half of ``stream_app.scoring.rules`` (which is pure).

``load_rules(path)`` raises ``RulesError`` naming the file, the path of the bad
key and what was expected (see ``stream_app.scoring.rules.parse_rules``).
``Rules`` is re-exported for callers that need both.
"""

from __future__ import annotations

from pathlib import Path

from stream_app.errors import RulesError
from stream_app.scoring.rules import Rules, parse_rules

__all__ = ["Rules", "load_rules"]


def load_rules(path: str | Path) -> Rules:
    """Load and validate a rules file; raises RulesError with file and key path."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise RulesError(f"{path}: cannot read the rules file: {exc.strerror}") from None
    return parse_rules(text, source=str(path))
