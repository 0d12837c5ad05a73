"""One error tree for the gateway.

Every failure a client can see is a ``GatewayError``; each surface renders it in its own
dialect (Anthropic error JSON, OpenAI error JSON) with the HTTP status and headers below::

    GatewayError                      500  api_error
    ├── InvalidRequest                400  invalid_request_error
    │   ├── InvalidField              422  invalid_request_error  (names the field)
    │   ├── NotFound                  404  not_found_error
    │   │   ├── ModelNotFound         404  not_found_error
    │   │   └── EndpointNotFound      404  not_found_error        (+ x-should-retry: false)
    │   └── RequestTimeout            408  timeout_error
    ├── AuthenticationFailed          401  authentication_error   (+ x-should-retry: false)
    ├── PermissionDenied              403  permission_error       (+ x-should-retry: false)
    ├── BudgetExceeded                402  billing_error / insufficient_quota  (+ the same)
    ├── RateLimited                   429  rate_limit_error  (+ retry-after)
    ├── Overloaded                    503  overloaded_error  (+ retry-after)
    ├── PayloadTooLarge               413  request_too_large
    └── UpstreamError                 502  api_error
        ├── UpstreamTimeout           504  timeout_error
        └── NoProviderAvailable       503  overloaded_error

``ConfigError`` is separate: it is raised at start-up, never on a request.
"""

from __future__ import annotations


class GatewayError(Exception):
    """A failure shown to the client, in the client's dialect."""

    status = 500
    anthropic_type = "api_error"
    openai_type = "server_error"
    openai_code: str | None = None

    def __init__(self, message: str, *, headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.headers: dict[str, str] = headers or {}


class InvalidRequest(GatewayError):
    status = 400
    anthropic_type = "invalid_request_error"
    openai_type = "invalid_request_error"
    openai_code = "invalid_request"


class InvalidField(InvalidRequest):
    """One field of an admin request is invalid: ``InvalidField("budgets.0.max_limit", why)``."""

    status = 422

    def __init__(self, field: str, problem: str) -> None:
        super().__init__(f"{field}: {problem}")
        self.field = field
        self.problem = problem


class NotFound(InvalidRequest):
    status = 404
    anthropic_type = "not_found_error"
    openai_code = "not_found"


class ModelNotFound(NotFound):
    openai_code = "model_not_found"


class EndpointNotFound(NotFound):
    """No such path; when it looks like a doubled base URL the message says the fix."""

    openai_code = "unknown_url"

    def __init__(self, message: str) -> None:
        super().__init__(message, headers={"x-should-retry": "false"})


class _Final(GatewayError):
    """An answer that retrying the same request cannot change: ``x-should-retry: false``.

    Claude Code retries a 401 ten times over about three minutes without it, and Codex
    reconnects on 402/403; with it both stop at once and show the message.
    """

    def __init__(self, message: str, *, headers: dict[str, str] | None = None) -> None:
        super().__init__(message, headers={"x-should-retry": "false", **(headers or {})})


class AuthenticationFailed(_Final):
    status = 401
    anthropic_type = "authentication_error"
    openai_type = "invalid_request_error"
    openai_code = "invalid_api_key"


class PermissionDenied(_Final):
    status = 403
    anthropic_type = "permission_error"
    openai_type = "invalid_request_error"
    openai_code = "model_not_allowed"


class BudgetExceeded(_Final):
    status = 402
    anthropic_type = "billing_error"
    openai_type = "insufficient_quota"
    openai_code = "insufficient_quota"


class RateLimited(GatewayError):
    status = 429
    anthropic_type = "rate_limit_error"
    openai_type = "rate_limit_exceeded"
    openai_code = "rate_limit_exceeded"

    def __init__(self, message: str, *, retry_after: int) -> None:
        super().__init__(message, headers={"retry-after": str(retry_after)})
        self.retry_after = retry_after


class RequestTimeout(InvalidRequest):
    status = 408
    anthropic_type = "timeout_error"
    openai_code = "request_timeout"


class Overloaded(GatewayError):
    """The gateway itself is at a bound (body bytes in flight); retrying later helps."""

    status = 503
    anthropic_type = "overloaded_error"
    openai_code = "gateway_overloaded"

    def __init__(self, message: str) -> None:
        super().__init__(message, headers={"retry-after": "1"})


class PayloadTooLarge(GatewayError):
    status = 413
    anthropic_type = "request_too_large"
    openai_type = "invalid_request_error"
    openai_code = "request_too_large"


class UpstreamError(GatewayError):
    status = 502
    openai_code = "upstream_error"


class UpstreamTimeout(UpstreamError):
    status = 504
    anthropic_type = "timeout_error"
    openai_code = "upstream_timeout"


class NoProviderAvailable(UpstreamError):
    status = 503
    anthropic_type = "overloaded_error"
    openai_code = "no_provider_available"


class ConfigError(Exception):
    """The configuration file or environment is invalid; raised only at start-up."""


class ContentUnreadable(GatewayError):
    """A stored request or response body cannot be rebuilt (missing or corrupt chunk)."""


class ChunksSwept(GatewayError):
    """A content write raced a chunk sweep: the writer re-sends its chunks and retries."""

    status = 503

    def __init__(self, generation: int) -> None:
        super().__init__(f"content chunks were swept (generation {generation})")
        self.generation = generation
