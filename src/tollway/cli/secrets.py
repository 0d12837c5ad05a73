"""``tollway secrets generate-key|rotate``: the key that encrypts stored provider keys.

``rotate`` re-encrypts every stored provider key with the newest key. With a key file
(``TOLLWAY_SECRET_KEY_FILE`` or the one beside the SQLite database) it makes the new key
itself: the file gets the new key in front of the old ones, everything is re-encrypted,
then the old keys are dropped, so a crash at any step leaves every value decryptable.
With ``TOLLWAY_SECRET_KEY`` put the new key first (``NEW,OLD``), run ``rotate``, then
remove the old one.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
from typing import Any

from cryptography.fernet import Fernet

from tollway.audit.signing import rotate_signing_key
from tollway.cli.serve import db_url
from tollway.errors import ConfigError
from tollway.storage import open_store
from tollway.storage.provider_keys import SETTING
from tollway.vault import KEY_ENV, SecretBox, SecretError, key_source, write_private


def _generate(_args: argparse.Namespace) -> int:
    print(Fernet.generate_key().decode())
    return 0


def _reencrypt(doc: dict[str, Any], box: SecretBox) -> int:
    count = 0
    for entry in doc.values():
        for key in entry.get("keys", []):
            value = str(key.get("value", ""))
            if SecretBox.is_encrypted(value):
                key["value"] = box.rotate(value)
            elif not value.startswith("env."):
                key["value"] = box.encrypt(value)  # plaintext from an older version
            else:
                continue
            count += 1
    return count


def _rotate(args: argparse.Namespace) -> int:
    url = db_url(args.db)
    source = key_source(url, os.environ)
    if source is None:
        raise ConfigError(f"no secret key is configured: set {KEY_ENV} or TOLLWAY_SECRET_KEY_FILE")
    keys = source.keys
    if source.file is not None and not source.generated:
        keys = [Fernet.generate_key(), *source.keys]
        write_private(source.file, "\n".join(k.decode() for k in keys) + "\n")
    box = SecretBox(keys)

    async def go() -> int:
        store = open_store(url)
        await store.open()
        try:
            text = await store.get_setting(SETTING)
            doc = json.loads(text) if text else {}
            count = _reencrypt(doc, box)
            await rotate_signing_key(store, box)  # the audit log's key, encrypted alike
            await store.put_setting(SETTING, json.dumps(doc))
            return count
        finally:
            await store.close()

    try:
        count = asyncio.run(go())
    except SecretError as exc:
        raise ConfigError(f"a stored provider key {exc}; nothing was re-encrypted") from None
    if source.file is not None:
        write_private(source.file, keys[0].decode() + "\n")
        print(f"re-encrypted {count} provider key(s); {source.file} holds the new key only")
    else:
        print(f"re-encrypted {count} provider key(s) with the first key of {KEY_ENV}; "
              "remove the old key(s) from it now")  # fmt: skip
    return 0


def add_commands(sub: Any) -> None:
    p = sub.add_parser("secrets", help="the key that encrypts stored provider keys")
    actions = p.add_subparsers(dest="secrets_command", required=True)
    gen = actions.add_parser("generate-key", help="print a new key (for TOLLWAY_SECRET_KEY)")
    gen.set_defaults(func=_generate)
    rotate = actions.add_parser("rotate", help="re-encrypt stored provider keys with a new key")
    rotate.add_argument("--db", help="database URL (default: sqlite:///tollway.db)")
    rotate.set_defaults(func=_rotate)
