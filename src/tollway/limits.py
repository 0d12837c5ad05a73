"""Validated types for budgets and limits, shared by the config file, the admin API, the
CLI and stored rows read back, so that each path refuses the same values the same way.

``Money`` is USD as an exact ``Decimal``: finite, non-negative, at most ``MAX_USD``, and
rounded to the picodollar (the unit spend is stored in). It accepts a JSON number or a
decimal string, never a boolean, and is written back as a string so no float ever holds
it. ``Count`` is a positive whole number of requests, tokens or slots.
"""

from __future__ import annotations

import math
from decimal import ROUND_HALF_EVEN, Decimal, InvalidOperation
from typing import Annotated, Any

from pydantic import Field, PlainSerializer, PlainValidator, ValidationError, WithJsonSchema

MAX_USD = Decimal(10) ** 12  # a trillion dollars: far above any budget, far inside Decimal
MAX_COUNT = 10**15
PICODOLLAR = Decimal("1e-12")


def parse_money(value: Any) -> Decimal:
    """A USD amount, or ValueError saying what is wrong with ``value``."""
    if isinstance(value, bool) or not isinstance(value, str | int | float | Decimal):
        raise ValueError("must be a number of USD (a JSON number or a decimal string)")
    if isinstance(value, float) and not math.isfinite(value):
        raise ValueError("must be a finite number of USD")
    try:
        amount = value if isinstance(value, Decimal) else Decimal(str(value).strip())
    except InvalidOperation:
        raise ValueError(f"{value!r} is not a number of USD") from None
    if not amount.is_finite():
        raise ValueError(f"must be a finite number of USD, not {value!r}")
    if amount < 0:
        raise ValueError(f"must not be negative, got {value!r}")
    if amount > MAX_USD:
        raise ValueError(f"must be at most {MAX_USD:,} USD, got {value!r}")
    if amount.as_tuple().exponent < -12:  # type: ignore[operator]
        amount = amount.quantize(PICODOLLAR, rounding=ROUND_HALF_EVEN)
    return amount


_MONEY_SCHEMA = {
    "anyOf": [
        {"type": "number", "minimum": 0, "maximum": int(MAX_USD)},
        {"type": "string", "pattern": r"^ *[0-9]{1,13}(\.[0-9]{0,12})? *$"},
    ],
    "description": "USD: a non-negative number or decimal string, exact to the picodollar",
}

Money = Annotated[
    Decimal,
    PlainValidator(parse_money),
    PlainSerializer(lambda d: str(d), return_type=str, when_used="json"),
    WithJsonSchema(_MONEY_SCHEMA, mode="validation"),
    WithJsonSchema({"type": "string", "description": "USD, decimal string"}, mode="serialization"),
]
Count = Annotated[int, Field(gt=0, le=MAX_COUNT, strict=False)]
Weight = Annotated[float, Field(gt=0, le=1_000_000, allow_inf_nan=False)]


def first_problem(exc: ValidationError) -> str:
    """The first error of ``exc`` as ``field: message`` (for one-line CLI errors)."""
    err = exc.errors()[0]
    field = ".".join(str(p) for p in err["loc"])
    return f"{field}: {err['msg']}" if field else str(err["msg"])
