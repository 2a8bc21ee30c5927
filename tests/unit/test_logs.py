from __future__ import annotations

import json
import logging

from stream_app.config import Settings
from stream_app.logs import handler


def test_json_logs_are_one_object_per_line() -> None:
    out = handler(Settings(log_format="json"))
    record = logging.LogRecord("leadstream.worker", logging.INFO, __file__, 1, "rules %s", ("v1",),
                               None)  # fmt: skip
    entry = json.loads(out.format(record))
    assert entry["message"] == "rules v1"
    assert entry["level"] == "INFO" and entry["logger"] == "leadstream.worker"


def test_text_logs_by_default() -> None:
    out = handler(Settings())
    record = logging.LogRecord("x", logging.WARNING, __file__, 1, "hello", (), None)
    assert out.format(record).endswith("[WARNING] x: hello")
