"""Inputs that used to poison the server's state (issue 16, rows 2, 7 and 18): settings
beyond sane bounds are lowered with a message, and one odd document (a ``%00`` URI, a lone
surrogate) never breaks completions in the others."""

from __future__ import annotations

import asyncio
import json
import os
from pathlib import Path

from tests.e2e.rawlsp import StdioServer
from tests.tinymodel import DEFAULT_COMPLETION


async def _messages(server: StdioServer, needle: str, timeout: float = 10) -> list[str]:
    """showMessage texts seen so far (waiting up to ``timeout`` for one with ``needle``)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        texts = [
            m["params"]["message"]
            for m in server.received
            if m.get("method") == "window/showMessage"
        ]
        if any(needle in t for t in texts) or loop.time() > deadline:
            return texts
        try:
            await server.read_message(max(0.1, deadline - loop.time()))
        except TimeoutError:
            return texts


async def test_row02_a_huge_thread_count_is_lowered_and_completions_work(tiny_model_path):
    server = await StdioServer.start()
    try:
        await server.initialize(tiny_model_path, nThreads=100_000, nCtx=10**9, cacheSize=10**9)
        await _messages(server, "nThreads")
        texts = await _messages(server, "cacheSize")
        cpus = len(os.sched_getaffinity(0))
        assert any(f"'nThreads': 100000 is more than {cpus}" in t for t in texts), texts
        assert any("'nCtx'" in t for t in texts), texts
        await server.still_completes()
        # The same through didChangeConfiguration.
        server.notify("workspace/didChangeConfiguration", {"settings": {"nThreads": 10_000}})
        texts = await _messages(server, "10000 is more than")
        assert any("10000 is more than" in t for t in texts), texts
        await server.still_completes("file:///tmp/known/again.py")
        assert server.proc.returncode is None
    finally:
        await server.close()


async def test_row07_a_nul_in_one_uri_breaks_no_other_document(tiny_model_path, tmp_path: Path):
    (tmp_path / "lib.py").write_text("def helper(x):\n    return x\n")
    server = await StdioServer.start()
    try:
        await server.initialize(tiny_model_path, root_uri=tmp_path.as_uri())
        server.open("file:///tmp/outside%00evil.py")
        server.open("file:///tmp/also%2500odd.py")
        uri = (tmp_path / "main.py").as_uri()
        server.open(uri)
        for _ in range(3):
            assert await server.complete(uri) == DEFAULT_COMPLETION
        # The odd document itself answers (empty or not), never with an error.
        got = await server.response(
            server.request(
                "textDocument/inlineCompletion",
                {
                    "textDocument": {"uri": "file:///tmp/outside%00evil.py"},
                    "position": {"line": 1, "character": 4},
                    "context": {"triggerKind": 1},
                },
            )
        )
        assert "result" in got, got
    finally:
        await server.close()


async def test_row18_a_lone_surrogate_in_a_document_is_harmless(tiny_model_path, tmp_path):
    server = await StdioServer.start()
    try:
        await server.initialize(tiny_model_path, root_uri=tmp_path.as_uri())
        uri = (tmp_path / "odd.py").as_uri()
        # json.dumps writes the lone surrogate as the escape "\ud800", as a client would.
        server.open(uri, "s = '\ud800'\ndef add(a, b):\n    \n")
        assert "\\ud800" in json.dumps({"t": "\ud800"})
        assert await server.complete(uri, line=2, character=4) == DEFAULT_COMPLETION
        server.notify(
            "textDocument/didChange",
            {
                "textDocument": {"uri": uri, "version": 2},
                "contentChanges": [
                    {
                        "range": {
                            "start": {"line": 0, "character": 0},
                            "end": {"line": 0, "character": 0},
                        },
                        "text": "\udfff# ",
                    }
                ],
            },
        )
        assert await server.complete(uri, line=2, character=4) == DEFAULT_COMPLETION
        await server.still_completes()
    finally:
        await server.close()
