"""Prometheus metrics on the app's own registry, served at ``/metrics``."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from tollway.storage.records import RequestRecord

CONTENT_TYPE = b"text/plain; version=0.0.4; charset=utf-8"
OTHER = "other"
_MAX_MEMO = 4096


class _Callback(Collector):
    def __init__(self, name: str, doc: str, read: Callable[[], float]) -> None:
        self._name, self._doc, self._read = name, doc, read

    def collect(self) -> list[GaugeMetricFamily]:
        return [GaugeMetricFamily(self._name, self._doc, value=self._read())]


@dataclass(frozen=True, slots=True)
class _Children:
    requests: Counter
    latency: Histogram
    input: Counter
    output: Counter
    cache_read: Counter
    cache_write: Counter
    cost: Counter


class Metrics:
    """``metrics.observe(record)`` per request; ``metrics.render()`` for a scrape."""

    def __init__(self, model_label: Callable[[str], str] | None = None) -> None:
        # Label values must stay few: a model name a client invents folds into "other"
        # (``model_label`` decides; Services passes the price table and declared models).
        self._model_label = model_label or (lambda m: m)
        self._labels: dict[str, str] = {}
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
        self.unknown_paths = Counter(
            "tollway_unknown_path_requests", "Requests to paths the gateway does not serve, "
            "by what the path suggests (doubled_v1, doubled_prefix, missing_v1, wrong_prefix, "
            "other)", ["hint"], registry=self.registry,
        )  # fmt: skip
        self.failovers = Counter(
            "tollway_upstream_failovers", "Upstream attempts that failed and were followed by "
            "another try, by provider and status (0: no response)", ["provider", "status"],
            registry=self.registry,
        )  # fmt: skip
        # Labelled children per (surface, provider, model, status): labels() is not free.
        self._cache: dict[tuple[str, str, str, int], _Children] = {}

    def gauge(self, name: str, doc: str, read: Callable[[], float]) -> None:
        self.registry.register(_Callback(name, doc, read))

    def label(self, model: str) -> str:
        found = self._labels.get(model)
        if found is None:
            if len(self._labels) >= _MAX_MEMO:
                self._labels.clear()
            found = self._labels[model] = self._model_label(model) if model else ""
        return found

    def _children(self, r: RequestRecord) -> _Children:
        key = (r.surface, r.provider or "", self.label(r.served_model or ""), r.status)
        found = self._cache.get(key)
        if found is None:
            surface, provider, model, status = key
            tokens = self.tokens
            found = self._cache[key] = _Children(
                self.requests.labels(surface, provider, model, str(status)),
                self.latency.labels(surface),
                tokens.labels(provider, model, "input"),
                tokens.labels(provider, model, "output"),
                tokens.labels(provider, model, "cache_read"),
                tokens.labels(provider, model, "cache_write"),
                self.cost.labels(provider, model),
            )
        return found

    def observe(self, r: RequestRecord) -> None:
        c = self._children(r)
        c.requests.inc()
        c.latency.observe(r.latency_ms / 1000)
        if r.input_tokens or r.output_tokens:
            c.input.inc(r.input_tokens)
            c.output.inc(r.output_tokens)
            if r.cache_read_tokens:
                c.cache_read.inc(r.cache_read_tokens)
            cache_write = r.cache_write_5m_tokens + r.cache_write_1h_tokens
            if cache_write:
                c.cache_write.inc(cache_write)
        if r.cost_total:
            c.cost.inc(float(r.cost_total))
        for attempt in r.attempts[:-1]:  # rare: only requests that failed over
            self.failovers.labels(attempt.provider, str(attempt.status)).inc()

    def unknown_path(self, hint: str) -> None:
        self.unknown_paths.labels(hint).inc()

    def render(self) -> bytes:
        return generate_latest(self.registry)
