"""Every Phoenix model-server setting, once (docs/settings.md): `foryou phoenix --help` lists
each as a flag and a FORYOU_PHOENIX_<NAME> environment variable. Importing it does not import
JAX."""
from __future__ import annotations

import logging
import os
from collections.abc import MutableMapping
from typing import Literal

from pydantic import Field

from foryou import config
from foryou.service_main import jax_backends_started

log = logging.getLogger(__name__)

# Above this many posts Retrieve searches through the ANN graph (phoenix/index.py's docstring,
# and the benchmark table in phoenix/training/README.md for the measurement behind the number).
DEFAULT_ANN_THRESHOLD = 50_000

# Both flags checked against jaxlib 0.10.2 (XLA refuses a flag it does not know at start-up).
DEFAULT_XLA_FLAGS = "--xla_cpu_experimental_ynn_fusion_type= --xla_cpu_use_xnnpack=false"
Preset = Literal["tiny", "small", "demo", "serving", "small-v1"]  # built by phoenix/server_models.py


class PhoenixSettings(config.ServerSettings):
    """kafka_bootstrap "" = no corpus feed (benchmarks fill the index directly)."""

    model_config = config.prefixed("phoenix")
    port: int = config.PHOENIX_PORT
    metrics_port: int = config.PHOENIX_METRICS_PORT
    # Two full micro-batches (max_batch 32): one running, one forming.
    max_running: int = 64
    max_concurrent_rpcs: int = 1000
    # A Rank of max_candidates with a full history, or a Retrieve with the most exclusions, is
    # a few hundred KB.
    max_request_bytes: int = 1024 * 1024
    preset: Preset = Field("demo", description="model sizes when no checkpoint is found (random init)")
    checkpoint_dir: str | None = Field(None, description="load the newest ranker/retriever checkpoints here and "
                                                         "hot-reload newer ones")
    max_age_hours: float = Field(48.0, description="corpus retention: posts older than this are not retrievable")
    reload_every_s: float = Field(3.0, description="seconds between polls of the checkpoint directory")
    max_batch: int = Field(32, description="most requests in one model micro-batch")
    rank_workers: int = Field(1, ge=1, description="Rank micro-batches that may run at once (one model call each; 2 raises a lone Phoenix's throughput, docs/phoenix.md)")
    max_wait_ms: float = Field(2.0, description="longest a request waits for its micro-batch to fill, ms")
    max_candidates: int = Field(4096, description="Rank candidates per request beyond this: INVALID_ARGUMENT")
    max_k: int = Field(2000, description="Retrieve k beyond this: INVALID_ARGUMENT")
    max_exclude_post_ids: int = Field(20_000, description="Retrieve exclude_post_ids beyond this: INVALID_ARGUMENT")
    max_exclude_author_ids: int = Field(10_000, description="Retrieve exclude_author_ids beyond this: "
                                                            "INVALID_ARGUMENT")
    ann_threshold: int = Field(DEFAULT_ANN_THRESHOLD, description="corpus size from which Retrieve uses the "
                                                                  "approximate (HNSW) index instead of exact search")
    seed: int = Field(0, description="seed of the random initialisation when no checkpoint is found")
    # XLA:CPU's XNNPACK/YNNPACK library fusions off: XLA's own kernels ran the demo ranker with
    # less CPU (measured with the other cuts of issue 16: README, "Measured numbers"). The
    # service process puts these before its environment's XLA_FLAGS (foryou/service_main.py),
    # so those still win.
    xla_flags: str = Field(DEFAULT_XLA_FLAGS, description="XLA flags the service process starts JAX with, "
                                                          "before $XLA_FLAGS ('' = XLA's defaults)")
    # XLA:CPU sizes its intra-op thread pool from the environment's NPROC when its client starts
    # (else one thread per core). Where Phoenix shares the cores with Thunder and HomeMixer the
    # cores are busy anyway, and spreading one model call over both threads costs CPU to
    # hand work out and wait for it, so one thread per call serves more feeds per CPU-second.
    intra_op_threads: int = Field(1, ge=0, description="threads one model call runs on (XLA's NPROC; "
                                                       "0 = one per core, XLA's default)")
    # Else the first feeds of each new shape pay seconds of compilation; off: quick starts.
    warm_every_bucket: bool = Field(True, description="compile every candidate bucket before SERVING "
                                                      "(--no-warm-every-bucket: only the smallest)")


def use_intra_op_threads(threads: int, environ: MutableMapping[str, str] = os.environ) -> None:
    """Size XLA:CPU's intra-op thread pool (`intra_op_threads`); call before JAX starts its CPU
    client. 0 leaves the environment (and so XLA's default, or an operator's NPROC) alone."""
    if not threads:
        return
    if jax_backends_started():
        log.warning("JAX's CPU client started before NPROC was set; intra_op_threads=%d does not apply", threads)
    environ["NPROC"] = str(threads)
