"""Prometheus metrics on the app's own registry, served at ``/metrics``."""

from __future__ import annotations

from collections.abc import Callable

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from tollway.storage.records import RequestRecord

CONTENT_TYPE = b"text/plain; version=0.0.4; charset=utf-8"


class _Callback(Collector):
    def __init__(self, name: str, doc: str, read: Callable[[], float]) -> None:
        self._name, self._doc, self._read = name, doc, read

    def collect(self) -> list[GaugeMetricFamily]:
        return [GaugeMetricFamily(self._name, self._doc, value=self._read())]


class Metrics:
    """``metrics.observe(record)`` per request; ``metrics.render()`` for a scrape."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.requests = Counter(
            "tollway_requests", "Requests by surface, provider, model and status",
            ["surface", "provider", "model", "status"], registry=self.registry,
        )  # fmt: skip
        self.tokens = Counter(
            "tollway_tokens", "Tokens by kind", ["provider", "model", "kind"],
            registry=self.registry,
        )  # fmt: skip
        self.cost = Counter(
            "tollway_cost_usd", "Recorded cost in USD", ["provider", "model"],
            registry=self.registry,
        )  # fmt: skip
        self.latency = Histogram(
            "tollway_request_duration_seconds", "Request duration", ["surface"],
            buckets=(0.005, 0.01, 0.05, 0.1, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300),
            registry=self.registry,
        )  # fmt: skip
        self.in_flight = Gauge("tollway_in_flight", "Requests in flight", registry=self.registry)

    def gauge(self, name: str, doc: str, read: Callable[[], float]) -> None:
        self.registry.register(_Callback(name, doc, read))

    def observe(self, r: RequestRecord) -> None:
        provider, model = r.provider or "", r.served_model or ""
        self.requests.labels(r.surface, provider, model, str(r.status)).inc()
        self.latency.labels(r.surface).observe(r.latency_ms / 1000)
        if r.input_tokens or r.output_tokens:
            tokens = self.tokens
            tokens.labels(provider, model, "input").inc(r.input_tokens)
            tokens.labels(provider, model, "output").inc(r.output_tokens)
            if r.cache_read_tokens:
                tokens.labels(provider, model, "cache_read").inc(r.cache_read_tokens)
            cache_write = r.cache_write_5m_tokens + r.cache_write_1h_tokens
            if cache_write:
                tokens.labels(provider, model, "cache_write").inc(cache_write)
        if r.cost_total:
            self.cost.labels(provider, model).inc(float(r.cost_total))

    def render(self) -> bytes:
        return generate_latest(self.registry)
