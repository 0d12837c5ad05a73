"""Loopback fakes of the clouds Claude runs on, speaking their real wire formats.

Each is a ``MockUpstream`` whose responder checks what the real service checks first:

- ``BedrockFake``: ``/model/{id}/invoke``, ``/invoke-with-response-stream`` (the binary
  event stream, framed here independently of Tollway's encoder), ``/count-tokens``;
  SigV4 verified by recomputing the signature with botocore from the same credentials,
  or a Bedrock API key as bearer; the body must carry ``anthropic_version:
  bedrock-2023-05-31`` and no ``model``/``stream``; unknown betas are a 400, as on AWS.
- ``VertexFake``: the OAuth token endpoint (a service account's JWT assertion verified
  with its public key, an access token issued) and ``:rawPredict`` /
  ``:streamRawPredict`` checking that bearer, ``anthropic_version: vertex-2023-10-16``
  and no ``model``.
- ``AzureFake``: Azure OpenAI deployments (``api-key``, ``api-version``) and Claude on
  Foundry (``/anthropic/v1/messages``).
"""

from __future__ import annotations

import base64
import binascii
import json
import re
import struct
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs, unquote

import jwt
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from upstream_mock import (
    SSE,
    MockUpstream,
    RecordedRequest,
    Reply,
    anthropic_error,
    anthropic_events,
    anthropic_message,
    chat_completion,
)

BEDROCK_VERSION = "bedrock-2023-05-31"
VERTEX_VERSION = "vertex-2023-10-16"
EVENT_STREAM = "application/vnd.amazon.eventstream"
GOOGLE_TOKEN_AUDIENCE = "https://oauth2.googleapis.com/token"
# What this fake Bedrock accepts in a body's anthropic_beta (anything else is a 400).
BEDROCK_ACCEPTS = frozenset(
    {"interleaved-thinking-2025-05-14", "tool-search-tool-2025-10-19", "context-1m-2025-08-07",
     "context-management-2025-06-27", "effort-2025-11-24"}
)  # fmt: skip
VERTEX_ACCEPTS = frozenset(
    {"claude-code-20250219", "interleaved-thinking-2025-05-14", "web-search-2025-03-05",
     "context-1m-2025-08-07", "context-management-2025-06-27"}
)  # fmt: skip


# --------------------------------------------------------------------------- Bedrock


def _frame(headers: dict[str, str], payload: bytes) -> bytes:
    """One AWS event stream message, written from the format description."""
    head = b""
    for name, value in headers.items():
        head += bytes([len(name)]) + name.encode() + b"\x07"
        head += struct.pack(">H", len(value.encode())) + value.encode()
    total = 16 + len(head) + len(payload)
    prelude = struct.pack(">II", total, len(head))
    prelude += struct.pack(">I", binascii.crc32(prelude))
    message = prelude + head + payload
    return message + struct.pack(">I", binascii.crc32(message))


def bedrock_chunk(event: dict[str, Any]) -> bytes:
    data = base64.b64encode(json.dumps(event).encode()).decode()
    return _frame(
        {":event-type": "chunk", ":content-type": "application/json", ":message-type": "event"},
        json.dumps({"bytes": data, "p": "abcdefgh"}).encode(),
    )


def bedrock_exception(kind: str, message: str) -> bytes:
    return _frame(
        {":exception-type": kind, ":content-type": "application/json",
         ":message-type": "exception"},
        json.dumps({"message": message}).encode(),
    )  # fmt: skip


def bedrock_stream(events: Sequence[SSE], metrics: dict[str, int] | None = None) -> list[bytes]:
    """Anthropic stream events as Bedrock frames; the last carries invocation metrics."""
    out = []
    for i, sse in enumerate(events):
        data = dict(sse.data)
        if i == len(events) - 1 and metrics is not None:
            data["amazon-bedrock-invocationMetrics"] = metrics
        out.append(bedrock_chunk(data))
    return out


def bedrock_error(status: int, kind: str, message: str) -> Reply:
    return Reply(status=status, json={"message": message},
                 headers=[("x-amzn-ErrorType", f"{kind}:http://internal.amazon.com/coral/")],
                 provider_headers=False)  # fmt: skip


@dataclass
class AwsIdentity:
    access_key_id: str
    secret_access_key: str
    session_token: str | None = None


_AUTH = re.compile(
    r"AWS4-HMAC-SHA256 Credential=(?P<akid>[^/]+)/(?P<date>\d{8})/(?P<region>[^/]+)/"
    r"(?P<service>[^/]+)/aws4_request, SignedHeaders=(?P<signed>[^,]+), "
    r"Signature=(?P<sig>[0-9a-f]+)"
)


class BedrockFake(MockUpstream):
    """``BedrockFake(region, identities=[...], bearer_tokens={...})``; ``.script`` replies."""

    def __init__(
        self,
        region: str = "us-east-1",
        identities: Sequence[AwsIdentity] = (),
        bearer_tokens: Sequence[str] = (),
    ) -> None:
        super().__init__()
        self.region = region
        self.identities = {i.access_key_id: i for i in identities}
        self.bearer_tokens = set(bearer_tokens)
        self.responder = self._respond
        self.script: list[Reply] = []  # served before the default answers
        self.text = "Hello from the Bedrock fake."
        self.auth_seen: list[str] = []

    def _verify(self, req: RecordedRequest) -> str | None:
        """None when the request is authentic, else Bedrock's complaint."""
        auth = req.header("authorization") or ""
        if auth.startswith("Bearer "):
            ok = auth[7:] in self.bearer_tokens
            self.auth_seen.append("bearer")
            return None if ok else "Invalid API Key format: Must start with pre-defined prefix"
        m = _AUTH.fullmatch(auth)
        if m is None:
            return "Missing Authentication Token"
        ident = self.identities.get(m["akid"])
        if ident is None:
            return "The security token included in the request is invalid."
        if m["region"] != self.region or m["service"] != "bedrock":
            return f"Credential should be scoped to a valid region ({self.region})."
        if (req.header("x-amz-security-token") or None) != ident.session_token:
            return "The security token included in the request is invalid."
        signed = m["signed"].split(";")
        headers = {name: req.header(name) or "" for name in signed}
        url = f"http://{req.header('host')}{req.raw_path}"
        recomputed = AWSRequest(method=req.method, url=url, data=req.body, headers=headers)
        stamp = req.header("x-amz-date") or ""
        recomputed.context["timestamp"] = stamp
        signer = SigV4Auth(
            Credentials(ident.access_key_id, ident.secret_access_key, ident.session_token),
            "bedrock", self.region,
        )  # fmt: skip
        canonical = signer.canonical_request(recomputed)
        expected = signer.signature(signer.string_to_sign(recomputed, canonical), recomputed)
        self.auth_seen.append("sigv4")
        if expected != m["sig"]:
            return (
                "The request signature we calculated does not match the signature you "
                "provided. Check your AWS Secret Access Key and signing method."
            )
        return None

    def _respond(self, req: RecordedRequest) -> Reply | None:
        problem = self._verify(req)
        if problem is not None:
            return bedrock_error(403, "UnrecognizedClientException", problem)
        m = re.fullmatch(r"/model/([^/]+)/(invoke|invoke-with-response-stream|count-tokens)",
                         req.raw_path)  # fmt: skip
        if m is None or req.method != "POST":
            return bedrock_error(404, "UnknownOperationException", f"no route {req.raw_path}")
        model, op = unquote(m[1]), m[2]
        if ":" in m[1]:
            return bedrock_error(400, "ValidationException", "model id must be URL-encoded")
        body = req.json()
        if op == "count-tokens":
            inner = json.loads(base64.b64decode(body["input"]["invokeModel"]["body"]))
            problem = self._body_problem(inner)
            if problem:
                return bedrock_error(400, "ValidationException", problem)
            return Reply(json={"inputTokens": 42}, provider_headers=False)
        problem = self._body_problem(body)
        if problem:
            return bedrock_error(400, "ValidationException", problem)
        if self.script:
            return self.script.pop(0)
        name = model.split("anthropic.", 1)[-1]
        if op == "invoke":
            return Reply(json=anthropic_message(self.text, model=name), provider_headers=False)
        metrics = {"inputTokenCount": 25, "outputTokenCount": 12, "invocationLatency": 80,
                   "firstByteLatency": 40}  # fmt: skip
        chunks = bedrock_stream(anthropic_events(self.text, model=name), metrics)
        return Reply(chunks=chunks, headers=[("Content-Type", EVENT_STREAM)],
                     provider_headers=False)  # fmt: skip

    def _body_problem(self, body: dict[str, Any]) -> str | None:
        for key in ("model", "stream"):
            if key in body:
                return (f"Malformed input request: #: extraneous key [{key}] is not permitted, "
                        "please reformat your input and try again.")  # fmt: skip
        if body.get("anthropic_version") != BEDROCK_VERSION:
            return "Malformed input request: #: required key [anthropic_version] not found"
        for beta in body.get("anthropic_beta", []):
            if beta not in BEDROCK_ACCEPTS:
                return f"invalid beta flag: {beta}"
        return None


# --------------------------------------------------------------------------- Vertex


@dataclass
class ServiceAccount:
    """A service account whose token_uri is the fake's; ``info`` is its JSON key file."""

    token_uri: str
    email: str = "tollway-test@proj-1.iam.gserviceaccount.com"
    key: rsa.RSAPrivateKey = field(
        default_factory=lambda: rsa.generate_private_key(public_exponent=65537, key_size=2048)
    )

    @property
    def info(self) -> dict[str, str]:
        pem = self.key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        ).decode()  # fmt: skip
        return {
            "type": "service_account", "project_id": "proj-1", "private_key_id": "kid-1",
            "private_key": pem, "client_email": self.email, "client_id": "1",
            "token_uri": self.token_uri,
        }  # fmt: skip


class VertexFake(MockUpstream):
    """The Vertex AI Claude endpoints and Google's OAuth token endpoint on one port."""

    def __init__(self, project: str = "proj-1", region: str = "us-east5") -> None:
        super().__init__()
        self.project = project
        self.region = region
        self.accounts: list[ServiceAccount] = []
        self.tokens: dict[str, float] = {}  # issued access token -> expiry
        self.static_tokens: set[str] = set()
        self.token_requests = 0
        self.responder = self._respond
        self.script: list[Reply] = []
        self.text = "Hello from the Vertex fake."
        self._lock = threading.Lock()

    def service_account(self) -> ServiceAccount:
        account = ServiceAccount(f"{self.base_url}/token")
        self.accounts.append(account)
        return account

    def _token(self, req: RecordedRequest) -> Reply:
        form = parse_qs(req.body.decode())
        if form.get("grant_type") != ["urn:ietf:params:oauth:grant-type:jwt-bearer"]:
            return Reply(status=400, json={"error": "unsupported_grant_type"})
        assertion = form.get("assertion", [""])[0]
        for account in self.accounts:
            try:
                # google-auth addresses the assertion to Google's token URL, wherever sent.
                claims = jwt.decode(assertion, account.key.public_key(), algorithms=["RS256"],
                                    audience=GOOGLE_TOKEN_AUDIENCE)  # fmt: skip
            except jwt.PyJWTError:
                continue
            if claims.get("iss") != account.email or "cloud-platform" not in claims["scope"]:
                break
            with self._lock:
                self.token_requests += 1
                token = f"ya29.fake-{self.token_requests}"
                self.tokens[token] = time.time() + 3600
            return Reply(json={"access_token": token, "expires_in": 3600,
                               "token_type": "Bearer"}, provider_headers=False)  # fmt: skip
        return Reply(
            status=400,
            json={"error": "invalid_grant", "error_description": "Invalid JWT Signature."},
        )

    def _respond(self, req: RecordedRequest) -> Reply | None:
        if req.path == "/token":
            return self._token(req)
        auth = req.header("authorization") or ""
        token = auth.removeprefix("Bearer ")
        if not (token in self.static_tokens or self.tokens.get(token, 0) > time.time()):
            return Reply(status=401, provider_headers=False, json={"error": {
                "code": 401, "status": "UNAUTHENTICATED",
                "message": "Request had invalid authentication credentials."}})  # fmt: skip
        root = f"/v1/projects/{self.project}/locations/{self.region}/publishers/anthropic/models/"
        if not req.path.startswith(root):
            return Reply(
                status=404,
                json={
                    "error": {"code": 404, "status": "NOT_FOUND", "message": f"no route {req.path}"}
                },
            )
        model, _, verb = req.path[len(root) :].partition(":")
        body = req.json()
        if body.get("anthropic_version") != VERTEX_VERSION:
            return anthropic_error(
                400, "invalid_request_error", "anthropic_version: vertex-2023-10-16 is required"
            )
        betas = [b for b in (req.header("anthropic-beta") or "").split(",") if b]
        for beta in betas:
            if beta not in VERTEX_ACCEPTS:
                return anthropic_error(400, "invalid_request_error",
                                       f"Unexpected value(s) `{beta}` for the `anthropic-beta` "
                                       "header.")  # fmt: skip
        if model == "count-tokens" and verb == "rawPredict":
            return Reply(json={"input_tokens": 17}, provider_headers=False)
        if "model" in body:
            return anthropic_error(400, "invalid_request_error", "model: Extra inputs are not "
                                   "permitted")  # fmt: skip
        if self.script:
            return self.script.pop(0)
        name = model.replace("@", "-")
        if verb == "rawPredict":
            return Reply(json=anthropic_message(self.text, model=name), provider_headers=False)
        if verb == "streamRawPredict":
            return Reply(events=anthropic_events(self.text, model=name), provider_headers=False)
        return Reply(status=404, json={"error": {"code": 404, "message": f"no verb {verb}"}})


def google_error(status: int, kind: str, message: str) -> Reply:
    return Reply(
        status=status,
        provider_headers=False,
        json={"error": {"code": status, "message": message, "status": kind}},
    )


# --------------------------------------------------------------------------- Azure


class AzureFake(MockUpstream):
    """Azure OpenAI deployments and Claude on Foundry, both behind one ``api-key``."""

    def __init__(self, api_key: str, deployments: Sequence[str] = ("gpt-4o-prod",)) -> None:
        super().__init__()
        self.api_key = api_key
        self.deployments = set(deployments)
        self.responder = self._respond

    def _respond(self, req: RecordedRequest) -> Reply | None:
        if req.header("api-key") != self.api_key:
            return Reply(status=401, provider_headers=False, json={"error": {
                "code": "401", "message": "Access denied due to invalid subscription key or "
                "wrong API endpoint."}})  # fmt: skip
        m = re.fullmatch(r"/openai/deployments/([^/]+)/chat/completions", req.path)
        if m is not None:
            if not req.query_string.startswith("api-version="):
                return Reply(
                    status=404, json={"error": {"code": "404", "message": "Resource not found"}}
                )
            if m[1] not in self.deployments:
                return Reply(
                    status=404,
                    json={
                        "error": {
                            "code": "DeploymentNotFound",
                            "message": f"The API deployment {m[1]} does not exist.",
                        }
                    },
                )
            return Reply(json=chat_completion(model=m[1]), provider_headers=False)
        if req.path == "/openai/v1/responses":
            return None  # the default Responses answer, model as sent
        if req.path == "/anthropic/v1/messages":
            body = req.json()
            if body.get("stream"):
                return Reply(events=anthropic_events(model=body["model"]))
            return Reply(json=anthropic_message(model=body["model"]))
        return Reply(status=404, json={"error": {"code": "404", "message": "Resource not found"}})
