"""A readers-writer lock across pytest-xdist workers (files under the run's temp root): every
test holds it shared, an `exclusive` test alone, so latency measurements never run beside
another worker's training or stack. Writers are preferred: a waiting exclusive test stops new
shared holders (the turnstile), else back-to-back tests of the other worker could starve it.
Without xdist there is one process and the lock is not taken."""
from __future__ import annotations

import contextlib
import fcntl
import os
from collections.abc import Iterator


def _lock_files() -> tuple[str, str] | None:
    run = os.environ.get("PYTEST_XDIST_TESTRUNUID")
    if not run or not os.environ.get("PYTEST_XDIST_WORKER"):
        return None
    root = os.environ.get("FORYOU_TESTS_STATE_ROOT") or "/tmp"
    return os.path.join(root, f"turnstile-{run}.lock"), os.path.join(root, f"tests-{run}.lock")


@contextlib.contextmanager
def exclusive_while(exclusive: bool) -> Iterator[None]:
    files = _lock_files()
    if files is None:
        yield
        return
    turnstile_path, lock_path = files
    with open(turnstile_path, "a") as turnstile, open(lock_path, "a") as lock:
        fcntl.flock(turnstile, fcntl.LOCK_EX)
        try:
            fcntl.flock(lock, fcntl.LOCK_EX if exclusive else fcntl.LOCK_SH)
        finally:
            if not exclusive:  # a shared holder passes the turnstile; a writer keeps it until done
                fcntl.flock(turnstile, fcntl.LOCK_UN)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)
            if exclusive:
                fcntl.flock(turnstile, fcntl.LOCK_UN)
