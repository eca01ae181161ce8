"""`foryou broker`: run the embedded broker in the foreground until Ctrl-C."""
from __future__ import annotations

import argparse
import asyncio
import signal
import threading
from pathlib import Path

from pydantic import Field

from foryou import config
from foryou.broker import BrokerError, EmbeddedBroker, Storage, create_topics


class BrokerSettings(config.Settings):
    """`foryou broker` (and the broker `foryou up` starts)."""

    model_config = config.prefixed("broker")
    host: str = Field(config.DEFAULT_HOST, description="listen address")
    port: int = config.shared(config.KAFKA_PORT, "broker port (0 = a free port)", "KAFKA_PORT")
    storage: Storage = Field("durable", description="durable (the log is kept in data_dir across restarts) or "
                                                    "memory (fast, lost when the broker stops)")
    data_dir: str | None = Field(None, description="durable log directory (default: <state dir>/data)")
    topics: bool = Field(True, description="create the foryou topics")


SETTINGS = BrokerSettings


def add_arguments(parser: argparse.ArgumentParser) -> None:
    config.add_settings(parser, SETTINGS)


def run(args: argparse.Namespace) -> int:
    s = config.from_args(SETTINGS, args)
    data_dir = s.data_dir or str(Path(config.StateSettings().state_dir) / "data")
    broker = EmbeddedBroker(host=s.host, port=s.port, storage=s.storage,
                            data_dir=data_dir if s.storage == "durable" else None)
    try:
        broker.start()
    except BrokerError as exc:
        print(f"error: {exc}")
        return 1
    try:
        if s.topics:
            asyncio.run(create_topics(broker.bootstrap_servers))
        where = f"durable log in {data_dir}" if broker.durable else "memory storage: lost on stop"
        print(f"broker ready on {broker.bootstrap_servers} ({where}; Ctrl-C to stop)", flush=True)
        stop = threading.Event()
        signal.signal(signal.SIGTERM, lambda *_: stop.set())
        try:
            while not stop.wait(0.5) and broker.running:
                pass
        except KeyboardInterrupt:
            pass
    finally:
        broker.stop()
    return 0
