"""Every Thunder setting, once (docs/settings.md): `foryou thunder --help` lists each as a flag
and a FORYOU_THUNDER_<NAME> environment variable; tests and in-process users build
`ThunderSettings` directly."""
from __future__ import annotations

from pydantic import Field

from foryou import config
from foryou.event_rules import MAX_FOLLOWING

HOUR_MS = 3_600_000
_THUNDER = config.prefixed("thunder")


class QueryLimits(config.Settings):
    """Limits of the in-network query and of request sizes."""

    model_config = _THUNDER
    max_results: int = Field(1200, description="GetInNetworkPosts default and ceiling of max_results")
    max_originals_per_author: int = Field(10, description="per followed author, newest originals")
    max_secondary_per_author: int = Field(5, description="per followed author, newest replies and reposts")
    max_videos_per_author: int = Field(10, description="per followed author, in a video request")
    # Bounds the work when most of an author's recent posts are excluded, deleted or ineligible.
    max_scan_per_author: int = Field(64, description="entries walked per author list before giving up")
    # So that a few excluded or ineligible posts are skipped without walking the timeline.
    head_spare_per_author: int = Field(6, description="entries kept per author beyond each cap in the query's heads")
    max_following: int = Field(MAX_FOLLOWING, description="longer following lists: the most recent this many are read")
    max_exclusions: int = Field(10_000, description="exclude_post_ids longer than this: INVALID_ARGUMENT")
    max_lookup_ids: int = Field(5_000, description="GetPosts / GetAuthors ids longer than this: INVALID_ARGUMENT")


class StoreLimits(config.Settings):
    model_config = _THUNDER
    retention_ms: int = Field(48 * HOUR_MS, description="posts, engagements and served ids older than this go, ms")
    future_skew_ms: int = Field(60_000, description="posts created further in the future are refused, ms")
    max_engagements_per_user: int = Field(512, description="engagements kept per user (newest), served oldest first")
    max_served_per_user: int = Field(2_000, description="served post ids kept per user (newest)")


class ThunderSettings(config.ServerSettings):
    model_config = _THUNDER
    port: int = config.THUNDER_PORT
    metrics_port: int = config.THUNDER_METRICS_PORT
    # Its handlers never yield: calls are pulled out of gRPC's queue between them
    # (foryou/admission.py), and how many run at once is not bounded.
    accept_window_s: float = 0.001
    max_concurrent_rpcs: int = 256
    trim_interval_s: float = Field(60.0, description="seconds between drops of expired state")
    stats_interval_s: float = Field(10.0, description="seconds between store-size exports and logs")
    fetch_max_records: int = Field(5_000, description="records per fetch during the start-up replay")
    # Once serving, smaller fetches bound event-loop stalls.
    live_fetch_max_records: int = Field(500, description="records per fetch once serving")
    fetch_max_bytes: int = Field(64 * 1024 * 1024, description="bytes per fetch")
    verify_interval_s: float = Field(5.0, description="seconds between checks of the log for a reset (foryou/kafka.py)")
    client_id: str = Field("thunder", description="Kafka client id")
    # Partitions are always assigned manually (every replica reads every partition and holds
    # the full state), so a group id only names the consumer in broker tools.
    group_id: str = Field("", description="Kafka consumer group id, names the consumer only ('' = none)")
    query: QueryLimits = Field(default_factory=QueryLimits)
    store: StoreLimits = Field(default_factory=StoreLimits)
