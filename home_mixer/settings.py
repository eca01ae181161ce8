"""Every HomeMixer setting, once (docs/settings.md): `foryou home-mixer --help` lists each as a
flag and a FORYOU_HOME_MIXER_<NAME> environment variable. The call deadlines, circuit breakers,
health watching and safety cache are described in docs/reliability.md."""
from __future__ import annotations

from pydantic import Field

from foryou import config

REPLICAS_HELP = "host:port, or several comma-separated, or dns:///name:port (replicas, docs/scaling.md)"


class HomeMixerSettings(config.ServerSettings):
    model_config = config.prefixed("home_mixer")
    port: int = config.HOME_MIXER_PORT
    metrics_port: int = config.HOME_MIXER_METRICS_PORT
    # Its handlers await Thunder and Phoenix: more running at once only share the same CPU.
    max_running: int = 4
    max_concurrent_rpcs: int = 64
    thunder_address: str = Field(f"{config.DEFAULT_HOST}:{config.THUNDER_PORT}", description=f"Thunder {REPLICAS_HELP}")
    phoenix_address: str = Field(f"{config.DEFAULT_HOST}:{config.PHOENIX_PORT}", description=f"Phoenix {REPLICAS_HELP}")
    thunder_timeout_s: float = Field(0.2, description="deadline of each Thunder call, seconds")
    phoenix_timeout_s: float = Field(0.5, description="deadline of each Phoenix call (Rank, Retrieve), seconds")
    breaker_failures: int = Field(5, description="consecutive failed calls that open a dependency's circuit breaker")
    breaker_reset_s: float = Field(1.0, description="seconds an open breaker waits before a probe call")
    health_every_s: float = Field(0.5, description="seconds between health checks of each dependency (0 = off)")
    cache_ttl_s: float = Field(300.0, description="life of the cached user features and post facts, seconds "
                                                  "(0 = no cache)")
    cache_max_users: int = Field(100_000, description="viewers whose user features are cached")
    cache_max_posts: int = Field(500_000, description="posts whose core data and labels are cached")
    request_budget_s: float = Field(5.0, description="longest a request may take when the client sets no deadline")
    max_request_ids: int = Field(20_000, description="seen_ids or served_ids longer than this: INVALID_ARGUMENT")
    max_bloom_filters: int = Field(16, description="bloom_filter_entries longer than this: INVALID_ARGUMENT")
