"""What `foryou thunder`, `foryou phoenix` and `foryou home-mixer` share: their settings from
the flags and the environment, logging, the metrics endpoint, and serving until SIGTERM or
SIGINT."""
from __future__ import annotations

import argparse
import asyncio
import logging
import os
import signal
import sys
from collections.abc import Callable, Coroutine, MutableMapping
from typing import Any, TypeVar

import threadpoolctl

from foryou import config, logs
from foryou.metrics import start_metrics_server

S = TypeVar("S", bound=config.ServerSettings)
log = logging.getLogger(__name__)


def run(service: str, cls: type[S], args: argparse.Namespace, serve: Callable[[S], Coroutine[Any, Any, object]]) -> int:
    """`serve` the settings of `cls` that `args` and the environment give, with logs and metrics."""
    settings = config.from_args(cls, args)
    logs.setup(service, settings.log_level)
    # Only a service with an `xla_flags` setting (Phoenix) runs JAX; training and tests that
    # import JAX in-process keep XLA's defaults.
    prepend_xla_flags(getattr(settings, "xla_flags", ""))
    if settings.blas_threads:
        threadpoolctl.threadpool_limits(settings.blas_threads, user_api="blas")  # for the process's life
    start_metrics_server(settings.metrics_port, settings.host)
    asyncio.run(serve(settings))
    return 0


def prepend_xla_flags(flags: str, environ: MutableMapping[str, str] = os.environ) -> None:
    """Put `flags` before the environment's XLA_FLAGS: XLA reads the variable once, when JAX
    starts its backend, and a later occurrence of a flag wins, so an operator's own XLA_FLAGS
    still override these."""
    flags = flags.strip()
    if not flags:
        return
    if jax_backends_started():
        log.warning("JAX's backend started before XLA_FLAGS were set; %r does not apply", flags)
    environ["XLA_FLAGS"] = f"{flags} {environ.get('XLA_FLAGS', '')}".strip()


def jax_backends_started() -> bool:
    """Whether JAX has made its backends: XLA reads XLA_FLAGS and NPROC then, not when JAX is
    imported (importing parts of phoenix imports JAX)."""
    bridge = sys.modules.get("jax._src.xla_bridge")
    return bool(getattr(bridge, "_backends", None))


def stop_event() -> asyncio.Event:
    """Set by the first SIGTERM or SIGINT. Taken before the server starts, so that a signal
    during start-up stops it cleanly once it is up."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    return stop
