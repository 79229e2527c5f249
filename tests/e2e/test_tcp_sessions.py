"""``--tcp`` done safely (issue 16, rows 11 and 12): one client at a time, each with a
fresh server, a client leaving never ends the server nor leaks into the next session,
loopback only unless a token is set, clean errors for bad addresses, and a client that
never reads its replies cannot grow the server's memory."""

from __future__ import annotations

import asyncio
import os
import socket
import subprocess
import sys
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from tests.e2e.rawlsp import RawClient, rss_kb
from tests.tinymodel import DEFAULT_COMPLETION

TOKEN = "a-test-token-of-some-length-0123"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class TcpServer:
    """A ``--tcp`` server process on a free loopback port."""

    def __init__(self, *extra: str, env: dict[str, str] | None = None) -> None:
        self.port = _free_port()
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "lsp_server", "--tcp", f"127.0.0.1:{self.port}", *extra],
            stderr=subprocess.DEVNULL,
            env={**os.environ, **(env or {})},
        )

    async def connect(self) -> RawClient:
        for _ in range(200):
            try:
                reader, writer = await asyncio.open_connection("127.0.0.1", self.port, limit=2**24)
                return RawClient(reader, writer)
            except OSError:
                await asyncio.sleep(0.05)
        raise AssertionError("the server never listened")

    def close(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


@pytest.fixture
def tcp_server() -> Iterator[TcpServer]:
    server = TcpServer()
    yield server
    server.close()


@pytest.fixture
async def client_a(tcp_server: TcpServer, tiny_model_path: Path) -> AsyncIterator[RawClient]:
    client = await tcp_server.connect()
    await client.initialize(tiny_model_path)
    client.open("file:///tmp/session-a/secret_a.py", "def add(a, b):\n    \n# A's secret\n")
    assert await client.complete("file:///tmp/session-a/secret_a.py") == DEFAULT_COMPLETION
    yield client
    client.writer.close()


async def test_row12_a_second_client_is_refused_and_the_first_is_unaffected(tcp_server, client_a):
    second = await tcp_server.connect()
    note = await second.read_message(10)
    assert note is not None and note["method"] == "window/showMessage"
    assert "one client at a time" in note["params"]["message"]
    assert await second.read_message(10) is None  # closed
    # A's answers still reach A, and only A.
    assert await client_a.complete("file:///tmp/session-a/secret_a.py") == DEFAULT_COMPLETION


async def test_row12_a_client_leaving_neither_ends_the_server_nor_leaks_into_the_next(
    tcp_server, client_a, tiny_model_path
):
    client_a.writer.close()  # gone without shutdown or exit
    client_b = await _connect_when_free(tcp_server)
    assert tcp_server.proc.poll() is None
    await client_b.initialize(tiny_model_path)
    # A's document is not open in B's session: nothing of it can come back.
    assert await client_b.complete("file:///tmp/session-a/secret_a.py") == ""
    await client_b.still_completes("file:///tmp/session-b/b.py")
    await client_b.response(client_b.request("shutdown"))
    client_b.notify("exit")
    assert await client_b.read_message(10) is None
    assert tcp_server.proc.poll() is None  # exit ended the session, not the server
    client_c = await _connect_when_free(tcp_server)
    await client_c.initialize(tiny_model_path)
    await client_c.still_completes()


async def _connect_when_free(server: TcpServer) -> RawClient:
    """Connect once the previous session has been closed (it may take a moment)."""
    for _ in range(100):
        client = await server.connect()
        client.request("coder-lsp/probe", {}, msg_id="probe")
        msg = await client.read_message(10)
        if msg is not None and msg.get("id") == "probe":
            return client
        client.writer.close()
        await asyncio.sleep(0.1)
    raise AssertionError("the previous session never ended")


async def test_row12_a_token_protected_server_refuses_clients_without_it(tiny_model_path):
    server = TcpServer("--auth-token-env", "CODER_TEST_TOKEN", env={"CODER_TEST_TOKEN": TOKEN})
    try:
        client = await server.connect()
        got = await client.response(
            client.request("initialize", {"processId": None, "capabilities": {}})
        )
        assert got["error"]["code"] == -32001
        assert await client.read_message(10) is None
        client = await _connect_when_free_with_token(server, tiny_model_path)
        await client.still_completes()
    finally:
        server.close()


async def _connect_when_free_with_token(server: TcpServer, model: Path) -> RawClient:
    for _ in range(100):
        client = await server.connect()
        try:
            await client.initialize(model, authToken=TOKEN)
            return client
        except AssertionError:
            client.writer.close()
            await asyncio.sleep(0.1)
    raise AssertionError("never authenticated")


@pytest.mark.parametrize(
    ("address", "extra", "expected"),
    [
        ("0.0.0.0:{port}", [], "refusing to listen beyond this machine"),
        ("[::]:{port}", [], "refusing to listen beyond this machine"),
        ("0.0.0.0:{port}", ["--allow-remote"], "refusing to listen beyond this machine"),
        ("127.0.0.1:99999", [], "port from 1 to 65535"),
        ("127.0.0.1:http", [], "port from 1 to 65535"),
        ("no-port", [], "HOST:PORT"),
        ("127.0.0.1:{port}", ["--auth-token-env", "CODER_NO_SUCH_VAR"], "at least 16"),
    ],
)
def test_row12_bad_or_unsafe_addresses_give_one_clean_error(address, extra, expected):
    proc = subprocess.run(
        [sys.executable, "-m", "lsp_server", "--tcp", address.format(port=_free_port()), *extra],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 2
    assert expected in proc.stderr
    assert "Traceback" not in proc.stderr


async def test_row12_a_model_path_error_does_not_reveal_the_file(tmp_path, tcp_server):
    secret = tmp_path / "secret.gguf"
    secret.write_bytes(b"PASSWORD=hunter2" + b"\0" * 64)
    client = await tcp_server.connect()
    await client.initialize(secret)
    got = await client.response(
        client.request("workspace/executeCommand", {"command": "coder-lsp.status"})
    )
    for _ in range(50):
        if got["result"]["state"] == "failed":
            break
        await asyncio.sleep(0.1)
        got = await client.response(
            client.request("workspace/executeCommand", {"command": "coder-lsp.status"})
        )
    assert "not a GGUF model file" in got["result"]["error"]
    seen = repr(client.received)
    assert "PASS" not in seen and "hunter" not in seen


async def test_row11_a_tcp_client_that_never_reads_cannot_grow_memory(tcp_server, client_a):
    pid = tcp_server.proc.pid
    before = rss_kb(pid)
    count = 400
    big = "i" * 100_000  # each reply echoes its 100 KB id: 40 MB unread if nothing pushed back

    async def send_all() -> None:
        for i in range(count):
            client_a.request("coder-lsp/none", {}, msg_id=f"{big}{i}")
            await client_a.writer.drain()

    sender = asyncio.ensure_future(send_all())
    await asyncio.sleep(3)  # not reading meanwhile
    grown = rss_kb(pid) - before
    answered = set()
    while len(answered) < count:
        msg = await client_a.read_message(30)
        assert msg is not None
        if isinstance(msg.get("id"), str) and msg["id"].startswith(big):
            assert msg["error"]["code"] == -32601
            answered.add(msg["id"])
    await asyncio.wait_for(sender, 30)
    assert grown < 25_000, grown
