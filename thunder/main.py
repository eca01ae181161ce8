"""`foryou thunder`: run Thunder until SIGTERM/SIGINT."""
from __future__ import annotations

import argparse
import asyncio
import logging
import signal

from foryou import config, logs
from foryou.metrics import start_metrics_server
from thunder.app import ThunderApp
from thunder.settings import ThunderSettings

log = logging.getLogger(__name__)

SETTINGS = ThunderSettings


def add_arguments(parser: argparse.ArgumentParser) -> None:
    config.add_settings(parser, SETTINGS)


async def serve(settings: ThunderSettings) -> None:
    app = ThunderApp(settings)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await app.start()
    log.info("thunder started on %s (kafka %s), replaying", app.address, settings.kafka_bootstrap)
    await stop.wait()
    log.info("thunder stopping")
    await app.stop()


def run(args: argparse.Namespace) -> int:
    settings = config.from_args(SETTINGS, args)
    logs.setup("thunder", settings.log_level)
    start_metrics_server(settings.metrics_port, settings.host)
    asyncio.run(serve(settings))
    return 0
