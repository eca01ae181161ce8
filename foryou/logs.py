"""Structured (JSON lines) logging with the current request id attached to every record."""
from __future__ import annotations

import contextlib
import contextvars
import json
import logging
import sys
import time

request_id_var: contextvars.ContextVar[str] = contextvars.ContextVar("request_id", default="")


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "ts": round(record.created, 3),
            "level": record.levelname,
            "logger": record.name,
            "msg": record.getMessage(),
        }
        request_id = request_id_var.get()
        if request_id:
            entry["request_id"] = request_id
        for key, value in getattr(record, "fields", {}).items():
            entry[key] = value
        if record.exc_info:
            entry["exc"] = self.formatException(record.exc_info)
        return json.dumps(entry, default=str)


class RateLimitFilter(logging.Filter):
    """Lets through one record per `interval_s` for each (logger, message template, level) of
    the given loggers, and adds to it how many like it were dropped since the last one.

    aiokafka logs each failed connection attempt, metadata refresh and fetch as its own ERROR
    or WARNING while a broker is down: dozens of lines a second per service, which bury
    everything else. The outage stays visible (a line every `interval_s`, with its count)."""

    def __init__(self, prefixes: tuple[str, ...] = ("aiokafka", "kafka"), interval_s: float = 10.0,
                 clock=time.monotonic) -> None:
        super().__init__()
        self.prefixes = prefixes
        self.interval_s = interval_s
        self.clock = clock
        self._seen: dict[tuple[str, str, int], tuple[float, int]] = {}  # key -> (last let through, dropped)

    def filter(self, record: logging.LogRecord) -> bool:
        if not record.name.startswith(self.prefixes):
            return True
        key = (record.name, str(record.msg), record.levelno)
        now = self.clock()
        last, dropped = self._seen.get(key, (None, 0))
        if last is not None and now - last < self.interval_s:
            self._seen[key] = (last, dropped + 1)
            return False
        if dropped:
            record.msg = f"{record.msg} ({dropped} more like this in the last {now - last:.0f}s)"
        self._seen[key] = (now, 0)
        if len(self._seen) > 1000:                      # bounded: forget the oldest keys
            for old in sorted(self._seen, key=lambda k: self._seen[k][0])[:500]:
                del self._seen[old]
        return True


def setup(service: str, level: str = "INFO", json_lines: bool = True) -> None:
    """Configure the root logger once per process."""
    handler = logging.StreamHandler(sys.stderr)
    handler.addFilter(RateLimitFilter())
    if json_lines:
        handler.setFormatter(JsonFormatter())
    else:
        handler.setFormatter(logging.Formatter(f"%(asctime)s {service} %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    logging.getLogger("aiokafka").setLevel(logging.WARNING)
    logging.Formatter.converter = time.gmtime


def fields(**kwargs) -> dict:
    """`log.info("msg", extra=fields(stage="filters"))` adds structured fields to a record."""
    return {"fields": kwargs}


@contextlib.contextmanager
def request_scope(request_id: str):
    """Sets request_id_var for the block (what HomeMixer passes to its pipeline)."""
    token = request_id_var.set(request_id)
    try:
        yield
    finally:
        request_id_var.reset(token)
