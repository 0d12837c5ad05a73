"""The audit log's Ed25519 signing key and signed checkpoints.

The key is generated on first start and stored in the database like provider keys:
encrypted by the secret box of vault.py (``TOLLWAY_SECRET_KEY``, or the key file beside a
SQLite database). Its public half is exported by ``tollway audit public-key`` and
``GET /api/audit/public-key``, so a verifier need not trust the database that holds it.

    signer = await load_signer(store)      # None: no secret box, checkpoints unsigned
    checkpoint = signer.sign(seq, hash, at)
"""

from __future__ import annotations

import base64
import hashlib
import json
import logging

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from tollway.audit.chain import Checkpoint, checkpoint_message
from tollway.storage.base import Store
from tollway.vault import KEY_ENV, SecretBox, SecretError, open_box

log = logging.getLogger("tollway.audit")
SETTING = "audit_signing_key"


def key_id(public: bytes) -> str:
    return hashlib.sha256(public).hexdigest()[:16]


def public_pem(public: Ed25519PublicKey) -> str:
    return public.public_bytes(Encoding.PEM, PublicFormat.SubjectPublicKeyInfo).decode()


class Signer:
    """Signs checkpoints with the gateway's audit key."""

    def __init__(self, private: Ed25519PrivateKey) -> None:
        self.private = private
        self.public = private.public_key()
        raw = self.public.public_bytes(Encoding.Raw, PublicFormat.Raw)
        self.key_id = key_id(raw)

    def sign(self, seq: int, hash_: str, at: float) -> Checkpoint:
        signature = self.private.sign(checkpoint_message(seq, hash_, at))
        return Checkpoint(seq, hash_, at, self.key_id, base64.b64encode(signature).decode())


def check_signature(public: Ed25519PublicKey, cp: Checkpoint) -> bool:
    try:
        public.verify(base64.b64decode(cp.signature), checkpoint_message(cp.seq, cp.hash, cp.at))
    except (InvalidSignature, ValueError):
        return False
    return True


def parse_public(text: str) -> Ed25519PublicKey:
    """A public key as PEM (what ``public-key`` prints) or raw base64."""
    from cryptography.hazmat.primitives.serialization import load_pem_public_key

    if "BEGIN PUBLIC KEY" in text:
        key = load_pem_public_key(text.encode())
        if not isinstance(key, Ed25519PublicKey):
            raise ValueError("not an Ed25519 public key")
        return key
    return Ed25519PublicKey.from_public_bytes(base64.b64decode(text.strip()))


async def stored_public(store: Store) -> Ed25519PublicKey | None:
    text = await store.get_setting(SETTING)
    if not text:
        return None
    return Ed25519PublicKey.from_public_bytes(base64.b64decode(json.loads(text)["public"]))


async def load_signer(store: Store, create: bool = True) -> Signer | None:
    """The stored key, decrypted; generated and stored on first use. None without a box."""
    box = open_box(store.url)
    text = await store.get_setting(SETTING)
    if box is None:
        if create:
            log.warning("audit checkpoints are not signed: no secret key to store the signing "
                        "key encrypted (set %s)", KEY_ENV)  # fmt: skip
        return None
    if text:
        doc = json.loads(text)
        try:
            raw = base64.b64decode(box.decrypt(doc["private"]))
        except SecretError as exc:
            # Start anyway (as with provider keys), chaining but not signing, and say why.
            log.error("the audit signing key %s: audit checkpoints are not signed", exc)
            return None
        return Signer(Ed25519PrivateKey.from_private_bytes(raw))
    if not create:
        return None
    private = Ed25519PrivateKey.generate()
    signer = Signer(private)
    from cryptography.hazmat.primitives.serialization import NoEncryption, PrivateFormat

    raw = private.private_bytes(Encoding.Raw, PrivateFormat.Raw, NoEncryption())
    pub = signer.public.public_bytes(Encoding.Raw, PublicFormat.Raw)
    doc = {"key_id": signer.key_id, "public": base64.b64encode(pub).decode(),
           "private": box.encrypt(base64.b64encode(raw).decode())}  # fmt: skip
    await store.put_setting(SETTING, json.dumps(doc))
    log.info("generated the audit signing key %s", signer.key_id)
    return signer


async def rotate_signing_key(store: Store, box: SecretBox) -> bool:
    """Re-encrypt the stored signing key with the box's newest key (``secrets rotate``)."""
    text = await store.get_setting(SETTING)
    if not text:
        return False
    doc = json.loads(text)
    doc["private"] = box.rotate(doc["private"])
    await store.put_setting(SETTING, json.dumps(doc))
    return True
