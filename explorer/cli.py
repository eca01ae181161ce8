"""`foryou ui`: serve the feed explorer on loopback (uvicorn). Service addresses come from the
flags, else the running `foryou up` stack's state file, else the default ports."""
from __future__ import annotations

import argparse
from pathlib import Path

from foryou import config

DEFAULT_PORT = 8050


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--host", default=config.DEFAULT_HOST, help="listen address (loopback by default)")
    parser.add_argument("--port", type=int, default=config.env_int("UI_PORT", DEFAULT_PORT),
                        help=f"HTTP port (env FORYOU_UI_PORT, default {DEFAULT_PORT})")
    parser.add_argument("--home-mixer-address", default=None, help="default: the running stack's, else :50051")
    parser.add_argument("--thunder-address", default=None, help="default: the running stack's, else :50052")
    parser.add_argument("--phoenix-address", default=None, help="default: the running stack's, else :50053")
    parser.add_argument("--world-file", default=None,
                        help="the seeded world's config, for hidden tastes and handle search "
                             "(default: the state directory's world.json, written by foryou seed / demo)")
    parser.add_argument("--eval-dir", default=None, help="a `foryou eval --out` directory to show on the Model page")
    parser.add_argument("--timeout", type=float, default=10.0, help="seconds per Thunder / Phoenix call")
    parser.add_argument("--feed-timeout", type=float, default=30.0, help="seconds per feed request")
    parser.add_argument("--log-level", default="warning")


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
    import uvicorn

    from explorer.app import create_app

    cfg = config_from(args)
    print(f"foryou explorer on http://{args.host}:{args.port}/ (HomeMixer {cfg.addresses.home_mixer}, "
          f"Thunder {cfg.addresses.thunder}, Phoenix {cfg.addresses.phoenix})", flush=True)
    uvicorn.run(create_app(cfg), host=args.host, port=args.port, log_level=args.log_level.lower())
    return 0
