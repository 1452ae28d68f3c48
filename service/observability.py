"""Prometheus metrics of one app instance.

Each app owns its :class:`~prometheus_client.CollectorRegistry` rather than using the global
one, so several apps in one process (tests) never clash, and ``/metrics`` shows exactly this
app's numbers. Behind a load balancer every process exports its own series.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0)
BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128)


class ServiceMetrics:
    """The service's series; ``render()`` gives the text exposition format for ``/metrics``."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self.requests = Counter(
            "synnet_http_requests", "HTTP requests by route and status", ["method", "route", "status"], registry=r
        )
        self.latency = Histogram(
            "synnet_http_request_duration_seconds", "HTTP request latency", ["method", "route"],
            buckets=LATENCY_BUCKETS, registry=r,
        )
        self.batch_size = Histogram(
            "synnet_batch_size", "slices per forward pass", ["model"], buckets=BATCH_BUCKETS, registry=r
        )
        self.batch_chunks = Histogram(
            "synnet_batch_chunks", "request chunks merged into one forward pass", ["model"],
            buckets=BATCH_BUCKETS, registry=r,
        )
        self.inference_seconds = Histogram(
            "synnet_inference_seconds", "time of one forward pass", ["model"], buckets=LATENCY_BUCKETS, registry=r
        )
        self.queue_depth = Gauge("synnet_queue_depth", "slices waiting for a forward pass", ["model"], registry=r)
        self.in_flight = Gauge("synnet_syntheses_in_flight", "syntheses admitted and not finished", registry=r)
        self.slices = Counter(
            "synnet_slices", "slices seen by outcome (run or skipped: no brain)", ["model", "outcome"], registry=r
        )
        self.models_available = Gauge("synnet_models_available", "models loaded and serving", registry=r)
        self.models_failed = Gauge("synnet_models_failed", "models that failed to load", registry=r)

    def render(self) -> bytes:
        return generate_latest(self.registry)
