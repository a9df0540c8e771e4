"""An incremental Server-Sent Events decoder over bytes, and the matching encoder. Sans-I/O.

Theory of operation: ``SSEDecoder.feed(chunk)`` takes whatever bytes the socket gave us and returns the
events those bytes complete; ``close()`` is EOF. It follows the WHATWG event-stream rules
(html.spec.whatwg.org/multipage/server-sent-events.html#event-stream-interpretation):

- lines end in LF, CRLF or a lone CR, and a CRLF may be split across two chunks;
- one UTF-8 byte-order mark at the very start of the stream is dropped, even split across chunks;
- a line starting with ``:`` is a comment (OpenRouter's ``: OPENROUTER PROCESSING``);
- ``field:value`` with one optional space after the colon (``data:x`` and ``data: x`` are the same);
- several ``data`` lines join with ``\\n``; a blank line dispatches the event;
- a chunk may end anywhere, even inside a UTF-8 code point: data stays bytes until a dialect parses it.

Rules:
- Nothing is decoded to ``str`` here except the (short, ASCII) event name; ``data`` is handed on as
  bytes, which orjson parses directly.
- Only an incomplete line is ever buffered. Feeding a MB-sized line in many pieces is linear: new bytes
  are appended to a bytearray and only the new part is searched for a line end.
- At EOF we are lenient where the spec is strict: a final event without its blank line is still
  dispatched, because sloppy upstreams end with ``data: [DONE]\\n`` and losing it would turn a complete
  stream into a truncated one.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["SSEDecoder", "SSEEvent", "encode_event"]

_BOM = b"\xef\xbb\xbf"
# What the start of the next chunk may hold that belongs to what came before it (``SSEDecoder._edge``):
_LF = 1  # the last chunk ended in CR: a leading LF is the rest of its CRLF
_START = 2  # nothing yet: a leading byte-order mark is dropped


@dataclass(slots=True)
class SSEEvent:
    event: str | None
    data: bytes


class SSEDecoder:
    """Incremental SSE parser: ``feed(bytes) -> list[SSEEvent]``, ``close() -> list[SSEEvent]``."""

    __slots__ = ("_buf", "_data", "_edge", "_event")

    def __init__(self) -> None:
        self._buf = bytearray()  # an incomplete line, never more
        self._data: list[bytes] = []  # data lines of the event being built
        self._event: str | None = None
        self._edge = _START  # _START, _LF or 0: one test a chunk, as the CR flag it replaces was

    @property
    def buffered(self) -> int:
        """Bytes held for an incomplete line or event (0 after every complete event)."""
        return len(self._buf) + sum(len(d) for d in self._data)

    def feed(self, chunk: bytes) -> list[SSEEvent]:
        events: list[SSEEvent] = []
        if not chunk:
            return events
        if self._edge:
            chunk = self._at_edge(chunk)
            if not chunk:
                return events
        # The held bytes contain no line end, so only the new chunk needs searching.
        scan = len(self._buf)
        if not scan and not self._data and self._event is None and 13 not in chunk:
            done = self._whole_events(chunk, events)
            if done:
                chunk = chunk[done:]
                if not chunk:
                    return events
        if scan:
            self._buf += chunk
            buf: bytes | bytearray = self._buf
        else:
            buf = chunk
        if 13 in chunk:  # b"\r": rare (some upstreams use CRLF); normalise to LF first
            buf = buf.replace(b"\r\n", b"\n")
            if buf[-1] == 13:
                self._edge = _LF
            buf = buf.replace(b"\r", b"\n")
        pos = 0
        find = buf.find
        line_feed = self._line
        nl = find(b"\n", scan)
        while nl >= 0:
            line_feed(bytes(buf[pos:nl]), events)
            pos = nl + 1
            nl = find(b"\n", pos)
        if pos == len(buf):
            self._buf = bytearray()
        elif buf is not self._buf:
            self._buf = bytearray(buf[pos:])
        else:
            del self._buf[:pos]
        return events

    def _at_edge(self, chunk: bytes) -> bytes:
        """The start of a chunk that follows a CR (a leading LF is dropped), or of the stream (a leading
        byte-order mark is dropped, WHATWG; until 3 bytes have come, what may be one waits in ``_buf``)."""
        if self._edge == _LF:
            self._edge = 0
            return chunk[1:] if chunk[0] == 10 else chunk
        data = bytes(self._buf) + chunk if self._buf else chunk
        if len(data) < 3 and _BOM.startswith(data):
            self._buf = bytearray(data)
            return b""
        self._edge = 0
        self._buf.clear()
        return data[3:] if data.startswith(_BOM) else data

    @staticmethod
    def _whole_events(chunk: bytes, events: list[SSEEvent]) -> int:
        """The fast path for what nearly every upstream sends: whole events of one ``data: `` line, or
        of an ``event: `` line and one ``data: `` line, at the start of a chunk with nothing pending.
        Returns how many bytes it consumed; the line-by-line path takes the rest."""
        pos = 0
        find = chunk.find
        end = find(b"\n\n")
        while end >= 0:
            if chunk.startswith(b"data: ", pos) and find(b"\n", pos, end) < 0:
                events.append(SSEEvent(None, chunk[pos + 6 : end]))
            elif chunk.startswith(b"event: ", pos):
                nl = find(b"\n", pos, end)
                if nl < 0 or not chunk.startswith(b"data: ", nl + 1) or find(b"\n", nl + 1, end) >= 0:
                    break
                events.append(SSEEvent(chunk[pos + 7 : nl].decode("utf-8", "replace"), chunk[nl + 7 : end]))
            else:
                break
            pos = end + 2
            end = find(b"\n\n", pos)
        return pos

    def close(self) -> list[SSEEvent]:
        """End of stream: flush a last unterminated line and a last event without its blank line."""
        events: list[SSEEvent] = []
        if self._buf:
            self._line(bytes(self._buf), events)
            self._buf = bytearray()
        self._line(b"", events)
        return events

    def _line(self, line: bytes, events: list[SSEEvent]) -> None:
        if not line:
            if self._data:
                data = self._data[0] if len(self._data) == 1 else b"\n".join(self._data)
                events.append(SSEEvent(self._event, data))
                self._data = []
            self._event = None
            return
        if line[0] == 58:  # b":" comment
            return
        colon = line.find(b":")
        if colon < 0:
            name, value = line, b""
        else:
            name = line[:colon]
            value = line[colon + 2 :] if line[colon + 1 : colon + 2] == b" " else line[colon + 1 :]
        if name == b"data":
            self._data.append(value)
        elif name == b"event":
            self._event = value.decode("utf-8", "replace")
        # "id" and "retry" carry nothing a proxy needs; unknown fields are ignored per the spec.


def encode_event(event: str | None, data: bytes) -> bytes:
    """Frame one event. ``data`` must not contain a line break (compact JSON never does)."""
    if event is None:
        return b"data: " + data + b"\n\n"
    return b"event: " + event.encode() + b"\ndata: " + data + b"\n\n"
