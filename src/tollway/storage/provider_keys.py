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
_SECRET_FIELDS = ("value", "session_token")  # stored encrypted when literal
_REFERENCE_FIELDS = ("value", "access_key_id", "session_token")  # may be env.NAME


def check_references(config: Config, env: EnvPolicy) -> None:
    """InvalidField naming the first key whose ``env.NAME`` may not be used where it is."""
    for name, pc in config.providers.items():
        url = base_url(config.provider_type(name), pc.base_url, pc.region)
        for i, key in enumerate(pc.keys):
            for field, value in key.references():
                var = env_name(value)
                problem = env.problem(var, url) if var is not None else None
                if problem is not None:
                    raise InvalidField(f"{name}.keys.{i}.{field}", problem)


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
            stored = key.model_dump(mode="json", exclude_defaults=True)
            for field in _SECRET_FIELDS:
                value = stored.get(field)
                if value is None or env_name(value) is not None:
                    continue
                if box is None:
                    raise InvalidField(
                        f"{name}.keys.{i}.{field}",
                        f"provider keys are stored encrypted and no secret key is configured: "
                        f"set {KEY_ENV} or {KEY_FILE_ENV} (`tollway secrets generate-key`), "
                        "or give the key as env.NAME",
                    )
                stored[field] = box.encrypt(value)
            keys.append(stored)
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
        url = base_url(kind, entry.get("base_url"), entry.get("region"))
        keys = []
        for i, key in enumerate(entry.get("keys", [])):
            where = f"stored provider {name!r} key {key.get('name', i)!r}"
            usable = dict(key)
            for field in _REFERENCE_FIELDS:
                if key.get(field) is None:
                    continue
                value, problem, was_plain = _readable(str(key[field]), field, box, env, url)
                if problem is not None:
                    log.error("%s left out: %s", where, problem)
                    break
                plaintext = plaintext or was_plain
                usable[field] = value
            else:
                keys.append(usable)
        providers[name] = ProviderConfig.model_validate({**entry, "keys": keys})
    return providers, plaintext


def _readable(
    value: str, field: str, box: SecretBox | None, env: EnvPolicy, url: str
) -> tuple[str, str | None, bool]:
    """(usable value, why it is not usable, whether it was stored in plaintext)."""
    var = env_name(value)
    if var is not None:
        return value, env.problem(var, url), False
    if SecretBox.is_encrypted(value):
        if box is None:
            return value, f"no secret key configured ({KEY_ENV})", False
        try:
            return box.decrypt(value), None, False
        except SecretError as exc:
            return value, str(exc), False
    return value, None, field in _SECRET_FIELDS
