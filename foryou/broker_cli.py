"""`foryou broker`: run the embedded broker in the foreground until Ctrl-C."""
from __future__ import annotations

import argparse
import asyncio
import signal
import threading
from pathlib import Path

from foryou import config
from foryou.broker import STORAGES, BrokerError, EmbeddedBroker, create_topics


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--host", default=config.DEFAULT_HOST)
    parser.add_argument("--port", type=int, default=config.env_int("KAFKA_PORT", config.KAFKA_PORT),
                        help=f"listen port (env FORYOU_KAFKA_PORT, default {config.KAFKA_PORT}; 0 = free port)")
    parser.add_argument("--no-topics", action="store_true", help="do not create the foryou topics")
    parser.add_argument("--storage", default="durable", choices=STORAGES,
                        help="durable (the log is kept in --data-dir, default) or memory (lost on stop)")
    parser.add_argument("--data-dir", default=None, help="durable log directory (default: <state dir>/data)")


def run(args: argparse.Namespace) -> int:
    data_dir = args.data_dir or str(Path(config.env("STATE_DIR", ".foryou")) / "data")
    broker = EmbeddedBroker(host=args.host, port=args.port, storage=args.storage,
                            data_dir=data_dir if args.storage == "durable" else None)
    try:
        broker.start()
    except BrokerError as exc:
        print(f"error: {exc}")
        return 1
    try:
        if not args.no_topics:
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
