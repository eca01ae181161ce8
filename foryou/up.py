"""`foryou up`: the command that runs the local stack (foryou/stack.py) in the foreground:
starts it, prints its addresses (and serves the explorer with --ui), supervises it until
Ctrl-C, then stops everything."""
from __future__ import annotations

import argparse
import asyncio
import logging
import signal
import sys
import traceback

from pydantic import Field

from explorer.cli import UiSettings
from foryou import config
from foryou.stack import Stack, StackConfig, add_stack_arguments, print_addresses, stack_config_from_args

__all__ = ["StackConfig", "UpSettings", "add_arguments", "run"]  # StackConfig: `foryou up`'s other settings


class UpSettings(config.Settings):
    """`foryou up`'s own switches, next to the StackConfig settings."""

    model_config = config.prefixed("up")
    free_ports: bool = Field(False, description="free ports for every service and metrics endpoint (the port "
                                                "settings are ignored; the state file lists them)")
    ui: bool = Field(False, description="also serve the feed explorer web page (foryou ui)")
    ui_port: int = config.same_as(UiSettings, "port", "explorer HTTP port with --ui (0 = any free)")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_stack_arguments(parser)
    config.add_settings(parser, UpSettings)


async def _serve(cfg: StackConfig, ui_port: int | None = None) -> int:
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    stack = Stack(cfg)
    ui = None
    start = asyncio.ensure_future(stack.start())
    waiter = asyncio.ensure_future(stop.wait())
    try:
        done, _ = await asyncio.wait({start, waiter}, return_when=asyncio.FIRST_COMPLETED)
        if start not in done:  # Ctrl-C during start-up
            start.cancel()
            await asyncio.gather(start, return_exceptions=True)
            return 130
        start.result()
        if ui_port is not None:  # the explorer (explorer/launch.py), stopped first
            from explorer.launch import start_ui
            ui, ui_url = await start_ui(stack, ui_port)
        print("foryou stack is up (Ctrl-C stops it)", flush=True)
        print_addresses(stack)
        if ui_port is not None:
            print(f"explorer    {ui_url}", flush=True)
        while not stop.is_set():  # supervise: restart what exits
            fatal = await stack.supervise_once()
            if fatal:
                print(f"stopping: {fatal}\n{stack.log_tails()}", file=sys.stderr)
                return 1
            try:
                await asyncio.wait_for(asyncio.shield(waiter), 1.0)
            except asyncio.TimeoutError:
                pass
        print("stopping the stack ...", flush=True)
        return 0
    except Exception as exc:  # a service failed to start: say why (an exception without a message: where)
        print(f"foryou up failed: {str(exc) or ''.join(traceback.format_exception(exc))}", file=sys.stderr)
        return 1
    finally:
        waiter.cancel()
        if ui is not None:
            await asyncio.to_thread(ui.stop)
        await asyncio.to_thread(stack.stop)
        print("stopped", flush=True)


def run(args: argparse.Namespace) -> int:
    logging.basicConfig(level=logging.WARNING)
    args = config.resolve(args, UpSettings)  # free_ports from its flag or variable
    ui_port = (0 if args.free_ports else args.ui_port) if args.ui else None
    return asyncio.run(_serve(stack_config_from_args(args), ui_port))
