"""Bad input for the latency machinery, over real LSP on tiny deterministic models.

A flood of requests, cancelling requests that already finished, didChange and didClose
arriving mid-generation, and a client that stops reading for a while: the server stays
responsive, its memory stays bounded, and it never answers a request with a completion
computed for another version of the document.

The *echo* model makes staleness visible: its completion depends on the last character
typed (after ``a`` it writes ``_a``, after ``b`` ``_b`` …), so an answer computed for an
older version of the line would end in the wrong letter.
"""

from __future__ import annotations

import asyncio
import os
import sys
from pathlib import Path

import pytest
import pytest_lsp
from lsprotocol import types
from pytest_lsp import ClientServerConfig, LanguageClient

from tests.e2e.rawlsp import RawClient
from tests.e2e.test_lsp import ENDLESS_OPTIONS, SOURCE, URI, inline, open_doc, start
from tests.tinymodel import write_tiny_model
from tests.waiting import HANG_GUARD_S

SERVER = ClientServerConfig(server_command=[sys.executable, "-m", "lsp_server", "--stdio"])
LETTERS = "abcdefgh"
LINE_PREFIX = "x = "


@pytest.fixture(scope="module")
def echo_model_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """After the byte ``c`` (one of LETTERS) the model writes ``_c``, then stops."""
    path = tmp_path_factory.mktemp("echo-model") / "echo.gguf"
    return write_tiny_model(path, {c: f"_{c}" for c in LETTERS})


@pytest_lsp.fixture(config=SERVER)
async def client(lsp_client: LanguageClient):
    """A bare client; each test initializes it."""
    yield
    await lsp_client.shutdown_session()


def rss_kb(pid: int) -> int:
    """Resident memory of a process, from /proc."""
    with open(f"/proc/{pid}/status", encoding="ascii") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise AssertionError("no VmRSS")


def type_char(client: LanguageClient, version: int, column: int, char: str) -> None:
    """didChange inserting ``char`` at line 0, ``column``."""
    pos = types.Position(line=0, character=column)
    client.text_document_did_change(
        types.DidChangeTextDocumentParams(
            text_document=types.VersionedTextDocumentIdentifier(uri=URI, version=version),
            content_changes=[
                types.TextDocumentContentChangePartial(
                    range=types.Range(start=pos, end=pos), text=char
                )
            ],
        )
    )


def request_at(client: LanguageClient, column: int, msg_id: str | None = None):
    params = types.InlineCompletionParams(
        text_document=types.TextDocumentIdentifier(uri=URI),
        position=types.Position(line=0, character=column),
        context=types.InlineCompletionContext(
            trigger_kind=types.InlineCompletionTriggerKind.Automatic
        ),
    )
    return asyncio.wrap_future(
        client.protocol.send_request(types.TEXT_DOCUMENT_INLINE_COMPLETION, params, msg_id=msg_id)
    )


def answer(result: types.InlineCompletionList | None) -> str:
    return result.items[0].insert_text if result is not None and result.items else ""


async def test_flood_of_requests_stays_responsive_bounded_and_never_stale(
    client: LanguageClient, echo_model_path: Path
) -> None:
    await start(client, "visual-studio-code", {"model": str(echo_model_path), "nThreads": 1})
    open_doc(client, LINE_PREFIX + "a\n")
    assert answer(await request_at(client, len(LINE_PREFIX) + 1)) == "_a"  # warm
    pid = client._server.pid  # type: ignore[union-attr]
    rss_before = rss_kb(pid)

    # 100 keystrokes + requests per second for 10 s, never waiting for an answer.
    loop = asyncio.get_running_loop()
    pending: list[tuple[str, asyncio.Future]] = []
    column = len(LINE_PREFIX) + 1
    t0 = loop.time()
    for i in range(1000):
        char = LETTERS[(i + 1) % len(LETTERS)]
        type_char(client, i + 2, column, char)
        column += 1
        pending.append((char, request_at(client, column)))
        await asyncio.sleep(max(0.0, t0 + (i + 1) / 100 - loop.time()))
    results = await asyncio.wait_for(asyncio.gather(*(f for _, f in pending)), timeout=30)

    stale = [(c, answer(r)) for (c, _), r in zip(pending, results, strict=True)]
    stale = [(c, a) for c, a in stale if a not in ("", f"_{c}")]
    assert stale == []
    assert answer(results[-1]) == f"_{pending[-1][0]}"  # the last one was not superseded
    # Still responsive: a fresh request is answered, and correctly.
    last_char = pending[-1][0]
    got = await asyncio.wait_for(request_at(client, column), timeout=HANG_GUARD_S)
    assert answer(got) == f"_{last_char}"
    assert rss_kb(pid) - rss_before < 100 * 1024  # bounded: no per-request growth


async def test_cancelling_requests_that_already_finished(
    client: LanguageClient, echo_model_path: Path
) -> None:
    await start(client, "neovim", {"model": str(echo_model_path), "nThreads": 1})
    open_doc(client, LINE_PREFIX + "b\n")
    for n in range(5):
        got = await request_at(client, len(LINE_PREFIX) + 1, msg_id=f"done-{n}")
        assert answer(got) == "_b"
        client.protocol.notify(types.CANCEL_REQUEST, types.CancelParams(id=f"done-{n}"))
    client.protocol.notify(types.CANCEL_REQUEST, types.CancelParams(id="never-sent"))
    type_char(client, 2, len(LINE_PREFIX) + 1, "c")
    got = await asyncio.wait_for(request_at(client, len(LINE_PREFIX) + 2), timeout=HANG_GUARD_S)
    assert answer(got) == "_c"


@pytest.mark.parametrize("event", ["change", "close"])
async def test_document_changes_or_closes_mid_generation(
    client: LanguageClient, endless_model_path: Path, event: str
) -> None:
    await start(client, "visual-studio-code", {"model": str(endless_model_path), **ENDLESS_OPTIONS})
    open_doc(client)
    first = asyncio.ensure_future(inline(client, 1, 4))
    # Sent right behind the request: the server handles it while the worker generates
    # "xxxx…" (about 2,000 tokens, until the context is full).
    await asyncio.sleep(0)
    if event == "change":
        client.text_document_did_change(
            types.DidChangeTextDocumentParams(
                text_document=types.VersionedTextDocumentIdentifier(uri=URI, version=2),
                content_changes=[types.TextDocumentContentChangeWholeDocument(text="y = 1\n")],
            )
        )
    else:
        client.text_document_did_close(
            types.DidCloseTextDocumentParams(text_document=types.TextDocumentIdentifier(uri=URI))
        )
    # The generation ends by its limits at the latest; its result belongs to a version
    # that no longer exists, so the answer is empty.
    got = await asyncio.wait_for(first, timeout=10)
    assert got is not None and not got.items
    if event == "close":
        open_doc(client, SOURCE)
    status = await asyncio.wait_for(
        client.workspace_execute_command_async(
            types.ExecuteCommandParams(command="coder-lsp.status")
        ),
        timeout=HANG_GUARD_S,
    )
    assert status["state"] == "ready"


async def test_client_that_stops_reading_for_a_while(echo_model_path: Path) -> None:
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "lsp_server",
        "--stdio",
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.DEVNULL,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    assert proc.stdin is not None and proc.stdout is not None
    client = RawClient(proc.stdout, proc.stdin)
    try:
        caps = {"textDocument": {"inlineCompletion": {}}}
        options = {"model": str(echo_model_path), "nThreads": 1}
        init = {"capabilities": caps, "initializationOptions": options}
        await client.response(client.request("initialize", init, msg_id=0))
        client.notify("initialized", {})
        doc = {"uri": URI, "languageId": "python", "version": 1, "text": LINE_PREFIX + "d\n"}
        client.notify("textDocument/didOpen", {"textDocument": doc})
        params = {
            "textDocument": {"uri": URI},
            "position": {"line": 0, "character": len(LINE_PREFIX) + 1},
            "context": {"triggerKind": 2},
        }
        # 600 requests (more answers than a pipe holds) while nobody reads stdout.
        for msg_id in range(1, 601):
            client.request("textDocument/inlineCompletion", params, msg_id=msg_id)
        await proc.stdin.drain()
        await asyncio.sleep(2.0)
        assert proc.returncode is None  # still running
        # Reading again: every request is answered, and a new one too.
        seen: set[int] = set()
        while len(seen) < 600:
            message = await client.read_message()
            assert message is not None, "the server closed stdout"
            if isinstance(message.get("id"), int) and "method" not in message:
                seen.add(message["id"])
        reply = await client.response(
            client.request("textDocument/inlineCompletion", params, msg_id=1000)
        )
        items = reply["result"]["items"]
        assert items and items[0]["insertText"] == "_d"
    finally:
        proc.kill()
        await proc.wait()
