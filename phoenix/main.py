"""`foryou phoenix`: run the Phoenix model server until SIGTERM/SIGINT."""
from __future__ import annotations

import argparse
import logging

from foryou import config, service_main
from phoenix.settings import PhoenixSettings, use_intra_op_threads

log = logging.getLogger(__name__)

SETTINGS = PhoenixSettings


def add_arguments(parser: argparse.ArgumentParser) -> None:
    config.add_settings(parser, SETTINGS)


async def serve(settings: PhoenixSettings) -> int:
    use_intra_op_threads(settings.intra_op_threads)  # read when JAX starts its CPU client
    from phoenix.server import PhoenixServer  # imports JAX: only when serving

    logging.getLogger("absl").setLevel(logging.WARNING)  # orbax logs every file it touches
    stop = service_main.stop_event()
    server = await PhoenixServer(settings).start()
    log.info("phoenix listening on %s (preset %s, checkpoints %s)", server.address, settings.preset,
             settings.checkpoint_dir)
    await stop.wait()
    log.info("phoenix stopping")
    await server.stop()
    return 0


def run(args: argparse.Namespace) -> int:
    return service_main.run("phoenix", SETTINGS, args, serve)
