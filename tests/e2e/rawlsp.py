"""A raw LSP client for hostile-input tests: it writes exact bytes (broken frames too)
and reads whatever the server answers, over a real ``python -m lsp_server`` process."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import sys
import tempfile
from pathlib import Path
from typing import Any

from tests.tinymodel import DEFAULT_COMPLETION

SOURCE = "def add(a, b):\n    \n"
"""A document whose completion at (1, 4) by the tiny model is DEFAULT_COMPLETION."""
TIMEOUT = 30.0


def frame(msg: dict[str, Any] | bytes) -> bytes:
    """One correctly framed message."""
    body = msg if isinstance(msg, bytes) else json.dumps(msg).encode()
    return b"Content-Length: %d\r\n\r\n" % len(body) + body


def rss_kb(pid: int) -> int:
    """Resident memory of a process, from /proc."""
    with open(f"/proc/{pid}/status", encoding="ascii") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise AssertionError("no VmRSS")


class RawClient:
    """Frames in both directions by hand; keeps every message the server sent."""

    def __init__(self, reader: asyncio.StreamReader, writer: Any) -> None:
        self.reader = reader
        self.writer = writer
        self.received: list[dict[str, Any]] = []
        self._next_id = 1000

    def write(self, data: bytes) -> None:
        """Send raw bytes."""
        self.writer.write(data)

    def send(self, msg: dict[str, Any]) -> None:
        """Send one well-framed message."""
        self.write(frame(msg))

    def request(self, method: str, params: Any = None, msg_id: int | None = None) -> int:
        """Send a request; its id."""
        if msg_id is None:
            self._next_id += 1
            msg_id = self._next_id
        msg: dict[str, Any] = {"jsonrpc": "2.0", "id": msg_id, "method": method}
        if params is not None:
            msg["params"] = params
        self.send(msg)
        return msg_id

    def notify(self, method: str, params: Any = None) -> None:
        """Send a notification."""
        msg: dict[str, Any] = {"jsonrpc": "2.0", "method": method}
        if params is not None:
            msg["params"] = params
        self.send(msg)

    async def read_message(self, timeout: float = TIMEOUT) -> dict[str, Any] | None:
        """The next message from the server; None at end of stream."""

        async def read() -> dict[str, Any] | None:
            length = None
            while True:
                line = await self.reader.readline()
                if not line:
                    return None
                if line in (b"\r\n", b"\n"):
                    break
                name, _, value = line.decode().partition(":")
                if name.strip().lower() == "content-length":
                    length = int(value)
            assert length is not None, "the server sent a frame without Content-Length"
            return json.loads(await self.reader.readexactly(length))

        msg = await asyncio.wait_for(read(), timeout)
        if msg is not None:
            self.received.append(msg)
            if "method" in msg and "id" in msg:  # a server request: accept it
                self.send({"jsonrpc": "2.0", "id": msg["id"], "result": None})
        return msg

    async def response(self, msg_id: Any, timeout: float = TIMEOUT) -> dict[str, Any]:
        """Wait for the response to ``msg_id`` (other messages are kept)."""
        for msg in self.received:
            if msg.get("id") == msg_id and "method" not in msg:
                return msg
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            msg = await self.read_message(max(0.1, deadline - loop.time()))
            if msg is None:
                raise AssertionError(f"the server closed the stream before answering {msg_id}")
            if msg.get("id") == msg_id and "method" not in msg:
                return msg

    async def initialize(
        self, model: Path, root_uri: str | None = None, **options: Any
    ) -> dict[str, Any]:
        """initialize + initialized with the given model."""
        msg_id = self.request(
            "initialize",
            {
                "processId": None,
                "rootUri": root_uri,
                "capabilities": {},
                "initializationOptions": {"model": str(model), "nThreads": 1, **options},
            },
        )
        result = await self.response(msg_id)
        self.notify("initialized", {})
        return result

    def open(self, uri: str, text: str = SOURCE, language: str = "python") -> None:
        """didOpen."""
        self.notify(
            "textDocument/didOpen",
            {"textDocument": {"uri": uri, "languageId": language, "version": 1, "text": text}},
        )

    async def complete(self, uri: str, line: int = 1, character: int = 4) -> str:
        """An invoked inline completion's text ("" when there is none)."""
        msg_id = self.request(
            "textDocument/inlineCompletion",
            {
                "textDocument": {"uri": uri},
                "position": {"line": line, "character": character},
                "context": {"triggerKind": 1},
            },
        )
        got = await self.response(msg_id)
        assert "result" in got, got
        items = got["result"]["items"]
        return items[0]["insertText"] if items else ""

    async def still_completes(self, uri: str = "file:///tmp/known/add.py") -> None:
        """The server answers a fresh document's completion correctly."""
        self.open(uri)
        assert await self.complete(uri) == DEFAULT_COMPLETION


class StdioServer(RawClient):
    """A real server process over stdio."""

    def __init__(self, proc: asyncio.subprocess.Process) -> None:
        assert proc.stdout is not None and proc.stdin is not None
        super().__init__(proc.stdout, proc.stdin)
        self.proc = proc

    log_path: str | None = None

    @classmethod
    async def start(cls, *args: str, env: dict[str, str] | None = None) -> StdioServer:
        """Start ``python -m lsp_server --stdio`` (stderr goes to a pipe we drain).

        After ``initialize`` the server sends its log to the client (``window/logMessage``)
        instead of stderr; a ``--log-file`` keeps a copy that :attr:`stderr` includes, so
        tests read one log whatever the phase.
        """
        log_path = None
        if "--log-file" not in args:
            with tempfile.NamedTemporaryFile(
                prefix="coder-lsp-test-", suffix=".log", delete=False
            ) as f:
                log_path = f.name
            args = (*args, "--log-file", log_path)
        proc = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "lsp_server",
            "--stdio",
            *args,
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            limit=2**26,
            env={**os.environ, **(env or {})},
        )
        server = cls(proc)
        server.log_path = log_path
        server._stderr = b""
        server._stderr_task = asyncio.ensure_future(server._drain_stderr())
        return server

    @property
    def stderr(self) -> bytes:
        """What the server wrote to stderr, then its log file (the last 200,000 bytes)."""
        logged = b""
        if self.log_path is not None:
            with contextlib.suppress(OSError):
                logged = Path(self.log_path).read_bytes()[-200_000:]
        return self._stderr + logged

    async def _drain_stderr(self) -> None:
        assert self.proc.stderr is not None
        while chunk := await self.proc.stderr.read(65536):
            self._stderr = (self._stderr + chunk)[-200_000:]

    async def drain(self) -> None:
        """Wait until what was written reached the pipe."""
        await self.writer.drain()

    @property
    def rss_kb(self) -> int:
        """The server's resident memory."""
        return rss_kb(self.proc.pid)

    async def wait_exit(self, timeout: float = TIMEOUT) -> int:
        """The exit code, once the process ends."""
        code = await asyncio.wait_for(self.proc.wait(), timeout)
        with contextlib.suppress(Exception):
            await asyncio.wait_for(self._stderr_task, 5)
        return code

    async def close(self) -> None:
        """End the process whatever state it is in (and remove its log file)."""
        if self.proc.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                self.proc.kill()
            await self.proc.wait()
        with contextlib.suppress(Exception):
            await asyncio.wait_for(self._stderr_task, 5)
        if self.log_path is not None:
            with contextlib.suppress(OSError):
                os.unlink(self.log_path)
            self.log_path = None
