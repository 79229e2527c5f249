"""A hostile or broken client over stdio: every request is answered exactly once with the
right JSON-RPC error, a bad frame never leaves the server deaf, memory stays bounded and
``exit`` reports whether ``shutdown`` came first (issue 16, rows 1, 4, 5, 6 and 11)."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from tests.e2e.rawlsp import StdioServer, frame
from tests.tinymodel import DEFAULT_COMPLETION

URI = "file:///tmp/hostile/add.py"


@pytest.fixture
async def server(tiny_model_path: Path) -> AsyncIterator[StdioServer]:
    """An initialized server with URI open."""
    srv = await StdioServer.start()
    await srv.initialize(tiny_model_path)
    srv.open(URI)
    assert await srv.complete(URI) == DEFAULT_COMPLETION
    yield srv
    await srv.close()


def error_code(msg: dict) -> int | None:
    return msg.get("error", {}).get("code")


# -- row 1: a huge Content-Length ----------------------------------------------------------
async def test_row01_huge_content_length_is_refused_and_the_server_lives_on(server):
    rss_before = server.rss_kb
    server.write(b"Content-Length: 1000000000000\r\n\r\n")
    server.write(b"Content-Length: 99999999999999999999999\r\n\r\n")
    await server.still_completes()
    assert server.proc.returncode is None
    assert server.rss_kb - rss_before < 50_000


# -- row 4: requests that fail validation, malformed JSON, after shutdown -------------------
BAD_PARAMS = [
    {"position": {"line": -1, "character": 0}},
    {"position": {"line": 2**31, "character": 0}},
    {"position": {"line": 0, "character": -5}},
    {"position": {"line": 0, "character": None}},
    {"position": None},
    {"context": None},
    {"context": {"triggerKind": 99}},
    {"textDocument": None},
    {"textDocument": []},
]


@pytest.mark.parametrize("change", BAD_PARAMS, ids=lambda c: json.dumps(c))
async def test_row04_invalid_params_get_invalid_params(server, change):
    params = {
        "textDocument": {"uri": URI},
        "position": {"line": 1, "character": 4},
        "context": {"triggerKind": 1},
    }
    params.update(change)
    params = {k: v for k, v in params.items() if v is not None or k != "context"}
    if change.get("position", 0) is None:
        params.pop("position")
    msg_id = server.request("textDocument/inlineCompletion", params)
    got = await server.response(msg_id)
    assert error_code(got) == -32602, got
    assert "traceback" not in json.dumps(got)
    assert await server.complete(URI) == DEFAULT_COMPLETION


async def test_row04_malformed_json_gets_a_parse_error_with_its_id(server):
    server.write(frame(b'{"jsonrpc": "2.0", "id": 77, "method": "shutdown", "params": {,}'))
    assert error_code(await server.response(77)) == -32700
    server.write(frame(b"\xff\xfe not json at all"))
    server.write(frame(b"[1, 2, 3]"))
    server.write(frame(b'{"id": 78, "method": "shutdown"}'))  # no "jsonrpc"
    assert error_code(await server.response(78)) == -32600
    server.write(frame(b'{"jsonrpc": "2.0", "id": 79, "method": 5}'))
    assert error_code(await server.response(79)) == -32600
    server.write(frame(b"[" * 100_000 + b"]" * 100_000))
    server.request("no/such/method", {}, msg_id=80)
    assert error_code(await server.response(80)) == -32601
    await server.still_completes()
    nulls = [m for m in server.received if "id" in m and m["id"] is None]
    assert {error_code(m) for m in nulls} <= {-32700, -32600}
    assert len(nulls) == 3  # the bytes, the array and the deep nesting


async def test_row04_requests_after_shutdown_get_invalid_request(server):
    got = await server.response(server.request("shutdown"))
    assert got.get("result", "missing") is None
    for method in ("textDocument/inlineCompletion", "shutdown", "initialize", "x/y"):
        got = await server.response(server.request(method, {}))
        assert error_code(got) == -32600, (method, got)
    server.notify("exit")
    assert await server.wait_exit() == 0


# -- row 5: a wrong Content-Length never deafens the server ---------------------------------
def completion_body(msg_id: int) -> bytes:
    return json.dumps(
        {
            "jsonrpc": "2.0",
            "id": msg_id,
            "method": "textDocument/inlineCompletion",
            "params": {
                "textDocument": {"uri": URI},
                "position": {"line": 1, "character": 4},
                "context": {"triggerKind": 1},
            },
        }
    ).encode()


async def test_row05_content_length_too_short_is_answered_and_resynchronised(server):
    body = completion_body(501)
    server.write(b"Content-Length: %d\r\n\r\n" % (len(body) - 10) + body)
    assert error_code(await server.response(501)) == -32700
    assert await server.complete(URI) == DEFAULT_COMPLETION


async def test_row05_content_length_too_long_is_answered_and_resynchronised(server):
    body = completion_body(502)
    server.write(b"Content-Length: %d\r\n\r\n" % (len(body) + 100) + body)
    # The client waits here: the server must not wait for 100 bytes that never come.
    got = await server.response(502)
    assert got["result"]["items"][0]["insertText"] == DEFAULT_COMPLETION
    # ... and when the next frame follows at once, it is not swallowed either.
    body = completion_body(503)
    server.write(
        b"Content-Length: %d\r\n\r\n" % (len(body) + 100) + body + frame(completion_body(504))
    )
    assert "result" in await server.response(503)
    assert "result" in await server.response(504)
    assert await server.complete(URI) == DEFAULT_COMPLETION


async def test_row05_negative_or_garbage_content_length_does_not_deafen(server):
    server.write(b"Content-Length: -20\r\n\r\n" + completion_body(505))
    assert "result" in await server.response(505)
    server.write(b"Content-Length: twelve\r\n\r\nsome garbage without a header\r\n")
    server.write(b"garbage\x00\xff" + frame(completion_body(506)))
    assert "result" in await server.response(506)
    assert await server.complete(URI) == DEFAULT_COMPLETION


# -- row 6: exit codes ----------------------------------------------------------------------
async def test_row06_exit_without_shutdown_exits_1(tiny_model_path):
    srv = await StdioServer.start()
    try:
        await srv.initialize(tiny_model_path)
        srv.notify("exit")
        assert await srv.wait_exit() == 1
    finally:
        await srv.close()


async def test_row06_exit_after_shutdown_exits_0_even_with_a_generation_running(
    endless_model_path,
):
    srv = await StdioServer.start()
    try:
        await srv.initialize(endless_model_path, maxTokens=100_000, maxPredictMs=None)
        srv.open(URI)
        srv.request(
            "textDocument/inlineCompletion",
            {
                "textDocument": {"uri": URI},
                "position": {"line": 1, "character": 4},
                "context": {"triggerKind": 1},
            },
        )
        await srv.response(srv.request("shutdown"))
        srv.notify("exit")
        assert await srv.wait_exit() == 0
    finally:
        await srv.close()


# -- row 11: bounded memory on a huge header line -------------------------------------------
async def test_row11_a_200mb_header_line_does_not_grow_memory(server):
    rss_before = server.rss_kb
    chunk = b"X" * (1 << 20)
    for _ in range(200):
        server.write(chunk)
        await server.drain()
    server.write(b"\r\n")
    peak = server.rss_kb
    await server.still_completes()
    assert peak - rss_before < 30_000, (rss_before, peak)


async def test_row11_an_endless_body_without_length_is_bounded(server):
    rss_before = server.rss_kb
    server.write(b"Content-Length: 1000000000000\r\n\r\n" + b'{"a": "')
    chunk = b"y" * (1 << 20)
    for _ in range(150):
        server.write(chunk)
        await server.drain()
    server.write(b'"}')
    await server.still_completes()
    assert server.rss_kb - rss_before < 200_000  # at most one MAX_BODY (64 MiB) kept


async def test_row05_a_header_without_its_body_does_not_swallow_the_next_frame(server):
    server.write(b"Content-Length: 29\r\n\r\n")
    await server.drain()
    assert await server.complete(URI) == DEFAULT_COMPLETION


async def test_row11_notifications_leave_nothing_behind(server):
    """pygls kept a future per notification forever: 20,000 keystrokes grew ~30 MB."""

    def keystroke(version: int) -> dict:
        pos = {"line": 0, "character": 0}
        return {
            "jsonrpc": "2.0",
            "method": "textDocument/didChange",
            "params": {
                "textDocument": {"uri": URI, "version": version},
                "contentChanges": [{"range": {"start": pos, "end": pos}, "text": "#"}],
            },
        }

    for version in range(2, 1002):  # warm-up: allocator pools settle
        server.send(keystroke(version))
    await server.still_completes()
    rss_before = server.rss_kb
    for version in range(1002, 21002):
        server.send(keystroke(version))
        if version % 1000 == 0:
            await server.drain()
    await server.still_completes("file:///tmp/known/after.py")
    assert server.rss_kb - rss_before < 8_000, server.rss_kb - rss_before
