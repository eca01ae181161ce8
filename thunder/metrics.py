"""Thunder's Prometheus metrics (request counts and latency come from the shared gRPC
interceptor in foryou.grpc_server)."""
from __future__ import annotations

import prometheus_client

EVENTS = prometheus_client.Counter(
    "thunder_events_total", "Kafka records that changed the stores (refused, duplicate and expired records excluded)", ["topic"])
MALFORMED = prometheus_client.Counter(
    "thunder_malformed_records_total", "Kafka records refused (by reason: foryou_refused_records_total) or failed to apply, skipped",
    ["topic"])
EVENTS_PER_SECOND = prometheus_client.Gauge(
    "thunder_events_per_second", "Records applied per second over the last stats interval")
CONSUMER_LAG = prometheus_client.Gauge(
    "thunder_consumer_lag_records", "Records behind the partition high watermark, summed per topic",
    ["topic"])
CAUGHT_UP = prometheus_client.Gauge(
    "thunder_caught_up", "1 once the start-up replay reached the end offsets seen at start")
STORE_SIZE = prometheus_client.Gauge(
    "thunder_store_size", "Entries held in the in-memory stores", ["kind"])
TRIMMED = prometheus_client.Counter(
    "thunder_trimmed_total", "Expired entries dropped by the trim task", ["store"])
IN_NETWORK_QUERY = prometheus_client.Histogram(
    "thunder_in_network_query_seconds", "Post store in-network query time (server side)",
    buckets=(0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.1))
FOLLOWING_TRUNCATED = prometheus_client.Counter(
    "thunder_following_truncated_total",
    "In-network queries whose following list exceeded max_following (the most recent follows were read)")
