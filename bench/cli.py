"""`foryou bench NAME [args]`: run bench/NAME.py (its `main(argv)`), which prints a table."""
from __future__ import annotations

import argparse
import importlib
import pkgutil

import bench


def available() -> list[str]:
    return sorted(m.name for m in pkgutil.iter_modules(bench.__path__)
                  if m.name not in ("cli", "common") and not m.name.startswith("_"))


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("name", choices=available(), help="which benchmark")
    parser.add_argument("bench_args", nargs=argparse.REMAINDER, help="arguments for the benchmark")


def run(args: argparse.Namespace) -> int:
    module = importlib.import_module(f"bench.{args.name}")
    return int(module.main(args.bench_args) or 0)
