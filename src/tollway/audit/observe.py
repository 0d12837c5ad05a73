"""The request path's only audit work: keep the few SSE events that carry tool calls.

``Outcome.feed`` already parses the stream into events for metering; this observer looks
at each event's name (and, for deltas, one substring) and keeps a reference to the data
of those that matter. Parsing them into actions happens later on the audit log's thread
(audit/actions.py). A whole JSON body is kept by reference the same way.

    tools = ToolEvents(dialect)
    for event in events:
        tools.observe(event)
"""

from __future__ import annotations

from tollway.sse import SSEEvent

_ANTHROPIC = "anthropic"
_CHAT = "openai_chat"
_RESPONSES = "openai_responses"
_GEMINI = "gemini"
MAX_EVENTS = 4096  # a runaway stream cannot make the audit copy grow without bound


class ToolEvents:
    """The tool-call events of one response, kept by reference (no copies, no parsing)."""

    __slots__ = ("dialect", "events", "body", "_name", "_needle")

    def __init__(self, dialect: str) -> None:
        self.dialect = dialect
        self.events: list[bytes] = []
        self.body: bytes | None = None
        # Per dialect: the event name to look at (None: every event) and a substring that
        # marks a tool-call event's data.
        self._name: str | None = None
        self._needle = b""
        if dialect == _ANTHROPIC:
            self._needle = b"_use"  # tool_use, server_tool_use, mcp_tool_use; input_json_delta
        elif dialect == _CHAT:
            self._needle = b'"tool_calls"'
        elif dialect == _RESPONSES:
            self._name = "response.output_item.done"
        elif dialect == _GEMINI:
            self._needle = b'"functionCall"'

    def observe(self, event: SSEEvent) -> None:
        if self._name is not None:
            if event.event == self._name and len(self.events) < MAX_EVENTS:
                self.events.append(event.data)
            return
        if self.dialect == _ANTHROPIC:
            name = event.event
            if name == "content_block_delta":
                if b"input_json_delta" not in event.data:
                    return
            elif name != "content_block_start" or self._needle not in event.data:
                return
        elif self._needle not in event.data:
            return
        if len(self.events) < MAX_EVENTS:
            self.events.append(event.data)

    def keep_body(self, body: bytes) -> None:
        self.body = body
