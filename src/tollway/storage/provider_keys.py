"""Providers set through the admin API, as stored: literal keys encrypted, ``env.NAME``
references kept as references and allowed only by the start-time ``EnvPolicy``."""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from typing import Any

from pydantic import ValidationError

from tollway.config import Config, ProviderConfig, env_name
from tollway.errors import InvalidField
from tollway.vault import KEY_ENV, KEY_FILE_ENV, EnvPolicy, SecretBox, SecretError, base_url

log = logging.getLogger("tollway.providers")
SETTING = "providers"


def check_references(config: Config, env: EnvPolicy) -> None:
    """InvalidField naming the first key whose ``env.NAME`` may not be used where it is."""
    for name, pc in config.providers.items():
        url = base_url(config.provider_type(name), pc.base_url)
        for i, key in enumerate(pc.keys):
            var = env_name(key.value)
            problem = env.problem(var, url) if var is not None else None
            if problem is not None:
                raise InvalidField(f"{name}.keys.{i}.value", problem)


def validated(current: Config, providers: Mapping[str, ProviderConfig]) -> Config:
    """The config with ``providers`` in place; InvalidField naming the bad field."""
    doc = {n: p.model_dump(mode="json", exclude_defaults=True) for n, p in providers.items()}
    try:
        return Config.model_validate({**current.model_dump(mode="json"), "providers": doc})
    except ValidationError as exc:
        err = exc.errors()[0]
        loc = [str(p) for p in err["loc"]][1:]  # drop "providers"
        msg = str(err["msg"]).removeprefix("Value error, ")
        raise InvalidField(".".join(loc) or "body", msg) from None


def stored_doc(config: Config, box: SecretBox | None) -> str:
    """The JSON to store: every literal key value encrypted by ``box``."""
    doc: dict[str, Any] = {}
    for name, pc in config.providers.items():
        entry = pc.model_dump(mode="json", exclude_defaults=True)
        keys = []
        for i, key in enumerate(pc.keys):
            value = key.value
            if env_name(value) is None:
                if box is None:
                    raise InvalidField(
                        f"{name}.keys.{i}.value",
                        f"provider keys are stored encrypted and no secret key is configured: "
                        f"set {KEY_ENV} or {KEY_FILE_ENV} (`tollway secrets generate-key`), "
                        "or give the key as env.NAME",
                    )
                value = box.encrypt(value)
            keys.append({**key.model_dump(mode="json", exclude_defaults=True), "value": value})
        if pc.keys:
            entry["keys"] = keys
        doc[name] = entry
    return json.dumps(doc)


def load_stored(
    text: str, box: SecretBox | None, env: EnvPolicy
) -> tuple[dict[str, ProviderConfig], bool]:
    """Stored providers with their keys usable; keys that cannot be (a reference no longer
    allowed, a value the key cannot decrypt) are left out with an error logged. The flag
    says a plaintext value from an older version was found (store again to encrypt it)."""
    raw = json.loads(text)
    providers: dict[str, ProviderConfig] = {}
    plaintext = False
    for name, entry in raw.items():
        kind = entry.get("type") or name
        url = base_url(kind, entry.get("base_url"))
        keys = []
        for i, key in enumerate(entry.get("keys", [])):
            value = str(key.get("value", ""))
            where = f"stored provider {name!r} key {key.get('name', i)!r}"
            var = env_name(value)
            if var is not None:
                problem = env.problem(var, url)
                if problem is not None:
                    log.error("%s left out: %s", where, problem)
                    continue
            elif SecretBox.is_encrypted(value):
                if box is None:
                    log.error("%s left out: no secret key configured (%s)", where, KEY_ENV)
                    continue
                try:
                    value = box.decrypt(value)
                except SecretError as exc:
                    log.error("%s left out: %s", where, exc)
                    continue
            else:
                plaintext = True
            keys.append({**key, "value": value})
        providers[name] = ProviderConfig.model_validate({**entry, "keys": keys})
    return providers, plaintext
