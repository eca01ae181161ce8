"""`foryou broker`: run the embedded broker in the foreground until Ctrl-C."""
from __future__ import annotations

import argparse
import asyncio
import signal
import threading

from foryou import config
from foryou.broker import BrokerError, EmbeddedBroker, create_topics


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--host", default=config.DEFAULT_HOST)
    parser.add_argument("--port", type=int, default=config.env_int("KAFKA_PORT", config.KAFKA_PORT),
                        help=f"listen port (env FORYOU_KAFKA_PORT, default {config.KAFKA_PORT}; 0 = free port)")
    parser.add_argument("--no-topics", action="store_true", help="do not create the foryou topics")


def run(args: argparse.Namespace) -> int:
    broker = EmbeddedBroker(host=args.host, port=args.port)
    try:
        broker.start()
    except BrokerError as exc:
        print(f"error: {exc}")
        return 1
    try:
        if not args.no_topics:
            asyncio.run(create_topics(broker.bootstrap_servers))
        print(f"broker ready on {broker.bootstrap_servers} (Ctrl-C to stop)", flush=True)
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
