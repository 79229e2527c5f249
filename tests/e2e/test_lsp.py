"""End to end over real LSP: ``coder-lsp --stdio`` as a subprocess, driven by pytest-lsp with
the client capabilities of VS Code, Neovim and Emacs (eglot), on the tiny deterministic model.
"""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

import pytest
import pytest_lsp
from lsprotocol import types
from pytest_lsp import ClientServerConfig, LanguageClient, client_capabilities

from tests.tinymodel import DEFAULT_COMPLETION

SERVER = ClientServerConfig(server_command=[sys.executable, "-m", "lsp_server", "--stdio"])
CLIENTS = ["visual-studio-code", "neovim", "emacs"]
ENDLESS_OPTIONS = {"maxTokens": 100000, "timeBudgetMs": None, "nThreads": 1}

SOURCE = "def add(a, b):\n    \n\nprint(add(1, 2))\n"
URI = "file:///tmp/coder-lsp-e2e/add.py"


@pytest_lsp.fixture(config=SERVER)
async def client(lsp_client: LanguageClient):
    """A bare client; each test initializes it with the options it needs."""
    yield
    await lsp_client.shutdown_session()


async def start(
    client: LanguageClient, spec: str, options: dict | None, **caps_overrides
) -> types.InitializeResult:
    """Initialize with a real editor's capabilities and wait for every progress to end."""
    caps = client_capabilities(spec)
    for key, value in caps_overrides.items():
        setattr(caps, key, value)
    result = await client.initialize_session(
        types.InitializeParams(capabilities=caps, initialization_options=options)
    )
    await wait_progress_done(client)
    return result


async def wait_progress_done(client: LanguageClient, timeout: float = 30.0) -> None:
    """Wait until every $/progress the server began has ended."""

    def pending() -> bool:
        if not client.progress_reports:
            return True  # not created yet: the load starts right after `initialized`
        return any(
            not reports or not isinstance(reports[-1], types.WorkDoneProgressEnd)
            for reports in client.progress_reports.values()
        )

    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while pending():
        if loop.time() > deadline:
            raise AssertionError(f"progress never ended: {client.progress_reports}")
        await asyncio.sleep(0.02)


def open_doc(client: LanguageClient, text: str = SOURCE, uri: str = URI, lang: str = "python"):
    client.text_document_did_open(
        types.DidOpenTextDocumentParams(
            text_document=types.TextDocumentItem(uri=uri, language_id=lang, version=1, text=text)
        )
    )


def inline_params(line: int, character: int, uri: str = URI) -> types.InlineCompletionParams:
    return types.InlineCompletionParams(
        text_document=types.TextDocumentIdentifier(uri=uri),
        position=types.Position(line=line, character=character),
        context=types.InlineCompletionContext(
            trigger_kind=types.InlineCompletionTriggerKind.Invoked
        ),
    )


async def inline(
    client: LanguageClient, line: int, character: int, uri: str = URI
) -> types.InlineCompletionList | None:
    return await client.text_document_inline_completion_async(inline_params(line, character, uri))


@pytest.mark.parametrize("spec", CLIENTS)
async def test_inline_completion_for_each_editor(client: LanguageClient, tiny_model_path, spec):
    result = await start(client, spec, {"model": str(tiny_model_path), "nThreads": 1})
    caps = result.capabilities
    assert caps.inline_completion_provider is not None
    assert caps.completion_provider is not None
    open_doc(client)
    got = await inline(client, 1, 4)
    assert got is not None and got.items
    assert got.items[0].insert_text == DEFAULT_COMPLETION
    cursor = types.Position(line=1, character=4)  # explicit: VS Code reads none as the word
    assert got.items[0].range == types.Range(start=cursor, end=cursor)


async def test_log_reaches_the_client_with_its_level(client: LanguageClient, tiny_model_path):
    """The server's log goes to window/logMessage typed by level (INFO as Info, WARNING as
    Warning), not to stderr, which editors show as errors."""
    await start(
        client,
        "visual-studio-code",
        {"model": str(tiny_model_path), "nThreads": 1, "logLevel": "info"},
    )
    open_doc(client)
    await inline(client, 1, 4)
    for _ in range(100):  # the "complete" line is logged just before the answer is sent
        if any("complete add.py" in m.message for m in client.log_messages):
            break
        await asyncio.sleep(0.02)
    by_text = {m.message: m.type for m in client.log_messages}
    completed = [t for m, t in by_text.items() if "complete add.py:1:4" in m]
    assert completed == [types.MessageType.Info], by_text
    loaded = {t for m, t in by_text.items() if "loaded" in m and "in " in m}
    assert loaded == {types.MessageType.Info}, by_text
    # llama.cpp's own warning about the tiny model's vocabulary, through the log.
    warned = [t for m, t in by_text.items() if "special_eot_id" in m]
    assert warned == [types.MessageType.Warning], by_text
    assert all(m.startswith("lsp_server.") for m in by_text), by_text


@pytest.mark.parametrize("spec", CLIENTS)
async def test_completion_popup_has_the_same_text(client: LanguageClient, tiny_model_path, spec):
    await start(client, spec, {"model": str(tiny_model_path), "nThreads": 1})
    open_doc(client)
    got = await client.text_document_completion_async(
        types.CompletionParams(
            text_document=types.TextDocumentIdentifier(uri=URI),
            position=types.Position(line=1, character=4),
        )
    )
    assert isinstance(got, types.CompletionList) and len(got.items) == 1
    edit = got.items[0].text_edit
    assert isinstance(edit, types.TextEdit)
    assert edit.new_text == DEFAULT_COMPLETION
    assert edit.range.start == edit.range.end == types.Position(line=1, character=4)


async def test_model_from_the_command_line(tiny_model_path):
    config = ClientServerConfig(
        server_command=[
            sys.executable,
            "-m",
            "lsp_server",
            "--stdio",
            "--model",
            str(tiny_model_path),
        ]
    )
    client = await config.start()
    try:
        await start(client, "visual-studio-code", None)
        open_doc(client)
        got = await inline(client, 1, 4)
        assert got is not None and got.items[0].insert_text == DEFAULT_COMPLETION
    finally:
        await client.shutdown_session()
        await client.stop()


async def test_progress_reported_for_model_load(client: LanguageClient, tiny_model_path):
    await start(client, "visual-studio-code", {"model": str(tiny_model_path), "nThreads": 1})
    reports = [r for rs in client.progress_reports.values() for r in rs]
    assert isinstance(reports[0], types.WorkDoneProgressBegin)
    assert "Loading model" in (reports[0].message or "")
    assert isinstance(reports[-1], types.WorkDoneProgressEnd)
    assert "ready" in (reports[-1].message or "").lower()


async def test_position_encoding_negotiation(client: LanguageClient, tiny_model_path):
    caps = client_capabilities("visual-studio-code")
    caps.general = types.GeneralClientCapabilities(
        position_encodings=[types.PositionEncodingKind.Utf8, types.PositionEncodingKind.Utf16]
    )
    result = await client.initialize_session(
        types.InitializeParams(
            capabilities=caps, initialization_options={"model": str(tiny_model_path), "nThreads": 1}
        )
    )
    assert result.capabilities.position_encoding == types.PositionEncodingKind.Utf8
    await wait_progress_done(client)
    # "é" is 2 UTF-8 bytes: the empty body line is reached at byte column 4 all the same,
    # but a cursor after "# é" on line 0 must be converted with byte counts.
    text = "def add(a, b):  # é\n    \n"
    open_doc(client, text)
    got = await inline(client, 1, 4)
    assert got is not None and got.items[0].insert_text == DEFAULT_COMPLETION


async def test_incremental_changes_are_applied(client: LanguageClient, tiny_model_path):
    await start(client, "neovim", {"model": str(tiny_model_path), "nThreads": 1})
    open_doc(client, "x = 1\n")
    client.text_document_did_change(
        types.DidChangeTextDocumentParams(
            text_document=types.VersionedTextDocumentIdentifier(uri=URI, version=2),
            content_changes=[
                types.TextDocumentContentChangePartial(
                    range=types.Range(
                        start=types.Position(line=1, character=0),
                        end=types.Position(line=1, character=0),
                    ),
                    text="def add(a, b):\n    \n",
                )
            ],
        )
    )
    got = await inline(client, 2, 4)
    assert got is not None and got.items[0].insert_text == DEFAULT_COMPLETION


# -- bad input -----------------------------------------------------------------------------


async def test_unknown_model_name_lists_known_models(client: LanguageClient):
    await start(client, "visual-studio-code", {"model": "no-such-model"})
    open_doc(client)
    got = await inline(client, 1, 4)
    assert got is not None and not got.items
    errors = [m.message for m in client.messages if m.type == types.MessageType.Error]
    assert len(errors) == 1
    assert "no-such-model" in errors[0] and "deepseek-coder-1.3b-base" in errors[0]
    # The server is still up and answers again (no second message: shown once).
    got = await inline(client, 1, 4)
    assert got is not None and not got.items
    assert len([m for m in client.messages if m.type == types.MessageType.Error]) == 1


@pytest.mark.parametrize("kind", ["missing", "truncated", "not-gguf", "empty"])
async def test_bad_model_files(client: LanguageClient, tiny_model_path, tmp_path: Path, kind):
    path = tmp_path / f"{kind}.gguf"
    if kind == "truncated":
        path.write_bytes(tiny_model_path.read_bytes()[: tiny_model_path.stat().st_size // 2])
    elif kind == "not-gguf":
        path.write_bytes(b"PK\x03\x04 this is a zip, not a model" * 100)
    elif kind == "empty":
        path.write_bytes(b"")
    await start(client, "visual-studio-code", {"model": str(path), "nThreads": 1})
    open_doc(client)
    got = await inline(client, 1, 4)
    assert got is not None and not got.items
    errors = [m.message for m in client.messages if m.type == types.MessageType.Error]
    assert len(errors) == 1 and str(path.name) in errors[0]
    # Fixing the setting brings completions back without a restart.
    client.workspace_did_change_configuration(
        types.DidChangeConfigurationParams(settings={"model": str(tiny_model_path), "nThreads": 1})
    )
    await asyncio.sleep(0.05)
    await wait_progress_done(client)
    got = await inline(client, 1, 4)
    assert got is not None and got.items[0].insert_text == DEFAULT_COMPLETION


async def test_invalid_settings_fall_back_to_defaults(client: LanguageClient, tiny_model_path):
    await start(
        client,
        "visual-studio-code",
        {
            "model": str(tiny_model_path),
            "nThreads": 1,
            "maxTokens": "lots",
            "nCtx": -1,
            "colour": "blue",
        },
    )
    warnings = [m.message for m in client.messages if m.type == types.MessageType.Warning]
    assert len(warnings) == 3
    open_doc(client)
    got = await inline(client, 1, 4)
    assert got is not None and got.items[0].insert_text == DEFAULT_COMPLETION


async def test_positions_past_the_end_and_unopened_documents(client, tiny_model_path):
    await start(client, "visual-studio-code", {"model": str(tiny_model_path), "nThreads": 1})
    open_doc(client)
    past_line = await inline(client, 1, 400)  # clamps to the end of the line
    assert past_line is not None and past_line.items[0].insert_text == DEFAULT_COMPLETION
    past_doc = await inline(client, 999, 0)
    assert past_doc is not None  # an answer, not an error
    never_opened = await inline(client, 0, 0, uri="file:///tmp/never-opened.py")
    assert never_opened is not None and not never_opened.items


async def test_cancel_request_answers_at_once_and_a_newer_request_is_served(
    client: LanguageClient, endless_model_path
):
    """A cancelled request is answered (an error) at once; its generation, which goes on
    into the cache, gives way to the next request."""
    await start(
        client,
        "visual-studio-code",
        ENDLESS_OPTIONS | {"model": str(endless_model_path)},
    )
    open_doc(client)
    pending = asyncio.wrap_future(
        client.protocol.send_request(
            types.TEXT_DOCUMENT_INLINE_COMPLETION, inline_params(1, 4), msg_id="cancel-me"
        )
    )
    # Cancel at once: deterministic whatever the machine's speed. (Stopping a generation
    # that is already running, within one token, is covered by the engine/backend tests.)
    client.protocol.notify(types.CANCEL_REQUEST, types.CancelParams(id="cancel-me"))
    with pytest.raises(Exception, match="cancel"):
        await asyncio.wait_for(pending, timeout=30)  # a hang guard, not a latency limit
    # The endless generation goes on until a newer request supersedes it: this one.
    got = await asyncio.wait_for(inline(client, 0, 0), timeout=10)
    assert got is not None
    status = await client.workspace_execute_command_async(
        types.ExecuteCommandParams(command="coder-lsp.status")
    )
    assert status["state"] == "ready"


async def test_newer_request_supersedes_older(client: LanguageClient, endless_model_path):
    await start(
        client,
        "visual-studio-code",
        ENDLESS_OPTIONS | {"model": str(endless_model_path)},
    )
    open_doc(client)
    first = asyncio.ensure_future(inline(client, 1, 4))
    await asyncio.sleep(0.05)
    second = asyncio.ensure_future(inline(client, 1, 4))
    got_first = await asyncio.wait_for(first, timeout=10)
    assert got_first is not None and not got_first.items  # superseded: empty at once
    second.cancel()


async def test_binary_and_huge_documents(client: LanguageClient, tiny_model_path):
    await start(client, "visual-studio-code", {"model": str(tiny_model_path), "nThreads": 1})
    open_doc(client, "\x00\x01PNG\x00" * 1000, uri="file:///tmp/blob.py")
    got = await inline(client, 0, 3, uri="file:///tmp/blob.py")
    assert got is not None and not got.items
    # 3 MB (more than the server parses) with a 60,000-character line in it.
    filler = "".join(f"value_{i} = {i}\n" for i in range(150_000))
    huge = filler + "blob = '" + "Q" * 60_000 + "'\n" + "def add(a, b):\n    \n"
    open_doc(client, huge, uri="file:///tmp/huge.py")
    line = huge.count("\n") - 1
    got = await asyncio.wait_for(inline(client, line, 4, uri="file:///tmp/huge.py"), 60)
    assert got is not None and got.items[0].insert_text == DEFAULT_COMPLETION
