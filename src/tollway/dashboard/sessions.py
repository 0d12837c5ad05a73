"""Dashboard log-in sessions: in memory, bounded, each with its own CSRF token.

    sessions = SessionStore(clock=time.monotonic)
    sid, session = sessions.create(token_digest)
    session = sessions.get(sid, token_digest)   # None once expired, logged out or stale

The cookie carries a random session id; the store keeps only its SHA-256, so a memory
dump does not yield a usable cookie. A session is bound to the admin token it logged in
with: changing the token ends every session. Sessions do not survive a restart.
"""

from __future__ import annotations

import hashlib
import secrets
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass

IDLE_TIMEOUT_S = 12 * 3600
MAX_SESSIONS = 1000
# Failed log-ins allowed per client address and window before that address is refused for
# the rest of it (per address, so one noisy client cannot lock the admin out).
MAX_FAILURES = 10
FAILURE_WINDOW_S = 60.0
MAX_TRACKED_CLIENTS = 10_000


def digest(value: str) -> str:
    return hashlib.sha256(value.encode("utf-8")).hexdigest()


@dataclass(slots=True)
class Session:
    csrf: str
    token_digest: str
    created: float
    last_seen: float


class SessionStore:
    """Sessions keyed by the digest of their id; least recently used evicted past the cap."""

    def __init__(
        self,
        clock: Callable[[], float],
        idle_timeout_s: float = IDLE_TIMEOUT_S,
        max_sessions: int = MAX_SESSIONS,
    ) -> None:
        self._clock = clock
        self._idle = idle_timeout_s
        self._max = max_sessions
        self._sessions: OrderedDict[str, Session] = OrderedDict()
        self._failures: OrderedDict[str, list[float]] = OrderedDict()

    def __len__(self) -> int:
        return len(self._sessions)

    def create(self, token_digest: str) -> tuple[str, Session]:
        sid = secrets.token_urlsafe(32)
        now = self._clock()
        session = Session(secrets.token_urlsafe(32), token_digest, now, now)
        self._sessions[digest(sid)] = session
        while len(self._sessions) > self._max:
            self._sessions.popitem(last=False)
        return sid, session

    def get(self, sid: str, token_digest: str) -> Session | None:
        key = digest(sid)
        session = self._sessions.get(key)
        if session is None:
            return None
        now = self._clock()
        if now - session.last_seen > self._idle or session.token_digest != token_digest:
            del self._sessions[key]
            return None
        session.last_seen = now
        self._sessions.move_to_end(key)
        return session

    def end(self, sid: str) -> bool:
        return self._sessions.pop(digest(sid), None) is not None

    def locked_out(self, client: str) -> bool:
        """True while too many log-ins from ``client`` failed in the last window."""
        cutoff = self._clock() - FAILURE_WINDOW_S
        recent = [t for t in self._failures.get(client, ()) if t > cutoff]
        if recent:
            self._failures[client] = recent
        else:
            self._failures.pop(client, None)
        return len(recent) >= MAX_FAILURES

    def failed(self, client: str) -> None:
        self._failures.setdefault(client, []).append(self._clock())
        self._failures.move_to_end(client)
        while len(self._failures) > MAX_TRACKED_CLIENTS:
            self._failures.popitem(last=False)
