"""Resumable HTTP(S) transfer of one file, for model downloads.

:func:`fetch_resuming` fetches a URL into a ``.part`` file, resuming what is there with
``Range: bytes=N-`` and retrying a connection that broke mid-file; every failure becomes a
:class:`SourceFailed` whose text tells the user what went wrong (offline, access denied,
TLS, …). Redirects are followed, but credentials never go to another host. Only the
standard library speaks HTTP here (urllib, with timeouts).
"""

from __future__ import annotations

import hashlib
import http.client
import logging
import os
import re
import socket
import ssl
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import IO, Protocol

from lsp_server import __version__

logger = logging.getLogger("lsp_server.download")

CHUNK_BYTES = 1 << 20
"""Bytes read from the network (and written) at a time."""
_USER_AGENT = f"coder-lsp/{__version__} (+model download; urllib)"
# Pauses before retrying a source whose connection broke mid-file (then it gives up).
RETRY_DELAYS_S: tuple[float, ...] = (1.0, 3.0, 10.0)


class _Hasher(Protocol):
    """The part of a hashlib object this module uses."""

    def update(self, data: bytes, /) -> None:
        """Feed ``data`` into the digest."""


class SourceFailed(Exception):
    """One source could not deliver the file; ``str()`` says why, for the user.

    ``retryable`` marks failures after the server was reached (a broken connection, a
    5xx): worth another try at the same source, resuming.
    """

    def __init__(self, message: str, *, retryable: bool = False) -> None:
        super().__init__(message)
        self.retryable = retryable


class _SafeRedirects(urllib.request.HTTPRedirectHandler):
    """Follow redirects, but never carry credentials to another host (the CDN)."""

    def redirect_request(
        self,
        req: urllib.request.Request,
        fp: IO[bytes],
        code: int,
        msg: str,
        headers: http.client.HTTPMessage,
        newurl: str,
    ) -> urllib.request.Request | None:
        new = super().redirect_request(req, fp, code, msg, headers, newurl)
        if new is not None and url_host(newurl) != url_host(req.full_url):
            new.remove_header("Authorization")
        return new


class _NoRedirects(urllib.request.HTTPRedirectHandler):
    """Hand 3xx answers back as errors so their headers (X-Linked-Etag) can be read."""

    def redirect_request(
        self,
        req: urllib.request.Request,
        fp: IO[bytes],
        code: int,
        msg: str,
        headers: http.client.HTTPMessage,
        newurl: str,
    ) -> None:
        return None


_FOLLOW = urllib.request.build_opener(_SafeRedirects)
_NO_FOLLOW = urllib.request.build_opener(_NoRedirects)


def url_host(url: str) -> str:
    parts = urllib.parse.urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"


def explain_failure(err: BaseException, url: str) -> str:
    """A user-facing reason for a failed request to ``url``."""
    host = url_host(url)
    if isinstance(err, urllib.error.HTTPError):
        if err.code in (401, 403):
            return (
                f"HTTP {err.code} from {host}: access denied "
                "(gated or private? set HF_TOKEN for Hugging Face)"
            )
        if err.code == 404:
            return f"HTTP 404: not found at {url}"
        return f"HTTP {err.code} {err.reason} from {url}"
    reason: object = err.reason if isinstance(err, urllib.error.URLError) else err
    if isinstance(reason, ssl.SSLError | ssl.CertificateError):
        return f"TLS error talking to {host}: {reason}"
    if isinstance(reason, TimeoutError | socket.timeout):
        return f"timed out talking to {host}; are you offline or is it very slow?"
    if isinstance(reason, http.client.HTTPException | ConnectionResetError):
        return f"the connection to {host} broke ({type(reason).__name__}); pull again to resume"
    if isinstance(reason, socket.gaierror):
        return f"could not reach {host} (name lookup failed: {reason.strerror}); are you offline?"
    if isinstance(reason, OSError):
        text = reason.strerror or str(reason)
        return f"could not reach {host} ({text}); are you offline?"
    return f"could not reach {host} ({reason}); are you offline?"


def open_url(
    url: str,
    *,
    method: str = "GET",
    headers: dict[str, str] | None = None,
    timeout: float,
    follow: bool = True,
) -> http.client.HTTPResponse:
    req = urllib.request.Request(url, method=method)
    req.add_header("User-Agent", _USER_AGENT)
    for key, value in (headers or {}).items():
        req.add_header(key, value)
    opener = _FOLLOW if follow else _NO_FOLLOW
    return opener.open(req, timeout=timeout)  # type: ignore[no-any-return]


def fetch_resuming(
    url: str,
    part: Path,
    *,
    headers: dict[str, str],
    timeout: float,
    expected_size: int | None,
    on_bytes: Callable[[int], None] | None,
) -> str:
    """Fetch ``url`` into ``part``, resuming what is there; return the sha256 of ``part``.

    Resumes with ``Range: bytes=N-``; a server that ignores it (200) restarts the file.
    A connection that breaks mid-file, or a 5xx/429 answer, is retried (resuming) a few
    times. Raises :class:`SourceFailed` when it gives up, keeping ``part`` so the next
    ``pull`` resumes.
    """
    restarted = False
    for attempt in range(len(RETRY_DELAYS_S) + 1):
        try:
            return _fetch_once(url, part, headers, timeout, expected_size, on_bytes)
        except _RangeRefused:
            if restarted:
                raise SourceFailed(f"{url_host(url)} refused to resume {part.name}") from None
            # Our part is not a prefix of this file: start over, once.
            logger.info("server refused resuming %s; restarting it", part.name)
            part.unlink(missing_ok=True)
            restarted = True
        except SourceFailed as err:
            if not err.retryable or attempt == len(RETRY_DELAYS_S):
                raise
            delay = RETRY_DELAYS_S[attempt]
            logger.warning("%s; retrying in %.0f s", err, delay)
            time.sleep(delay)
    raise SourceFailed(f"{url_host(url)} refused to resume {part.name}")  # pragma: no cover


class _RangeRefused(Exception):
    """The server answered 416 to a resume request."""


def _fetch_once(
    url: str,
    part: Path,
    headers: dict[str, str],
    timeout: float,
    expected_size: int | None,
    on_bytes: Callable[[int], None] | None,
) -> str:
    hasher = hashlib.sha256()
    offset = 0
    if part.is_symlink() or (part.exists() and not part.is_file()):
        # Not a partial download of ours (a link to /dev/full or /dev/zero would fill
        # the disk or never end): start over.
        part.unlink()
    if part.exists():
        if expected_size is not None and part.stat().st_size > expected_size:
            # Longer than the file can be: a leftover of some other file.
            part.unlink()
        else:
            offset = _hash_into(part, hasher)
    if expected_size is not None and offset == expected_size:
        # Complete already (an earlier run died between download and rename).
        return hasher.hexdigest()
    req_headers = dict(headers)
    if offset:
        req_headers["Range"] = f"bytes={offset}-"
    try:
        response = open_url(url, headers=req_headers, timeout=timeout)
    except urllib.error.HTTPError as err:
        if err.code == 416 and offset:
            raise _RangeRefused from err
        raise SourceFailed(
            explain_failure(err, url), retryable=err.code >= 500 or err.code == 429
        ) from err
    except (urllib.error.URLError, OSError, http.client.HTTPException) as err:
        raise SourceFailed(explain_failure(err, url)) from err
    with response:
        mode = "ab"
        if offset and response.status == 206:
            start = _content_range_start(response.headers.get("Content-Range", ""))
            if start != offset:
                raise SourceFailed(
                    f"{url_host(url)} answered a range starting at {start}, asked {offset}"
                )
            logger.info("resuming %s at byte %d", part.name, offset)
        elif offset:
            logger.info("%s ignored the Range request; downloading from the start", url)
            hasher = hashlib.sha256()
            offset = 0
            mode = "wb"
        length = response.headers.get("Content-Length")
        end = offset + int(length) if length and length.isdigit() else None
        done = offset
        with open(part, mode) as out:
            if on_bytes is not None:
                on_bytes(done)
            while True:
                try:
                    chunk = response.read(CHUNK_BYTES)
                except (OSError, http.client.HTTPException) as err:
                    raise SourceFailed(explain_failure(err, url), retryable=True) from err
                if not chunk:
                    break
                try:
                    out.write(chunk)
                except OSError as err:
                    raise SourceFailed(f"cannot write {part}: {err.strerror or err}") from err
                hasher.update(chunk)
                done += len(chunk)
                if on_bytes is not None:
                    on_bytes(done)
            out.flush()
            os.fsync(out.fileno())
    if end is not None and done < end:
        raise SourceFailed(
            f"the connection to {url_host(url)} closed after {done} of {end} bytes",
            retryable=True,
        )
    return hasher.hexdigest()


def _content_range_start(value: str) -> int | None:
    match = re.match(r"^\s*bytes\s+(\d+)-\d+/(\d+|\*)\s*$", value)
    return int(match.group(1)) if match else None


def _hash_into(path: Path, hasher: _Hasher) -> int:
    size = 0
    with open(path, "rb") as f:
        while block := f.read(CHUNK_BYTES * 4):
            hasher.update(block)
            size += len(block)
    return size


def sha256_file(path: Path) -> str:
    hasher = hashlib.sha256()
    _hash_into(path, hasher)
    return hasher.hexdigest()
