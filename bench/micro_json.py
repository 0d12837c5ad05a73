"""JSON on the hot path: msgspec vs orjson vs the standard library, on the 77 KB body.

    bench/.venv-tools/bin/python -m bench.micro_json [--quick]

What Tollway does per request: read a handful of fields (``model``, ``stream``, the
output caps) from the body, forward the body's bytes untouched, and, only when a model
alias is rewritten, change ``model`` and nothing else. Each library is timed on that.
Prints JSON: microseconds per operation (best of several repeats).
"""

from __future__ import annotations

import argparse
import json
import sys
import timeit
import zlib
from collections.abc import Callable
from typing import Any

import msgspec

from bench.payloads import anthropic_message, claude_code

try:
    import orjson
except ImportError:  # pragma: no cover - the tools venv has it
    orjson = None


class Fields(msgspec.Struct):
    model: str | None = None
    stream: bool | None = None
    max_tokens: int | None = None
    max_completion_tokens: int | None = None
    max_output_tokens: int | None = None


def _best_us(fn: Callable[[], Any], number: int, repeat: int) -> float:
    return min(timeit.repeat(fn, number=number, repeat=repeat)) / number * 1e6


def cases(body: bytes, small: bytes) -> dict[str, Callable[[], Any]]:
    fields = msgspec.json.Decoder(Fields)
    raw = msgspec.json.Decoder(dict[str, msgspec.Raw])
    enc = msgspec.json.Encoder()

    def msgspec_rewrite() -> bytes:
        doc = raw.decode(body)
        doc["model"] = msgspec.Raw(enc.encode("claude-sonnet-4-5"))
        return enc.encode(doc)

    def stdlib_rewrite() -> bytes:
        doc = json.loads(body)
        doc["model"] = "claude-sonnet-4-5"
        return json.dumps(doc, separators=(",", ":"), ensure_ascii=False).encode()

    out: dict[str, Callable[[], Any]] = {
        "read_fields/msgspec_struct": lambda: fields.decode(body),
        "read_fields/msgspec_dict": lambda: msgspec.json.decode(body),
        "read_fields/stdlib": lambda: json.loads(body),
        "rewrite_model/msgspec_raw": msgspec_rewrite,
        "rewrite_model/stdlib": stdlib_rewrite,
        "reserialise/msgspec": lambda: enc.encode(msgspec.json.decode(body)),
        "reserialise/stdlib": lambda: json.dumps(json.loads(body)).encode(),
        "small_response/msgspec_struct": lambda: fields.decode(small),
        # not JSON, but on the same path today: the request log compresses the body
        "log_compress/zlib_level1": lambda: zlib.compress(body, 1),
        "small_response/stdlib": lambda: json.loads(small),
    }
    if orjson is not None:
        loads, dumps = orjson.loads, orjson.dumps

        def orjson_rewrite() -> bytes:
            doc = loads(body)
            doc["model"] = "claude-sonnet-4-5"
            return dumps(doc)

        out["read_fields/orjson"] = lambda: loads(body)
        out["rewrite_model/orjson"] = orjson_rewrite
        out["reserialise/orjson"] = lambda: dumps(loads(body))
        out["small_response/orjson"] = lambda: loads(small)
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--quick", action="store_true")
    args = p.parse_args()
    body = claude_code().body
    small = anthropic_message("claude-haiku-4-5")
    number, repeat = (50, 3) if args.quick else (200, 7)
    results = {
        name: round(_best_us(fn, number, repeat), 2) for name, fn in cases(body, small).items()
    }
    versions = {"msgspec": msgspec.__version__, "python": sys.version.split()[0]}
    if orjson is not None:
        versions["orjson"] = orjson.__version__
    json.dump({"body_bytes": len(body), "us_per_op": results, "versions": versions}, sys.stdout)
    print()


if __name__ == "__main__":
    main()
