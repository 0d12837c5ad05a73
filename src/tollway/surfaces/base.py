"""What a client surface is: a dialect, its request fields, and its error shape."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

import msgspec

from tollway.errors import GatewayError, InvalidRequest
from tollway.sse import SSEEvent


class RequestFields(msgspec.Struct):
    """The few fields the gateway reads; the rest of the body is never decoded into objects."""

    model: str | None = None
    stream: bool | None = None
    max_tokens: int | None = None
    max_completion_tokens: int | None = None
    max_output_tokens: int | None = None


_decoder = msgspec.json.Decoder(RequestFields)


def read_fields(body: bytes) -> RequestFields:
    try:
        return _decoder.decode(body)
    except msgspec.DecodeError as exc:
        raise InvalidRequest(
            f"the request body is not valid JSON for this API ({exc}); send a JSON object"
        ) from None
    except RecursionError:
        raise InvalidRequest("the request body is JSON nested too deeply") from None


# A surface whose paths carry parameters: the path -> its Route (with ``model`` and
# ``stream`` filled in), or None when the path is not one of its own.
PathMatcher = Callable[[str], "Route | None"]


class Surface(Protocol):
    name: str
    dialect: str

    def error_body(self, error: GatewayError) -> bytes: ...

    def stream_error(self, error: GatewayError) -> bytes:
        """The bytes that end a started stream with `error`, in this dialect."""
        ...

    def is_terminal(self, event: SSEEvent) -> bool:
        """True for the event after which this dialect's stream is complete."""
        ...


@dataclass(frozen=True, slots=True)
class Route:
    surface: Surface
    kind: str  # "generate" | "count_tokens" | "models"
    path: str  # the canonical upstream path, e.g. "/v1/messages"
    # Surfaces that name the model and streaming in the path (Gemini's
    # ``/v1beta/models/{model}:streamGenerateContent``, Bedrock's ``/model/{id}/invoke``):
    # what the path said, used instead of the body's ``model`` and ``stream`` fields.
    model: str | None = None
    stream: bool | None = None

    @property
    def billable(self) -> bool:
        """Only generation costs money; count_tokens is governed but free."""
        return self.kind == "generate"
