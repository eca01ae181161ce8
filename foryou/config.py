"""Configuration defaults, in one place, and how they are read.

Every setting has a documented default, can be set by an environment variable
(FORYOU_<NAME>) and, in each service's entry point, by a command-line flag (--name).
"""
from __future__ import annotations

import argparse
import os
from dataclasses import dataclass

# Default ports (docs/architecture.md): gRPC and Prometheus metrics per service.
HOME_MIXER_PORT = 50051
THUNDER_PORT = 50052
PHOENIX_PORT = 50053
HOME_MIXER_METRICS_PORT = 9151
THUNDER_METRICS_PORT = 9152
PHOENIX_METRICS_PORT = 9153
KAFKA_PORT = 9092
DEFAULT_HOST = "127.0.0.1"


def env(name: str, default: str) -> str:
    """FORYOU_<NAME> from the environment, else `default`."""
    return os.environ.get(f"FORYOU_{name.upper()}", default)


def env_int(name: str, default: int) -> int:
    return int(env(name, str(default)))


@dataclass(frozen=True)
class Setting:
    """One command-line flag whose default comes from FORYOU_<NAME> or the given default."""

    name: str
    default: object
    help: str

    def add_to(self, parser: argparse.ArgumentParser) -> None:
        env_name = f"FORYOU_{self.name.upper()}"
        kind = type(self.default)
        default = kind(os.environ[env_name]) if env_name in os.environ else self.default
        parser.add_argument(
            f"--{self.name.replace('_', '-')}", dest=self.name, type=kind, default=default,
            help=f"{self.help} (env {env_name}, default {self.default})",
        )


def add_settings(parser: argparse.ArgumentParser, settings: list[Setting]) -> None:
    for setting in settings:
        setting.add_to(parser)


KAFKA_SETTING = Setting(
    "kafka_bootstrap", env("KAFKA_BOOTSTRAP", f"{DEFAULT_HOST}:{KAFKA_PORT}"),
    "Kafka bootstrap servers, host:port[,host:port]",
)
