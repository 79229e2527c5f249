"""A minimal synchronous LSP client over a subprocess's stdio (for command-line tests)."""

from __future__ import annotations

import json
import queue
import subprocess
import threading
from collections.abc import Callable
from typing import Any, Self

from lsprotocol.converters import get_converter


class LspPipe:
    """Start ``cmd``; send requests and notifications; read its messages in a thread."""

    def __init__(self, cmd: list[str], env: dict[str, str], timeout: float = 120.0) -> None:
        self.converter = get_converter()
        self.timeout = timeout
        self._proc = subprocess.Popen(
            cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env
        )
        self._messages: queue.Queue[dict[str, Any]] = queue.Queue()
        self._stderr: list[bytes] = []
        self._next_id = 0
        threading.Thread(target=self._read, daemon=True).start()
        threading.Thread(target=self._read_stderr, daemon=True).start()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        if self._proc.poll() is None:
            try:
                self._proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self._proc.kill()
                self._proc.wait()

    def _read(self) -> None:
        out = self._proc.stdout
        assert out is not None
        while True:
            length = 0
            while True:
                line = out.readline()
                if not line:
                    return
                if line in (b"\r\n", b"\n"):
                    break
                if line.lower().startswith(b"content-length:"):
                    length = int(line.split(b":")[1])
            self._messages.put(json.loads(out.read(length)))

    def _read_stderr(self) -> None:
        assert self._proc.stderr is not None
        for line in self._proc.stderr:
            self._stderr.append(line)

    def stderr_text(self) -> str:
        return b"".join(self._stderr).decode("utf-8", errors="replace")

    def _send(self, message: dict[str, Any]) -> None:
        body = json.dumps({"jsonrpc": "2.0", **message}).encode()
        assert self._proc.stdin is not None
        self._proc.stdin.write(b"Content-Length: %d\r\n\r\n" % len(body) + body)
        self._proc.stdin.flush()

    def notify(self, method: str, params: Any) -> None:
        self._send({"method": method, "params": params})

    def request(self, method: str, params: Any) -> Any:
        self._next_id += 1
        rid = self._next_id
        self._send({"id": rid, "method": method, "params": params})
        while True:
            msg = self._messages.get(timeout=self.timeout)
            if msg.get("id") == rid and "method" not in msg:
                assert "error" not in msg, msg["error"]
                return msg.get("result")
            if "method" in msg and "id" in msg:  # a request from the server: say yes
                self._send({"id": msg["id"], "result": None})

    def wait_notification(self, method: str, match: Callable[[Any], bool]) -> Any:
        while True:
            msg = self._messages.get(timeout=self.timeout)
            if msg.get("method") == method and "id" not in msg and match(msg.get("params")):
                return msg["params"]
            if "method" in msg and "id" in msg:
                self._send({"id": msg["id"], "result": None})


def complete_over_stdio(
    cmd: list[str], env: dict[str, str], uri: str, text: str, line: int, character: int
) -> tuple[str, str]:
    """Start the server ``cmd`` as Neovim would, open ``text`` as Python at ``uri``, wait
    for the model to be ready and ask once for an inline completion at (line, character).

    Returns the first item's text and everything the server wrote to stderr.
    """
    from lsprotocol import types
    from pytest_lsp import client_capabilities

    with LspPipe(cmd, env) as lsp:
        caps = client_capabilities("neovim")
        init = types.InitializeParams(capabilities=caps, process_id=None, root_uri=None)
        lsp.request("initialize", lsp.converter.unstructure(init))
        lsp.notify("initialized", {})
        lsp.notify(
            "textDocument/didOpen",
            {"textDocument": {"uri": uri, "languageId": "python", "version": 1, "text": text}},
        )
        status = lsp.wait_notification("coder-lsp/status", lambda p: p["state"] == "ready")
        assert status["state"] == "ready"
        params = {
            "textDocument": {"uri": uri},
            "position": {"line": line, "character": character},
            "context": {"triggerKind": 1},
        }
        got = lsp.request("textDocument/inlineCompletion", params)
        assert got["items"], got
        lsp.request("shutdown", None)
        lsp.notify("exit", None)
        return got["items"][0]["insertText"], lsp.stderr_text()
