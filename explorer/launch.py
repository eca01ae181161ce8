"""Start `foryou ui` as a child of `foryou up --ui` / `foryou demo --ui`: a ServiceProcess
(so it dies with its parent) whose readiness is an HTTP answer instead of a gRPC health check."""
from __future__ import annotations

import asyncio
import time
import urllib.request

from foryou.process import ServiceProcess


def ui_process(home_mixer: str, thunder: str, phoenix: str, host: str, port: int,
               log_path: str | None = None, extra_args: list[str] | None = None) -> ServiceProcess:
    args = ["--host", host, "--port", str(port), "--home-mixer-address", home_mixer,
            "--thunder-address", thunder, "--phoenix-address", phoenix, *(extra_args or [])]
    return ServiceProcess("ui", args, f"{host}:{port}", log_path=log_path)


def _answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=1) as reply:
            return reply.status == 200
    except OSError:
        return False


async def wait_http_ready(process: ServiceProcess, timeout_s: float = 60.0) -> str:
    """The explorer's URL once /healthz answers; RuntimeError if it exits or stays silent."""
    url = f"http://{process.address}/"
    deadline = time.monotonic() + timeout_s
    while not await asyncio.to_thread(_answers, url + "healthz"):
        if not process.alive:
            raise RuntimeError(f"foryou ui exited:\n{process.log_tail()}")
        if time.monotonic() > deadline:
            raise RuntimeError(f"foryou ui did not answer on {url} within {timeout_s:.0f}s:\n{process.log_tail()}")
        await asyncio.sleep(0.2)
    return url


async def start_ui(stack, port: int = 0, extra_args: list[str] | None = None) -> tuple[ServiceProcess, str]:
    """The explorer next to a started foryou.stack.Stack (port 0 = a free one); the process and
    its URL. `extra_args` go to `foryou ui` (e.g. --world-file, --eval-dir)."""
    from foryou.broker import free_port

    process = ui_process(stack.address("home-mixer"), stack.address("thunder"), stack.address("phoenix"),
                         stack.cfg.host, port or free_port(), log_path=stack._log_path("ui"),
                         extra_args=extra_args).start()
    try:
        return process, await wait_http_ready(process)
    except BaseException:
        process.stop()
        raise
