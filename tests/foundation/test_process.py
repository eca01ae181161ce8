"""Service child processes never outlive the process that started them."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

PARENT = """
import sys, time
from foryou.broker import free_port
from foryou.process import ServiceProcess
child = ServiceProcess("broker", ["--port", str(free_port())], "unused").start()
print(child.proc.pid, flush=True)
time.sleep(60)
"""


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:  # a zombie is dead for our purpose
        with open(f"/proc/{pid}/stat") as fh:
            return fh.read().split()[2] != "Z"
    except FileNotFoundError:
        return False


def test_children_die_when_parent_is_killed_hard():
    parent = subprocess.Popen([sys.executable, "-c", PARENT], stdout=subprocess.PIPE, text=True)
    child_pid = int(parent.stdout.readline())
    assert _alive(child_pid)
    parent.send_signal(signal.SIGKILL)
    parent.wait()
    deadline = time.monotonic() + 15
    while _alive(child_pid) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not _alive(child_pid), "child outlived its SIGKILLed parent"
