"""``tollway audit verify``: the whole chain and every checkpoint, read back and checked.

    report = await verify_store(store, public_key=None)   # the stored key unless given
    report["ok"], report["problems"]

A verifier that distrusts the database passes the public key it exported earlier
(``--public-key FILE``); otherwise the key stored beside the log is used, which proves
the log consistent with itself but not against someone who replaced key and log alike.
"""

from __future__ import annotations

from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from tollway.audit import store as sql
from tollway.audit.chain import Checkpoint, Entry, verify_rows
from tollway.audit.signing import check_signature, stored_public
from tollway.storage.base import Store


def verify_checkpoints(rows: list[Entry], cps: list[Checkpoint],
                       public: Ed25519PublicKey | None) -> list[str]:  # fmt: skip
    problems: list[str] = []
    by_seq = {r.seq: r for r in rows}
    last = rows[-1].seq if rows else 0
    for cp in cps:
        if public is None:
            problems.append(f"checkpoint {cp.seq}: no public key to check its signature")
        elif not check_signature(public, cp):
            problems.append(f"checkpoint {cp.seq}: the signature is not valid (changed)")
            continue
        row = by_seq.get(cp.seq)
        if row is None and cp.seq > last:
            problems.append(f"checkpoint {cp.seq} signed a longer log: rows {last + 1}.."
                            f"{cp.seq} deleted from the end")  # fmt: skip
        elif row is None:
            problems.append(f"checkpoint {cp.seq}: row {cp.seq} missing")
        elif row.hash != cp.hash:
            problems.append(f"checkpoint {cp.seq}: row {cp.seq} differs from what was signed "
                            "(the chain was rewritten up to it)")  # fmt: skip
    return problems


async def verify_store(store: Store, public: Ed25519PublicKey | None = None) -> dict[str, Any]:
    rows = [e async for e in sql.entries(store)]
    cps = await sql.checkpoints(store)
    key = public or await stored_public(store)
    problems = verify_rows(rows) + verify_checkpoints(rows, cps, key)
    signed = max((c.seq for c in cps), default=0)
    return {
        "ok": not problems,
        "entries": len(rows),
        "head": rows[-1].hash if rows else None,
        "checkpoints": len(cps),
        "signed_through": signed,
        "unsigned_tail": (rows[-1].seq - signed) if rows else 0,
        "problems": problems,
    }
