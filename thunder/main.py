"""`foryou thunder`: run Thunder until SIGTERM/SIGINT."""
from __future__ import annotations

import argparse
import asyncio
import logging
import signal

from foryou import config, logs
from foryou.config import Setting, add_settings
from foryou.metrics import start_metrics_server
from thunder.app import ThunderApp
from thunder.settings import HOUR_MS, QueryLimits, StoreLimits, ThunderSettings

log = logging.getLogger(__name__)

_D = ThunderSettings()
_Q = QueryLimits()
_S = StoreLimits()

SETTINGS = [
    Setting("host", _D.host, "address to bind"),
    Setting("port", config.THUNDER_PORT, "gRPC port"),
    Setting("metrics_port", config.THUNDER_METRICS_PORT, "Prometheus metrics port, 0 = off"),
    config.KAFKA_SETTING,
    Setting("retention_hours", _S.retention_ms / HOUR_MS, "keep posts and engagements this long"),
    Setting("max_concurrent_rpcs", _D.max_concurrent_rpcs, "beyond it requests get RESOURCE_EXHAUSTED"),
    Setting("trim_interval_s", _D.trim_interval_s, "seconds between trims of expired state"),
    Setting("stats_interval_s", _D.stats_interval_s, "seconds between store-size exports"),
    Setting("group_id", _D.group_id, "consumer group id (partitions are assigned manually; names the consumer only)"),
    Setting("client_id", _D.client_id, "Kafka client id"),
    Setting("fetch_max_records", _D.fetch_max_records, "records per fetch batch"),
    Setting("max_results", _Q.max_results, "GetInNetworkPosts default and maximum results"),
    Setting("log_level", "INFO", "log level"),
]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_settings(parser, SETTINGS)


def settings_from_args(args: argparse.Namespace) -> ThunderSettings:
    return ThunderSettings(
        host=args.host, port=args.port, metrics_port=args.metrics_port,
        kafka_bootstrap=args.kafka_bootstrap, max_concurrent_rpcs=args.max_concurrent_rpcs,
        trim_interval_s=args.trim_interval_s, stats_interval_s=args.stats_interval_s,
        fetch_max_records=args.fetch_max_records, client_id=args.client_id, group_id=args.group_id,
        query=QueryLimits(max_results=args.max_results),
        store=StoreLimits(retention_ms=int(args.retention_hours * HOUR_MS)),
    )


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
    logs.setup("thunder", args.log_level)
    settings = settings_from_args(args)
    start_metrics_server(settings.metrics_port, settings.host)
    asyncio.run(serve(settings))
    return 0
