"""The `foryou` command line. Each subcommand lives in its own module, which exposes
`add_arguments(parser)` and `run(args) -> int`; they are imported only when used, so
`foryou broker` does not pay for importing JAX."""
from __future__ import annotations

import argparse
import importlib
import sys

import pydantic

from foryou.process import die_with_parent_if_asked

# name -> (module, one-line help)
COMMANDS: dict[str, tuple[str, str]] = {
    "broker": ("foryou.broker_cli", "run the embedded Kafka-compatible broker in the foreground"),
    "thunder": ("thunder.main", "run the Thunder service"),
    "phoenix": ("phoenix.main", "run the Phoenix model server"),
    "home-mixer": ("home_mixer.main", "run the HomeMixer ScoredPostsService"),
    "up": ("foryou.up", "start broker, Thunder, Phoenix and HomeMixer on loopback"),
    "import": ("foryou.importers.cli", "import MovieLens-100k or your own interaction logs into the topics"),
    "seed": ("foryou.seed", "generate a synthetic world and publish it through Kafka"),
    "demo": ("foryou.demo", "up + seed + train + print For You feeds for a few users"),
    "feed": ("foryou.feed", "ask the running stack for a user's feed and print it"),
    "train": ("phoenix.training.cli", "train the ranker or the retriever"),
    "eval": ("phoenix.evaluation.cli", "evaluate a checkpoint against baselines"),
    "bench": ("bench.cli", "run a benchmark and print a table"),
    "ui": ("explorer.cli", "serve the feed explorer web page (feed, tuning, pipeline, user, model)"),
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="foryou", description="X-style For You feed services.")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, (_, help_text) in COMMANDS.items():
        sub.add_parser(name, help=help_text, add_help=False)
    return parser


def main(argv: list[str] | None = None) -> int:
    die_with_parent_if_asked()
    argv = sys.argv[1:] if argv is None else argv
    if not argv or argv[0] in ("-h", "--help") or argv[0] not in COMMANDS:
        parser = build_parser()
        if argv and argv[0] not in ("-h", "--help"):
            parser.error(f"unknown command {argv[0]!r}")
        parser.print_help()
        return 0 if argv else 2
    name, rest = argv[0], argv[1:]
    module = importlib.import_module(COMMANDS[name][0])
    parser = argparse.ArgumentParser(prog=f"foryou {name}", description=COMMANDS[name][1],
                                     epilog=environment_only_help() if {"-h", "--help"} & set(rest) else None,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    module.add_arguments(parser)
    args = parser.parse_args(rest)
    try:
        return int(module.run(args) or 0)
    except pydantic.ValidationError as exc:  # a bad FORYOU_ variable (flags are checked by argparse)
        parser.error(_settings_error(exc))


def environment_only_help() -> str:
    """The settings every process reads from the environment only (docs/settings.md)."""
    from foryou.broker import BrokerBinaries
    from foryou.config import StateSettings, environment_help
    from foryou.kafka import KafkaSecurity
    from foryou.tls import TlsSettings

    return environment_help(StateSettings, TlsSettings, KafkaSecurity, BrokerBinaries)


def _settings_error(exc: pydantic.ValidationError) -> str:
    return "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']} (got {e.get('input')!r})" for e in exc.errors())


if __name__ == "__main__":
    sys.exit(main())
