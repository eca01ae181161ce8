"""`foryou thunder`: run Thunder until SIGTERM/SIGINT."""
from __future__ import annotations

import argparse
import logging

from foryou import config, service_main
from thunder.app import ThunderApp
from thunder.settings import ThunderSettings

log = logging.getLogger(__name__)

SETTINGS = ThunderSettings


def add_arguments(parser: argparse.ArgumentParser) -> None:
    config.add_settings(parser, SETTINGS)


async def serve(settings: ThunderSettings) -> None:
    app = ThunderApp(settings)
    stop = service_main.stop_event()
    await app.start()
    log.info("thunder started on %s (kafka %s), replaying", app.address, settings.kafka_bootstrap)
    await stop.wait()
    log.info("thunder stopping")
    await app.stop()


def run(args: argparse.Namespace) -> int:
    return service_main.run("thunder", SETTINGS, args, serve)
