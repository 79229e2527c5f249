"""Over real LSP: a generation stopped by a time limit never shows a cut line.

The endless tiny model writes "xxxx…" on one line forever; only a limit stops it. With a
short hard limit (``maxPredictMs``) the generation ends mid-line, and the whole-lines rule
leaves nothing to show: the answer is empty, never a row of x's cut by the clock.
"""

from __future__ import annotations

import asyncio

from lsprotocol import types
from pytest_lsp import LanguageClient

from tests.e2e.test_lsp import ENDLESS_OPTIONS, client, inline, open_doc, start  # noqa: F401


async def test_hard_limit_mid_line_answers_nothing(client: LanguageClient, endless_model_path):  # noqa: F811
    await start(
        client,
        "neovim",
        ENDLESS_OPTIONS | {"model": str(endless_model_path), "maxPredictMs": 30},
    )
    open_doc(client)
    got = await asyncio.wait_for(inline(client, 1, 4), timeout=30)
    assert got is not None and not got.items
    stats = await client.workspace_execute_command_async(
        types.ExecuteCommandParams(command="coder-lsp.stats")
    )
    last = stats["requests"][-1]
    # It did generate (and stopped by the clock, not by running out of context).
    assert last["stop_reason"] == "timeout"
    assert 0 < last["generated_tokens"] < 100_000
