"""The PreToolUse hook endpoint: Claude Code asks the gateway before it runs a tool.

``POST /hooks/claude-code/pre-tool-use`` with the hook's JSON input (``session_id``,
``cwd``, ``tool_name``, ``tool_input``, ``tool_use_id``...) and the virtual key in
``x-api-key`` or ``Authorization: Bearer``. The answer is Claude Code's hook output::

    {"hookSpecificOutput": {"hookEventName": "PreToolUse",
                            "permissionDecision": "deny",
                            "permissionDecisionReason": "Tollway tool policy (...): ..."}}

``defer`` (no rule, default) answers ``{}``: the agent's own permission settings apply.
A request without a valid key is denied (fail closed), with the reason, since Claude Code
treats an HTTP error from a hook as no decision and would run the tool.
"""

from __future__ import annotations

import json
import logging
from typing import TYPE_CHECKING, Any

from pydantic import ValidationError

from tollway.audit.actions import describe
from tollway.audit.policy import Decision, Subject, ToolPolicy, evaluate
from tollway.background import Periodic
from tollway.errors import AuthenticationFailed, InvalidField
from tollway.pipeline.asgi import Receive, Scope, Send, respond

if TYPE_CHECKING:
    from tollway.services import Services
    from tollway.storage.base import Store

log = logging.getLogger("tollway.audit")
PATH = "/hooks/claude-code/pre-tool-use"
SETTING = "tool_policy"
MAX_HOOK_BODY = 4 * 1024 * 1024
REFRESH_S = 5.0


def validated(doc: Any) -> ToolPolicy:
    """A policy document, or InvalidField naming the first bad field (``tool_policy.…``)."""
    try:
        return ToolPolicy.model_validate(doc)
    except ValidationError as exc:
        err = exc.errors()[0]
        where = ".".join(str(p) for p in ("tool_policy", *err["loc"]))
        raise InvalidField(where, str(err["msg"]).removeprefix("Value error, ")) from None


class PolicyBook:
    """The tool policy in force: the config's ``tool_policy:`` until one is stored through
    the admin API (``PUT /api/tool-policy``), which then wins. A policy another process
    stored is picked up within ``REFRESH_S``."""

    def __init__(self, configured: ToolPolicy) -> None:
        self.configured = configured
        self.policy = configured
        self.stored = False
        self._text: str | None = None
        self._loop: Periodic | None = None

    async def load(self, store: Store) -> None:
        text = await store.get_setting(SETTING)
        if text and text != self._text:
            self._text = text
            try:
                self.policy, self.stored = validated(json.loads(text)), True
            except InvalidField as exc:
                log.error("the stored tool policy is invalid (%s); using the config's", exc)

    def start(self, store: Store) -> None:
        self._loop = Periodic("tollway-tool-policy", REFRESH_S, lambda: self.load(store),
                              "reading the stored tool policy", log=log)  # fmt: skip
        self._loop.start()

    async def stop(self) -> None:
        if self._loop is not None:
            await self._loop.stop()

    async def replace(self, store: Store, doc: Any) -> tuple[ToolPolicy, ToolPolicy]:
        policy = validated(doc)
        before = self.policy
        text = policy.model_dump_json()
        await store.put_setting(SETTING, text)
        self.policy, self.stored, self._text = policy, True, text
        return before, policy


def answer(decision: Decision) -> dict[str, Any]:
    if decision.decision == "defer":
        return {}
    out: dict[str, Any] = {"hookEventName": "PreToolUse",
                           "permissionDecision": decision.decision}  # fmt: skip
    if decision.reason:
        out["permissionDecisionReason"] = decision.reason
    return {"hookSpecificOutput": out}


async def _body(receive: Receive) -> bytes:
    parts: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            return b""
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > MAX_HOOK_BODY:
            return b""
        parts.append(chunk)
        if not message.get("more_body"):
            return b"".join(parts)


async def handle_hook(services: Services, scope: Scope, receive: Receive, send: Send) -> None:
    if scope["method"] != "POST":
        await respond(send, 405, b'{"error": "POST the hook input"}')
        return
    raw = await _body(receive)
    try:
        doc = json.loads(raw) if raw else None
    except (ValueError, RecursionError):
        doc = None
    if not isinstance(doc, dict) or not isinstance(doc.get("tool_name"), str):
        await respond(send, 400, b'{"error": "expected a PreToolUse hook input with tool_name"}')
        return
    call = describe(str(doc.get("tool_use_id") or ""), doc["tool_name"], doc.get("tool_input"))
    headers: list[tuple[bytes, bytes]] = scope["headers"]
    session = doc.get("session_id") if isinstance(doc.get("session_id"), str) else None
    cwd = doc.get("cwd") if isinstance(doc.get("cwd"), str) else None
    try:
        key = services.gateway.authenticate(dict(headers), headers)
    except AuthenticationFailed as err:
        decision = Decision("deny", f"Tollway refused the tool-policy hook: {err.message}", "key")
        services.audit.decided(call, decision, {"key": None}, session, cwd)
        await respond(send, 200, json.dumps(answer(decision)).encode())
        return
    team, customer = services.admission.owners(key)
    who = Subject(key.name, team.name if team else None, customer.name if customer else None)
    decision = evaluate(services.policy.policy, call, who, cwd)
    services.audit.decided(call, decision, {"key": who.key, "team": who.team,
                                            "customer": who.customer}, session, cwd)  # fmt: skip
    await respond(send, 200, json.dumps(answer(decision)).encode())
