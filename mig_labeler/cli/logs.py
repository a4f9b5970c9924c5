"""Log line formats on stderr: text (``mig-labeler: INFO: …``) or JSON, one object per line.

Owns: the two formatters, ``setup_logging`` and ``fatal_line`` (the line an error that ends the
command is printed as, in the same format as the log, so a log shipper gets every line as JSON
with ``--log-format json``, the fatal one included). Structured values travel as
``extra={"fields": {...}}``: fields of the JSON object, a JSON suffix in text.
"""

from __future__ import annotations

import json
import logging
import sys
from datetime import datetime, timezone
from typing import Any

log = logging.getLogger("mig_labeler")

_format = {"current": "text"}  # what the fatal line follows: set by setup_logging and by use_format


def rfc3339(created: float) -> str:
    """``2026-12-01T23:41:48.123Z``: RFC 3339 in UTC with milliseconds, as log shippers parse it."""
    return datetime.fromtimestamp(created, tz=timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {"ts": rfc3339(record.created), "level": record.levelname.lower(),
                                "msg": record.getMessage()}
        line.update(getattr(record, "fields", None) or {})
        if record.exc_info:
            line["error"] = self.formatException(record.exc_info)
        return json.dumps(line, ensure_ascii=False, default=str)


class TextFormatter(logging.Formatter):
    def __init__(self) -> None:
        super().__init__("mig-labeler: %(levelname)s: %(message)s")

    def format(self, record: logging.LogRecord) -> str:
        text = super().format(record)
        fields = getattr(record, "fields", None)
        return f"{text}: {json.dumps(fields, sort_keys=True, default=str)}" if fields else text


def use_format(log_format: str) -> None:
    """Which format the fatal line uses, known before logging is set up (a bad flag)."""
    _format["current"] = "json" if log_format == "json" else "text"


def setup_logging(log_format: str) -> None:
    use_format(log_format)
    # No line shows the process name, and reading it would run multiprocessing's __init__, which
    # deferred_imports leaves waiting (its modules are half a MiB of the daemon's memory).
    logging.logMultiprocessing = False
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter() if log_format == "json" else TextFormatter())
    log.handlers[:] = [handler]
    log.setLevel(logging.INFO)
    log.propagate = False


def fatal_line(message: str) -> str:
    """The one line an error that ends the command becomes."""
    if _format["current"] == "json":
        return json.dumps({"ts": rfc3339(datetime.now(timezone.utc).timestamp()), "level": "error", "msg": message})
    return f"mig-labeler: {message}"
