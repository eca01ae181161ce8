"""Every Thunder default, in one place. The CLI (thunder/main.py) exposes each as a flag and a
FORYOU_<NAME> environment variable; tests and in-process users build `ThunderSettings` directly."""
from __future__ import annotations

from dataclasses import dataclass

from foryou import config
from foryou.event_rules import MAX_FOLLOWING

HOUR_MS = 3_600_000


@dataclass(frozen=True)
class QueryLimits:
    """Limits of the in-network query and of request sizes."""

    max_results: int = 1200              # GetInNetworkPosts default and ceiling
    max_originals_per_author: int = 10   # per followed author, newest originals
    max_secondary_per_author: int = 5    # per followed author, newest replies and reposts
    max_videos_per_author: int = 10      # per followed author, in a video request
    # Entries walked per author list before giving up (bounds the work when most of an
    # author's recent posts are excluded, deleted or ineligible replies).
    max_scan_per_author: int = 64
    # Entries kept per author beyond each cap in the query's in-memory heads, so that a few
    # excluded or ineligible posts are skipped without walking the author's timeline.
    head_spare_per_author: int = 6
    max_following: int = MAX_FOLLOWING   # longer following lists: the most recent this many are read
    max_exclusions: int = 10_000         # exclude_post_ids longer than this: INVALID_ARGUMENT
    max_lookup_ids: int = 5_000          # GetPosts / GetAuthors ids longer than this: INVALID_ARGUMENT


@dataclass(frozen=True)
class StoreLimits:
    retention_ms: int = 48 * HOUR_MS      # posts, engagements and served ids older than this go
    future_skew_ms: int = 60_000          # posts created further in the future are refused
    max_engagements_per_user: int = 512   # newest kept, served oldest first
    max_served_per_user: int = 2_000      # newest kept, served newest first


@dataclass(frozen=True)
class ThunderSettings:
    host: str = config.DEFAULT_HOST
    port: int = config.THUNDER_PORT               # 0 = a free port (tests)
    metrics_port: int = config.THUNDER_METRICS_PORT  # 0 = no metrics endpoint
    kafka_bootstrap: str = f"{config.DEFAULT_HOST}:{config.KAFKA_PORT}"
    max_concurrent_rpcs: int = 256               # beyond it: RESOURCE_EXHAUSTED at once
    trim_interval_s: float = 60.0                # how often expired state is dropped
    stats_interval_s: float = 10.0               # how often store sizes are exported and logged
    fetch_max_records: int = 5_000               # records per getmany during the start-up replay
    live_fetch_max_records: int = 500            # once serving: bounds event-loop stalls (~5 ms)
    fetch_max_bytes: int = 64 * 1024 * 1024
    verify_interval_s: float = 5.0               # how often the log is checked for a reset (foryou/kafka.py)
    client_id: str = "thunder"
    # Partitions are always assigned manually (every replica reads every partition and holds
    # the full state), so a group id only names the consumer in broker tools; "" = none.
    group_id: str = ""
    query: QueryLimits = QueryLimits()
    store: StoreLimits = StoreLimits()
