"""`foryou phoenix`: run the Phoenix model server until SIGTERM/SIGINT."""
from __future__ import annotations

import argparse
import asyncio
import logging
import signal

from foryou import config, logs, metrics
from phoenix.settings import PhoenixSettings

log = logging.getLogger(__name__)

SETTINGS = PhoenixSettings


def add_arguments(parser: argparse.ArgumentParser) -> None:
    config.add_settings(parser, SETTINGS)


async def serve(settings: PhoenixSettings) -> int:
    from phoenix.server import PhoenixServer  # imports JAX: only when serving

    metrics.start_metrics_server(settings.metrics_port, settings.host)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    server = await PhoenixServer(settings).start()
    log.info("phoenix listening on %s (preset %s, checkpoints %s)", server.address, settings.preset,
             settings.checkpoint_dir)
    await stop.wait()
    log.info("phoenix stopping")
    await server.stop()
    return 0


def run(args: argparse.Namespace) -> int:
    settings = config.from_args(SETTINGS, args)
    logs.setup("phoenix", settings.log_level)
    logging.getLogger("absl").setLevel(logging.WARNING)  # orbax logs every file it touches
    return asyncio.run(serve(settings))
