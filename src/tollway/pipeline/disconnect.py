"""What happens when the client goes away mid-request: the provider's bill is still read.

The provider bills a request once it has it, whether or not anyone reads the answer. An
Anthropic stream states its input in its first event (``message_start``), so when the
client leaves before it, the gateway keeps reading (and stops sending) until that event,
or until ``grace_s`` has passed, then cancels. OpenAI streams and whole JSON bodies state
their usage only at the end, when the provider has generated (and billed) everything:
waiting would cost more than it tells, so those are cancelled at once. Either way the
request is billed for its input plus the output delivered, marked partial; when the
provider's count of the input never arrived, the input is billed at its proven bound
(``accounting/bounds.py``), so a disconnect is never free.

    departure = policy.watch(call, task)        # once the request has been admitted
    watcher.add_done_callback(departure.left)   # the client's http.disconnect
    await dispatch(..., departure.send(send))
    departure.close()                           # in ``finally``
"""

from __future__ import annotations

import asyncio
from collections.abc import MutableMapping
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from tollway.accounting.usage import Usage
from tollway.pipeline.asgi import Send
from tollway.providers.base import ANTHROPIC

if TYPE_CHECKING:
    from tollway.accounting.bounds import Bound
    from tollway.pipeline.handler import Call

DISCONNECT_GRACE_S = 20.0


class Departure:
    """One request's client: present, or gone and waiting for the usage to cancel."""

    __slots__ = ("call", "task", "grace_s", "gone", "_timer", "_early_usage")

    def __init__(self, call: Call, task: asyncio.Task[Any], grace_s: float) -> None:
        self.call = call
        self.task = task
        self.grace_s = grace_s
        # Only an Anthropic stream shows its usage before its end (in message_start).
        self._early_usage = call.stream and call.route.surface.dialect == ANTHROPIC
        self.gone = False
        self._timer: asyncio.TimerHandle | None = None

    def left(self, _watcher: asyncio.Task[None]) -> None:
        """The client disconnected: cancel now if the bill is known, else within the bound."""
        if self.gone:
            return
        self.gone = True
        if not self._early_usage or self._usage_known():
            self.task.cancel()
        else:
            self._timer = asyncio.get_running_loop().call_later(self.grace_s, self.task.cancel)

    def send(self, inner: Send) -> Send:
        """The client's send while it is there; afterwards, a check that the usage arrived."""

        async def send(message: MutableMapping[str, Any]) -> None:
            if not self.gone:
                await inner(message)
            elif self._usage_known():
                self.task.cancel()  # raised at the relay's next await

        return send

    def close(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def _usage_known(self) -> bool:
        outcome = self.call.outcome
        return outcome is not None and outcome.usage_known()


class DisconnectPolicy:
    """Builds a `Departure` per request; ``grace_s`` bounds the wait for usage."""

    def __init__(self, grace_s: float = DISCONNECT_GRACE_S) -> None:
        self.grace_s = grace_s

    def watch(self, call: Call, task: asyncio.Task[Any]) -> Departure:
        return Departure(call, task, self.grace_s)


def billed_after_disconnect(usage: Usage, bound: Bound | None) -> Usage:
    """A disconnected request's usage to bill: as read, or with the input at its bound when
    the provider's count never arrived (the provider had the request and bills its input)."""
    usage = usage if usage.partial else replace(usage, partial=True)
    if usage.prompt_tokens or bound is None:
        return usage
    return replace(usage, input_tokens=bound.input_tokens)
