"""Local HTTP stand-ins for Hugging Face and a PyPI simple index, for download tests.

Each stand-in is a real threaded ``http.server`` on 127.0.0.1 with a random port that
records every request (method, path, headers), so tests can assert what the client sent
(a ``Range`` header, an ``Accept`` header) as well as what it stored.

- :class:`HubStandin` answers ``{repo}/resolve/{revision}/{file}`` like the hub does: a
  302 to a "CDN" path, with ``X-Linked-Etag`` (the sha256) and ``X-Linked-Size`` on the
  redirect, and byte ranges on the CDN path.
- :class:`PypiStandin` answers the PEP 691 JSON simple API (``/simple/{project}/``) and
  serves wheel files (``/files/{name}``) with byte ranges.
"""

from __future__ import annotations

import hashlib
import io
import json
import random
import re
import socket
import threading
import zipfile
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any, Self


@dataclass(frozen=True)
class Recorded:
    """One request a stand-in received."""

    method: str
    path: str
    headers: dict[str, str]


def make_gguf_payload(size: int, seed: int = 0) -> bytes:
    """``size`` pseudo-random bytes that start with the GGUF magic."""
    rng = random.Random(seed)
    return b"GGUF" + rng.randbytes(size - 4)


def sha256(data: bytes) -> str:
    """Hex sha256 of ``data``."""
    return hashlib.sha256(data).hexdigest()


TINY_REPO, TINY_FILE = "acme/tiny-fim-GGUF", "tiny-fim.Q4_K_M.gguf"
"""Where the stand-in hub serves the tiny test model (tests/tinymodel.py)."""
TINY_HUB_SOURCE = f'kind = "huggingface"\nrepo = "{TINY_REPO}"\nfile = "{TINY_FILE}"'
"""The models.toml source of the tiny model on the stand-in hub."""


def tiny_registry(data: bytes, source: str = TINY_HUB_SOURCE) -> str:
    """A models.toml with one entry, ``tiny-fim``: the model file ``data``, pinned by
    size and sha256, downloadable from ``source`` (a ``[[…sources]]`` table's body)."""
    return f"""
[models."tiny-fim"]
description = "tiny deterministic test model"
file_name = "{TINY_FILE}"
size_bytes = {len(data)}
sha256 = "{hashlib.sha256(data).hexdigest()}"
context_length = 2048
template = "deepseek"
ram_gb = 0.1
vram_gb = 0.1

[[models."tiny-fim".sources]]
{source}
"""


def closed_port_url() -> str:
    """An http URL on 127.0.0.1 where nothing listens (connections are refused)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}"


class _Handler(BaseHTTPRequestHandler):
    server: _Server

    def log_message(self, format: str, *args: Any) -> None:
        # Quiet: test output stays clean.
        pass

    def _record(self) -> None:
        self.server.standin.requests.append(
            Recorded(self.command, self.path, {k: v for k, v in self.headers.items()})
        )

    def do_HEAD(self) -> None:
        self._record()
        self.server.standin.handle(self, head=True)

    def do_GET(self) -> None:
        self._record()
        self.server.standin.handle(self, head=False)


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    standin: _Standin


class _Standin:
    """Base: a threaded HTTP server on a random local port, usable as a context manager."""

    def __init__(self) -> None:
        self.requests: list[Recorded] = []
        self._server = _Server(("127.0.0.1", 0), _Handler)
        self._server.standin = self
        # A short poll interval keeps shutdown (and so each test) fast.
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True
        )

    @property
    def url(self) -> str:
        """Base URL, without a trailing slash."""
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def __enter__(self) -> Self:
        self._thread.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)

    def handle(self, h: _Handler, *, head: bool) -> None:
        """Answer one request (subclasses)."""
        raise NotImplementedError

    def requests_to(self, pattern: str, method: str = "GET") -> list[Recorded]:
        """The recorded requests whose path matches regex ``pattern``."""
        return [r for r in self.requests if r.method == method and re.search(pattern, r.path)]

    # Helpers shared by both stand-ins.

    def send_bytes(
        self, h: _Handler, data: bytes, *, head: bool, honour_range: bool = True
    ) -> None:
        """Serve ``data`` with ``Range: bytes=N-[M]`` support (206 / 416)."""
        range_header = h.headers.get("Range")
        match = re.match(r"^bytes=(\d+)-(\d*)$", range_header or "")
        if honour_range and match:
            start = int(match.group(1))
            end = int(match.group(2)) if match.group(2) else len(data) - 1
            if start >= len(data):
                h.send_response(416)
                h.send_header("Content-Range", f"bytes */{len(data)}")
                h.send_header("Content-Length", "0")
                h.end_headers()
                return
            body = data[start : end + 1]
            h.send_response(206)
            h.send_header("Content-Range", f"bytes {start}-{start + len(body) - 1}/{len(data)}")
        else:
            body = data
            h.send_response(200)
        h.send_header("Content-Length", str(len(body)))
        h.send_header("Accept-Ranges", "bytes")
        h.end_headers()
        if not head:
            h.wfile.write(body)

    @staticmethod
    def send_status(h: _Handler, code: int) -> None:
        """An empty answer with status ``code``."""
        h.send_response(code)
        h.send_header("Content-Length", "0")
        h.end_headers()


@dataclass
class _HubFile:
    data: bytes
    etag: str | None
    status: int = 200


class HubStandin(_Standin):
    """A Hugging Face ``resolve`` endpoint for a few files.

    ``honour_range=False`` makes the CDN ignore ``Range`` (always 200, whole file).
    """

    def __init__(
        self,
        *,
        honour_range: bool = True,
        cdn_host: str | None = None,
        drop_after: int | None = None,
    ) -> None:
        """``cdn_host`` (e.g. "localhost") makes the redirect point at another host name
        for the same server; ``drop_after`` makes the first CDN answer close the
        connection after that many body bytes."""
        super().__init__()
        self.honour_range = honour_range
        self.cdn_host = cdn_host
        self.drop_after = drop_after
        self._files: dict[str, _HubFile] = {}

    def add_file(
        self,
        repo: str,
        file: str,
        data: bytes,
        *,
        revision: str = "main",
        etag: str | None = "auto",
        status: int = 200,
    ) -> None:
        """Serve ``data`` as ``repo``/``file`` at ``revision``.

        ``etag="auto"`` sends the data's real sha256 as X-Linked-Etag, ``None`` sends
        none, any other string is sent as is; ``status`` other than 200 answers that
        HTTP error instead.
        """
        real_etag = sha256(data) if etag == "auto" else etag
        self._files[f"/{repo}/resolve/{revision}/{file}"] = _HubFile(data, real_etag, status)

    def handle(self, h: _Handler, *, head: bool) -> None:
        """Resolve URL -> 302 with the LFS headers; CDN URL -> the bytes."""
        if h.path.startswith("/cdn/"):
            key = h.path[len("/cdn") :]
            entry = self._files.get(key)
            if entry is None:
                self.send_status(h, 404)
                return
            if self.drop_after is not None and not head:
                cut, self.drop_after = self.drop_after, None
                # Promise the whole file, send part of it, hang up.
                h.send_response(200)
                h.send_header("Content-Length", str(len(entry.data)))
                h.end_headers()
                h.wfile.write(entry.data[:cut])
                h.wfile.flush()
                h.close_connection = True
                return
            self.send_bytes(h, entry.data, head=head, honour_range=self.honour_range)
            return
        entry = self._files.get(h.path)
        if entry is None:
            self.send_status(h, 404)
            return
        if entry.status != 200:
            self.send_status(h, entry.status)
            return
        h.send_response(302)
        if self.cdn_host is not None:
            port = self._server.server_address[1]
            h.send_header("Location", f"http://{self.cdn_host}:{port}/cdn{h.path}")
        else:
            h.send_header("Location", f"/cdn{h.path}")
        if entry.etag is not None:
            h.send_header("X-Linked-Etag", f'"{entry.etag}"')
        h.send_header("X-Linked-Size", str(len(entry.data)))
        h.send_header("X-Repo-Commit", "0" * 40)
        h.send_header("ETag", '"not-the-sha"')
        h.send_header("Content-Length", "0")
        h.end_headers()


@dataclass
class _Project:
    files: list[dict[str, Any]] = field(default_factory=list)


class PypiStandin(_Standin):
    """A PEP 691 JSON simple index serving a few projects' wheels."""

    def __init__(self) -> None:
        super().__init__()
        self._projects: dict[str, _Project] = {}
        self._blobs: dict[str, bytes] = {}

    @property
    def index(self) -> str:
        """The simple-API root to hand to the client."""
        return f"{self.url}/simple"

    def add_wheel(
        self,
        project: str,
        filename: str,
        data: bytes,
        *,
        listed_sha256: str | None = "auto",
        relative_url: bool = True,
    ) -> None:
        """List ``filename`` under ``project`` and serve its bytes.

        ``listed_sha256="auto"`` lists the real digest; another string lists that (to test
        a mismatch); ``None`` lists no hashes.
        """
        self._blobs[filename] = data
        url = f"../../files/{filename}" if relative_url else f"{self.url}/files/{filename}"
        hashes = {} if listed_sha256 is None else {"sha256": listed_sha256}
        if listed_sha256 == "auto":
            hashes = {"sha256": sha256(data)}
        normalized = re.sub(r"[-_.]+", "-", project).lower()
        self._projects.setdefault(normalized, _Project()).files.append(
            {"filename": filename, "url": url, "hashes": hashes, "size": len(data)}
        )

    def handle(self, h: _Handler, *, head: bool) -> None:
        """``/simple/{project}/`` -> JSON page; ``/files/{name}`` -> wheel bytes."""
        if h.path.startswith("/files/"):
            blob = self._blobs.get(h.path[len("/files/") :])
            if blob is None:
                self.send_status(h, 404)
                return
            self.send_bytes(h, blob, head=head)
            return
        match = re.match(r"^/simple/([^/]+)/$", h.path)
        project = self._projects.get(match.group(1)) if match else None
        if project is None:
            self.send_status(h, 404)
            return
        if "application/vnd.pypi.simple.v1+json" not in h.headers.get("Accept", ""):
            # Like a legacy index: HTML only.
            body = b"<html><body>legacy</body></html>"
            content_type = "text/html"
        else:
            page = {
                "meta": {"api-version": "1.1"},
                "name": match.group(1) if match else "",
                "files": project.files,
            }
            body = json.dumps(page).encode()
            content_type = "application/vnd.pypi.simple.v1+json"
        h.send_response(200)
        h.send_header("Content-Type", content_type)
        h.send_header("Content-Length", str(len(body)))
        h.end_headers()
        if not head:
            h.wfile.write(body)


def make_wheel(project: str, version: str, members: dict[str, bytes]) -> tuple[str, bytes]:
    """A minimal wheel (a zip) for ``project`` holding ``members``; returns (filename, bytes).

    Its ``__init__.py`` raises, so a test would notice if anything imported it.
    """
    dist = re.sub(r"[-_.]+", "_", project).lower()
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression=zipfile.ZIP_STORED) as zf:
        zf.writestr(f"{dist}/__init__.py", "raise RuntimeError('package code must not run')\n")
        for name, data in members.items():
            zf.writestr(name, data)
        zf.writestr(
            f"{dist}-{version}.dist-info/METADATA",
            f"Metadata-Version: 2.1\nName: {project}\nVersion: {version}\n",
        )
        zf.writestr(f"{dist}-{version}.dist-info/WHEEL", "Wheel-Version: 1.0\nTag: py3-none-any\n")
    return f"{dist}-{version}-py3-none-any.whl", buf.getvalue()


def make_chunk_wheels(
    payload: bytes, pattern: str, parts: int, version: str
) -> list[tuple[str, str, bytes]]:
    """Split ``payload`` into ``parts`` chunk wheels like the real PyPI mirrors.

    Package i (1-based, ``pattern`` with ``{n}``) holds ``<dist>/data/partII.bin``.
    Returns ``(project, filename, wheel_bytes)`` in order.
    """
    step = -(-len(payload) // parts)
    out = []
    for n in range(1, parts + 1):
        project = pattern.replace("{n}", str(n))
        dist = re.sub(r"[-_.]+", "_", project).lower()
        chunk = payload[(n - 1) * step : n * step]
        filename, data = make_wheel(project, version, {f"{dist}/data/part{n:02d}.bin": chunk})
        out.append((project, filename, data))
    return out
