"""The gateway's long-lived parts, built from the config and started together."""

from __future__ import annotations

import gc
import logging
import os
from collections.abc import Mapping
from pathlib import Path

from tollway.accounting.pricing import PriceBook
from tollway.audit.hook import PolicyBook
from tollway.audit.log import AuditLog
from tollway.config import Config, ProviderConfig, is_virtual_key, price_providers
from tollway.errors import GatewayError, InvalidField, InvalidRequest
from tollway.governance.entities import KeyRecord
from tollway.mcp.service import MCPService
from tollway.observability.metrics import OTHER, Metrics
from tollway.observability.retention import ContentRetention
from tollway.observability.writer import LogWriter
from tollway.pipeline.admit import Admission
from tollway.pipeline.asgi import BodyBytes
from tollway.pipeline.disconnect import DisconnectPolicy
from tollway.pipeline.handler import Gateway
from tollway.pipeline.meter import Meter
from tollway.pipeline.recovery import recover
from tollway.pipeline.registry import Registry
from tollway.pipeline.route import Router
from tollway.pipeline.slots import SlotGate
from tollway.provider_keys import crossed_message
from tollway.providers.base import AwsKey, KeyChoice, Provider
from tollway.providers.http import UpstreamLimits
from tollway.providers.registry import context, default_registry
from tollway.routing.rules import RuleSet
from tollway.routing.settings import RoutingRule, StoredRules
from tollway.storage import provider_keys
from tollway.storage.base import Store
from tollway.storage.journal import Journal
from tollway.vault import EnvPolicy, open_box

log = logging.getLogger("tollway")
RULES_SETTING = "routing_rules"


def build_providers(config: Config, env: EnvPolicy | None = None) -> dict[str, Provider]:
    env = env or EnvPolicy.at_start(config, os.environ)
    registry = default_registry()
    providers: dict[str, Provider] = {}
    for name, pc in config.providers.items():
        kind = config.provider_type(name)
        keys: list[KeyChoice] = []
        aws: dict[KeyChoice, AwsKey] = {}
        for k in pc.keys:
            secret = env.resolve(k.value)
            if is_virtual_key(secret):  # a Tollway key in a provider variable: never sent
                log.warning("%s", crossed_message(name, k))
                continue
            choice = KeyChoice(k.name, secret, k.weight)
            keys.append(choice)
            if k.access_key_id is not None:
                token = env.resolve(k.session_token) if k.session_token else None
                aws[choice] = AwsKey(env.resolve(k.access_key_id), token)
        if pc.credentials_file:
            text = Path(pc.credentials_file).read_text(encoding="utf-8")
            keys.append(KeyChoice("credentials_file", text))
        ctx = context(name, kind, pc, keys, upstream_limits(pc), aws)
        providers[name] = registry.build(ctx)
    return providers


def upstream_limits(pc: ProviderConfig) -> UpstreamLimits:
    return UpstreamLimits(
        connect_s=pc.connect_timeout_s, first_byte_s=pc.first_byte_timeout_s,
        idle_s=pc.timeout_s, total_s=pc.total_timeout_s,
        max_response_bytes=int(pc.max_response_mb * 1024 * 1024),
    )  # fmt: skip


def spool_dir_for(config: Config, journal: Path | None) -> Path | None:
    """``logging.spool_dir``, else beside the database's journal (``tollway.db.spool``), so
    that a restart after a crash finds the bodies spilled before it."""
    if config.logging.spool_dir:
        return Path(config.logging.spool_dir)
    if journal is None:
        return None
    return journal.with_name(journal.name.removesuffix(".journal") + ".spool")


class Services:
    """``services = Services(config, store); await services.start(); ...; await stop()``."""

    def __init__(self, config: Config, store: Store, journal: Path | None = None) -> None:
        self.config = config
        self.store = store
        # Open budget reservations outlive a crash when journaled (storage/journal.py).
        self.journal = Journal(journal) if journal is not None else None
        # env.NAME references resolve only as the config given at start allows (vault.py)
        self.env = EnvPolicy.at_start(config, os.environ)
        self.providers = build_providers(config, self.env)
        self.prices = PriceBook(overrides=config.pricing, fallback=config.gateway.fallback_price)
        self.prices.bind_providers(price_providers(config))
        self.registry = Registry(store)
        self.admission = Admission(self.registry, self.prices, config, self.journal)
        self.writer = LogWriter(
            store,
            queue_size=config.logging.queue_size,
            flush_interval=config.logging.flush_interval_ms / 1000,
            content_bytes=int(config.logging.content_queue_mb * 1024 * 1024),
            spend_source=self.admission.dirty_spend,
            spool_dir=spool_dir_for(config, journal),
            spool_bytes=int(config.logging.spool_mb * 1024 * 1024),
            on_written=self.journal.committed if self.journal is not None else None,
        )
        self.retention = ContentRetention(store, config.logging.retention_days)
        self.metrics = Metrics(self.model_label)
        self.metrics.gauge("tollway_log_queue", "Records waiting for the writer",
                           lambda: self.writer.pending)  # fmt: skip
        self.metrics.gauge("tollway_log_records_dropped", "Records dropped: queue full",
                           lambda: self.writer.dropped_records)  # fmt: skip
        self.metrics.gauge("tollway_log_contents_dropped",
                           "Bodies dropped: best-effort past the spool bound, or spilling failed",
                           lambda: self.writer.dropped_contents)  # fmt: skip
        self.metrics.gauge("tollway_log_contents_spilled",
                           "Bodies spilled to disk past the memory bound (stored later)",
                           lambda: self.writer.spilled_contents)  # fmt: skip
        self.metrics.gauge("tollway_log_contents_pending", "Bodies waiting to be stored",
                           lambda: self.writer.pending_contents)  # fmt: skip
        self.metrics.gauge("tollway_log_contents_replayed",
                           "Bodies found spilled by a gateway that died, stored at start",
                           lambda: self.writer.replayed_contents)  # fmt: skip
        self.metrics.gauge("tollway_log_content_held_back",
                           "Requests of content-required keys held back: content backlog full",
                           lambda: self.writer.held_back)  # fmt: skip
        self.metrics.gauge("tollway_log_content_refused",
                           "Requests of content-required keys refused: backlog did not drain",
                           lambda: self.writer.refused_full)  # fmt: skip
        self.metrics.gauge("tollway_budget_reservations_open", "Budget reservations in flight",
                           lambda: self.admission.ledger.open_reservations)  # fmt: skip
        self.audit = AuditLog(store, config.audit, self.metrics)
        self.policy = PolicyBook(config.tool_policy)
        self.meter = Meter(
            self.prices,
            self.admission,
            self.writer,
            config.logging.content,
            self.metrics,
            self.audit,
        )
        self.stored_rules: list[RoutingRule] = []  # PUT /api/routing-rules (setting below)
        self.router = self._router()
        self.slots = SlotGate()
        self.metrics.gauge("tollway_concurrency_waiting", "Requests waiting for a slot",
                           lambda: self.slots.waiting)  # fmt: skip
        gw = config.gateway
        self.gateway = Gateway(
            registry=self.registry,
            router=self.router,
            admission=self.admission,
            meter=self.meter,
            max_body_bytes=gw.max_body_bytes,
            slots=self.slots,
            concurrency_wait_s=gw.concurrency_wait_s,
            body_timeout_s=gw.body_timeout_s,
            body_bytes=BodyBytes(max(gw.max_body_bytes_in_flight, gw.max_body_bytes)),
            routing=config.routing,
        )
        self.gateway.disconnects = DisconnectPolicy(gw.disconnect_grace_s)
        dispatcher = self.gateway.dispatcher
        self.metrics.gauge("tollway_circuits_open",
                           "Circuits (provider, key, model) open after failures",
                           lambda: dispatcher.breakers.open_count(dispatcher.clock()))  # fmt: skip
        self.mcp = MCPService(config, store, self.registry, self.gateway.authenticate,
                              self.admission, self.metrics)  # fmt: skip
        self.started = False
        self.admin_token = ""
        self.freeze_gc = False  # the server sets it; tests start many Services per process
        self._retired: list[Provider] = []

    def _apply_providers(self, config: Config) -> None:
        self._retired.extend(self.providers.values())
        self.config = config
        self.providers = build_providers(config, self.env)
        self.prices.bind_providers(price_providers(config))
        self.router = self._router()
        self.gateway.router = self.router

    def _router(self) -> Router:
        """Providers, declared models and the compiled rules (config and stored)."""
        routing = self.config.routing
        return Router(
            self.providers, {n: list(p.models) for n, p in self.config.providers.items()},
            RuleSet.compile(routing, self.stored_rules), routing.fallbacks,
        )  # fmt: skip

    def validate_rules(self, doc: object) -> list[RoutingRule]:
        """Rules as ``PUT /api/routing-rules`` takes them; InvalidField names the field."""
        from pydantic import ValidationError

        from tollway.admin.errors import field_name

        try:
            stored = StoredRules.model_validate(doc, context={"providers": set(self.providers)})
        except ValidationError as exc:
            err = exc.errors()[0]
            raise InvalidField(field_name(err["loc"]) or "body",
                               str(err["msg"]).removeprefix("Value error, ")) from None  # fmt: skip
        names = [r.name for r in stored.rules] + [r.name for r in self.config.routing.rules]
        dup = next((n for n in names if names.count(n) > 1), None)
        if dup is not None:
            where = names.index(dup)
            raise InvalidField(f"rules.{where}.name", f"rule name {dup!r} is already used")
        return list(stored.rules)

    async def replace_rules(self, rules: list[RoutingRule]) -> None:
        """Store the API's rules and apply them to new requests at once."""
        doc = StoredRules(rules=rules).model_dump_json(exclude_defaults=True)
        await self.store.put_setting(RULES_SETTING, doc)
        self.stored_rules = rules
        self.router = self._router()
        self.gateway.router = self.router

    async def _load_rules(self) -> None:
        text = await self.store.get_setting(RULES_SETTING)
        if not text:
            return
        try:
            stored = StoredRules.model_validate_json(
                text, context={"providers": set(self.providers)}
            )
        except ValueError as exc:  # stored by an older set of providers: say so, keep going
            log.warning("stored routing rules not applied: %s", exc)
            return
        self.stored_rules = list(stored.rules)
        self.router = self._router()
        self.gateway.router = self.router

    async def replace_providers(self, providers: Mapping[str, ProviderConfig]) -> None:
        """Validate, store (keys encrypted) and apply a new provider set; in-flight
        requests finish as they are. InvalidField names what is refused."""
        config = provider_keys.validated(self.config, providers)
        provider_keys.check_references(config, self.env)
        for name, pc in config.providers.items():
            for k in pc.keys:
                if is_virtual_key(self.env.resolve(k.value)):
                    raise InvalidRequest(crossed_message(name, k))
        box = open_box(self.store.url)  # read afresh: `tollway secrets rotate` may have run
        await self.store.put_setting(provider_keys.SETTING, provider_keys.stored_doc(config, box))
        self._apply_providers(config)

    async def _stored_providers(self) -> None:
        stored = await self.store.get_setting(provider_keys.SETTING)
        if not stored:
            return
        box = open_box(self.store.url)
        providers, plaintext = provider_keys.load_stored(stored, box, self.env)
        config = self.config.model_copy(update={"providers": providers})
        if plaintext and box is not None:  # written by an older version: encrypt it now
            doc = provider_keys.stored_doc(config, box)
            await self.store.put_setting(provider_keys.SETTING, doc)
        self._apply_providers(config)

    async def start(self) -> None:
        if self.started:
            return
        from tollway.admin.pricing import apply_stored_prices
        from tollway.bootstrap import apply_declared

        await self.store.open()
        await apply_stored_prices(self.store, self.prices)
        await self._stored_providers()
        await self._load_rules()
        await apply_declared(self.config, self.store)
        await self.registry.refresh(force=True)
        if self.journal is not None:
            await recover(self.store, self.journal, self.registry.snapshot)
        await self.admission.load(self.store)
        self.registry.start()
        self.writer.start()
        self.retention.start()
        await self.policy.load(self.store)
        self.policy.start(self.store)
        await self.audit.start()
        await self.mcp.start()
        if self.freeze_gc:
            # Objects built at start live as long as the process: move them out of the
            # collector's reach, so full collections stay short (tens of ms otherwise).
            gc.collect()
            gc.freeze()
        self.started = True

    async def stop(self) -> None:
        if not self.started:
            return
        self.started = False
        await self.registry.stop()
        await self.mcp.stop()
        await self.retention.stop()
        await self.writer.stop()
        await self.policy.stop()
        await self.audit.stop()
        if self.journal is not None:
            self.journal.close()
        for provider in [*self.providers.values(), *self._retired]:
            await provider.close()
        await self.store.close()

    def model_label(self, model: str) -> str:
        """A model's metrics label: a declared model or a priced one (by its price-table
        name), else ``other``, so that invented names cannot grow /metrics."""
        if any(model in p.models for p in self.config.providers.values()):
            return model
        price = self.prices.lookup(model)
        return price.model if price is not None and "*" not in price.model else OTHER

    def models_for(self, key: KeyRecord) -> list[str]:
        names: list[str] = []
        declared: Mapping[str, list[str]] = {n: p.models for n, p in self.config.providers.items()}
        for name, provider in self.providers.items():
            models = list(declared.get(name) or [])
            if not models and not getattr(provider, "simulated", False):
                # The models the price book has for this provider (genai-prices' list).
                ids = {self.prices.genai_provider(name, ""), self.config.provider_type(name)}
                models = [m for m, price in self.prices.models(base=True).items()
                          if price.provider in ids and not price.assumption]  # fmt: skip
            if not models and provider.name == "simulated":
                models = ["claude-sonnet-4-5", "claude-haiku-4-5", "gpt-5"]
            for m in models:
                try:
                    self.router.resolve(m, next(iter(provider.dialects)), key)
                except GatewayError:  # a model this key may not use is left out
                    continue
                names.append(m)
        return sorted(set(names))
