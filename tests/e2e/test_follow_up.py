"""Over real LSP: an answer a time limit left empty is finished in the background, the
client is told with ``coder-lsp/completionReady``, and its next request is answered from
the cache.

``maxPredictMs: 0`` stands in for a very busy machine: the hard limit has passed when the
first token comes, so every generation under it ends with nothing to show (the tiny
model's first token, ``return``, is not a whole line).
"""

from __future__ import annotations

import asyncio

from lsprotocol import types
from pytest_lsp import LanguageClient

from lsp_server.server import READY_NOTIFICATION
from tests.e2e.test_lsp import URI, client, open_doc, start  # noqa: F401
from tests.tinymodel import DEFAULT_COMPLETION


async def automatic(client: LanguageClient, line: int, character: int):  # noqa: F811
    """An inline completion request as an editor sends it while the user types."""
    return await client.text_document_inline_completion_async(
        types.InlineCompletionParams(
            text_document=types.TextDocumentIdentifier(uri=URI),
            position=types.Position(line=line, character=character),
            context=types.InlineCompletionContext(
                trigger_kind=types.InlineCompletionTriggerKind.Automatic
            ),
        )
    )


async def test_cut_short_answer_is_finished_and_the_client_is_told(
    client: LanguageClient,  # noqa: F811
    tiny_model_path,
):
    await start(client, "neovim", {"model": str(tiny_model_path), "nThreads": 1, "maxPredictMs": 0})
    open_doc(client)
    ready = asyncio.ensure_future(client.wait_for_notification(READY_NOTIFICATION))
    first = await asyncio.wait_for(automatic(client, 1, 4), timeout=30)
    assert first is not None and not first.items  # the time limit: empty, at once
    params = await asyncio.wait_for(ready, timeout=30)
    assert params.textDocument.uri == URI and params.textDocument.version == 1
    assert (params.position.line, params.position.character) == (1, 4)
    again = await asyncio.wait_for(automatic(client, 1, 4), timeout=30)
    assert again is not None and [i.insert_text for i in again.items] == [DEFAULT_COMPLETION]
    stats = await client.workspace_execute_command_async(
        types.ExecuteCommandParams(command="coder-lsp.stats")
    )
    got = [(r["outcome"], r["follow_up"], r["stop_reason"], r["cache"]) for r in stats["requests"]]
    assert got == [
        ("empty", False, "timeout", "miss"),
        ("ok", True, "eos", "miss"),  # the follow-up: no time limit cut it
        ("ok", False, "", "exact"),  # the client's second request: from the cache
    ]
