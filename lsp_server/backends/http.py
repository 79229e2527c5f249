"""A small HTTP client for inference engines, on the standard library's ``http.client``.

* JSON requests (``/health``, ``/props``, ``/tokenize`` …) reuse one keep-alive
  connection, so a tokenize round trip on loopback costs well under a millisecond.
* Streams (server-sent events or NDJSON) run on their own connection; a cancel token
  closes it from any thread at once (the blocked read returns, and the engine sees the
  connection go and frees its slot). A stream read to its end returns its connection to
  a one-connection pool for the next request.
* The API key travels as ``Authorization: Bearer`` and appears in no log line, status or
  error message; a warning is logged once when it would travel over plain http to a host
  that is not loopback. https uses the system's CAs (or ``ca_file``).
* Every failure becomes one :class:`~lsp_server.errors.EngineError` with a short reason.
"""

from __future__ import annotations

import contextlib
import http.client
import ipaddress
import json
import logging
import re
import socket
import ssl
import threading
from collections.abc import Callable, Iterator
from typing import Any
from urllib.parse import urlsplit

from lsp_server.backends.base import CancelToken
from lsp_server.errors import (
    ContextExceededError,
    EngineAuthError,
    EngineError,
    EngineLoadingError,
)

logger = logging.getLogger(__name__)

CONNECT_TIMEOUT_S = 5.0
"""Seconds to wait for a TCP (and TLS) connection."""
IDLE_TIMEOUT_S = 60.0
"""Seconds a request waits for the engine's next bytes (a long prompt on a busy engine
may take a while before the first token)."""

Timeout = Callable[[], float | None]
"""Seconds the next read may wait (None: :data:`IDLE_TIMEOUT_S`)."""


class ReadTimeout(EngineError):
    """No bytes arrived within the read timeout."""


def is_loopback(host: str) -> bool:
    """True for localhost and loopback addresses."""
    if host.lower() in ("localhost", "localhost.localdomain"):
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


class EngineConnection:
    """HTTP to one engine's base URL."""

    def __init__(
        self,
        url: str,
        api_key: str | None = None,
        *,
        ca_file: str | None = None,
        idle_timeout_s: float | None = None,
    ) -> None:
        """Prepare connections to ``url`` (nothing is opened yet)."""
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise EngineError(f"engine url must be http:// or https://, got {url!r}")
        self.url = f"{parts.scheme}://{parts.netloc}{parts.path.rstrip('/')}"
        self._https = parts.scheme == "https"
        self._host = parts.hostname
        self._port = parts.port or (443 if self._https else 80)
        self._base = parts.path.rstrip("/")
        self._headers = {"Content-Type": "application/json", "Accept": "*/*"}
        if api_key:
            self._headers["Authorization"] = f"Bearer {api_key}"
            if not self._https and not is_loopback(self._host):
                logger.warning(
                    "the API key would travel unencrypted over plain http to %s; use https",
                    self._host,
                )
        self._ssl = ssl.create_default_context(cafile=ca_file) if self._https else None
        self.idle_timeout_s = IDLE_TIMEOUT_S if idle_timeout_s is None else idle_timeout_s
        self._json_conn: http.client.HTTPConnection | None = None
        self._json_lock = threading.Lock()
        self._idle: http.client.HTTPConnection | None = None
        self._idle_lock = threading.Lock()

    @property
    def has_key(self) -> bool:
        """Whether requests carry an API key."""
        return "Authorization" in self._headers

    def _connect(self) -> http.client.HTTPConnection:
        if self._https:
            return http.client.HTTPSConnection(
                self._host, self._port, timeout=CONNECT_TIMEOUT_S, context=self._ssl
            )
        return http.client.HTTPConnection(self._host, self._port, timeout=CONNECT_TIMEOUT_S)

    def _fail(self, err: BaseException, path: str) -> EngineError:
        """The EngineError for a transport failure on ``path``."""
        if isinstance(err, EngineError):
            return err
        if isinstance(err, ConnectionRefusedError):
            return EngineError(f"engine unreachable at {self.url} (connection refused)")
        if isinstance(err, TimeoutError):
            return ReadTimeout(f"engine at {self.url} did not answer {path} in time")
        if isinstance(err, ssl.SSLError):
            return EngineError(f"TLS with {self.url} failed: {err.reason or err}")
        if isinstance(err, socket.gaierror):
            return EngineError(f"engine host {self._host!r} not found")
        if isinstance(err, http.client.RemoteDisconnected | ConnectionError):
            return EngineError(f"engine at {self.url} dropped the connection")
        return EngineError(f"engine at {self.url}: {type(err).__name__}: {err}")

    # -- JSON requests ----------------------------------------------------------------
    def request_json(
        self, method: str, path: str, body: Any = None, *, timeout_s: float | None = None
    ) -> Any:
        """Send one request and return the decoded JSON answer.

        Raises:
            EngineError: transport failure, an HTTP error status or a non-JSON answer.
        """
        data = None if body is None else json.dumps(body).encode()
        with self._json_lock:
            for attempt in (0, 1):
                conn = self._json_conn or self._connect()
                self._json_conn = conn
                try:
                    conn.timeout = timeout_s or self.idle_timeout_s
                    if conn.sock is not None:
                        conn.sock.settimeout(conn.timeout)
                    conn.request(method, self._base + path, body=data, headers=self._headers)
                    resp = conn.getresponse()
                    raw = resp.read()
                except (http.client.RemoteDisconnected, BrokenPipeError, ConnectionResetError):
                    # A kept-alive connection the engine closed meanwhile: retry once anew.
                    self._drop_json()
                    if attempt == 0:
                        continue
                    raise EngineError(f"engine at {self.url} dropped the connection") from None
                except (OSError, http.client.HTTPException) as err:
                    self._drop_json()
                    raise self._fail(err, path) from None
                if resp.status >= 400:
                    raise http_error(resp.status, raw, path, self.url)
                try:
                    return json.loads(raw) if raw.strip() else None
                except ValueError:
                    raise EngineError(f"engine at {self.url} sent non-JSON for {path}") from None
        raise AssertionError("unreachable")  # pragma: no cover

    def _drop_json(self) -> None:
        if self._json_conn is not None:
            self._json_conn.close()
            self._json_conn = None

    # -- streams ----------------------------------------------------------------------
    @contextlib.contextmanager
    def stream(
        self, path: str, body: Any, cancel: CancelToken, timeout: Timeout
    ) -> Iterator[Iterator[bytes]]:
        """POST ``body`` and yield an iterator over the answer's non-empty lines.

        Cancelling ``cancel`` closes the connection at once (the iterator ends). Each
        read waits at most ``timeout()`` seconds (:class:`ReadTimeout` otherwise). A
        stream read to its end keeps its connection for the next request; any other
        ending closes it, which tells the engine to stop generating.

        Raises:
            EngineError: transport failure or an HTTP error status.
        """
        with self._idle_lock:
            conn, self._idle = self._idle, None
        fresh = conn is None
        conn = conn or self._connect()
        closed = threading.Event()

        def close_now() -> None:
            closed.set()
            sock = conn.sock
            if sock is not None:
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)

        forget = cancel.on_cancel(close_now)
        finished = False
        try:
            data = json.dumps(body).encode()
            try:
                if conn.sock is not None:
                    conn.sock.settimeout(CONNECT_TIMEOUT_S)
                conn.request("POST", self._base + path, body=data, headers=self._headers)
                if conn.sock is not None:
                    conn.sock.settimeout(_bounded(timeout(), self.idle_timeout_s))
                resp = conn.getresponse()
            except (http.client.RemoteDisconnected, BrokenPipeError, ConnectionResetError):
                if closed.is_set():
                    yield iter(())
                    return
                if fresh:
                    raise EngineError(f"engine at {self.url} dropped the connection") from None
                # The pooled connection had gone stale: once more on a new one.
                conn.close()
                conn = self._connect()
                conn.request("POST", self._base + path, body=data, headers=self._headers)
                resp = conn.getresponse()
            if resp.status >= 400:
                raise http_error(resp.status, resp.read(), path, self.url)
            lines = _lines(resp, conn, timeout, self.idle_timeout_s, closed)
            yield lines
            finished = resp.isclosed() and not closed.is_set()
        except (OSError, http.client.HTTPException) as err:
            if closed.is_set():
                return  # cancelled: the caller looks at the token
            raise self._fail(err, path) from None
        finally:
            forget()
            if finished:
                with self._idle_lock:
                    if self._idle is None:
                        self._idle, conn = conn, None
            if conn is not None:
                conn.close()

    def close(self) -> None:
        """Close every connection."""
        with self._json_lock:
            self._drop_json()
        with self._idle_lock:
            if self._idle is not None:
                self._idle.close()
                self._idle = None


def _bounded(seconds: float | None, idle: float) -> float:
    """A socket timeout: ``seconds`` (at least 1 ms), or ``idle`` when None."""
    return idle if seconds is None else max(0.001, min(seconds, idle))


def _lines(
    resp: http.client.HTTPResponse,
    conn: http.client.HTTPConnection,
    timeout: Timeout,
    idle: float,
    closed: threading.Event,
) -> Iterator[bytes]:
    """Non-empty lines of a streamed answer; ends when it ends or is closed."""
    while not closed.is_set():
        if conn.sock is not None:
            conn.sock.settimeout(_bounded(timeout(), idle))
        try:
            line = resp.readline()
        except TimeoutError:
            raise ReadTimeout("engine sent nothing in time") from None
        except (OSError, http.client.HTTPException, ValueError):
            if closed.is_set():
                return
            raise EngineError("engine dropped the connection mid-stream") from None
        if not line:
            if not resp.isclosed() and not closed.is_set():
                raise EngineError("engine dropped the connection mid-stream")
            return
        line = line.strip()
        if line:
            yield line


def http_error(status: int, raw: bytes, path: str, url: str) -> EngineError:
    """The EngineError for an HTTP error answer (the engine's own message when it sent one)."""
    message = ""
    error_type = ""
    n_ctx: int | None = None
    try:
        body = json.loads(raw)
    except ValueError:
        body = None
    if isinstance(body, dict):
        err = body.get("error", body)
        if isinstance(err, dict):
            message = str(err.get("message", ""))
            error_type = str(err.get("type", ""))
            value = err.get("n_ctx")
            n_ctx = value if isinstance(value, int) else None
        elif isinstance(err, str):
            message = err
        detail = body.get("detail")
        if not message and isinstance(detail, str):
            message = detail
    if not message:
        message = raw[:200].decode("utf-8", errors="replace").strip()
    message = message[:300]
    if status in (401, 403):
        return EngineAuthError(
            f"engine at {url} refused the API key (HTTP {status}); check the key in the "
            "environment variable named by backend.apiKeyEnv"
        )
    if status == 503:
        return EngineLoadingError(f"engine at {url} is still loading its model (HTTP 503)")
    if status in (400, 413, 422) and (
        "exceed_context" in error_type or "context" in message.lower() or "must be <=" in message
    ):
        return ContextExceededError(
            f"prompt too long for the engine: {message}", n_ctx or context_size_in(message)
        )
    return EngineError(f"engine at {url} answered HTTP {status} to {path}: {message}")


_CONTEXT_SIZE = (
    # vLLM (serving_engine), llama-cpp-python's server, OpenAI itself
    re.compile(r"maximum context length is (\d+)"),
    # llama-cpp-python's own message, llama-server
    re.compile(r"context (?:window|size) of (\d+)"),
    re.compile(r"available context size \((\d+) tokens\)"),
    # TGI: "`inputs` tokens + `max_new_tokens` must be <= 2048"
    re.compile(r"must be <= (\d+)"),
)


def context_size_in(message: str) -> int | None:
    """The engine's context size when its error message says it, else None."""
    for pattern in _CONTEXT_SIZE:
        found = pattern.search(message)
        if found:
            return int(found.group(1))
    return None


def sse_data(line: bytes) -> Any:
    """The JSON of a server-sent ``data:`` line; None for other lines and ``[DONE]``."""
    if not line.startswith(b"data:"):
        if line.startswith(b"{"):
            # Some engines answer an error inside the stream as plain JSON.
            return json.loads(line)
        return None
    payload = line[5:].strip()
    if payload == b"[DONE]" or not payload:
        return None
    try:
        return json.loads(payload)
    except ValueError:
        raise EngineError("engine sent a malformed event") from None
