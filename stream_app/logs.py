"""Logging set-up: readable text by default, one JSON object per line for log shippers.

Nothing Leadstream logs at INFO carries an e-mail address or a token: events
are referred to by topic, partition and offset, leads by id.
"""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime

from stream_app.config import Settings

TEXT_FORMAT = "[%(asctime)s] [%(process)d] [%(levelname)s] %(name)s: %(message)s"


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
            "pid": record.process,
        }
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry, default=str)


def handler(settings: Settings) -> logging.Handler:
    out = logging.StreamHandler()
    formatter = JsonFormatter() if settings.log_format == "json" else logging.Formatter(TEXT_FORMAT)
    out.setFormatter(formatter)
    return out


def logging_config(settings: Settings) -> dict[str, object] | None:
    """A dictConfig for the Faust worker in JSON mode (None: Faust's own text format)."""
    if settings.log_format != "json":
        return None
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {"json": {"()": "stream_app.logs.JsonFormatter"}},
        "handlers": {"stderr": {"class": "logging.StreamHandler", "formatter": "json"}},
        "root": {"level": settings.log_level, "handlers": ["stderr"]},
    }


def configure(settings: Settings) -> None:
    """For processes that do not let Faust set up logging (the API, the tools)."""
    logging.basicConfig(level=settings.log_level, handlers=[handler(settings)], force=True)
