"""Run a foryou service as a child process (`python -m foryou.cli <service> ...`), as
`foryou up` and the integration tests do, and stop it without leaving orphans."""
from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field

from foryou.health import wait_for_serving

_PR_SET_PDEATHSIG = 1
PARENT_PID_ENV = "FORYOU_PARENT_PID"


def die_with_parent_if_asked() -> None:
    """Called first thing by `foryou` (cli.main). In a child started by ServiceProcess, ask
    Linux to SIGTERM us when the parent dies, even by SIGKILL, so a killed `foryou up`
    leaves no orphans. Done in the child itself rather than with `preexec_fn`, which would
    force a fork of a multithreaded (JAX) parent."""
    parent = os.environ.pop(PARENT_PID_ENV, None)
    if not parent or not sys.platform.startswith("linux"):
        return
    try:
        import ctypes

        ctypes.CDLL("libc.so.6", use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)
    except (OSError, AttributeError):
        return
    if os.getppid() != int(parent):  # the parent died before the call above
        os.kill(os.getpid(), signal.SIGTERM)


def pdeathsig_prefix() -> list[str]:
    """For a non-Python child (the broker binary): `setpriv --pdeathsig TERM` sets the same
    kernel flag and execs it (kept across exec); empty where util-linux's setpriv is absent."""
    setpriv = shutil.which("setpriv") if sys.platform.startswith("linux") else None
    return [setpriv, "--pdeathsig", "TERM"] if setpriv else []


@dataclass
class RestartPolicy:
    """When to restart a supervised child that exited: after `base_s`, doubling with each
    restart that did not stay up `stable_after_s`, at most `max_s`. Time is passed in (a
    monotonic clock), so the policy is tested without waiting."""

    base_s: float = 0.5
    max_s: float = 30.0
    stable_after_s: float = 60.0
    restarts: int = 0                      # total, shown in the state file
    _consecutive: int = field(default=0, repr=False)
    _started_at: float = field(default=0.0, repr=False)
    _restart_at: float | None = field(default=None, repr=False)

    def delay_s(self) -> float:
        return min(self.max_s, self.base_s * 2 ** self._consecutive)

    def running(self, now: float) -> None:
        """The child is up: a long enough run forgives the earlier crashes."""
        if self._consecutive and now - self._started_at >= self.stable_after_s:
            self._consecutive = 0

    def due(self, now: float) -> bool:
        """The child is down: is it time to start it again?"""
        if self._restart_at is None:
            self._restart_at = now + self.delay_s()
        return now >= self._restart_at

    def record_restart(self, now: float) -> None:
        self.restarts += 1
        self._consecutive += 1
        self._started_at = now
        self._restart_at = None


@dataclass
class ServiceProcess:
    command: str                   # a `foryou` subcommand: "thunder", "phoenix", "home-mixer"
    args: list[str]                # its flags, e.g. ["--port", "50052", "--kafka-bootstrap", ...]
    address: str                   # host:port of its gRPC server, for the health check
    env: dict[str, str] = field(default_factory=dict)
    log_path: str | None = None    # default: a temp file, printed on failure
    proc: subprocess.Popen | None = field(default=None, init=False)

    def start(self) -> "ServiceProcess":
        if self.log_path is None:
            self.log_path = tempfile.mktemp(prefix=f"foryou-{self.command}-", suffix=".log")
        log = open(self.log_path, "ab")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "foryou.cli", self.command, *self.args],
            stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
            env={**os.environ, **self.env, PARENT_PID_ENV: str(os.getpid())},
        )
        log.close()
        return self

    @property
    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    @property
    def pid(self) -> int:
        if self.proc is None:
            raise RuntimeError(f"{self.command} is not started")
        return self.proc.pid

    @property
    def returncode(self) -> int | None:
        return self.proc.poll() if self.proc is not None else None

    async def wait_ready(self, timeout_s: float = 120.0) -> None:
        try:
            await wait_for_serving(self.address, timeout_s=timeout_s, is_alive=lambda: self.alive)
        except (TimeoutError, RuntimeError) as exc:
            raise RuntimeError(f"{self.command} not ready: {exc}\n--- log tail ---\n{self.log_tail()}") from exc

    def rss_mb(self) -> float:
        """The process's resident memory, MiB (watched by the overload bench and its test)."""
        import psutil

        return psutil.Process(self.pid).memory_info().rss / 2**20

    def log_tail(self, lines: int = 40) -> str:
        if self.log_path is None:  # not started yet
            return ""
        try:
            with open(self.log_path, errors="replace") as fh:
                return "".join(fh.readlines()[-lines:])
        except OSError:
            return ""

    def stop(self, timeout_s: float = 10.0) -> None:
        """SIGTERM, then SIGKILL after `timeout_s`."""
        if self.proc is None:
            return
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout_s)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None

    def kill(self) -> None:
        """Hard kill (crash simulation)."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        self.proc = None
