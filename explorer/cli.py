"""`foryou ui`: serve the feed explorer on loopback (uvicorn). Service addresses come from the
flags, else the running `foryou up` stack's state file, else the default ports."""
from __future__ import annotations

import argparse
from pathlib import Path

from pydantic import Field

from foryou import config

STACK_DEFAULT = "(default: the running stack's, else the default port)"


class UiSettings(config.Settings):
    model_config = config.prefixed("ui")
    host: str = Field(config.DEFAULT_HOST, description="listen address (loopback by default)")
    port: int = Field(8050, description="HTTP port (0 = any free)")
    home_mixer_address: str | None = Field(None, description=f"HomeMixer host:port {STACK_DEFAULT}")
    thunder_address: str | None = Field(None, description=f"Thunder host:port {STACK_DEFAULT}")
    phoenix_address: str | None = Field(None, description=f"Phoenix host:port {STACK_DEFAULT}")
    world_file: str | None = Field(None, description="the seeded world's config, for hidden tastes and handle "
                                                     "search (default: the state directory's world.json, written "
                                                     "by foryou seed / demo)")
    eval_dir: str | None = Field(None, description="a `foryou eval --out` directory to show on the Model page")
    timeout: float = Field(10.0, description="seconds per Thunder / Phoenix call")
    feed_timeout: float = Field(30.0, description="seconds per feed request")
    log_level: config.LogLevel = Field("WARNING", description="log level")


DEFAULT_PORT = UiSettings.default("port")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    config.add_settings(parser, UiSettings)


def addresses_from(args: argparse.Namespace):
    from explorer.backends import Addresses
    from foryou.stack import read_state

    state = read_state() or {}
    host = config.DEFAULT_HOST
    return Addresses(
        home_mixer=args.home_mixer_address or state.get("home_mixer") or f"{host}:{config.HOME_MIXER_PORT}",
        thunder=args.thunder_address or state.get("thunder") or f"{host}:{config.THUNDER_PORT}",
        phoenix=args.phoenix_address or state.get("phoenix") or f"{host}:{config.PHOENIX_PORT}",
    )


def config_from(args: argparse.Namespace):
    from explorer.app import ExplorerConfig
    from foryou.seed import WORLD_FILE
    from foryou.stack import state_dir

    return ExplorerConfig(
        addresses=addresses_from(args),
        world_file=Path(args.world_file) if args.world_file else state_dir() / WORLD_FILE,
        eval_dir=Path(args.eval_dir) if args.eval_dir else None,
        timeout_s=args.timeout, feed_timeout_s=args.feed_timeout,
    )


def run(args: argparse.Namespace) -> int:
    args = config.resolve(args, UiSettings)
    import uvicorn

    from explorer.app import create_app

    cfg = config_from(args)
    print(f"foryou explorer on http://{args.host}:{args.port}/ (HomeMixer {cfg.addresses.home_mixer}, "
          f"Thunder {cfg.addresses.thunder}, Phoenix {cfg.addresses.phoenix})", flush=True)
    uvicorn.run(create_app(cfg), host=args.host, port=args.port, log_level=args.log_level.lower())
    return 0
