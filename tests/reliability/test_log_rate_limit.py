"""aiokafka's log flood while a broker is down is cut to one line per interval per message,
with the count of the dropped ones; other loggers pass untouched."""
from __future__ import annotations

import logging

from foryou.logs import RateLimitFilter


def record(name: str, msg: str, *args, level=logging.ERROR) -> logging.LogRecord:
    return logging.LogRecord(name, level, __file__, 1, msg, args, None)


def test_one_line_per_interval_with_the_count_of_the_dropped():
    now = [0.0]
    limit = RateLimitFilter(interval_s=10.0, clock=lambda: now[0])
    passed = []
    for i in range(390):                              # 39 lines a second for 10 s
        now[0] = i / 39
        r = record("aiokafka.conn", "Unable connect to %r: %s", "node 0", "refused")
        if limit.filter(r):
            passed.append(r)
    now[0] = 10.5
    last = record("aiokafka.conn", "Unable connect to %r: %s", "node 0", "refused")
    assert limit.filter(last)
    assert len(passed) == 1 and "more like this" not in passed[0].getMessage()
    assert "(389 more like this in the last 10s)" in last.getMessage()
    assert "Unable connect to 'node 0'" in last.getMessage()


def test_other_messages_and_loggers_pass():
    limit = RateLimitFilter(clock=lambda: 0.0)
    assert limit.filter(record("aiokafka.consumer", "a"))
    assert limit.filter(record("aiokafka.consumer", "b"))            # another template
    assert limit.filter(record("aiokafka.consumer", "a", level=logging.WARNING))
    assert not limit.filter(record("aiokafka.consumer", "a"))
    assert all(limit.filter(record("thunder.app", "x")) for _ in range(100))
