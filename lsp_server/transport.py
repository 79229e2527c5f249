"""The wire: bounded LSP framing, JSON-RPC checks, and the stdio / TCP serving loops.

pygls reads frames with an unbounded ``readline`` / ``read(Content-Length)`` and answers
nothing when a message fails to parse or to validate, so a hostile or broken client could
exhaust memory, go unanswered, or leave the server deaf after one bad frame. This module
replaces that read loop (pygls still structures and dispatches every message):

* :class:`FrameReader` keeps at most one header line (:data:`MAX_HEADER_LINE`), one header
  block and one body (:data:`MAX_BODY`) in memory. After a bad frame it resynchronises on
  the next ``Content-Length:`` wherever it starts, and a declared length that is too long
  ends at the JSON value's end instead of waiting for bytes that never come.
* :func:`handle_body` answers every request exactly once: -32700 for bytes that are not
  JSON, -32600 for a message that is not a JSON-RPC request and for any request after
  ``shutdown``, -32602 when the params do not fit the method's type. ``exit`` ends the
  session with code 0 after ``shutdown`` and 1 without.
* :func:`serve_stdio` / :func:`serve_tcp` run sessions; over TCP each connection gets a
  fresh server (nothing crosses between clients), one client is served at a time, a
  client leaving never ends the server, and non-loopback addresses need a token.
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import ipaddress
import json
import logging
import os
import re
import threading
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from lsprotocol import types
from pygls.protocol import LanguageServerProtocol
from pygls.protocol.language_server import lsp_method

from lsp_server.errors import CoderLspError

logger = logging.getLogger(__name__)

MAX_HEADER_LINE = 8 * 1024
"""Longest header line kept; a longer one is skipped as garbage."""
MAX_HEADER_BYTES = 64 * 1024
"""Most header bytes in one frame."""
MAX_BODY = 64 * 1024 * 1024
"""Largest message body accepted (a 20 MB document opened as UTF-16-heavy JSON fits)."""
MAX_OUTPUT_BUFFER = 32 * 1024 * 1024
"""A TCP client that lets this much of our output pile up unread is disconnected."""
READ_CHUNK = 64 * 1024

PARSE_ERROR = -32700
INVALID_REQUEST = -32600
INVALID_PARAMS = -32602
UNAUTHORIZED = -32001

_MARKER = re.compile(rb"content-length:", re.IGNORECASE)
_MARKER_LEN = len(b"content-length:")
_WS = b" \t\r\n"


class _Bare:
    """Marker: the header block carried no usable length; a bare JSON value may follow."""


BARE = _Bare()


class FrameReader:
    """Reads LSP frames (``Content-Length`` headers + body) from a byte source, bounded.

    ``read`` returns the next chunk of bytes, ``b""`` at end of input. Memory held never
    exceeds about ``max_body`` plus one chunk, whatever the peer sends.
    """

    def __init__(
        self,
        read: Callable[[], Awaitable[bytes]],
        max_body: int = MAX_BODY,
        max_header_line: int = MAX_HEADER_LINE,
    ) -> None:
        self._read = read
        self._buf = bytearray()
        self._eof = False
        self.max_body = max_body
        self.max_header_line = max_header_line
        self.skipped_bytes = 0
        """Garbage bytes dropped while resynchronising (for logs and tests)."""

    async def _fill(self) -> bool:
        """Append the next chunk; False at end of input."""
        if self._eof:
            return False
        chunk = await self._read()
        if not chunk:
            self._eof = True
            return False
        self._buf += chunk
        return True

    def push_back(self, data: bytes) -> None:
        """Put bytes back in front of the stream (a frame that swallowed its successor)."""
        self._buf[:0] = data

    def _skip(self, n: int) -> None:
        if n > 0:
            self.skipped_bytes += n
            del self._buf[:n]

    async def next_body(self) -> bytes | None:
        """The next message body (bytes, not necessarily valid JSON); None at end of input."""
        while True:
            length = await self._header_block()
            if length is None:
                return None
            if isinstance(length, int):
                return await self._body(length)
            body = await self._bare_json()
            if body is not None:
                return body
            if self._eof and not self._buf:
                return None

    async def _header_block(self) -> int | _Bare | None:
        """Read headers up to the blank line: the declared length, BARE, or None at EOF."""
        length: int | None = None
        bad = False
        seen = False
        total = 0
        while True:
            if not seen:
                stripped = len(self._buf) - len(self._buf.lstrip(_WS))
                del self._buf[:stripped]  # blank lines between frames are harmless
                if self._buf[:1] in (b"{", b"["):
                    logger.warning("a message arrived without a Content-Length header")
                    return BARE
            newline = self._buf.find(b"\n")
            if newline < 0:
                if len(self._buf) > self.max_header_line:
                    # A runaway header line: drop it up to its end or the next header,
                    # never holding more than one chunk of it.
                    logger.warning("a header line longer than %d bytes was dropped", len(self._buf))
                    self._skip(1)
                    seen, length, bad, total = False, None, False, 0
                    await self._discard_line()
                    continue
                if not await self._fill():
                    if self._buf:
                        logger.warning("input ended inside a header: %d bytes", len(self._buf))
                        self._skip(len(self._buf))
                    return None
                continue
            line = bytes(self._buf[:newline]).rstrip(b"\r")
            del self._buf[: newline + 1]
            marker = _MARKER.search(line)
            if marker is not None and marker.start() > 0:
                # What precedes the header is the tail of a frame whose declared length
                # was too short (or garbage): resynchronise on the header.
                logger.warning("skipped %d bytes of garbage before a header", marker.start())
                self.skipped_bytes += marker.start()
                line = line[marker.start() :]
                length, bad, total = None, False, 0
            if not line:
                if length is not None and not bad:
                    return length
                logger.warning("a frame without a valid Content-Length was dropped")
                return BARE
            if marker is None and not seen and b":" not in line:
                logger.warning("skipped a line of garbage between frames (%d bytes)", len(line))
                self.skipped_bytes += len(line)
                continue
            seen = True
            total += len(line) + 2
            if total > MAX_HEADER_BYTES:
                bad = True
            name, _, value = line.partition(b":")
            if name.strip().lower() == b"content-length":
                digits = value.strip()
                if not digits.isdigit() or len(digits) > 15:
                    logger.warning("invalid Content-Length %r", digits[:40])
                    bad = True
                elif int(digits) > self.max_body:
                    logger.warning(
                        "message of %s bytes refused (the limit is %d)", digits, self.max_body
                    )
                    bad = True
                else:
                    length = int(digits)

    async def _discard_line(self) -> None:
        """Drop bytes up to the end of the current (too long) line, bounded in memory."""
        while True:
            newline = self._buf.find(b"\n")
            marker = _MARKER.search(self._buf)
            if marker is not None and (newline < 0 or marker.start() < newline):
                self._skip(marker.start())
                return
            if newline >= 0:
                self._skip(newline + 1)
                return
            self._skip(max(0, len(self._buf) - _MARKER_LEN))
            if not await self._fill():
                self._skip(len(self._buf))
                return

    async def _body(self, length: int) -> bytes | None:
        """Read ``length`` bytes, or fewer when a complete JSON value ends early."""
        while len(self._buf) < length:
            end = _complete_json_end(self._buf)
            if end is not None:
                logger.warning(
                    "Content-Length %d, but the message ended after %d bytes", length, end
                )
                body = bytes(self._buf[:end])
                del self._buf[:end]
                return body
            if not await self._fill():
                if self._buf:
                    body = bytes(self._buf)
                    self._buf.clear()
                    return body  # answered as a parse error
                return None
        body = bytes(self._buf[:length])
        del self._buf[:length]
        return body

    async def _bare_json(self) -> bytes | None:
        """After a header block without a usable length: read a bare JSON value, if any.

        It ends where the value ends, or at the next header; anything larger than
        ``max_body`` is dropped without being kept.
        """
        while True:
            stripped = len(self._buf) - len(self._buf.lstrip(_WS))
            del self._buf[:stripped]
            if self._buf:
                break
            if not await self._fill():
                return None
        if self._buf[:1] not in (b"{", b"["):
            return None  # header parsing resynchronises on what follows
        scanned = 0
        while True:
            marker = _MARKER.search(self._buf, max(0, scanned - _MARKER_LEN))
            scanned = len(self._buf)
            limit = marker.start() if marker is not None else len(self._buf)
            end = _complete_json_end(self._buf, limit)
            if end is not None:
                body = bytes(self._buf[:end])
                del self._buf[:end]
                return body
            if marker is not None:
                body = bytes(self._buf[:limit])
                del self._buf[:limit]
                return body  # answered as a parse error
            if len(self._buf) > self.max_body:
                logger.warning("a message without a usable length passed %d bytes", self.max_body)
                self._skip(len(self._buf) - _MARKER_LEN)
                await self._discard_to_marker()
                return None
            if not await self._fill():
                body = bytes(self._buf)
                self._buf.clear()
                return body

    async def _discard_to_marker(self) -> None:
        """Drop bytes until the next ``Content-Length:`` (kept) or the end of input."""
        while True:
            marker = _MARKER.search(self._buf)
            if marker is not None:
                self._skip(marker.start())
                return
            self._skip(max(0, len(self._buf) - _MARKER_LEN))
            if not await self._fill():
                self._skip(len(self._buf))
                return


def _complete_json_end(buf: bytes | bytearray, limit: int | None = None) -> int | None:
    """Where a complete JSON object/array at the start of ``buf[:limit]`` ends, if it does.

    Only parsed when the last non-blank byte closes a value, so bodies arriving in many
    chunks are not re-parsed on every chunk.
    """
    last = (len(buf) if limit is None else limit) - 1
    while last >= 0 and buf[last] in _WS:
        last -= 1
    if last < 0 or buf[last] not in b"}]" or buf[0] not in b"{[":
        return None
    try:
        text = bytes(buf[: last + 1]).decode("utf-8")
        _, end = json.JSONDecoder().raw_decode(text)
    except (ValueError, RecursionError):
        return None
    return len(text[:end].encode("utf-8"))


def find_request_id(body: bytes) -> int | str | None:
    """The top-level ``"id"`` of a (possibly broken) JSON object, so that even a message
    that fails to parse gets an answer its sender is waiting for; None when not found."""
    depth = 0
    i = 0
    n = len(body)
    in_string = False
    key_start = -1
    while i < n:
        c = body[i]
        if in_string:
            if c == 0x5C:  # backslash
                i += 2
                continue
            if c == 0x22:
                in_string = False
                if depth == 1 and body[key_start:i] == b"id":
                    rest = body[i + 1 :].lstrip()
                    if rest[:1] == b":":
                        match = re.match(rb'\s*(-?\d{1,18}|"(?:[^"\\]|\\.){0,200}")', rest[1:])
                        if match is not None:
                            try:
                                value = json.loads(match.group(1))
                            except ValueError:
                                return None
                            return value if isinstance(value, int | str) else None
            i += 1
            continue
        if c == 0x22:
            in_string = True
            key_start = i + 1
        elif c in (0x7B, 0x5B):
            depth += 1
        elif c in (0x7D, 0x5D):
            depth -= 1
        i += 1
    return None


class CoderProtocol(LanguageServerProtocol):
    """pygls' protocol, minus the Python tracebacks it would put in error responses, and
    minus pygls' own copy of every open document: the server keeps its documents in
    :mod:`lsp_server.documents`, and a second copy doubled the memory of large files and
    re-split them into lines on every keystroke."""

    def _execute_handler(
        self,
        msg_id: Any,
        handler: Any,
        callback: Any,
        args: Any = None,
        kwargs: Any = None,
    ) -> None:
        super()._execute_handler(msg_id, handler, callback, args, kwargs)
        if callback == self._check_handler_result:
            # A notification: pygls files its future under a fresh id and never removes
            # it, so every didChange kept one for the rest of the session.
            future = self._request_futures.get(msg_id)
            if future is not None:
                future.add_done_callback(lambda _: self._request_futures.pop(msg_id, None))

    @lsp_method(types.TEXT_DOCUMENT_DID_OPEN)
    def lsp_text_document__did_open(self, params: Any) -> Any:
        """Hand didOpen to the server's handler only."""
        if (handler := self.fm.features.get(types.TEXT_DOCUMENT_DID_OPEN)) is not None:
            yield handler, (params,), None

    @lsp_method(types.TEXT_DOCUMENT_DID_CHANGE)
    def lsp_text_document__did_change(self, params: Any) -> Any:
        """Hand didChange to the server's handler only."""
        if (handler := self.fm.features.get(types.TEXT_DOCUMENT_DID_CHANGE)) is not None:
            yield handler, (params,), None

    @lsp_method(types.TEXT_DOCUMENT_DID_CLOSE)
    def lsp_text_document__did_close(self, params: Any) -> Any:
        """Hand didClose to the server's handler only."""
        if (handler := self.fm.features.get(types.TEXT_DOCUMENT_DID_CLOSE)) is not None:
            yield handler, (params,), None

    def _send_response(self, msg_id: Any, result: Any = None, error: Any = None) -> None:
        data = getattr(error, "data", None)
        if isinstance(data, dict) and "traceback" in data:
            logger.error(
                "request %s failed: %s\n%s", msg_id, error.message, "".join(data["traceback"])
            )
            error.data = None  # the client gets the message, the log gets the traceback
        super()._send_response(msg_id, result, error)


@dataclass(slots=True)
class Session:
    """One client's connection: the protocol, how the session ended, and its exit code."""

    protocol: LanguageServerProtocol
    exit_code: int | None = None
    """Set by ``exit``: 0 after ``shutdown``, 1 without."""
    authenticated: bool = True
    token: str | None = None

    def error(self, msg_id: Any, code: int, message: str) -> None:
        """Send a JSON-RPC error response (``msg_id`` None for an unknown id)."""
        self.protocol._send_data(
            {"jsonrpc": "2.0", "id": msg_id, "error": {"code": code, "message": message}}
        )


def handle_body(session: Session, body: bytes, reader: FrameReader | None = None) -> None:
    """Parse, check and dispatch one message body; every request gets exactly one answer."""
    try:
        message = json.loads(body)
    except (ValueError, RecursionError) as err:
        try:
            text = body.decode("utf-8")
            _, end = json.JSONDecoder().raw_decode(text.lstrip())
            offset = len(text) - len(text.lstrip())
            rest = text[offset + end :]
        except (ValueError, RecursionError):
            rest = ""
        if rest.strip() and reader is not None:
            # The declared length was too long: it swallowed the start of the next frame.
            consumed = len(text[: offset + end].encode("utf-8"))
            logger.warning("a frame's Content-Length ran past its JSON; resynchronising")
            reader.push_back(body[consumed:])
            handle_body(session, body[:consumed], None)
            return
        marker = _MARKER.search(body)
        if marker is not None and reader is not None:
            # A length that lied over garbage swallowed the next frame's header: give it
            # back, so that only the garbage is lost.
            reader.push_back(body[marker.start() :])
            body = body[: marker.start()]
            if not body.strip():
                logger.warning("a frame without a body was dropped")
                return
        logger.warning("parse error: %s", str(err)[:200])
        session.error(find_request_id(body), PARSE_ERROR, "Parse error: the message is not JSON")
        return
    if not isinstance(message, dict):
        session.error(None, INVALID_REQUEST, "Invalid request: expected one JSON object")
        return
    msg_id = message.get("id")
    has_id = "id" in message
    valid_id = isinstance(msg_id, int | str) and not isinstance(msg_id, bool)
    method = message.get("method")
    if message.get("jsonrpc") != "2.0" or (has_id and not valid_id and method is not None):
        session.error(msg_id if valid_id else None, INVALID_REQUEST, "Invalid request")
        return
    if "method" in message and not isinstance(method, str):
        session.error(msg_id if valid_id else None, INVALID_REQUEST, "Invalid request: method")
        return
    is_request = method is not None and has_id
    if not session.authenticated:
        _authenticate(session, message, is_request)
        return
    protocol = session.protocol
    if method == types.EXIT:
        session.exit_code = 0 if protocol._shutdown else 1
        return
    if protocol._shutdown:
        if is_request:
            session.error(msg_id, INVALID_REQUEST, "Invalid request: the server is shut down")
        return
    if method is None and not has_id:
        logger.warning("a message with neither method nor id was ignored")
        return
    try:
        structured = protocol.structure_message(message)
    except Exception as err:
        if is_request:
            detail = str(err.__cause__ or err).splitlines()[0][:200] if str(err) else ""
            session.error(
                msg_id,
                INVALID_PARAMS,
                f"Invalid params for {method}" + (f": {detail}" if detail else ""),
            )
        else:
            logger.warning("ignored a %s with invalid params", method or "response")
        return
    protocol.handle_message(structured)


def _authenticate(session: Session, message: dict[str, Any], is_request: bool) -> None:
    """Before anything else, a client of a token-protected server sends ``initialize``
    with ``initializationOptions.authToken``; anything else is refused."""
    params = message.get("params")
    options = params.get("initializationOptions") if isinstance(params, dict) else None
    token = options.pop("authToken", None) if isinstance(options, dict) else None
    if (
        message.get("method") == types.INITIALIZE
        and is_request
        and isinstance(token, str)
        and session.token is not None
        and hmac.compare_digest(token.encode(), session.token.encode())
    ):
        session.authenticated = True
        handle_body(session, json.dumps(message).encode(), None)
        return
    logger.warning("refused a client without the right auth token")
    if is_request:
        session.error(
            message.get("id"),
            UNAUTHORIZED,
            "Unauthorized: send initialize with initializationOptions.authToken",
        )
    session.exit_code = 1


async def run_session(
    session: Session,
    reader: FrameReader,
    before_read: Callable[[], Awaitable[None]] | None = None,
) -> int:
    """Read and dispatch messages until ``exit`` or end of input; the exit code."""
    while session.exit_code is None:
        if before_read is not None:
            await before_read()
        body = await reader.next_body()
        if body is None:
            logger.info("the client closed the connection")
            return 0 if session.protocol._shutdown else 1
        try:
            handle_body(session, body, reader)
        except Exception:  # never let one message end the session
            logger.exception("unexpected error while handling a message")
        await asyncio.sleep(0)  # let handlers run between messages of a burst
    return session.exit_code


# -- stdio -------------------------------------------------------------------------------
class _StdoutWriter:
    def __init__(self, fd: int) -> None:
        self._file = os.fdopen(fd, "wb", buffering=0, closefd=False)

    def write(self, data: bytes) -> None:
        view = memoryview(data)
        while view:
            written = self._file.write(view)
            view = view[written or 0 :]

    def close(self) -> None:
        """Nothing to close: the process ends right after."""


def serve_stdio(server: Any, stdin_fd: int = 0, stdout_fd: int = 1) -> int:
    """Serve one session over stdin/stdout; returns the process exit code."""
    pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="coder-lsp-stdin")

    async def main() -> int:
        loop = asyncio.get_running_loop()

        def read() -> Awaitable[bytes]:
            return loop.run_in_executor(pool, os.read, stdin_fd, READ_CHUNK)

        server.protocol.set_writer(_StdoutWriter(stdout_fd))
        session = Session(server.protocol)
        try:
            return await run_session(session, FrameReader(read))
        finally:
            _close_server(server)

    try:
        return asyncio.run(main())
    except BrokenPipeError:
        logger.error("the client's end of stdout is closed")
        return 1
    finally:
        pool.shutdown(wait=False, cancel_futures=True)


def _close_server(server: Any) -> None:
    """Stop what a session started (generation worker, indexing) without waiting on it."""
    closer = getattr(server, "close_session", None)
    if closer is not None:
        try:
            closer()
        except Exception:
            logger.exception("closing the session failed")


# -- TCP ---------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class TcpOptions:
    """Where and for whom the TCP server listens."""

    host: str
    port: int
    token: str | None = None
    """Clients must send this as ``initializationOptions.authToken`` (None: no token)."""
    allow_remote: bool = False


def parse_tcp_address(address: str) -> tuple[str, int]:
    """``HOST:PORT`` (``[v6]:PORT``, or ``:PORT`` for loopback) -> (host, port)."""
    host, sep, port_s = address.rpartition(":")
    if not sep or not port_s.isdigit() or not 0 < int(port_s) < 65536:
        raise CoderLspError(f"--tcp {address!r}: expected HOST:PORT with a port from 1 to 65535")
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    return host or "127.0.0.1", int(port_s)


def is_loopback(host: str) -> bool:
    """Whether ``host`` names only this machine."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


class _TcpWriter:
    """pygls' writer interface over a stream writer, disconnecting a client that lets
    :data:`MAX_OUTPUT_BUFFER` of our output pile up unread."""

    def __init__(self, writer: asyncio.StreamWriter) -> None:
        self._writer = writer

    def write(self, data: bytes) -> None:
        transport = self._writer.transport
        if transport.is_closing():
            return
        if transport.get_write_buffer_size() + len(data) > MAX_OUTPUT_BUFFER:
            logger.warning("a TCP client stopped reading its replies: disconnecting it")
            transport.abort()
            return
        self._writer.write(data)

    def close(self) -> None:
        self._writer.close()


def serve_tcp(server_factory: Callable[[], Any], options: TcpOptions) -> int:
    """Serve TCP clients one at a time, each with a fresh server; runs until interrupted."""
    if not is_loopback(options.host) and not (options.allow_remote and options.token):
        raise CoderLspError(
            f"--tcp {options.host}: refusing to listen beyond this machine; serving remote "
            "clients needs --allow-remote and --auth-token-env VAR (clients send the token "
            "as initializationOptions.authToken)"
        )
    busy = threading.Lock()

    async def connection(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        peer = writer.get_extra_info("peername")
        if not busy.acquire(blocking=False):
            logger.warning("refused a second TCP client %s: one client at a time", peer)
            note = {
                "jsonrpc": "2.0",
                "method": "window/showMessage",
                "params": {
                    "type": 1,
                    "message": "coder-lsp: another client is connected; "
                    "this server serves one client at a time",
                },
            }
            body = json.dumps(note).encode()
            writer.write(b"Content-Length: %d\r\n\r\n" % len(body) + body)
            with contextlib.suppress(OSError, TimeoutError):
                await asyncio.wait_for(writer.drain(), 5)
            writer.close()
            return
        logger.info("TCP client %s connected", peer)
        server = server_factory()
        server.protocol.set_writer(_TcpWriter(writer))
        session = Session(server.protocol, authenticated=options.token is None)
        session.token = options.token

        async def read() -> bytes:
            try:
                return await reader.read(READ_CHUNK)
            except OSError:
                return b""

        async def before_read() -> None:
            with contextlib.suppress(OSError):
                await writer.drain()  # back-pressure: read no more while replies pile up

        try:
            code = await run_session(session, FrameReader(read), before_read)
            logger.info("TCP client %s left (code %d)", peer, code)
        finally:
            _close_server(server)
            writer.close()
            busy.release()

    async def main() -> None:
        try:
            listener = await asyncio.start_server(connection, options.host, options.port)
        except OSError as err:
            raise CoderLspError(
                f"cannot listen on {options.host}:{options.port}: {err.strerror or err}"
            ) from None
        addresses = ", ".join(str(s.getsockname()[:2]) for s in listener.sockets)
        logger.info("serving LSP over TCP on %s (one client at a time)", addresses)
        async with listener:
            await listener.serve_forever()

    try:
        asyncio.run(main())
    except KeyboardInterrupt:
        return 130
    return 0
