"""``coder-lsp --tcp HOST:PORT`` speaks the same protocol over a socket."""

from __future__ import annotations

import asyncio
import json
import socket
import subprocess
import sys

from tests.tinymodel import DEFAULT_COMPLETION


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


async def _send(writer: asyncio.StreamWriter, msg: dict) -> None:
    body = json.dumps(msg).encode()
    writer.write(b"Content-Length: %d\r\n\r\n" % len(body) + body)
    await writer.drain()


async def _read(reader: asyncio.StreamReader) -> dict:
    length = 0
    while (line := await reader.readline()) not in (b"\r\n", b""):
        if line.lower().startswith(b"content-length:"):
            length = int(line.split(b":")[1])
    return json.loads(await reader.readexactly(length))


async def _response(reader: asyncio.StreamReader, msg_id: int) -> dict:
    while True:
        msg = await asyncio.wait_for(_read(reader), timeout=30)
        if msg.get("id") == msg_id and "method" not in msg:
            return msg
        if "method" in msg and "id" in msg:  # a server request (progress create): accept it
            pass


async def test_tcp_transport(tiny_model_path):
    port = _free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "lsp_server", "--tcp", f"127.0.0.1:{port}", "--n-threads", "1"],
        stderr=subprocess.DEVNULL,
    )
    try:
        for _ in range(100):
            try:
                reader, writer = await asyncio.open_connection("127.0.0.1", port)
                break
            except OSError:
                await asyncio.sleep(0.1)
        else:
            raise AssertionError("server never listened")
        await _send(
            writer,
            {
                "jsonrpc": "2.0",
                "id": 1,
                "method": "initialize",
                "params": {
                    "processId": None,
                    "rootUri": None,
                    "capabilities": {},
                    "initializationOptions": {"model": str(tiny_model_path)},
                },
            },
        )
        init = await _response(reader, 1)
        assert "inlineCompletionProvider" in init["result"]["capabilities"]
        await _send(writer, {"jsonrpc": "2.0", "method": "initialized", "params": {}})
        uri = "file:///tmp/tcp/add.py"
        await _send(
            writer,
            {
                "jsonrpc": "2.0",
                "method": "textDocument/didOpen",
                "params": {
                    "textDocument": {
                        "uri": uri,
                        "languageId": "python",
                        "version": 1,
                        "text": "def add(a, b):\n    \n",
                    }
                },
            },
        )
        await _send(
            writer,
            {
                "jsonrpc": "2.0",
                "id": 2,
                "method": "textDocument/inlineCompletion",
                "params": {
                    "textDocument": {"uri": uri},
                    "position": {"line": 1, "character": 4},
                    "context": {"triggerKind": 1},
                },
            },
        )
        got = await _response(reader, 2)
        assert got["result"]["items"][0]["insertText"] == DEFAULT_COMPLETION
        writer.close()
    finally:
        proc.terminate()
        proc.wait(timeout=10)
