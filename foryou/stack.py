"""The local stack behind `foryou up` (the command itself: foryou/up.py). Starts the embedded
broker, Thunder, Phoenix and HomeMixer as processes on loopback, waits for every health check,
writes a small state file so `foryou seed` and `foryou feed` find the stack without flags, and
stops everything on Ctrl-C.

While up it supervises (docs/durability.md): a service that exits is restarted with
exponential back-off, its restarts counted (logged, and in the state file). The broker is
restarted too when its log is durable; a broker on memory storage that exits took the whole
log with it, so the stack stops and says so.

With `--replicas thunder=2,phoenix=2` it runs that many Thunder and Phoenix processes (the
extra ones on free ports, named thunder-2, phoenix-2, ...), each reading every Kafka
partition, and HomeMixer balances over them (docs/scaling.md); each replica is supervised.

With `--train` it also runs `foryou train ranker|retriever --follow` (phoenix/training/follow.py)
once the services are up, supervised the same way, writing checkpoints where Phoenix polls.

Stop order is the trainers, HomeMixer, Phoenix, Thunder, broker (callers first, so nothing logs
errors about vanished dependencies); children are also stopped on any other exit path (atexit).
"""
from __future__ import annotations

import argparse
import asyncio
import atexit
import json
import logging
import os
import sys
import time
from pathlib import Path
from typing import Annotated, Any

from pydantic import Field, field_validator
from pydantic_settings import NoDecode

from foryou import config
from foryou.broker import EmbeddedBroker, Storage, create_topics, free_port
from foryou.broker_cli import BrokerSettings
from foryou.process import RestartPolicy, ServiceProcess
from home_mixer.settings import HomeMixerSettings
from phoenix.settings import PhoenixSettings
from thunder.settings import ThunderSettings

log = logging.getLogger(__name__)

STATE_FILE = "stack.json"
REPLICATED = ("thunder", "phoenix")
_PORTS = ("kafka_port", "thunder_port", "phoenix_port", "home_mixer_port", "thunder_metrics_port",
          "phoenix_metrics_port", "home_mixer_metrics_port")


def parse_replicas(text: str) -> dict[str, int]:
    """ "thunder=2,phoenix=2" -> {"thunder": 2, "phoenix": 2}."""
    out: dict[str, int] = {}
    for part in filter(None, (p.strip() for p in (text or "").split(","))):
        name, sep, count = part.partition("=")
        if not sep or name not in REPLICATED or not count.isdigit() or int(count) < 1:
            raise ValueError(f"--replicas: {part!r} is not thunder=N or phoenix=N (N >= 1)")
        out[name] = int(count)
    return out


def replica_name(service: str, index: int) -> str:
    return service if index == 0 else f"{service}-{index + 1}"


def state_dir() -> Path:
    """Where the running stack's state lives: $FORYOU_STATE_DIR, else ./.foryou."""
    return Path(config.StateSettings().state_dir)


def read_state(directory: Path | None = None) -> dict | None:
    """The running stack's addresses and pids, or None when no stack state is found."""
    path = (directory or state_dir()) / STATE_FILE
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


def resolve_kafka_bootstrap(flag_value: str | None) -> str:
    """--kafka-bootstrap, else $FORYOU_KAFKA_BOOTSTRAP, else the running stack's broker, else
    the default port."""
    if flag_value:
        return flag_value
    if "FORYOU_KAFKA_BOOTSTRAP" in os.environ:  # set, not defaulted: it wins over the stack's
        return os.environ["FORYOU_KAFKA_BOOTSTRAP"]
    state = read_state()
    if state:
        return state["kafka_bootstrap"]
    return f"{config.DEFAULT_HOST}:{config.KAFKA_PORT}"


def resolve_home_mixer_address(flag_value: str | None) -> str:
    if flag_value:
        return flag_value
    state = read_state()
    if state:
        return state["home_mixer"]
    return f"{config.DEFAULT_HOST}:{config.HOME_MIXER_PORT}"


class StackConfig(config.Settings):
    """The settings of `foryou up`. Each service's own settings keep their variables: the
    stack's thunder_port is FORYOU_THUNDER_PORT, its preset FORYOU_PHOENIX_PRESET, and every
    other FORYOU_THUNDER_* / _PHOENIX_* / _HOME_MIXER_* variable reaches the services as is."""

    model_config = config.prefixed("stack")
    host: str = Field(config.DEFAULT_HOST, description="address every service and the broker listen on")
    kafka_port: int = config.same_as(BrokerSettings, "port")
    thunder_port: int = config.same_as(ThunderSettings, "port", "Thunder's gRPC port")
    phoenix_port: int = config.same_as(PhoenixSettings, "port", "Phoenix's gRPC port")
    home_mixer_port: int = config.same_as(HomeMixerSettings, "port", "HomeMixer's gRPC port")
    thunder_metrics_port: int = config.same_as(ThunderSettings, "metrics_port", "Thunder's metrics port (0 = off)")
    phoenix_metrics_port: int = config.same_as(PhoenixSettings, "metrics_port", "Phoenix's metrics port (0 = off)")
    home_mixer_metrics_port: int = config.same_as(HomeMixerSettings, "metrics_port",
                                                  "HomeMixer's metrics port (0 = off)")
    # str, not PhoenixSettings' choices: Phoenix itself refuses an unknown preset at start.
    preset: str = config.same_as(PhoenixSettings, "preset")
    checkpoint_dir: str | None = config.same_as(PhoenixSettings, "checkpoint_dir")
    log_level: config.LogLevel = config.log_level_field()
    log_dir: str | None = Field(None, description="service logs go here (default: temp files)")
    ready_timeout_s: float = Field(180.0, description="seconds to wait for every health check")
    # the log is the system of record: durable by default, it survives restarts
    storage: Storage = config.same_as(BrokerSettings, "storage")
    data_dir: str | None = config.same_as(BrokerSettings, "data_dir")
    restart_max_backoff_s: float = Field(RestartPolicy.max_s, description="longest wait before restarting a service that exited")
    train: bool = Field(False, description="also run continuous training (`foryou train ranker|retriever --follow`, "
                                          "FORYOU_TRAIN_* settings) into Phoenix's checkpoint directory (default "
                                          "with --train: state dir/checkpoints)")
    replicas: Annotated[dict[str, int], NoDecode] = Field(default_factory=dict, description="Thunder/Phoenix processes, e.g. "
                                     "thunder=2,phoenix=2 (default 1 each); HomeMixer balances over them "
                                     "(docs/scaling.md)")
    # in-process only (tests): extra environment of every service process
    extra_env: dict[str, str] = Field(default_factory=dict, description="extra environment of every service",
                                      json_schema_extra={"flag": False})

    @field_validator("replicas", mode="before")
    @classmethod
    def _replicas(cls, value: Any) -> Any:
        return parse_replicas(value) if isinstance(value, str) else value

    @staticmethod
    def free_ports(metrics: bool = False, **overrides) -> "StackConfig":
        """Every port a free one: for tests and side-by-side stacks. Metrics endpoints are off,
        or on free ports too with `metrics=True` (`foryou up --free-ports`)."""
        def metrics_port() -> int:
            return free_port() if metrics else 0

        ports = dict(kafka_port=0, thunder_port=free_port(), phoenix_port=free_port(),
                     home_mixer_port=free_port(), thunder_metrics_port=metrics_port(),
                     phoenix_metrics_port=metrics_port(), home_mixer_metrics_port=metrics_port())
        return StackConfig(**{**ports, **overrides})

    def with_free_ports(self, metrics: bool = False) -> "StackConfig":
        return StackConfig.free_ports(metrics, **self.model_dump(exclude={*_PORTS}))

    def log_data_dir(self) -> str:
        return self.data_dir or str(state_dir() / "data")


async def _all_or_nothing(awaitables) -> None:
    """Await all; on the first failure cancel the rest (no health poller outlives the stack)."""
    tasks = [asyncio.ensure_future(a) for a in awaitables]
    try:
        await asyncio.gather(*tasks)
    except BaseException:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        raise


class Stack:
    """The broker and the three services, started and stopped together."""

    def __init__(self, cfg: StackConfig, write_state: bool = True):
        self.cfg = cfg
        self.write_state = write_state
        self.broker = EmbeddedBroker(host=cfg.host, port=cfg.kafka_port, storage=cfg.storage,
                                     data_dir=cfg.log_data_dir() if cfg.storage == "durable" else None)
        self.services: dict[str, ServiceProcess] = {}
        self.trainers: dict[str, ServiceProcess] = {}  # --train: supervised like services, no health check
        self.restarts: dict[str, RestartPolicy] = {}
        self._stopped = False

    @property
    def kafka_bootstrap(self) -> str:
        return self.broker.bootstrap_servers

    @property
    def checkpoint_dir(self) -> str | None:
        if self.cfg.checkpoint_dir or not self.cfg.train:
            return self.cfg.checkpoint_dir
        return str(state_dir() / "checkpoints")

    def address(self, name: str) -> str:
        return self.services[name].address

    def _log_path(self, name: str) -> str | None:
        if not self.cfg.log_dir:
            return None
        Path(self.cfg.log_dir).mkdir(parents=True, exist_ok=True)
        return str(Path(self.cfg.log_dir) / f"{name}.log")

    def _service(self, command: str, settings: type[config.Settings], port: int, metrics_port: int | None,
                 name: str | None = None, **values) -> ServiceProcess:
        """A service process with the flags of its own settings class (the rest of its settings
        come from its FORYOU_<SERVICE>_ variables, inherited). `metrics_port` None: the
        service's own default."""
        address = f"{self.cfg.host}:{port}"
        args = config.to_argv(settings, host=self.cfg.host, port=port, metrics_port=metrics_port,
                              kafka_bootstrap=self.kafka_bootstrap, log_level=self.cfg.log_level, **values)
        return ServiceProcess(command, args, address, env=dict(self.cfg.extra_env),
                              log_path=self._log_path(name or command))

    def _replica_ports(self, service: str, index: int) -> tuple[int, int]:
        """Replica 1 on the configured ports; the others on free ones (metrics off if off)."""
        port, metrics = ((self.cfg.thunder_port, self.cfg.thunder_metrics_port) if service == "thunder"
                         else (self.cfg.phoenix_port, self.cfg.phoenix_metrics_port))
        if index == 0:
            return port, metrics
        return free_port(), (free_port() if metrics else 0)

    def replica_names(self, service: str) -> list[str]:
        return [replica_name(service, i) for i in range(self.cfg.replicas.get(service, 1))]

    def thunder_process(self, index: int = 0) -> ServiceProcess:
        port, metrics = self._replica_ports("thunder", index)
        return self._service("thunder", ThunderSettings, port, metrics, name=replica_name("thunder", index))

    def phoenix_process(self, index: int = 0, port: int | None = None, metrics: int | None = None) -> ServiceProcess:
        if port is None:
            port, metrics = self._replica_ports("phoenix", index)
        return self._service("phoenix", PhoenixSettings, port, metrics, name=replica_name("phoenix", index),
                             preset=self.cfg.preset, checkpoint_dir=self.checkpoint_dir)

    def trainer_process(self, model: str) -> ServiceProcess:
        """`foryou train MODEL --follow` writing where Phoenix polls, with Phoenix's preset."""
        from phoenix.training.cli import FollowSettings, TrainSettings

        args = [model, *config.to_argv(TrainSettings, kafka_bootstrap=self.kafka_bootstrap, preset=self.cfg.preset,
                                       checkpoint_dir=self.checkpoint_dir, log_level=self.cfg.log_level),
                *config.to_argv(FollowSettings, follow=True)]
        return ServiceProcess("train", args, "", env=dict(self.cfg.extra_env), log_path=self._log_path(f"train-{model}"))

    async def start(self) -> "Stack":
        atexit.register(self.stop)
        try:
            # In this thread, not a worker: children die with the thread that started them
            # (PR_SET_PDEATHSIG), and start() only blocks until the port accepts (well under 1 s).
            self.broker.start()
            await create_topics(self.kafka_bootstrap)
            thunders = {replica_name("thunder", i): self.thunder_process(i)
                        for i in range(self.cfg.replicas.get("thunder", 1))}
            phoenixes = {replica_name("phoenix", i): self.phoenix_process(i)
                         for i in range(self.cfg.replicas.get("phoenix", 1))}
            home_mixer = self._service(
                "home-mixer", HomeMixerSettings, self.cfg.home_mixer_port, self.cfg.home_mixer_metrics_port,
                thunder_address=",".join(t.address for t in thunders.values()),
                phoenix_address=",".join(p.address for p in phoenixes.values()))
            self.services = {**thunders, **phoenixes, "home-mixer": home_mixer}
            self.restarts = {name: RestartPolicy(max_s=self.cfg.restart_max_backoff_s)
                             for name in ("broker", *self.services)}
            for service in self.services.values():  # all start in parallel, JAX warms meanwhile
                service.start()
            await _all_or_nothing([s.wait_ready(self.cfg.ready_timeout_s) for s in self.services.values()])
            if self.cfg.train:  # once Phoenix is up: its start-up gets the CPU first
                self.trainers = {f"train-{m}": self.trainer_process(m).start() for m in ("ranker", "retriever")}
                self.restarts.update({n: RestartPolicy(max_s=self.cfg.restart_max_backoff_s) for n in self.trainers})
        except BaseException:
            self.stop()
            raise
        if self.write_state:
            self._write_state()
        return self

    def state(self) -> dict:
        return {
            "kafka_bootstrap": self.kafka_bootstrap,
            **{name.replace("-", "_"): s.address for name, s in self.services.items()},
            "pids": {"broker": self.broker.pid,
                     **{name: s.proc.pid for name, s in self.processes().items() if s.proc is not None}},
            "metrics": {name: f"{self.cfg.host}:{port}" for name, port in self.metrics_ports().items() if port},
            "replicas": {name: [self.services[n].address for n in self.replica_names(name)] for name in REPLICATED},
            "storage": self.cfg.storage,
            "data_dir": self.cfg.log_data_dir() if self.cfg.storage == "durable" else None,
            "restarts": {name: policy.restarts for name, policy in self.restarts.items()},
            "owner_pid": os.getpid(),
            "started_at_ms": int(time.time() * 1000),
            "config": self.cfg.model_dump(),
        }

    def metrics_ports(self) -> dict[str, int]:
        ports = {name: int(s.args[s.args.index("--metrics-port") + 1]) for name, s in self.services.items()}
        return ports or {"thunder": self.cfg.thunder_metrics_port, "phoenix": self.cfg.phoenix_metrics_port,
                         "home-mixer": self.cfg.home_mixer_metrics_port}

    # ---- supervision ---------------------------------------------------------------------

    async def supervise_once(self, now: float | None = None) -> str | None:
        """Restart whatever exited whose back-off has passed. Returns why the stack must stop
        (the memory-storage broker exited), else None."""
        now = time.monotonic() if now is None else now
        changed = False
        if not self.broker.running:
            if not self.broker.durable:
                return ("the broker exited and its storage was memory: every event in the log (posts, "
                        "users, engagements, served) is lost, and the services' state can no longer be "
                        "rebuilt from it. Start the stack again (with --storage durable to keep the log).")
            if self.restarts["broker"].due(now):
                self.restarts["broker"].record_restart(now)
                log.warning("broker exited; restarting it on %s (durable log kept), restart #%d",
                            self.kafka_bootstrap, self.restarts["broker"].restarts)
                self.broker.restart()
                await create_topics(self.kafka_bootstrap)
                changed = True
        for name, service in self.processes().items():
            policy = self.restarts[name]
            if service.alive:
                policy.running(now)
            elif policy.due(now):
                policy.record_restart(now)
                log.warning("%s exited (code %s); restarting it, restart #%d (next back-off %.1fs)",
                            name, service.returncode, policy.restarts, policy.delay_s())
                print(f"{name} exited; restarting it (restart #{policy.restarts})", file=sys.stderr, flush=True)
                service.start()
                changed = True
        if changed and self.write_state:
            self._write_state()
        return None

    def _write_state(self) -> None:
        directory = state_dir()
        directory.mkdir(parents=True, exist_ok=True)
        tmp = directory / (STATE_FILE + ".tmp")
        tmp.write_text(json.dumps(self.state(), indent=2))
        tmp.replace(directory / STATE_FILE)

    def _remove_state(self) -> None:
        state = read_state()
        if state and state.get("owner_pid") == os.getpid():
            (state_dir() / STATE_FILE).unlink(missing_ok=True)

    def log_tails(self) -> str:
        return "\n".join(f"--- {name} ---\n{s.log_tail()}" for name, s in self.processes().items())

    def processes(self) -> dict[str, ServiceProcess]:
        """The services and the trainers."""
        return {**self.services, **self.trainers}

    def stop(self) -> None:
        """Idempotent. HomeMixer, Phoenix, Thunder, then the broker."""
        if self._stopped:
            return
        self._stopped = True
        order = [*self.trainers, "home-mixer", *self.replica_names("phoenix"), *self.replica_names("thunder")]
        for name in order:
            service = self.processes().get(name)
            if service is not None:
                service.stop()
        self.broker.stop()  # and its object store
        if self.write_state:
            self._remove_state()
        atexit.unregister(self.stop)


# ----------------------------------------------------------------------------- CLI


def add_stack_arguments(parser: argparse.ArgumentParser, overrides: dict | None = None) -> None:
    config.add_settings(parser, StackConfig, overrides)


def stack_config_from_args(args: argparse.Namespace) -> StackConfig:
    """The stack's settings; every port a free one when `args.free_ports` (resolved by `foryou
    up` and `foryou demo` from their own settings)."""
    cfg = config.from_args(StackConfig, args)
    return cfg.with_free_ports(metrics=True) if getattr(args, "free_ports", False) else cfg


def print_addresses(stack: Stack, out=sys.stdout) -> None:
    print(f"kafka       {stack.kafka_bootstrap}", file=out)
    for name, service in stack.services.items():
        print(f"{name:<11} {service.address}", file=out)
    storage = f"durable, in {stack.cfg.log_data_dir()}" if stack.broker.durable else "memory (lost when the broker stops)"
    print(f"log         {storage}", file=out)
    if stack.trainers:
        print(f"training    {', '.join(stack.trainers)} -> {stack.checkpoint_dir}", file=out)
    metrics = [f"{name} {stack.cfg.host}:{port}" for name, port in stack.metrics_ports().items() if port]
    if metrics:
        print(f"metrics     {', '.join(metrics)}", file=out)
    print(f"state file  {state_dir() / STATE_FILE}", file=out, flush=True)
