"""One error tree for the gateway.

Every failure a client can see is a ``GatewayError``; each surface renders it in its own
dialect (Anthropic error JSON, OpenAI error JSON) with the HTTP status and headers below::

    GatewayError                      500  api_error
    ├── InvalidRequest                400  invalid_request_error
    │   └── NotFound                  404  not_found_error
    │       └── ModelNotFound         404  not_found_error
    ├── AuthenticationFailed          401  authentication_error
    ├── PermissionDenied              403  permission_error
    ├── BudgetExceeded                402  billing_error / insufficient_quota
    ├── RateLimited                   429  rate_limit_error  (+ retry-after)
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


class NotFound(InvalidRequest):
    status = 404
    anthropic_type = "not_found_error"
    openai_code = "not_found"


class ModelNotFound(NotFound):
    openai_code = "model_not_found"


class AuthenticationFailed(GatewayError):
    status = 401
    anthropic_type = "authentication_error"
    openai_type = "invalid_request_error"
    openai_code = "invalid_api_key"


class PermissionDenied(GatewayError):
    status = 403
    anthropic_type = "permission_error"
    openai_type = "invalid_request_error"
    openai_code = "model_not_allowed"


class BudgetExceeded(GatewayError):
    status = 402
    anthropic_type = "billing_error"
    openai_type = "insufficient_quota"
    openai_code = "insufficient_quota"

    def __init__(self, message: str, *, headers: dict[str, str] | None = None) -> None:
        super().__init__(message, headers={"x-should-retry": "false", **(headers or {})})


class RateLimited(GatewayError):
    status = 429
    anthropic_type = "rate_limit_error"
    openai_type = "rate_limit_exceeded"
    openai_code = "rate_limit_exceeded"

    def __init__(self, message: str, *, retry_after: int) -> None:
        super().__init__(message, headers={"retry-after": str(retry_after)})
        self.retry_after = retry_after


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
