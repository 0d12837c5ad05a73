"""An incremental Server-Sent-Events parser that observes a stream the caller relays.

The relay forwards the upstream bytes untouched; this parser only reads them, so it can
be lenient where the WHATWG algorithm is strict (see ``SSEParser.flush``).

    parser = SSEParser()
    for chunk in upstream:
        await client.send(chunk)
        for event in parser.feed(chunk):
            usage.observe(event)
    for event in parser.flush():
        usage.observe(event)
"""

from __future__ import annotations

import msgspec

_BOM = b"\xef\xbb\xbf"


class SSEEvent(msgspec.Struct, frozen=True, gc=False):
    """One dispatched event: the ``event:`` name (None when absent) and the joined data.

    A frozen ``msgspec.Struct`` rather than a dataclass: one is built per event, and
    this is several times cheaper to build.
    """

    event: str | None
    data: bytes


class SSEParser:
    """Turns chunks of an SSE stream, split anywhere, into ``SSEEvent`` records.

    Handles ``\\n``, ``\\r\\n`` and ``\\r`` line endings (a ``\\r\\n`` may be split
    across chunks), multi-line ``data:``, comments, and a leading BOM. ``id:`` and
    ``retry:`` are ignored: the gateway only observes.
    """

    __slots__ = ("_partial", "_skip_lf", "_first_line", "_event", "_data")

    def __init__(self) -> None:
        self._partial = bytearray()  # an unterminated line, already free of CRs
        self._skip_lf = False  # the last chunk ended in CR: a leading LF is its pair
        self._first_line = True
        self._event: str | None = None
        self._data: list[bytes] | None = None  # None: no data field yet

    def feed(self, chunk: bytes) -> list[SSEEvent]:
        """Consume ``chunk`` and return the events it completed, in order."""
        if self._skip_lf and chunk:
            self._skip_lf = False
            if chunk[0] == 0x0A:
                chunk = chunk[1:]
        if b"\r" in chunk:
            self._skip_lf = chunk.endswith(b"\r")
            chunk = chunk.replace(b"\r\n", b"\n").replace(b"\r", b"\n")
        last = chunk.rfind(b"\n")
        if last < 0:
            self._partial += chunk
            return []
        if self._partial:
            self._partial += chunk[:last]
            block = bytes(self._partial)
            self._partial = bytearray(chunk[last + 1 :])
        else:
            block = chunk[:last]
            self._partial += chunk[last + 1 :]
        return self._lines(block.split(b"\n"))

    def flush(self) -> list[SSEEvent]:
        """End of stream: return the event left unterminated, if it carries data.

        Browsers drop an event that lacks its closing blank line; the gateway keeps it,
        because the bytes reached the client and a final usage event must be counted.
        Data cut mid-JSON simply fails to decode in the consumer. Resets the parser.
        """
        lines = [bytes(self._partial), b""] if self._partial else [b""]
        self._partial = bytearray()
        events = self._lines(lines)
        self._skip_lf = False
        self._first_line = True
        return events

    def _lines(self, lines: list[bytes]) -> list[SSEEvent]:
        # One loop with the state in locals: this runs for every line of every stream.
        if self._first_line:
            self._first_line = False
            if lines[0].startswith(_BOM):
                lines[0] = lines[0][3:]
        events: list[SSEEvent] = []
        name, data = self._event, self._data
        for line in lines:
            if not line:
                if data is not None:
                    events.append(SSEEvent(name, b"\n".join(data)))
                name = data = None
            elif line[0] == 0x3A:  # ":" starts a comment
                continue
            else:
                field, colon, value = line.partition(b":")
                if colon and value[:1] == b" ":
                    value = value[1:]
                if field == b"data":
                    if data is None:
                        data = [value]
                    else:
                        data.append(value)
                elif field == b"event":
                    name = value.decode("utf-8", "replace") if value else None
        self._event, self._data = name, data
        return events
