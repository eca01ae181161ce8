"""Prometheus metrics: one endpoint per process, plus gRPC request metrics shared by servers."""
from __future__ import annotations

import logging

import prometheus_client

log = logging.getLogger(__name__)

GRPC_REQUESTS = prometheus_client.Counter(
    "foryou_grpc_requests_total", "gRPC requests handled", ["service", "method", "code"],
)
GRPC_LATENCY = prometheus_client.Histogram(
    "foryou_grpc_request_seconds", "gRPC request latency (server side)", ["service", "method"],
    buckets=(0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5),
)


def start_metrics_server(port: int, host: str = "127.0.0.1") -> int:
    """Serve /metrics on host:port (0 = don't serve). Returns the port."""
    if port:
        prometheus_client.start_http_server(port, addr=host)
        log.info("metrics on http://%s:%d/metrics", host, port)
    return port
